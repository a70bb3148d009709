// The gateway node kind: HTTP/JSON at the edge, upstream calls over NATS
// (commands), gRPC (queries, runner admin) and HTTP (aggregate and saga reads)
// (docs/gateway.md). Owns the `gateway:` section (checked at load time with
// file:line); its messages start as a gateway_context; its service
// (gateway_service.h) holds the keys, the upstream clients and the metrics.
#include "common/log.h"
#include "common/service_registry.h"
#include "graph/pipeline_spec.h"
#include "placement/placement_service.h"
#include "stages/gateway/gateway_service.h"
#include "stages/gateway/register.h"
#include "transport/nats/nats_link.h"
#include "transport/node_host.h"

#include <prometheus/client_metric.h>
#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>
#include <prometheus/metric_type.h>

#include <cstdlib>
#include <stdexcept>

namespace esflow::gateway {

std::string_view to_string(route_kind r) noexcept {
  switch (r) {
    case route_kind::command:
      return "commands";
    case route_kind::query:
      return "query";
    case route_kind::aggregate:
      return "aggregate";
    case route_kind::aggregate_events:
      return "aggregate_events";
    case route_kind::saga:
      return "saga";
    case route_kind::runner_admin:
      return "runner_admin";
  }
  return "unknown";
}

// ---- metrics ---------------------------------------------------------------------

gateway_metrics::gateway_metrics(prometheus::Registry* registry) {
  if (registry == nullptr) {
    _private = std::make_shared<prometheus::Registry>();
    registry = _private.get();
  }
  _requests = &prometheus::BuildCounter()
                   .Name("esflow_gateway_requests_total")
                   .Help("Requests answered by the gateway, by route and outcome (ok or the rejection code)")
                   .Register(*registry);
  _duration = &prometheus::BuildHistogram()
                   .Name("esflow_gateway_upstream_duration_seconds")
                   .Help("Duration of one upstream call attempt (nats, grpc, http)")
                   .Register(*registry);
  _retries = &prometheus::BuildCounter()
                  .Name("esflow_gateway_retries_total")
                  .Help("Upstream call attempts after the first (unavailable, no responders)")
                  .Register(*registry);
}

void gateway_metrics::request(route_kind route, std::string_view outcome) {
  _requests->Add({{"route", std::string(to_string(route))}, {"outcome", std::string(outcome)}}).Increment();
}

void gateway_metrics::upstream(std::string_view upstream, double seconds) {
  static const prometheus::Histogram::BucketBoundaries buckets{
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  _duration->Add({{"upstream", std::string(upstream)}}, buckets).Observe(seconds);
}

void gateway_metrics::retry(std::string_view upstream) {
  _retries->Add({{"upstream", std::string(upstream)}}).Increment();
}

namespace {

// The key store's reload figures, read at scrape time.
class key_metrics final : public prometheus::Collectable {
 public:
  explicit key_metrics(std::weak_ptr<gateway_service> service) : _service(std::move(service)) {}
  std::vector<prometheus::MetricFamily> Collect() const override {
    auto s = _service.lock();
    if (!s) return {};
    const auto st = s->keys().stats();
    const auto counter = [](std::string name, std::string help, double v) {
      prometheus::ClientMetric m;
      m.counter.value = v;
      return prometheus::MetricFamily{std::move(name), std::move(help), prometheus::MetricType::Counter, {m}};
    };
    prometheus::ClientMetric keys;
    keys.gauge.value = static_cast<double>(s->keys().current()->size());
    return {counter("esflow_gateway_key_reloads_total", "Key file reloads installed after the first load",
                    static_cast<double>(st.reloads)),
            counter("esflow_gateway_key_reload_failures_total",
                    "Key file reloads that failed (the previous keys stay in use)",
                    static_cast<double>(st.reload_failures)),
            prometheus::MetricFamily{
                "esflow_gateway_keys", "API keys loaded", prometheus::MetricType::Gauge, {keys}}};
  }

 private:
  std::weak_ptr<gateway_service> _service;
};

}  // namespace

// ---- the service ------------------------------------------------------------------

result<std::shared_ptr<gateway_service>> gateway_service::for_pipeline(const graph::node_kind_init& init,
                                                                       const local_upstreams_factory& local) {
  const auto& pipeline = init.pipeline;
  return init.services.get_or_create<gateway_service>(
      "gateway:" + pipeline.name, [&]() -> result<std::shared_ptr<gateway_service>> {
        const auto it = pipeline.sections.find("gateway");
        auto config = parse_gateway_section(it == pipeline.sections.end() ? YAML::Node() : it->second,
                                            pipeline.file, pipeline.base_dir);
        if (!config.ok()) return std::move(config).err();
        std::shared_ptr<gateway_service> s(new gateway_service());
        s->_config = std::move(config).value();
        s->_single_tenant = pipeline.settings.str("tenancy") == "single";
        s->_nats_url = pipeline.settings.str("nats_url");
        // Without keys the gateway could only deny: it does not start.
        auto keys = api_key_store::open(s->_config.keys);
        if (!keys.ok())
          return error::make(errc::invalid_config, "the gateway's API keys (gateway.keys, " +
                                                       s->_config.keys + "): " + keys.err().message);
        s->_keys = std::move(keys).value();
        // Proxied reads block a thread each (httplib's client), as do the
        // in-process reads and queries: a few threads, and a queue as deep as
        // the in-flight bound.
        s->_http_pool = std::make_unique<blocking_pool>("esflow-gw-http", 8, s->_config.max_in_flight);
        if (s->_nats_url.empty()) {
          // No NATS: the nodes of this process are the upstreams (esflow dev,
          // docs/gateway.md "Dev mode"); no placement, the data directory's
          // aggregate node serves every tenant.
          if (local) s->_local = local(init.services, pipeline);
          if (!s->_local)
            return error::make(errc::invalid_config,
                               "the gateway sends commands over NATS: set settings.nats_url (or --nats / "
                               "ESFLOW_NATS_URL)",
                               pipeline.file);
        } else if (auto st = s->connect_nats(init); !st.ok()) {
          return st.err();
        }

        auto host = init.services.find<transport::node_host>("");
        s->_metrics = std::make_unique<gateway_metrics>(host ? &host->metrics() : nullptr);
        if (host) {
          host->add_metrics(std::make_shared<key_metrics>(s));
          std::weak_ptr<gateway_service> weak = s;
          host->set_info("gateway", [weak]() -> nlohmann::json {
            auto g = weak.lock();
            return g ? g->info() : nlohmann::json(nullptr);
          });
        }
        ESFLOW_INFO("gateway",
                    "gateway: {} keys from {}, commands {}, queries to {}, sagas to {}, runner admin to {}",
                    s->_keys->current()->size(), s->_config.keys,
                    s->_local ? std::string("in-process") : "over NATS " + s->_nats_url,
                    !s->_config.query_upstream.empty() ? s->_config.query_upstream
                    : s->_local                        ? std::string("in-process views")
                                                       : std::string("(none)"),
                    s->_config.runner_http.empty() ? "(none)" : s->_config.runner_http,
                    s->_config.runner_grpc.empty() ? "(none)" : s->_config.runner_grpc);
        return s;
      });
}

// Commands over NATS request/reply and placement for the aggregate reads
// (the deployment: docs/gateway.md "Running it").
status gateway_service::connect_nats(const graph::node_kind_init& init) {
  auto link = nats::nats_link::for_url(init.services, _nats_url);
  if (!link.ok()) return std::move(link).err();
  _link = std::move(link).value();
  auto commands = nats_requests::start(_link->shared_connection(), _timer, _config.max_in_flight);
  if (!commands.ok()) return std::move(commands).err();
  _commands = std::move(commands).value();

  // Placement: who hosts a tenant, for the aggregate reads. The gateway is
  // not an aggregate node: it never owns a tenant, it only reads the map.
  placement::placement_options po;
  const char* node_id = std::getenv("ESFLOW_NODE_ID");
  po.node_id = node_id != nullptr && *node_id != '\0' ? node_id : "gateway";
  po.kinds = {"gateway"};
  po.nats = &_link->connection();
  po.start_timeout = std::chrono::milliseconds(1000);
  auto placed = placement::placement_service::start(po);
  if (placed.ok()) {
    _placement = std::move(placed).value();
  } else {
    ESFLOW_WARN("gateway", "placement did not start ({}): aggregate reads answer 503 unavailable",
                placed.err().message);
  }
  return {};
}

gateway_service::~gateway_service() {
  if (_http_pool) _http_pool->stop();
  if (_commands) _commands->stop();
  _timer.stop();
  if (_placement) _placement->stop();
}

bool gateway_service::try_acquire() {
  auto n = _in_flight.load(std::memory_order_relaxed);
  do {
    if (n >= _config.max_in_flight) return false;
  } while (!_in_flight.compare_exchange_weak(n, n + 1, std::memory_order_acq_rel));
  return true;
}

void gateway_service::release() { _in_flight.fetch_sub(1, std::memory_order_acq_rel); }

nlohmann::json gateway_service::info() const {
  nlohmann::json placement = nullptr;
  if (_placement) placement = std::string(placement::to_string(_placement->source()));
  return {{"keys", _config.keys},
          {"key_count", _keys->current()->size()},
          {"commands", _commands ? nlohmann::json{{"nats", _nats_url}, {"inbox", _commands->inbox() + ".*"}}
                                 : nlohmann::json{{"in_process", true}}},
          {"query_upstream", _config.query_upstream},
          {"runner_http", _config.runner_http},
          {"runner_grpc", _config.runner_grpc},
          {"aggregate_reads", {{"placement", placement}}},
          {"default_timeout_ms", _config.default_timeout_ms},
          {"max_in_flight", _config.max_in_flight},
          {"in_flight", _in_flight.load(std::memory_order_relaxed)}};
}

// ---- the kind -----------------------------------------------------------------------

graph::node_kind_descriptor gateway_kind_descriptor(local_upstreams_factory local) {
  graph::node_kind_descriptor d;
  d.name = "gateway";
  d.description =
      "the edge: HTTP/JSON with API keys; commands over NATS, queries over gRPC, reads proxied over HTTP "
      "(without nats_url: the nodes of its own process)";
  d.sections = {"gateway"};
  d.check_section = [](const std::string&, const YAML::Node& section, const std::string& file,
                       const std::string& base_dir) {
    auto parsed = parse_gateway_section(section, file, base_dir);
    if (parsed.ok()) return std::vector<std::string>();
    return graph::problem_lines(parsed.err().message);
  };
  d.make_context = [] { return std::make_shared<gateway_context>(); };
  d.make_service =
      [local = std::move(local)](const graph::node_kind_init& init) -> result<std::shared_ptr<void>> {
    auto s = gateway_service::for_pipeline(init, local);
    if (!s.ok()) return std::move(s).err();
    return std::shared_ptr<void>(std::move(s).value());
  };
  return d;
}

}  // namespace esflow::gateway

namespace esflow::stages {

void register_gateway_stages(graph::kind_registry& registry, gateway::local_upstreams_factory local) {
  using namespace esflow::gateway;
  for (auto make : {http_descriptor, auth_descriptor, route_descriptor, call_descriptor, answer_descriptor}) {
    auto added = registry.add(make());
    if (!added.ok()) throw std::logic_error(added.err().to_string());
  }
  if (auto added = registry.add(gateway_kind_descriptor(std::move(local))); !added.ok())
    throw std::logic_error(added.err().to_string());
}

}  // namespace esflow::stages
