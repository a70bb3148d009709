#pragma once
// The `tenants` column family: what a node knows of each tenant it served —
// aggregates created and the time of the last commit — for
// GET /admin/tenants (docs/contract.md, "Admin endpoints"). Keyed by tenant;
// a small fixed value. Written in batches by its owner (the aggregate
// service folds commits in memory and writes at most about once a second),
// unsynced: it is a report, rebuilt by the next commits if lost.
//
// NOTE: thread-safe; the db must outlive the store.
#include "common/result.h"
#include "storage/keyspace.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace esflow::storage {

struct tenant_activity {
  std::uint64_t aggregates = 0;        // aggregates whose first commit this node made
  std::uint64_t last_activity_ms = 0;  // Unix ms of the last commit
};

struct tenant_entry {
  std::string tenant_id;
  tenant_activity activity;
};

class tenant_store {
 public:
  explicit tenant_store(db& database) : _space(database, cf::tenants) {}

  result<std::optional<tenant_activity>> get(std::string_view tenant) const;
  void put(write_set& ws, std::string_view tenant, const tenant_activity& a) const;
  // Tenants in id order after `start_after` (empty: from the first), at most limit.
  result<std::vector<tenant_entry>> list(std::string_view start_after, std::size_t limit) const;

 private:
  keyspace _space;
};

}  // namespace esflow::storage
