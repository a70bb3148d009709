#pragma once
// index_candidate: which conjunct of a filter a secondary-index scan could start
// from (docs/contract.md, "Projection node": a view's `index` fields). The scan
// narrows the rows; matches() still checks every row it yields against the whole plan.
#include "query/plan.h"

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace esflow::query {

struct index_probe {
  enum class kind : std::uint8_t { compare, in };
  kind k = kind::compare;
  std::string field;              // the dotted path, as listed in the view's `index`
  cmp_op op = cmp_op::eq;         // compare: eq, lt, le, gt or ge (never ne)
  std::vector<literal> literals;  // compare: one; in: the list
};

// The first term of the top-level `and` chain (or the whole filter when it is a
// single term) that is `field <op> literal` (op not `!=`) or `field in [...]` on an
// indexed field with no null literal. Rows with a missing field are not in an index,
// so null probes, `!=`, `not` and `or` fall back to a full scan.
std::optional<index_probe> index_candidate(const plan& p, const std::set<std::string>& indexed_fields);

}  // namespace esflow::query
