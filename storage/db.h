#pragma once
// The node's RocksDB instance: one DB, one column family per keyspace of
// storage/README.md ("Column families and keys"). RocksDB headers stay out of this header; the
// storage .cc files that use the raw handles include <rocksdb/...> themselves.
//
// NOTE: a db is opened once per data directory and process (RocksDB holds a
// file lock); every store of the node shares it. All methods are thread-safe.
// NOTE: close() (or the destructor) must run after every user of raw() and
// handle() has stopped.
#include "common/result.h"

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
class WriteBatch;
}  // namespace rocksdb

namespace esflow::storage {

// Column families, in the order they are opened.
enum class cf : std::uint8_t {
  snapshots,
  dedupe,
  saga,
  checkpoints,
  outbox,
  schedules,
  quarantine,
  readmodels,
  events,       // embedded event log: global position -> commit
  event_index,  // embedded event log: tenant, type, id, last version -> position
  tenants,      // per tenant: aggregates created, last activity (GET /admin/tenants)
  streams,      // embedded workflow streams: messages and their msg ids (storage/embedded_workflow_stream.h)
};
inline constexpr std::size_t cf_count = 12;
std::string_view to_string(cf family) noexcept;

enum class durability : std::uint8_t {
  fsync,    // every write() fsyncs the WAL before returning: an acked write survives power loss
  relaxed,  // the WAL is written but not synced: survives a process crash, not a machine crash
};
std::string_view to_string(durability mode) noexcept;  // "fsync" | "relaxed"

struct db_options {
  std::string path;
  durability mode = durability::fsync;
  bool create_if_missing = true;
  // Sized for a small machine; every value can be raised for a big one.
  std::size_t block_cache_bytes = 32u << 20;
  std::size_t write_buffer_bytes = 16u << 20;  // per column family memtable
  int max_background_jobs = 2;
  int max_open_files = 512;
  // Fault injection for tests: when set and it answers true, a write fails
  // with unavailable before it reaches RocksDB (nothing of it is stored).
  std::function<bool()> inject_write_failure{};
};

class db {
 public:
  // Opens (creating missing column families) or fails with errc::unavailable
  // naming the path and the column family.
  static result<std::unique_ptr<db>> open(db_options options);

  ~db();
  db(const db&) = delete;
  db& operator=(const db&) = delete;

  // Atomic write of a batch with the configured durability.
  status write(rocksdb::WriteBatch& batch);
  // Same, but never synced: for data that can be rebuilt (snapshots, read
  // models). The WAL keeps order, so a crash still loses only a suffix.
  status write_unsynced(rocksdb::WriteBatch& batch);

  // Syncs the WAL and closes; idempotent. Later calls of write() fail.
  status close();

  rocksdb::DB* raw() const noexcept { return _db; }
  rocksdb::ColumnFamilyHandle* handle(cf family) const noexcept {
    return _handles[static_cast<std::size_t>(family)];
  }
  const db_options& options() const noexcept { return _options; }
  durability mode() const noexcept { return _options.mode; }

 private:
  explicit db(db_options options) : _options(std::move(options)) {}
  status write_with(rocksdb::WriteBatch& batch, bool sync);

  db_options _options;
  rocksdb::DB* _db = nullptr;
  std::array<rocksdb::ColumnFamilyHandle*, cf_count> _handles{};
};

// Values of the dedupe column family start with the expiry time (big-endian
// u64, milliseconds since the Unix epoch); compaction drops expired entries.
inline constexpr std::size_t dedupe_expiry_bytes = 8;

}  // namespace esflow::storage
