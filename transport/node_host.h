#pragma once
// Everything one esflow process serves about itself: its running nodes, the
// admin endpoints (/health, /ready, /metrics, /info, /admin/graph,
// /admin/drain, /admin/tenants) and the Prometheus registry that domain
// metrics join.
//
// NOTE: the host owns the nodes; add them before start(). Ready/health checks
// and /info sections may be added by node kinds (storage, NATS).
#include "graph/node.h"
#include "graph/stage_metrics.h"
#include "transport/grpc_server.h"
#include "transport/http_server.h"
#include "transport/tenant_admission.h"

#include <nlohmann/json.hpp>
#include <prometheus/registry.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace esflow::transport {

struct check_result {
  bool ok = true;
  std::string detail;
};

class node_host {
 public:
  explicit node_host(std::shared_ptr<http_server> http);

  void add_node(std::shared_ptr<graph::node> n);
  // /health: the process and its local storage work (never NATS).
  void add_health_check(std::string name, std::function<check_result()> check);
  // /ready: started, consumers bound, NATS reachable where used, not draining.
  void add_ready_check(std::string name, std::function<check_result()> check);
  // A key of /info (build, pipeline, streams, consumers, programs, ...).
  void set_info(const std::string& key, std::function<nlohmann::json()> provider);
  // GET /admin/tenants: each provider gives an array of {"tenant_id",
  // "aggregates", "last_activity"} (one per node kind that serves tenants);
  // the host adds "draining" and concatenates them.
  void add_tenants_provider(std::function<nlohmann::json()> provider);
  // POST /admin/reload runs every hook in the order added (programs,
  // placement, ...); each answers what it did or an error, and a failed one
  // keeps what it had (no in-flight work is dropped by any of them).
  void add_reload_hook(std::string name, std::function<result<std::string>()> hook);
  nlohmann::json reload();
  nlohmann::json tenants() const;

  prometheus::Registry& metrics() { return *_registry; }
  // Figures built at scrape time by their owner (e.g. the JetStream log's).
  void add_metrics(std::shared_ptr<prometheus::Collectable> collectable);
  std::string metrics_text() const;
  nlohmann::json info() const;
  check_result ready() const;
  check_result health() const;

  // Registers the admin routes on the HTTP server.
  void install_routes();
  // Set by POST /admin/drain and by signals; the run loop drains the nodes.
  bool drain_requested() const { return _drain_requested.load(); }
  // Per-tenant admission: placement and per-tenant drains (POST /admin/drain
  // {"tenant_id"}, POST /admin/resume).
  tenant_admission& admission() { return _admission; }
  void request_drain() { _drain_requested.store(true); }

  const std::vector<std::shared_ptr<graph::node>>& nodes() const { return _nodes; }
  http_server& http() { return *_http; }
  // The process's gRPC server, when a pipeline set `grpc` (else null); set
  // before the nodes are built, started and stopped by whoever runs the host.
  void set_grpc(std::shared_ptr<grpc_server> grpc) { _grpc = std::move(grpc); }
  const std::shared_ptr<grpc_server>& grpc() const { return _grpc; }

 private:
  std::shared_ptr<http_server> _http;
  std::shared_ptr<grpc_server> _grpc;
  std::shared_ptr<prometheus::Registry> _registry;
  std::shared_ptr<graph::stage_metrics> _stage_metrics;
  std::vector<std::shared_ptr<prometheus::Collectable>> _collectables;  // guarded by _mu
  std::vector<std::shared_ptr<graph::node>> _nodes;
  mutable std::mutex _mu;
  std::vector<std::pair<std::string, std::function<check_result()>>> _health, _ready;
  std::map<std::string, std::function<nlohmann::json()>> _info;
  std::vector<std::function<nlohmann::json()>> _tenants;                              // guarded by _mu
  std::vector<std::pair<std::string, std::function<result<std::string>()>>> _reload;  // guarded by _mu
  std::atomic<bool> _drain_requested{false};
  tenant_admission _admission;
};

}  // namespace esflow::transport
