#pragma once
// tenant_tracker: per tenant, the aggregates this node created and the time
// of its last commit, for GET /admin/tenants. Commits are folded in memory
// (one short mutex per commit, on the log's completion thread) and written
// to the node store's `tenants` family at most about once a second, by the
// commit that notices the interval passed, and at destruction.
//
// Memory: one small entry per tenant served (loaded at open, at most
// `max_tenants`; beyond it new tenants are not tracked and a warning says so).
// NOTE: thread-safe; the store must outlive it.
#include "common/result.h"
#include "storage/node_store.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

namespace esflow::aggregate {

class tenant_tracker {
 public:
  static result<std::unique_ptr<tenant_tracker>> open(storage::node_store& store,
                                                      std::size_t max_tenants = 100000);
  ~tenant_tracker();
  tenant_tracker(const tenant_tracker&) = delete;
  tenant_tracker& operator=(const tenant_tracker&) = delete;

  // A commit of `tenant` stored (new_aggregate: it was the aggregate's first).
  void record(const std::string& tenant, bool new_aggregate);
  // [{"tenant_id","aggregates","last_activity"}] in tenant order.
  nlohmann::json list() const;
  // Writes what changed since the last write (unsynced).
  status flush();

 private:
  tenant_tracker(storage::node_store& store, std::size_t max_tenants) : _store(store), _max(max_tenants) {}

  storage::node_store& _store;
  std::size_t _max;
  mutable std::mutex _mu;
  std::map<std::string, storage::tenant_activity, std::less<>> _by_tenant;  // guarded by _mu
  std::set<std::string, std::less<>> _dirty;                                // guarded by _mu
  std::chrono::steady_clock::time_point _last_flush = std::chrono::steady_clock::now();
  bool _warned_full = false;  // guarded by _mu
};

}  // namespace esflow::aggregate
