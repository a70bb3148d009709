#pragma once
// Which tenants this process admits right now (docs/contract.md "Gateway
// (the edge) and tenant placement"): a tenant placed on another node is
// tenant_not_hosted (naming the owner), a drained tenant is unavailable
// (retryable), every other one is admitted with a lease that counts it as
// in flight until the message is gone. A per-tenant drain is: stop
// admitting, wait until its in-flight count is zero, answer. The rest of the
// node keeps serving.
//
// Placement is a hook (set_placement) so transport/ needs no placement code:
// the node's placement service installs it when placement is on.
//
// NOTE: thread-safe. admit() is on every command's path: a shared lock to
//       find the tenant's counter (a write lock only for a tenant's first
//       command) and one atomic increment. The count is raised before the
//       draining flag is read and drain() sets the flag before it reads the
//       count (both seq_cst), so no command slips past a finished drain.
#include "common/result.h"

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <unordered_map>

namespace esflow::transport {

class tenant_admission {
 public:
  // Tenants with a counter at once; beyond it idle ones (none in flight, not
  // drained) are forgotten, so ids sent by anyone cannot grow it for ever.
  explicit tenant_admission(std::size_t max_tracked = 100000) : _max_tracked(max_tracked) {}

  // The owner of a tenant this node does not host; nullopt when it hosts it.
  using placement_hook = std::function<std::optional<std::string>(const std::string& tenant)>;

  void set_placement(placement_hook hook);
  // A lease (destroying it ends the command's in-flight count) or the
  // rejection: tenant_not_hosted with error::node set, or unavailable.
  result<std::shared_ptr<void>> admit(const std::string& tenant);

  // Stops admitting the tenant; true once nothing of it is in flight
  // (waits at most `limit`, polling: called on an admin thread).
  bool drain(const std::string& tenant, std::chrono::milliseconds limit);
  // Admits the tenant again (an aborted move, or placement moved it away).
  void resume(const std::string& tenant);
  bool draining(const std::string& tenant) const;
  std::set<std::string> draining_tenants() const;
  std::int64_t in_flight(const std::string& tenant) const;
  std::size_t tracked() const;

 private:
  // The tenant's counter, already raised: raised under the map's lock, so a
  // prune (unique lock) never drops a counter a command is about to hold.
  std::shared_ptr<std::atomic<std::int64_t>> raise(const std::string& tenant);
  void prune_locked();  // under the unique lock

  std::size_t _max_tracked;

  mutable std::shared_mutex _mu;
  std::unordered_map<std::string, std::shared_ptr<std::atomic<std::int64_t>>> _in_flight;  // guarded by _mu
  std::set<std::string> _draining;                                                         // guarded by _mu
  std::atomic<std::size_t> _draining_count{0};       // fast path: no lookup while nothing drains
  std::shared_ptr<const placement_hook> _placement;  // atomic_load/atomic_store
};

}  // namespace esflow::transport
