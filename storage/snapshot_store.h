#pragma once
// Aggregate snapshots in the `snapshots` column family, keyed by (tenant, type,
// id); one snapshot (the newest) per aggregate.
//
// NOTE: put() is thread-safe and atomic per aggregate: of two racing puts of
//       the same version, one wins and the other gets version_conflict.
// NOTE: snapshots are written unsynced: they can be rebuilt from the log. The
//       WAL keeps order, so a surviving snapshot never points past the log.
// NOTE: the db must outlive the store.
#include "common/result.h"
#include "schemas/envelopes.h"
#include "storage/db.h"

#include <array>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>

namespace esflow::storage {

class snapshot_store {
 public:
  explicit snapshot_store(db& database) : _db(database) {}

  // Stores snap unless the stored snapshot's version is >= snap.version
  // (version_conflict: "snapshot version V is not newer than stored S").
  status put(const schemas::snapshot& snap);
  // The aggregate's snapshot, or nullopt. Never another tenant's.
  result<std::optional<schemas::snapshot>> get(std::string_view tenant, std::string_view type,
                                               std::string_view id);

 private:
  db& _db;
  // put() is read-check-write; striped locks make it atomic per aggregate.
  std::array<std::mutex, 64> _stripes;
};

}  // namespace esflow::storage
