#pragma once
// write_set: puts and deletes across column families that become visible
// all-or-none, in ONE WriteBatch (node_store::commit). The saga commit (state
// + outbox + schedules + checkpoint + dedupe) and the projection commit (rows
// + index entries + checkpoint) are each one write_set.
//
// NOTE: not thread-safe; one owner fills it, then hands it to commit().
// NOTE: bound to the db it was made for (node_store::begin()); it must not
//       outlive that db.
#include "storage/db.h"

#include <cstddef>
#include <memory>
#include <string_view>

namespace esflow::storage {

class write_set {
 public:
  explicit write_set(db& database);
  ~write_set();
  write_set(write_set&&) noexcept;
  write_set& operator=(write_set&&) = delete;
  write_set(const write_set&) = delete;
  write_set& operator=(const write_set&) = delete;

  void put(cf family, std::string_view key, std::string_view value);
  void erase(cf family, std::string_view key);
  // Operations recorded so far (puts + erases).
  std::size_t size() const noexcept { return _ops; }
  bool empty() const noexcept { return _ops == 0; }
  void clear();
  // Appends other's operations after this set's (group commit: several sets written as one
  // batch, all-or-none together). False when other belongs to another db or cannot be read.
  bool absorb(const write_set& other);

  // For db::write (storage internals).
  rocksdb::WriteBatch& batch() noexcept { return *_batch; }
  db& database() const noexcept { return *_db; }
  bool met_closed_db() const noexcept { return _db_closed; }

 private:
  db* _db;
  std::unique_ptr<rocksdb::WriteBatch> _batch;
  std::size_t _ops = 0;
  bool _db_closed = false;  // an operation met a closed db: commit() refuses the set
};

}  // namespace esflow::storage
