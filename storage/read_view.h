#pragma once
// read_view: the node store as it was at one moment (a RocksDB snapshot), so
// that several reads — the pages of one query — see one consistent state
// whatever is written meanwhile. Holding one keeps old versions of keys alive
// (compaction cannot drop them): hold it briefly and bound how many exist.
//
// NOTE: must be destroyed before the store that made it is closed.
#include <memory>

namespace rocksdb {
class DB;
class Snapshot;
}  // namespace rocksdb

namespace esflow::storage {

class read_view {
 public:
  read_view(rocksdb::DB* db, const rocksdb::Snapshot* snapshot) : _db(db), _snapshot(snapshot) {}
  ~read_view();
  read_view(const read_view&) = delete;
  read_view& operator=(const read_view&) = delete;
  const rocksdb::Snapshot* snapshot() const noexcept { return _snapshot; }

 private:
  rocksdb::DB* _db;
  const rocksdb::Snapshot* _snapshot;
};

}  // namespace esflow::storage
