#pragma once
// keyspace: reads of one column family and the write_set operations on it;
// the typed stores (checkpoints, sagas, outbox, schedules, read models,
// quarantine) are thin key/value codecs over one keyspace each.
//
// NOTE: thread-safe (RocksDB); reads see every committed write_set whole.
// NOTE: the db must outlive the keyspace.
#include "common/result.h"
#include "storage/db.h"
#include "storage/read_view.h"
#include "storage/write_set.h"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace esflow::storage {

struct key_value {
  std::string key;
  std::string value;
};

class keyspace {
 public:
  keyspace(db& database, cf family) : _db(database), _cf(family) {}

  // The value under key, or nullopt; unavailable when the db is closed or fails.
  // `at`: read as of a read_view (null: the latest state).
  result<std::optional<std::string>> get(std::string_view key, const read_view* at = nullptr) const;
  // The values of several keys in one batched lookup (RocksDB MultiGet), in
  // the order of `keys`.
  result<std::vector<std::optional<std::string>>> get_many(const std::vector<std::string>& keys,
                                                           const read_view* at = nullptr) const;
  // Keys starting with prefix and greater than start_after (empty: from the
  // first), in key order, at most limit.
  result<std::vector<key_value>> scan(std::string_view prefix, std::string_view start_after,
                                      std::size_t limit, const read_view* at = nullptr) const;
  // Keys in [from, to) in key order, at most limit (to empty: no upper bound).
  result<std::vector<key_value>> range(std::string_view from, std::string_view to, std::size_t limit,
                                       const read_view* at = nullptr) const;

  void put(write_set& ws, std::string_view key, std::string_view value) const { ws.put(_cf, key, value); }
  void erase(write_set& ws, std::string_view key) const { ws.erase(_cf, key); }

  cf family() const noexcept { return _cf; }
  db& database() const noexcept { return _db; }

 private:
  db& _db;
  cf _cf;
};

}  // namespace esflow::storage
