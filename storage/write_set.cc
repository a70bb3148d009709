#include "storage/write_set.h"

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <map>

namespace esflow::storage {

write_set::write_set(db& database) : _db(&database), _batch(std::make_unique<rocksdb::WriteBatch>()) {}
write_set::~write_set() = default;
write_set::write_set(write_set&&) noexcept = default;

void write_set::put(cf family, std::string_view key, std::string_view value) {
  // A null handle would silently address the default family.
  auto* handle = _db->handle(family);
  if (handle == nullptr) {
    _db_closed = true;
    return;
  }
  // Put/Delete on an in-memory batch only fail for oversized batches (> 4 GiB): not a runtime condition here.
  _batch->Put(handle, rocksdb::Slice(key.data(), key.size()), rocksdb::Slice(value.data(), value.size()))
      .PermitUncheckedError();
  ++_ops;
}

void write_set::erase(cf family, std::string_view key) {
  auto* handle = _db->handle(family);
  if (handle == nullptr) {
    _db_closed = true;
    return;
  }
  _batch->Delete(handle, rocksdb::Slice(key.data(), key.size())).PermitUncheckedError();
  ++_ops;
}

namespace {

// Replays a batch's puts and deletes into another (the only operations a write_set records).
class copier final : public rocksdb::WriteBatch::Handler {
 public:
  copier(db& database, rocksdb::WriteBatch& into) : _db(database), _into(into) {
    for (std::size_t i = 0; i < cf_count; ++i)
      if (auto* h = _db.handle(static_cast<cf>(i))) _by_id[h->GetID()] = h;
  }
  rocksdb::Status PutCF(std::uint32_t id, const rocksdb::Slice& key, const rocksdb::Slice& value) override {
    auto* h = handle(id);
    if (h == nullptr) return rocksdb::Status::InvalidArgument("unknown column family");
    return _into.Put(h, key, value);
  }
  rocksdb::Status DeleteCF(std::uint32_t id, const rocksdb::Slice& key) override {
    auto* h = handle(id);
    if (h == nullptr) return rocksdb::Status::InvalidArgument("unknown column family");
    return _into.Delete(h, key);
  }

 private:
  rocksdb::ColumnFamilyHandle* handle(std::uint32_t id) const {
    auto it = _by_id.find(id);
    return it == _by_id.end() ? nullptr : it->second;
  }
  db& _db;
  rocksdb::WriteBatch& _into;
  std::map<std::uint32_t, rocksdb::ColumnFamilyHandle*> _by_id;
};

}  // namespace

bool write_set::absorb(const write_set& other) {
  if (other._db != _db) return false;
  if (other._db_closed) _db_closed = true;
  if (other.empty()) return true;
  copier c(*_db, *_batch);
  if (!other._batch->Iterate(&c).ok()) return false;
  _ops += other._ops;
  return true;
}

void write_set::clear() {
  _batch->Clear();
  _ops = 0;
  _db_closed = false;
}

}  // namespace esflow::storage
