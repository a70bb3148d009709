#include "stages/nats/tenant_router.h"

#include "common/log.h"
#include "common/named_thread.h"
#include "stages/node_env.h"
#include "transport/nats/subjects.h"
#include "transport/node_host.h"

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <cctype>
#include <filesystem>
#include <functional>
#include <mutex>

namespace esflow::stages {
namespace {

constexpr std::size_t k_max_pin_queue = 4096;

std::string token_of(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') c = '_';
  return out;
}

// esflow_tenant_route_*{pipeline}: one collector per node host (a family is
// exported once), reading every routed pipeline's counters at scrape time.
class route_metrics final : public prometheus::Collectable {
 public:
  using reader = std::function<std::vector<std::pair<std::string, double>>()>;
  void add(std::string pipeline, reader read) {
    std::lock_guard lock(_mu);
    _pipelines.emplace_back(std::move(pipeline), std::move(read));
  }

  std::vector<prometheus::MetricFamily> Collect() const override {
    using prometheus::MetricType;
    prometheus::MetricFamily messages{"esflow_tenant_route_messages_total",
                                      "Stream messages by where they were processed: local (this node owns "
                                      "the tenant), forwarded (to its owner), received (forwarded here)",
                                      MetricType::Counter,
                                      {}};
    prometheus::MetricFamily forwards{"esflow_tenant_route_forwards_total",
                                      "Forwards to a tenant's owner by outcome: confirmed (acked), resent, "
                                      "handed_back (nak'ed for redelivery), refused (too many pending)",
                                      MetricType::Counter,
                                      {}};
    prometheus::MetricFamily pending{"esflow_tenant_route_forwards_pending",
                                     "Forwards waiting for their owner's answer",
                                     MetricType::Gauge,
                                     {}};
    std::lock_guard lock(_mu);
    for (const auto& [pipeline, read] : _pipelines) {
      for (const auto& [name, value] : read()) {
        prometheus::ClientMetric m;
        m.label = {{"pipeline", pipeline}};
        if (name == "pending") {
          m.gauge.value = value;
          pending.metric.push_back(std::move(m));
          continue;
        }
        m.counter.value = value;
        const bool is_message = name == "local" || name == "forwarded" || name == "received";
        m.label.push_back({is_message ? "where" : "outcome", name});
        (is_message ? messages : forwards).metric.push_back(std::move(m));
      }
    }
    if (pending.metric.empty()) return {};
    return {messages, forwards, pending};
  }

