#pragma once
// The `readmodels` column family: a projection's rows and their secondary
// index entries, keyed by tenant first:
//   row:   (tenant, view, "r", row key)                       -> value
//   index: (tenant, view, "i", field) + index_value + (row key) -> row value
// An index entry carries its row's value (a covering index): an index-order
// query reads no row, so it costs one range scan instead of one random point
// lookup per hit. Entries written before 0.2 carry "" (the reader then looks
// the row up).
// Every component is length-prefixed (storage/keys.h) and the index value is
// self-delimiting (storage/index_value.h), so a scan of one tenant's prefix
// cannot reach another tenant's keys whatever the view, field or row key
// holds: tenant scoping is the key layout, not a filter clause.
// Values are opaque here; the projection owns their encoding. A projection
// commit writes rows, index entries and its checkpoint in ONE write_set.
//
// NOTE: thread-safe; the db must outlive the store.
#include "common/result.h"
#include "storage/keyspace.h"

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace esflow::storage {

struct readmodel_row {
  std::string row_key;
  std::string value;
};

struct index_hit {
  std::string value;  // the encoded field value (storage/index_value.h)
  std::string row_key;
  std::string row;  // the row value stored with the entry; empty: look the row up
};

class readmodel_store {
 public:
  explicit readmodel_store(db& database) : _space(database, cf::readmodels) {}
  // `at` (every read): as of a read_view; null: the latest state.
  result<std::optional<std::string>> get(std::string_view tenant, std::string_view view,
                                         std::string_view row_key, const read_view* at = nullptr) const;
  // Several rows of (tenant, view) in one batched lookup, in the order of row_keys.
  result<std::vector<std::optional<std::string>>> get_many(std::string_view tenant, std::string_view view,
                                                           const std::vector<std::string>& row_keys,
                                                           const read_view* at = nullptr) const;
  void put(write_set& ws, std::string_view tenant, std::string_view view, std::string_view row_key,
           std::string_view value) const;
  void erase(write_set& ws, std::string_view tenant, std::string_view view, std::string_view row_key) const;
  // Rows of (tenant, view) with row key > after_key (empty: from the first), in key order, at most limit.
  result<std::vector<readmodel_row>> scan(std::string_view tenant, std::string_view view,
                                          std::string_view after_key, std::size_t limit,
                                          const read_view* at = nullptr) const;

  void put_index(write_set& ws, std::string_view tenant, std::string_view view, std::string_view field,
                 std::string_view encoded_value, std::string_view row_key, std::string_view row_value) const;
  void erase_index(write_set& ws, std::string_view tenant, std::string_view view, std::string_view field,
                   std::string_view encoded_value, std::string_view row_key) const;
  // Index entries of (tenant, view, field) whose encoded value is in
  // [from, to) (to empty: no upper bound), in (value, row key) order, starting
  // after (after_value, after_key) when after_value is not empty, at most limit.
  result<std::vector<index_hit>> scan_index(std::string_view tenant, std::string_view view,
                                            std::string_view field, std::string_view from,
                                            std::string_view to, std::string_view after_value,
                                            std::string_view after_key, std::size_t limit,
                                            const read_view* at = nullptr) const;

  // Erases the rows and index entries of every tenant of `view`, at most
  // `limit` keys per call, scanning from after_key (empty: the start).
  // Returns where to continue, or "" once every key is gone.
  result<std::string> erase_view(std::string_view view, std::string_view after_key, std::size_t limit) const;

  // Every stored row of every tenant of the view, in key order (start-up
  // counts, tests); f returns false to stop.
  status for_each_row(std::string_view view,
                      const std::function<bool(std::string_view tenant, std::string_view row_key,
                                               std::string_view value)>& f) const;

 private:
  keyspace _space;
};

}  // namespace esflow::storage
