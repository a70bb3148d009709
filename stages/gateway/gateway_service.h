#pragma once
// The gateway node kind's service (graph/node_kind_descriptor.h): what its
// stages share, made once per pipeline before any stage
// (stages/gateway/README.md "Control plane").
//
//   keys        api_key_store on the section's `keys` file (reloaded on change)
//   commands    nats_requests on the pipeline's `nats_url`: async request/reply
//   local       without `nats_url` (esflow dev): the nodes of this process
//               (local_upstreams.h) instead of NATS, placement and query_upstream
//   channels    upstream_channels: the pooled gRPC channels of `query_upstream`, `runner_grpc`
//   http_pool   blocking_pool for the proxied HTTP reads (aggregate, saga)
//   timer       deadlines and retry backoffs
//   placement   placement_service (kinds {"gateway"}): who hosts a tenant
//   metrics     esflow_gateway_* on the node host's registry
//
// NOTE: thread-safe (each member is); the stages call it from TBB workers,
//       nats.c's and gRPC's callback threads, the pool's and the timer's.
// NOTE: lifetime: destroyed after the pipeline's stages (the node has drained:
//       nothing is in flight); the destructor stops the pool, the NATS
//       requests and the timer, in that order.
#include "common/blocking_pool.h"
#include "common/result.h"
#include "graph/node_kind_descriptor.h"
#include "stages/gateway/api_keys.h"
#include "stages/gateway/gateway_config.h"
#include "stages/gateway/gateway_context.h"
#include "stages/gateway/local_upstreams.h"
#include "stages/gateway/nats_requests.h"
#include "stages/gateway/timer_thread.h"
#include "stages/gateway/upstream_channels.h"

#include <nlohmann/json.hpp>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <atomic>
#include <memory>
#include <string>

namespace esflow::nats {
class nats_link;
}
namespace esflow::placement {
class placement_service;
}

namespace esflow::gateway {

class gateway_metrics {
 public:
  explicit gateway_metrics(prometheus::Registry* registry);
  // outcome: "ok" for a 2xx answer, else the rejection's code
  // (domain_rejection for a program's own: the label set stays bounded).
  void request(route_kind route, std::string_view outcome);
  void upstream(std::string_view upstream, double seconds);
  void retry(std::string_view upstream);

 private:
  std::shared_ptr<prometheus::Registry> _private;  // when no node host
  prometheus::Family<prometheus::Counter>* _requests;
  prometheus::Family<prometheus::Histogram>* _duration;
  prometheus::Family<prometheus::Counter>* _retries;
};

class gateway_service {
 public:
  // `local` makes the in-process upstreams of a pipeline without nats_url.
  static result<std::shared_ptr<gateway_service>> for_pipeline(const graph::node_kind_init& init,
                                                               const local_upstreams_factory& local = {});
  ~gateway_service();
  gateway_service(const gateway_service&) = delete;
  gateway_service& operator=(const gateway_service&) = delete;

  const gateway_config& config() const noexcept { return _config; }
  bool single_tenant() const noexcept { return _single_tenant; }
  api_key_store& keys() { return *_keys; }
  nats_requests& commands() { return *_commands; }  // only when local() is null
  // The process's nodes as upstreams (no nats_url); null when over NATS.
  local_upstreams* local() { return _local.get(); }
  upstream_channels& channels() { return _channels; }
  blocking_pool& http_pool() { return *_http_pool; }
  timer_thread& timer() { return _timer; }
  // nullptr when placement could not start (aggregate reads answer 503).
  placement::placement_service* placement() { return _placement.get(); }
  gateway_metrics& metrics() { return *_metrics; }

  // The bound on upstream calls of every kind at once (the section's
  // max_in_flight): false -> answer 503 unavailable at once.
  bool try_acquire();
  void release();

  nlohmann::json info() const;

 private:
  gateway_service() = default;
  status connect_nats(const graph::node_kind_init& init);

  gateway_config _config;
  bool _single_tenant = false;
  std::string _nats_url;
  std::unique_ptr<api_key_store> _keys;
  std::shared_ptr<nats::nats_link> _link;
  timer_thread _timer;
  std::unique_ptr<nats_requests> _commands;
  std::shared_ptr<local_upstreams> _local;
  upstream_channels _channels;
  std::unique_ptr<blocking_pool> _http_pool;
  std::unique_ptr<placement::placement_service> _placement;
  std::unique_ptr<gateway_metrics> _metrics;
  std::atomic<std::size_t> _in_flight{0};
};

}  // namespace esflow::gateway
