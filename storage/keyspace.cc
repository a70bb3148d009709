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

read_view::~read_view() { _db->ReleaseSnapshot(_snapshot); }

result<std::optional<std::string>> keyspace::get(std::string_view key, const read_view* at) const {
  auto* handle = _db.handle(_cf);
  if (_db.raw() == nullptr || handle == nullptr) return closed(_cf);
  std::string value;
  rocksdb::ReadOptions ro;
  if (at != nullptr) ro.snapshot = at->snapshot();
  auto s = _db.raw()->Get(ro, handle, rocksdb::Slice(key.data(), key.size()), &value);
  if (s.IsNotFound()) return std::optional<std::string>{};
  if (!s.ok())
    return error::make(errc::unavailable, "rocksdb read failed: " + s.ToString(),
                       "cf=" + std::string(to_string(_cf)));
  return std::optional<std::string>{std::move(value)};
}

result<std::vector<std::optional<std::string>>> keyspace::get_many(const std::vector<std::string>& keys,
                                                                   const read_view* at) const {
  auto* handle = _db.handle(_cf);
  if (_db.raw() == nullptr || handle == nullptr) return closed(_cf);
  rocksdb::ReadOptions ro;
  if (at != nullptr) ro.snapshot = at->snapshot();
  std::vector<rocksdb::Slice> slices;
  slices.reserve(keys.size());
  for (const auto& k : keys) slices.emplace_back(k.data(), k.size());
  std::vector<rocksdb::PinnableSlice> values(keys.size());
  std::vector<rocksdb::Status> statuses(keys.size());
  _db.raw()->MultiGet(ro, handle, keys.size(), slices.data(), values.data(), statuses.data());
  std::vector<std::optional<std::string>> out(keys.size());
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (statuses[i].IsNotFound()) continue;
    if (!statuses[i].ok())
      return error::make(errc::unavailable, "rocksdb read failed: " + statuses[i].ToString(),
                         "cf=" + std::string(to_string(_cf)));
    out[i] = values[i].ToString();
  }
  return out;
}

result<std::vector<key_value>> keyspace::range(std::string_view from, std::string_view to, std::size_t limit,
                                               const read_view* at) const {
  auto* handle = _db.handle(_cf);
  if (_db.raw() == nullptr || handle == nullptr) return closed(_cf);
  rocksdb::ReadOptions ro;
  if (at != nullptr) ro.snapshot = at->snapshot();
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
                                              std::size_t limit, const read_view* at) const {
  std::string from(prefix);
  if (!start_after.empty()) {
    // The smallest key greater than start_after.
    from.assign(start_after);
    from.push_back('\0');
    if (from < prefix) from.assign(prefix);
  }
  return range(from, keys::prefix_successor(prefix), limit, at);
}

}  // namespace esflow::storage
