#pragma once
// The plan of a projection query filter (docs/contract.md, "Projection node"):
// a small AST that parse_filter() builds once per query and matches() walks per row.
#include <cstddef>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace esflow::query {

// A filter literal. Integers stay integers so large ids compare exactly.
using literal = std::variant<std::nullptr_t, bool, std::int64_t, double, std::string>;

enum class cmp_op : std::uint8_t { eq, ne, lt, le, gt, ge };

// The operator as written in a filter ("=", "!=", ...), for messages and tests.
const char* to_string(cmp_op op) noexcept;

// A dotted field path. `key` and `version` alone name the row's own fields.
struct field_path {
  std::vector<std::string> segments;
  std::string text;  // "owner.name"
};

struct node {
  enum class kind : std::uint8_t { compare, in, exists, not_, and_, or_ };
  kind k = kind::and_;
  cmp_op op = cmp_op::eq;         // compare
  field_path field;               // compare, in, exists
  std::vector<literal> literals;  // compare: one; in: the list (may be empty)
  std::vector<node> children;     // not_: one; and_/or_: two or more, flattened
};

struct plan {
  node root;
};

// Bounds of the contract: the text length and how deep parentheses and `not` may nest
// (the parser and the evaluator recurse once per level).
inline constexpr std::size_t max_filter_bytes = 4096;
inline constexpr int max_nesting_depth = 64;

}  // namespace esflow::query
