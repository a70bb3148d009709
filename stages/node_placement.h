#pragma once
// Tenant placement of this process's aggregate node (docs/placement.md):
// made once per process by the first aggregate stage that asks, when the
// pipeline names a node id (`node_id` setting, --node-id, ESFLOW_NODE_ID);
// without one placement is off and the node serves every tenant.
//
// - Control plane: placement::placement_service (KV bucket TENANT_PLACEMENT
//   on the pipeline's nats_url, else the placement file
//   <data_dir>/placement.json); this node registers as an aggregate node
//   with its HTTP and gRPC addresses.
// - It installs the tenant_admission hook of the node host: a command of a
//   tenant placed elsewhere is tenant_not_hosted naming the owner.
// - Listeners (nats.request) learn the tenants this node hosts whenever the
//   map changes; a drained tenant that moved away is resumed (it is now
//   simply not hosted here).
// - GET /admin/placement: node id, source, hosted tenants, the map.
//
// Threads: none of its own; listeners run on the KV watcher thread.
#include "common/result.h"
#include "common/service_registry.h"
#include "graph/pipeline_spec.h"
#include "placement/placement_service.h"
#include "transport/nats/nats_link.h"
#include "transport/node_host.h"

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

namespace esflow::stages {

class node_placement {
 public:
  using hosted_listener = std::function<void(const std::set<std::string>& hosted)>;

  const std::string& node_id() const { return _node_id; }
  placement::placement_service& service() { return *_service; }
  // The listed tenants this node hosts now.
  std::set<std::string> hosted() const;
  // Called at once with the current set and after every change; must not block.
  std::uint64_t on_hosted(hosted_listener fn);
  void remove_listener(std::uint64_t id);

  // Null (placement off) when the pipeline names no node id.
  static result<std::shared_ptr<node_placement>> of(const graph::pipeline_spec& pipeline,
                                                    esflow::service_registry& services);
  ~node_placement();

 private:
  node_placement() = default;
  void apply(const placement::map_ptr& map);

  std::string _node_id;
  std::shared_ptr<nats::nats_link> _link;  // before _service: the watcher uses its connection
  std::unique_ptr<placement::placement_service> _service;
  std::uint64_t _listener = 0;
  mutable std::mutex _mu;
  std::set<std::string> _hosted;                        // guarded by _mu
  std::map<std::uint64_t, hosted_listener> _listeners;  // guarded by _mu
  std::uint64_t _next = 1;                              // guarded by _mu
  std::weak_ptr<transport::node_host> _host;
};

}  // namespace esflow::stages
