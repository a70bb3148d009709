#pragma once
// Which secondary index entries a row has: per indexed field path, the
// order-preserving encoding of the row's value there (storage/index_value.h).
// A missing field, null, an object or an array is the `absent` entry: every
// row has one entry per indexed field, so an order_by on the field meets
// every row (absent first); the query's index probes never start from
// absent entries (query/index_probe.h).
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace esflow::projection {

std::string index_entry(const nlohmann::json& row, const std::string& path);

// The value at a dotted path (nullptr when missing).
const nlohmann::json* field_at(const nlohmann::json& row, const std::string& path);

}  // namespace esflow::projection
