#pragma once
// matches: does a row satisfy a parsed filter. Comparison rules of docs/contract.md
// ("Projection node": Filters): a missing field is null; values of different types
// are unequal and unordered; integers and floats compare numerically.
#include "query/plan.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string_view>

namespace esflow::query {

// `key` and `version` are the row's own fields; every other path looks into `row`.
bool matches(const plan& p, std::string_view key, std::uint64_t version, const nlohmann::json& row);

}  // namespace esflow::query
