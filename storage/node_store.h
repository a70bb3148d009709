#pragma once
// node_store: everything a node keeps locally, one per data directory and
// process, shared by every node kind the process runs (aggregate, runner,
// projection): the RocksDB instance and typed stores over its column
// families, plus atomic multi-family writes (write_set).
//
// Control plane: shared() opens the directory's store on first use (or
// returns the open one: RocksDB holds a file lock, so a second instance
// could not open it anyway) and closes it when the last user lets go.
// Data plane: the typed stores and commit(); all thread-safe.
//
// Group commit: concurrent commit() calls are grouped by RocksDB's write
// thread into one WAL write and (durability fsync) one fsync.
//
// NOTE: an event log built on the store (event_log_factory.h) must be closed
//       before the store; shared() owners hold both in that order.
#include "common/result.h"
#include "storage/checkpoint_store.h"
#include "storage/db.h"
#include "storage/dedupe_store.h"
#include "storage/quarantine_store.h"
#include "storage/readmodel_store.h"
#include "storage/runner_stores.h"
#include "storage/snapshot_store.h"
#include "storage/tenant_store.h"
#include "storage/write_set.h"

#include <chrono>
#include <memory>
#include <mutex>
#include <string>

namespace esflow::storage {

struct node_store_options {
  std::string data_dir = "./data";
  durability mode = durability::fsync;
  // Tests: see db_options::inject_write_failure.
  std::function<bool()> inject_write_failure{};
};

// A data directory as one spelling: absolute, normalised, no trailing '/'.
// The key of the directory's store, event log and per-directory services.
std::string normalise_data_dir(const std::string& dir);

class node_store {
 public:
  // A store of its own (tests, tools); fails while another holds the directory.
  static result<std::shared_ptr<node_store>> open(const node_store_options& options);
  // The process's store of options.data_dir (normalised path), opened on first
  // use. A second caller asking for another durability gets invalid_config
  // naming both: one directory has one durability.
  static result<std::shared_ptr<node_store>> shared(const node_store_options& options);

  ~node_store();
  node_store(const node_store&) = delete;
  node_store& operator=(const node_store&) = delete;

  write_set begin() { return write_set(*_db); }
  // The store as it is now, for reads that must agree with each other
  // (storage/read_view.h); null when the store is closed.
  std::shared_ptr<read_view> snapshot();
  // Writes the set all-or-none with the store's durability; an empty set is ok.
  status commit(write_set& ws);
  // Same without fsync: for data that can be rebuilt (read models, snapshots).
  status commit_unsynced(write_set& ws);

  // Liveness probe: a small write and read back of a probe key, bounded by
  // `budget` (a write that takes longer is reported, not waited out twice).
  status probe(std::chrono::milliseconds budget) const;

  db& database() { return *_db; }
  const std::string& data_dir() const { return _options.data_dir; }
  durability mode() const { return _options.mode; }

  dedupe_store& dedupe() { return _dedupe; }
  snapshot_store& snapshots() { return _snapshots; }
  checkpoint_store& checkpoints() { return _checkpoints; }
  quarantine_store& quarantine() { return _quarantine; }
  saga_store& sagas() { return _sagas; }
  outbox_store& outbox() { return _outbox; }
  schedule_store& schedules() { return _schedules; }
  readmodel_store& readmodels() { return _readmodels; }
  tenant_store& tenants() { return _tenants; }

  // Closes the db (syncing the WAL); idempotent. Later commits fail unavailable.
  status close();

 private:
  node_store(node_store_options options, std::unique_ptr<db> database);
  error closed() const;  // unavailable "database is closed" naming the directory

  node_store_options _options;
  std::unique_ptr<db> _db;
  dedupe_store _dedupe;
  snapshot_store _snapshots;
  checkpoint_store _checkpoints;
  quarantine_store _quarantine;
  saga_store _sagas;
  outbox_store _outbox;
  schedule_store _schedules;
  readmodel_store _readmodels;
  tenant_store _tenants;
  std::mutex _close_mu;
};

}  // namespace esflow::storage
