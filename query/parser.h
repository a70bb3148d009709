#pragma once
// parse_filter: the text of a projection query filter (docs/contract.md,
// "Projection node": Filters) to a plan, or invalid_query naming the column.
#include "common/result.h"
#include "query/plan.h"

#include <string_view>

namespace esflow::query {

result<plan> parse_filter(std::string_view text);

}  // namespace esflow::query
