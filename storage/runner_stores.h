#pragma once
// The runner's keyspaces (storage/README.md "Column families and keys"): saga instances, the outbox
// and the schedules. Values are opaque bytes here; the runner owns their
// encoding. A saga commit puts the instance, its outbox items, its schedules
// (added and cancelled), its checkpoint and the input's dedupe marker in ONE
// write_set.
//
// NOTE: thread-safe; the db must outlive the stores.
#include "common/result.h"
#include "storage/keyspace.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace esflow::storage {

// `saga`: (tenant, saga, correlation id) -> instance state.
class saga_store {
 public:
  explicit saga_store(db& database) : _space(database, cf::saga) {}
  result<std::optional<std::string>> get(std::string_view tenant, std::string_view saga,
                                         std::string_view correlation_id) const;
  void put(write_set& ws, std::string_view tenant, std::string_view saga, std::string_view correlation_id,
           std::string_view state) const;
  void erase(write_set& ws, std::string_view tenant, std::string_view saga,
             std::string_view correlation_id) const;

 private:
  keyspace _space;
};

struct outbox_item {
  std::string key;  // the raw key: the cursor of the next list() call
  std::string tenant, kind, work_id;
  std::string item;
};

// `outbox`: (tenant, work kind, work id) -> work item, deleted only after
// its dispatch is confirmed.
class outbox_store {
 public:
  explicit outbox_store(db& database) : _space(database, cf::outbox) {}
  void put(write_set& ws, std::string_view tenant, std::string_view kind, std::string_view work_id,
           std::string_view item) const;
  void erase(write_set& ws, std::string_view tenant, std::string_view kind, std::string_view work_id) const;
  // Items after the cursor (a previous item's key; empty: from the start), at most limit.
  result<std::vector<outbox_item>> list(std::string_view after_key, std::size_t limit) const;
  // The item under this key (outbox_item::key), nullopt once it was deleted.
  result<std::optional<std::string>> get(std::string_view key) const { return _space.get(key); }

 private:
  keyspace _space;
};

struct schedule_key {
  std::uint64_t due_ms = 0;
  std::string tenant, saga, correlation_id, name;
};

struct schedule_item {
  schedule_key key;
  std::string payload;
};

// `schedules`: (due time, tenant, saga, correlation id, name) -> reminder;
// keys sort by due time, so the due items are a prefix of the family.
class schedule_store {
 public:
  explicit schedule_store(db& database) : _space(database, cf::schedules) {}
  void put(write_set& ws, const schedule_key& key, std::string_view payload) const;
  void erase(write_set& ws, const schedule_key& key) const;
  // Items due at or before now_ms (and at or after from_ms), earliest first,
  // at most limit. A lower bound lets a scan skip the deleted items
  // (tombstones) of the past, which RocksDB otherwise walks until compaction.
  result<std::vector<schedule_item>> due(std::uint64_t now_ms, std::size_t limit,
                                         std::uint64_t from_ms = 0) const;

 private:
  keyspace _space;
};

}  // namespace esflow::storage
