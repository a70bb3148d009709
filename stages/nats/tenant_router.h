#pragma once
// tenant_router: which replica of a stateful pipeline owns a tenant, for
// pipelines whose state is node-local (the runner's saga instances) and whose
// replicas share durable consumers (docs/contract.md "Replicas of a stateful
// pipeline", docs/runner.md "Saga replicas").
//
// - Control plane: placement::placement_service on the KV bucket
//   `<PIPELINE>_PLACEMENT` (e.g. RUNNER_PLACEMENT; else the placement file
//   <data_dir>/<pipeline>-placement.json). This node registers with the kind
//   `<pipeline>`; the ring is over the nodes registered with it. A tenant the
//   ring places is pinned there (`tenants.<t>` created with compare-and-set
//   on first sight), so a replica added later takes new tenants only and
//   never strands a running instance's state.
// - Data plane: owner_elsewhere(tenant) (one map snapshot, no I/O) and the
//   forwarder (stages/nats/forwarder.h) for what another replica owns.
// - Threads: "route-pin" writes the pins (bounded queue, one KV call at a
//   time); the forwarder's "route-forward"; the placement watcher.
// Made once per pipeline by tenant.route or tenant.forwarded when the
// pipeline names a node id and a NATS URL; otherwise of() gives null and
// both stages leave every message to this node.
#include "common/result.h"
#include "common/service_registry.h"
#include "graph/pipeline_spec.h"
#include "placement/placement_service.h"
#include "stages/nats/forwarder.h"
#include "transport/nats/nats_link.h"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>

namespace esflow::stages {

// `_ESFLOW.forward.<pipeline>.<node>`: where a replica takes forwarded messages.
std::string forward_subject(std::string_view pipeline, std::string_view node);
// `<PIPELINE>_PLACEMENT` (characters outside [A-Za-z0-9_-] become '_').
std::string pipeline_placement_bucket(std::string_view pipeline);
// The tenant of a stream subject (`...tenant.<t>....`, `_` = the empty
// tenant); nullopt when it names none or a malformed one.
std::optional<std::string> tenant_of_subject(std::string_view subject);

class tenant_router {
 public:
  static result<std::shared_ptr<tenant_router>> of(const graph::pipeline_spec& pipeline,
                                                   esflow::service_registry& services);
  ~tenant_router();
  tenant_router(const tenant_router&) = delete;
  tenant_router& operator=(const tenant_router&) = delete;

  const std::string& node_id() const noexcept { return _node_id; }
  const std::string& own_subject() const noexcept { return _own_subject; }
  // The owner's forward subject when another node owns the tenant; nullopt
  // when this node does (or no owner is known yet: taken in here).
  std::optional<std::string> owner_elsewhere(const std::string& tenant);
  // The owning node when it is another one (reads answer tenant_not_hosted naming it).
  std::optional<std::string> other_owner(const std::string& tenant) const;
  // The HTTP address a node registered (advertise_http, else its listen address); "" when unknown.
  std::string http_of(const std::string& node) const;
  // The router of a pipeline when one runs in this process (else null).
  static std::shared_ptr<tenant_router> find(esflow::service_registry& services, const std::string& pipeline);
  void forward(forward_item item) { _forwarder->submit(std::move(item)); }
  // Messages taken in here, and forwarded messages taken in from others.
  void count_local() noexcept { ++_local; }
  void count_received() noexcept { ++_received; }
  // A drain: waits (bounded) for the forwards in flight, then hands back the rest.
  void finish(std::chrono::milliseconds within);
  const std::shared_ptr<nats::nats_connection>& connection() const { return _link->shared_connection(); }

 private:
  tenant_router() = default;
  void pin_loop();
  nlohmann::json info() const;

  std::string _pipeline;
  std::string _node_id;
  std::string _bucket;
  std::string _own_subject;
  std::shared_ptr<nats::nats_link> _link;
  std::unique_ptr<placement::placement_service> _placement;
  std::unique_ptr<forwarder> _forwarder;
  std::atomic<std::uint64_t> _local{0}, _received{0}, _pinned{0};

  std::mutex _pin_mu;
  std::condition_variable _pin_cv;
  std::deque<std::pair<std::string, std::string>> _pin_queue;  // (tenant, node); guarded by _pin_mu
  std::set<std::string> _pin_asked;                            // queued or tried lately; guarded by _pin_mu
  bool _pin_stop = false;                                      // guarded by _pin_mu
  std::thread _pin_thread;
};

}  // namespace esflow::stages
