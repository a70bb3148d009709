#pragma once
// The `readmodels` column family: a projection's rows, keyed by (tenant,
// view, row key). The tenant is the key's first component, so a scan for one
// tenant cannot reach another's rows whatever the view or row key holds.
// Values are opaque here; the projection owns their encoding. A projection
// commit writes rows and its checkpoint in ONE write_set.
//
// NOTE: thread-safe; the db must outlive the store.
#include "common/result.h"
#include "storage/keyspace.h"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace esflow::storage {

struct readmodel_row {
  std::string row_key;
  std::string value;
};

class readmodel_store {
 public:
  explicit readmodel_store(db& database) : _space(database, cf::readmodels) {}
  result<std::optional<std::string>> get(std::string_view tenant, std::string_view view,
                                         std::string_view row_key) const;
  void put(write_set& ws, std::string_view tenant, std::string_view view, std::string_view row_key,
           std::string_view value) const;
  void erase(write_set& ws, std::string_view tenant, std::string_view view, std::string_view row_key) const;
  // Rows of (tenant, view) with row key > after_key (empty: from the first), in key order, at most limit.
  result<std::vector<readmodel_row>> scan(std::string_view tenant, std::string_view view,
                                          std::string_view after_key, std::size_t limit) const;

 private:
  keyspace _space;
};

}  // namespace esflow::storage
