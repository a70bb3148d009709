#include "storage/db.h"

#include "common/log.h"
#include "storage/keys.h"

#include <rocksdb/cache.h>
#include <rocksdb/compaction_filter.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <chrono>
#include <vector>

namespace esflow::storage {
namespace {

constexpr std::array<std::string_view, cf_count> cf_names = {
    "snapshots",  "dedupe",     "saga",   "checkpoints", "outbox",  "schedules",
    "quarantine", "readmodels", "events", "event_index", "tenants", "streams",
};

error unavailable(const rocksdb::Status& s, const std::string& path, std::string_view what,
                  std::string_view family = {}) {
  std::string ctx = "path=" + path;
  if (!family.empty()) ctx += " cf=" + std::string(family);
  return error::make(errc::unavailable, std::string(what) + ": " + s.ToString(), std::move(ctx));
}

// Whether a value that starts with an expiry (big-endian u64 ms since the
// epoch) has expired.
bool expired(const rocksdb::Slice& value) {
  if (value.size() < dedupe_expiry_bytes) return false;
  auto expiry = keys::get_u64_be(std::string_view(value.data(), dedupe_expiry_bytes));
  auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  return expiry < static_cast<std::uint64_t>(now);
}

// Drops dedupe entries whose expiry (the value's first 8 bytes) has passed.
// Lookups ignore expired entries anyway; this only reclaims space.
class dedupe_expiry_filter final : public rocksdb::CompactionFilter {
 public:
  bool Filter(int /*level*/, const rocksdb::Slice& /*key*/, const rocksdb::Slice& value,
              std::string* /*new_value*/, bool* /*value_changed*/) const override {
    return expired(value);
  }
  const char* Name() const override { return "esflow.dedupe_expiry"; }
};

const dedupe_expiry_filter& dedupe_filter() {
  static const dedupe_expiry_filter filter;
  return filter;
}

// Drops the msg-id entries of the streams family whose expiry (the value's
// first 8 bytes) has passed: keys (stream, "i", position) and the legacy
// (stream, "d", msg id); messages (stream, "m", position) are kept. Lookups
// ignore expired entries anyway.
class stream_msg_id_filter final : public rocksdb::CompactionFilter {
 public:
  bool Filter(int /*level*/, const rocksdb::Slice& key, const rocksdb::Slice& value,
              std::string* /*new_value*/, bool* /*value_changed*/) const override {
    std::string_view k(key.data(), key.size());
    std::size_t pos = 0;
    std::string_view stream, tag;
    if (!keys::get_str(k, pos, stream) || !keys::get_str(k, pos, tag) || (tag != "i" && tag != "d"))
      return false;
    return expired(value);
  }
  const char* Name() const override { return "esflow.stream_msg_id_expiry"; }
};

const stream_msg_id_filter& stream_filter() {
  static const stream_msg_id_filter filter;
  return filter;
}

}  // namespace

std::string_view to_string(cf family) noexcept { return cf_names[static_cast<std::size_t>(family)]; }

std::string_view to_string(durability mode) noexcept {
  return mode == durability::fsync ? "fsync" : "relaxed";
}

result<std::unique_ptr<db>> db::open(db_options options) {
  std::unique_ptr<db> self(new db(std::move(options)));
  const auto& o = self->_options;

  rocksdb::DBOptions dbo;
  dbo.create_if_missing = o.create_if_missing;
  dbo.create_missing_column_families = true;
  dbo.max_background_jobs = o.max_background_jobs;
  dbo.max_open_files = o.max_open_files;
  dbo.keep_log_file_num = 4;
  // Serial memtable inserts: the group's leader inserts every writer's batch.
  // Only then does a memtable reuse its last insert's position for a key that
  // follows it (log positions, each stream's messages, rewritten checkpoints);
  // concurrent inserts search every key from the top. The writers here are a
  // few group-commit threads whose groups rarely overlap, so nothing runs in
  // parallel that could. Transfer bench: 4.8 against 5.1 aggregate commands of
  // CPU per transfer, 9 runs each (docs/performance.md "Memtable inserts").
  dbo.allow_concurrent_memtable_write = false;
  dbo.max_total_wal_size = 4 * o.write_buffer_bytes * cf_count;
  // All memtables together stay under this; one busy family cannot starve the box.
  dbo.db_write_buffer_size = 4 * o.write_buffer_bytes;

  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(o.block_cache_bytes);
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  table.cache_index_and_filter_blocks = true;
  // Partitioned index and filters: a point lookup (a view row, a snapshot)
  // loads one small partition instead of a whole SST's index block, which at
  // a million rows no longer stays in the cache; the top level is pinned.
  table.index_type = rocksdb::BlockBasedTableOptions::kTwoLevelIndexSearch;
  table.partition_filters = true;
  table.metadata_block_size = 4096;
  table.pin_top_level_index_and_filter = true;
  table.cache_index_and_filter_blocks_with_high_priority = true;
  table.pin_l0_filter_and_index_blocks_in_cache = true;
  auto table_factory = std::shared_ptr<rocksdb::TableFactory>(rocksdb::NewBlockBasedTableFactory(table));

  rocksdb::ColumnFamilyOptions base;
  base.write_buffer_size = o.write_buffer_bytes;
  base.max_write_buffer_number = 2;
  base.table_factory = table_factory;
  base.level_compaction_dynamic_level_bytes = true;

  // RocksDB must open every existing family, including ones we do not know.
  std::vector<std::string> existing;
  if (auto s = rocksdb::DB::ListColumnFamilies(dbo, o.path, &existing); !s.ok()) existing.clear();
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (auto name : cf_names) {
    auto cfo = base;
    if (name == "dedupe") {
      cfo.compaction_filter = &dedupe_filter();
      // Most lookups are misses (new command ids): a memtable bloom filter
      // answers them without walking the skiplist.
      cfo.memtable_prefix_bloom_size_ratio = 0.05;
      cfo.memtable_whole_key_filtering = true;
    }
    if (name == "streams") {
      // No memtable bloom: publishes look their msg ids up in memory (recent_msg_ids.h).
      cfo.compaction_filter = &stream_filter();
    }
    descriptors.emplace_back(std::string(name), cfo);
  }
  descriptors.emplace_back(rocksdb::kDefaultColumnFamilyName, base);
  for (const auto& name : existing) {
    bool known = name == rocksdb::kDefaultColumnFamilyName;
    for (auto n : cf_names) known = known || name == n;
    if (!known) descriptors.emplace_back(name, base);
  }

  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  auto s = rocksdb::DB::Open(dbo, o.path, descriptors, &handles, &self->_db);
  if (!s.ok()) return unavailable(s, o.path, "rocksdb open failed");
  for (std::size_t i = 0; i < cf_count; ++i) self->_handles[i] = handles[i];
  // Only our families are kept; the default and unknown ones are released now.
  for (std::size_t i = cf_count; i < handles.size(); ++i) {
    self->_db->DestroyColumnFamilyHandle(handles[i]).PermitUncheckedError();
  }
  ESFLOW_INFO("storage", "opened rocksdb at {} ({} durability)", o.path, to_string(o.mode));
  return self;
}

db::~db() { esflow::ignore(close()); }

status db::write_with(rocksdb::WriteBatch& batch, bool sync) {
  if (_db == nullptr) {
    return error::make(errc::unavailable, "database is closed", "path=" + _options.path);
  }
  if (_options.inject_write_failure && _options.inject_write_failure())
    return error::make(errc::unavailable, "rocksdb write failed: injected failure", "path=" + _options.path);
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  auto s = _db->Write(wo, &batch);
  if (!s.ok()) return unavailable(s, _options.path, "rocksdb write failed");
  return {};
}

status db::write(rocksdb::WriteBatch& batch) { return write_with(batch, _options.mode == durability::fsync); }

status db::write_unsynced(rocksdb::WriteBatch& batch) { return write_with(batch, false); }

status db::close() {
  if (_db == nullptr) return {};
  status out;
  // A clean close keeps everything written so far, also in relaxed mode.
  if (auto s = _db->FlushWAL(true); !s.ok()) out = unavailable(s, _options.path, "wal sync on close failed");
  for (std::size_t i = 0; i < cf_count; ++i) {
    if (_handles[i] == nullptr) continue;
    auto s = _db->DestroyColumnFamilyHandle(_handles[i]);
    if (!s.ok() && out.ok())
      out = unavailable(s, _options.path, "releasing column family failed", cf_names[i]);
    _handles[i] = nullptr;
  }
  if (auto s = _db->Close(); !s.ok() && out.ok()) out = unavailable(s, _options.path, "rocksdb close failed");
  delete _db;
  _db = nullptr;
  return out;
}

}  // namespace esflow::storage
