#include "storage/keyspace.h"

#include "storage/keys.h"

#include <rocksdb/db.h>

#include <memory>

namespace esflow::storage {
namespace {

error closed(cf family) {
  return error::make(errc::unavailable, "database is closed", "cf=" + std::string(to_string(family)));
}

}  // namespace

result<std::optional<std::string>> keyspace::get(std::string_view key) const {
  auto* handle = _db.handle(_cf);
  if (_db.raw() == nullptr || handle == nullptr) return closed(_cf);
  std::string value;
  auto s = _db.raw()->Get(rocksdb::ReadOptions(), handle, rocksdb::Slice(key.data(), key.size()), &value);
  if (s.IsNotFound()) return std::optional<std::string>{};
  if (!s.ok())
    return error::make(errc::unavailable, "rocksdb read failed: " + s.ToString(),
                       "cf=" + std::string(to_string(_cf)));
  return std::optional<std::string>{std::move(value)};
}

result<std::vector<key_value>> keyspace::range(std::string_view from, std::string_view to,
                                               std::size_t limit) const {
  auto* handle = _db.handle(_cf);
  if (_db.raw() == nullptr || handle == nullptr) return closed(_cf);
  rocksdb::ReadOptions ro;
  const rocksdb::Slice upper(to.data(), to.size());
  if (!to.empty()) ro.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(_db.raw()->NewIterator(ro, handle));
  std::vector<key_value> out;
  for (it->Seek(rocksdb::Slice(from.data(), from.size())); it->Valid() && out.size() < limit; it->Next())
    out.push_back({it->key().ToString(), it->value().ToString()});
  if (!it->status().ok())
    return error::make(errc::unavailable, "rocksdb scan failed: " + it->status().ToString(),
                       "cf=" + std::string(to_string(_cf)));
  return out;
}

result<std::vector<key_value>> keyspace::scan(std::string_view prefix, std::string_view start_after,
                                              std::size_t limit) const {
  std::string from(prefix);
  if (!start_after.empty()) {
    // The smallest key greater than start_after.
    from.assign(start_after);
    from.push_back('\0');
    if (from < prefix) from.assign(prefix);
  }
  return range(from, keys::prefix_successor(prefix), limit);
}

}  // namespace esflow::storage