 private:
  mutable std::mutex _mu;
  std::vector<std::pair<std::string, reader>> _pipelines;  // guarded by _mu
};

}  // namespace

std::string forward_subject(std::string_view pipeline, std::string_view node) {
  return "_ESFLOW.forward." + token_of(pipeline) + "." + std::string(node);
}

std::string pipeline_placement_bucket(std::string_view pipeline) {
  auto b = token_of(pipeline);
  for (auto& c : b) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return b + "_PLACEMENT";
}

std::optional<std::string> tenant_of_subject(std::string_view subject) {
  std::size_t start = 0;
  while (start <= subject.size()) {
    const auto dot = subject.find('.', start);
    const auto token =
        subject.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (dot == std::string_view::npos) return std::nullopt;
    if (token == "tenant") {
      const auto end = subject.find('.', dot + 1);
      return nats::decode_tenant_token(
          subject.substr(dot + 1, end == std::string_view::npos ? std::string_view::npos : end - dot - 1));
    }
    start = dot + 1;
  }
  return std::nullopt;
}

result<std::shared_ptr<tenant_router>> tenant_router::of(const graph::pipeline_spec& pipeline,
                                                         esflow::service_registry& services) {
  const auto& settings = pipeline.settings;
  const auto node_id = settings.str("node_id");
  const auto url = settings.str("nats_url");
  if (node_id.empty() || url.empty()) return std::shared_ptr<tenant_router>();
  return services.get_or_create<tenant_router>(
      "tenant-router:" + pipeline.name, [&]() -> result<std::shared_ptr<tenant_router>> {
        if (!placement::is_valid_placement_id(node_id))
          return error::config("node id '" + node_id + "' is not [A-Za-z0-9_-]{1,64}");
        std::shared_ptr<tenant_router> self(new tenant_router());
        self->_pipeline = pipeline.name;
        self->_node_id = node_id;
        self->_bucket = pipeline_placement_bucket(pipeline.name);
        self->_own_subject = forward_subject(pipeline.name, node_id);
        auto link = nats::nats_link::for_url(services, url);
        if (!link.ok()) return std::move(link).err();
        self->_link = std::move(link).value();

        placement::placement_options o;
        o.node_id = node_id;
        o.kinds = {token_of(pipeline.name)};
        o.ring_kind = o.kinds.front();
        o.bucket = self->_bucket;
        o.http =
            settings.str("advertise_http").empty() ? settings.str("http") : settings.str("advertise_http");
        o.file = std::filesystem::path(data_dir_of(pipeline)) / (token_of(pipeline.name) + "-placement.json");
        o.nats = &self->_link->connection();
        if (const auto r = settings.integer("stream_replicas"); r > 0) o.replicas = static_cast<int>(r);
        auto svc = placement::placement_service::start(std::move(o));
        if (!svc.ok()) return std::move(svc).err();
        self->_placement = std::move(svc).value();

        auto* raw = self.get();
        auto fw = forwarder::start(self->_link->shared_connection(), forward_options{},
                                   [raw](const std::string& tenant) { return raw->owner_elsewhere(tenant); });
        if (!fw.ok()) return std::move(fw).err();
        self->_forwarder = std::move(fw).value();
        self->_pin_thread = start_named_thread("route-pin", "placement", [raw] { raw->pin_loop(); });

        if (auto host = services.find<transport::node_host>("")) {
          const std::weak_ptr<tenant_router> weak = self;
          host->set_info("routing:" + pipeline.name, [weak]() -> nlohmann::json {
            auto r = weak.lock();
            return r ? r->info() : nlohmann::json(nullptr);
          });
          auto collector = services.get_or_create<route_metrics>(
              "tenant.route.metrics", [&host]() -> result<std::shared_ptr<route_metrics>> {
                auto made = std::make_shared<route_metrics>();
                host->add_metrics(made);
                return made;
              });
          if (collector.ok())
            collector.value()->add(pipeline.name, [weak]() -> std::vector<std::pair<std::string, double>> {
              auto r = weak.lock();
              if (!r) return {};
              const auto& s = r->_forwarder->stats();
              const auto d = [](const std::atomic<std::uint64_t>& v) {
                return static_cast<double>(v.load());
              };
              return {
                  {"local", d(r->_local)},       {"forwarded", d(s.forwarded)},
                  {"received", d(r->_received)}, {"confirmed", d(s.confirmed)},
                  {"resent", d(s.resent)},       {"handed_back", d(s.handed_back)},
                  {"refused", d(s.refused)},     {"pending", static_cast<double>(r->_forwarder->pending())}};
            });
        }
        ESFLOW_INFO("placement", "pipeline {}: node {} routes tenants by {} ({}), takes forwards on {}",
                    pipeline.name, node_id, self->_bucket, placement::to_string(self->_placement->source()),
                    self->_own_subject);
        return self;
      });
}

tenant_router::~tenant_router() {
  {
    std::lock_guard lock(_pin_mu);
    _pin_stop = true;
  }
  _pin_cv.notify_all();
  ignore(join_named_thread(_pin_thread, "a placement pin"));
  if (_forwarder) _forwarder->stop();
  if (_placement) _placement->stop();
}

std::optional<std::string> tenant_router::owner_elsewhere(const std::string& tenant) {
  const auto map = _placement->current();
  const auto owner = map->owner(tenant);
  if (!owner) return std::nullopt;
  // Placed by the ring only: pin it there, so a later change of the ring
  // (a replica added) does not move a tenant whose instances live there.
  if (_placement->kv() != nullptr && !map->tenants().count(placement::tenant_token(tenant))) {
    std::lock_guard lock(_pin_mu);
    if (_pin_queue.size() < k_max_pin_queue && _pin_asked.insert(tenant).second) {
      _pin_queue.emplace_back(tenant, *owner);
      _pin_cv.notify_one();
    }
  }
  if (*owner == _node_id) return std::nullopt;
  return forward_subject(_pipeline, *owner);
}

std::optional<std::string> tenant_router::other_owner(const std::string& tenant) const {
  auto owner = _placement->current()->owner(tenant);
  if (!owner || *owner == _node_id) return std::nullopt;
  return owner;
}

std::string tenant_router::http_of(const std::string& node) const {
  const auto map = _placement->current();
  const auto* reg = map->registration(node);
  return reg != nullptr ? reg->http : std::string();
}

std::shared_ptr<tenant_router> tenant_router::find(esflow::service_registry& services,
                                                   const std::string& pipeline) {
  return services.find<tenant_router>("tenant-router:" + pipeline);
}

void tenant_router::pin_loop() {
  std::unique_lock lock(_pin_mu);
  while (true) {
    _pin_cv.wait(lock, [this] { return _pin_stop || !_pin_queue.empty(); });
    if (_pin_stop) return;
    auto [tenant, node] = std::move(_pin_queue.front());
    _pin_queue.pop_front();
    lock.unlock();
    // Create-only: when another replica pinned it first, its pin stands (the watch brings it).
    auto done = _placement->kv()->move_tenant(tenant, node, 0);
    const bool failed = !done.ok() && done.err().code != errc::version_conflict;
    if (done.ok()) {
      ++_pinned;
      ESFLOW_INFO("placement", "pipeline {}: tenant '{}' pinned to {}", _pipeline, tenant, node);
    } else if (failed) {
      ESFLOW_WARN("placement", "pipeline {}: pinning tenant '{}' to {} failed: {} (asked again later)",
                  _pipeline, tenant, node, done.err().to_string());
    }
    lock.lock();
    _pin_asked.erase(tenant);
    // KV not answering: at most one attempt a second until it does.
    if (failed) _pin_cv.wait_for(lock, std::chrono::seconds(1), [this] { return _pin_stop; });
  }
}

void tenant_router::finish(std::chrono::milliseconds within) {
  if (!_forwarder->wait_idle(within))
    ESFLOW_WARN("nats", "pipeline {}: {} forward(s) unanswered at the drain: handed back", _pipeline,
                _forwarder->pending());
  _forwarder->stop();
}

nlohmann::json tenant_router::info() const {
  const auto& s = _forwarder->stats();
  return {{"node", _node_id},
          {"bucket", _bucket},
          {"source", std::string(placement::to_string(_placement->source()))},
          {"forward_subject", _own_subject},
          {"local", _local.load()},
          {"received", _received.load()},
          {"pinned", _pinned.load()},
          {"forwarded", s.forwarded.load()},
          {"confirmed", s.confirmed.load()},
          {"resent", s.resent.load()},
          {"handed_back", s.handed_back.load()},
          {"refused", s.refused.load()},
          {"pending", _forwarder->pending()}};
}

}  // namespace esflow::stages
