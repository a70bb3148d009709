#include "storage/write_set.h"

#include <rocksdb/write_batch.h>

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

void write_set::clear() {
  _batch->Clear();
  _ops = 0;
  _db_closed = false;
}

}  // namespace esflow::storage
