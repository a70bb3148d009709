#include "transport/node_host.h"

#include "graph/graph_dump.h"
#include "transport/graph_page.html.h"

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <chrono>

namespace esflow::transport {
namespace {
void reply_json(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

prometheus::MetricFamily family(std::string name, std::string help, prometheus::MetricType type) {
  prometheus::MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

prometheus::MetricFamily gauge(std::string name, std::string help, double v) {
  auto f = family(std::move(name), std::move(help), prometheus::MetricType::Gauge);
  prometheus::ClientMetric m;
  m.gauge.value = v;
  f.metric.push_back(m);
  return f;
}

// esflow_http_* of the server's bounds (transport/README.md "Serving
// limits"), read from its counters at scrape time.
class http_metrics final : public prometheus::Collectable {
 public:
  explicit http_metrics(std::weak_ptr<http_server> http) : _http(std::move(http)) {}
  std::vector<prometheus::MetricFamily> Collect() const override {
    std::vector<prometheus::MetricFamily> out;
    auto http = _http.lock();
    if (!http) return out;
    const auto s = http->stats();
    const auto d = [](std::uint64_t v) { return static_cast<double>(v); };
    auto rejected =
        family("esflow_http_rejected_total", "Requests answered 503 unavailable by the HTTP server's bounds",
               prometheus::MetricType::Counter);
    for (const auto& [reason, n] : {std::pair<const char*, std::uint64_t>{"queue_full", s.rejected_queue},
                                    {"commands_full", s.rejected_commands}}) {
      prometheus::ClientMetric m;
      m.label.push_back({"reason", reason});
      m.counter.value = d(n);
      rejected.metric.push_back(m);
    }
    out.push_back(std::move(rejected));
    out.push_back(gauge("esflow_http_workers", "Handler threads of the HTTP server", d(s.workers)));
    out.push_back(gauge("esflow_http_workers_busy", "Handler threads serving a connection", d(s.busy)));
    out.push_back(
        gauge("esflow_http_queued", "Accepted connections waiting for a handler thread", d(s.queued)));
    out.push_back(gauge("esflow_http_commands_in_flight", "HTTP commands waiting for the pipeline's answer",
                        d(s.commands)));
    out.push_back(gauge("esflow_http_commands_limit",
                        "Most HTTP commands waiting at once (workers minus the reserved)",
                        d(s.command_limit)));
    return out;
  }

 private:
  std::weak_ptr<http_server> _http;
};
}  // namespace

node_host::node_host(std::shared_ptr<http_server> http)
    : _http(std::move(http)),
      _registry(std::make_shared<prometheus::Registry>()),
      _stage_metrics(std::make_shared<graph::stage_metrics>()) {
  set_info("build", [] {
    return nlohmann::json{{"name", "esflow"},
                          {"version", "0.1.0"},
                          {"compiler", __VERSION__},
                          {"built", __DATE__ " " __TIME__}};
  });
  set_info("pipeline", [this] {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& n : _nodes)
      out.push_back({{"name", n->spec().name},
                     {"file", n->spec().file},
                     {"state", std::string(graph::to_string(n->state()))},
                     {"stages", n->stages().size()}});
    return out;
  });
  // Liveness (never NATS): the graphs' workers still run tasks. The node
  // store adds its own check (stages/node_env.cc) once a pipeline opens it.
  add_health_check("workers", [] {
    return graph::workers_alive(std::chrono::milliseconds(1000))
               ? check_result{true, "ok"}
               : check_result{false, "no graph worker ran a probe task within 1000 ms"};
  });
  _collectables.push_back(std::make_shared<http_metrics>(_http));
  set_info("streams", [] { return nlohmann::json::array(); });
  set_info("consumers", [] { return nlohmann::json::array(); });
  set_info("programs", [] { return nlohmann::json::array(); });
}

void node_host::add_node(std::shared_ptr<graph::node> n) {
  _stage_metrics->add(n);
  _nodes.push_back(std::move(n));
}

void node_host::add_health_check(std::string name, std::function<check_result()> check) {
  std::lock_guard lock(_mu);
  _health.emplace_back(std::move(name), std::move(check));
}

void node_host::add_ready_check(std::string name, std::function<check_result()> check) {
  std::lock_guard lock(_mu);
  _ready.emplace_back(std::move(name), std::move(check));
}

void node_host::set_info(const std::string& key, std::function<nlohmann::json()> provider) {
  std::lock_guard lock(_mu);
  _info[key] = std::move(provider);
}

void node_host::add_tenants_provider(std::function<nlohmann::json()> provider) {
  std::lock_guard lock(_mu);
  _tenants.push_back(std::move(provider));
}

void node_host::add_reload_hook(std::string name, std::function<result<std::string>()> hook) {
  std::lock_guard lock(_mu);
  _reload.emplace_back(std::move(name), std::move(hook));
}

nlohmann::json node_host::reload() {
  decltype(_reload) hooks;
  {
    std::lock_guard lock(_mu);
    hooks = _reload;
  }
  auto done = nlohmann::json::object();
  auto failed = nlohmann::json::object();
  for (const auto& [name, hook] : hooks) {
    auto r = hook();
    if (r.ok())
      done[name] = r.value();
    else
      failed[name] = r.err().message;
  }
  return {{"reloaded", done}, {"failed", failed}};
}

nlohmann::json node_host::tenants() const {
  std::vector<std::function<nlohmann::json()>> providers;
  {
    std::lock_guard lock(_mu);
    providers = _tenants;
  }
  auto out = nlohmann::json::array();
  const bool node_draining = drain_requested();
  auto drained = _admission.draining_tenants();
  for (const auto& p : providers) {
    for (auto& t : p()) {
      const auto id = t.value("tenant_id", std::string());
      t["draining"] = node_draining || drained.erase(id) != 0;
      out.push_back(std::move(t));
    }
  }
  // Drained before it served anything here: still listed, so a move's state shows.
  for (const auto& id : drained)
    out.push_back({{"tenant_id", id}, {"aggregates", 0}, {"last_activity", nullptr}, {"draining", true}});
  return out;
}

void node_host::add_metrics(std::shared_ptr<prometheus::Collectable> collectable) {
  std::lock_guard lock(_mu);
  _collectables.push_back(std::move(collectable));
}

std::string node_host::metrics_text() const {
  auto families = _registry->Collect();
  auto stage = _stage_metrics->Collect();
  families.insert(families.end(), stage.begin(), stage.end());
  std::vector<std::shared_ptr<prometheus::Collectable>> extra;
  {
    std::lock_guard lock(_mu);
    extra = _collectables;
  }
  for (const auto& c : extra) {
    auto more = c->Collect();
    families.insert(families.end(), more.begin(), more.end());
  }
  return prometheus::TextSerializer().Serialize(families);
}

nlohmann::json node_host::info() const {
  std::lock_guard lock(_mu);
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [key, provider] : _info) out[key] = provider();
  return out;
}

check_result node_host::health() const {
  std::lock_guard lock(_mu);
  for (const auto& [name, check] : _health) {
    auto r = check();
    if (!r.ok) return {false, name + ": " + r.detail};
  }
  return {true, "ok"};
}

check_result node_host::ready() const {
  if (_drain_requested.load()) return {false, "draining"};
  for (const auto& n : _nodes) {
    if (n->state() != graph::lifecycle::running)
      return {false, "pipeline '" + n->spec().name + "' is " + std::string(graph::to_string(n->state()))};
  }
  std::lock_guard lock(_mu);
  for (const auto& [name, check] : _ready) {
    auto r = check();
    if (!r.ok) return {false, name + ": " + r.detail};
  }
  return {true, "ready"};
}

void node_host::install_routes() {
  auto& s = _http->routes();
  s.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    auto h = health();
    reply_json(res, h.ok ? 200 : 503, {{"status", h.ok ? "ok" : "failing"}, {"detail", h.detail}});
  });
  s.Get("/ready", [this](const httplib::Request&, httplib::Response& res) {
    auto r = ready();
    reply_json(res, r.ok ? 200 : 503, {{"status", r.ok ? "ready" : "not_ready"}, {"detail", r.detail}});
  });
  s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics_text(), "text/plain; version=0.0.4");
  });
  s.Get("/info", [this](const httplib::Request&, httplib::Response& res) { reply_json(res, 200, info()); });
  s.Get("/admin/graph", [this](const httplib::Request& req, httplib::Response& res) {
    // One node: its graph. Several (esflow dev): ?pipeline=<name>, default the first.
    const auto wanted = req.get_param_value("pipeline");
    const graph::node* n = nullptr;
    for (const auto& candidate : _nodes)
      if (wanted.empty() || candidate->spec().name == wanted) {
        n = candidate.get();
        break;
      }
    if (!n) {
      reply_json(res, 404,
                 {{"status", "rejected"},
                  {"code", "not_found"},
                  {"message", "no pipeline named '" + wanted + "'"},
                  {"retryable", false}});
      return;
    }
    if (req.get_param_value("format") == "dot") {
      res.set_content(graph::graph_dot(n->spec(), n), "text/vnd.graphviz");
      return;
    }
    auto body = graph::graph_json(n->spec(), n);
    nlohmann::json names = nlohmann::json::array();
    for (const auto& c : _nodes) names.push_back(c->spec().name);
    body["pipelines"] = names;
    reply_json(res, 200, body);
  });
  s.Get(R"(/admin/graph\.html)", [](const httplib::Request&, httplib::Response& res) {
    // transport/graph_page.html, compiled in: it draws /admin/graph live.
    // The policy holds it to itself: inline script and style, requests only
    // to this node.
    res.set_header("Content-Security-Policy",
                   "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                   "connect-src 'self'; img-src data:");
    res.set_header("Cache-Control", "no-cache");
    const auto page = esflow_graph_page();
    res.set_content(page.data(), page.size(), "text/html; charset=utf-8");
  });
  s.Post("/admin/drain", [this](const httplib::Request& req, httplib::Response& res) {
    if (req.body.empty()) {
      request_drain();
      return reply_json(res, 202, {{"status", "draining"}});
    }
    // {"tenant_id": T[, "timeout_ms": N]}: drain one tenant, answer when safe.
    auto body = nlohmann::json::parse(req.body, nullptr, false);
    if (!body.is_object() || !body.contains("tenant_id") || !body["tenant_id"].is_string())
      return reply_json(
          res, 400,
          {{"status", "rejected"},
           {"code", "invalid_command"},
           {"message", "body must be {\"tenant_id\": \"<tenant>\"} (or empty: drain the node)"}});
    const auto tenant = body["tenant_id"].get<std::string>();
    const auto wait = std::chrono::milliseconds(
        std::clamp<std::int64_t>(body.value("timeout_ms", std::int64_t{30000}), 0, 300000));
    if (!_admission.drain(tenant, wait))
      return reply_json(res, 503,
                        {{"status", "rejected"},
                         {"code", "unavailable"},
                         {"message", "tenant '" + tenant + "' still has commands in flight after " +
                                         std::to_string(wait.count()) + " ms; it stays drained"},
                         {"in_flight", _admission.in_flight(tenant)}});
    reply_json(res, 200, {{"tenant_id", tenant}, {"drained", true}, {"in_flight", 0}});
  });
  s.Post("/admin/reload", [this](const httplib::Request&, httplib::Response& res) {
    auto body = reload();
    // 422 when a part refused the new version (it keeps the old one).
    reply_json(res, body["failed"].empty() ? 200 : 422, body);
  });
  s.Post("/admin/resume", [this](const httplib::Request& req, httplib::Response& res) {
    auto body = nlohmann::json::parse(req.body, nullptr, false);
    if (!body.is_object() || !body.contains("tenant_id") || !body["tenant_id"].is_string())
      return reply_json(res, 400,
                        {{"status", "rejected"},
                         {"code", "invalid_command"},
                         {"message", "body must be {\"tenant_id\": \"<tenant>\"}"}});
    _admission.resume(body["tenant_id"].get<std::string>());
    reply_json(res, 200, {{"tenant_id", body["tenant_id"]}, {"draining", false}});
  });
  s.Get("/admin/tenants", [this](const httplib::Request&, httplib::Response& res) {
    // The tenants the node's aggregates have served, and those drained here
    // (docs/contract.md "Admin endpoints").
    reply_json(res, 200, tenants());
  });
}

}  // namespace esflow::transport
