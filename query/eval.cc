#include "query/eval.h"

#include <string>
#include <variant>

namespace esflow::query {

namespace {

// A row value seen through the filter's types; strings are borrowed from the row.
struct other {};  // objects and arrays: unequal to every literal
using value =
    std::variant<std::nullptr_t, bool, std::int64_t, std::uint64_t, double, std::string_view, other>;

struct row_ref {
  std::string_view key;
  std::uint64_t version;
  const nlohmann::json& row;
};

value of(const nlohmann::json& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::boolean:
      return j.get<bool>();
    case nlohmann::json::value_t::number_integer:
      return j.get<std::int64_t>();
    case nlohmann::json::value_t::number_unsigned:
      return j.get<std::uint64_t>();
    case nlohmann::json::value_t::number_float:
      return j.get<double>();
    case nlohmann::json::value_t::string:
      return std::string_view(j.get_ref<const std::string&>());
    case nlohmann::json::value_t::object:
    case nlohmann::json::value_t::array:
    case nlohmann::json::value_t::binary:
      return other{};
    default:
      return nullptr;
  }
}

// The JSON at a path, or nullptr when some segment is missing.
const nlohmann::json* find(const nlohmann::json& row, const field_path& f) {
  const nlohmann::json* cur = &row;
  for (const auto& seg : f.segments) {
    if (!cur->is_object()) return nullptr;
    auto it = cur->find(seg);
    if (it == cur->end()) return nullptr;
    cur = &*it;
  }
  return cur;
}

bool own_field(const field_path& f, std::string_view name) {
  return f.segments.size() == 1 && f.segments[0] == name;
}

value lookup(const row_ref& r, const field_path& f) {
  if (own_field(f, "key")) return r.key;
  if (own_field(f, "version")) return r.version;
  // "key.x" and "version.x": the row's own fields have no fields, so null.
  if (!f.segments.empty() && (f.segments[0] == "key" || f.segments[0] == "version")) return nullptr;
  const nlohmann::json* j = find(r.row, f);
  return j ? of(*j) : value{nullptr};
}

// The outcome of comparing a row value with a literal of the same kind.
struct order {
  bool comparable = false;  // same type (numbers count as one)
  bool ordered = false;     // numbers and strings; null and bool only know equality
  int sign = 0;             // <0, 0, >0 when ordered; 0 = equal otherwise
};

template <typename T>
int sign_of(T a, T b) {
  return a < b ? -1 : (b < a ? 1 : 0);
}

// Integers compare exactly (an int64 literal against an int64 or uint64 row value);
// once a float is involved both sides are doubles.
order compare_numbers(const value& v, const literal& lit) {
  const bool lit_int = std::holds_alternative<std::int64_t>(lit);
  if (lit_int && std::holds_alternative<std::int64_t>(v)) {
    return {true, true, sign_of(std::get<std::int64_t>(v), std::get<std::int64_t>(lit))};
  }
  if (lit_int && std::holds_alternative<std::uint64_t>(v)) {
    const std::int64_t l = std::get<std::int64_t>(lit);
    const std::uint64_t u = std::get<std::uint64_t>(v);
    if (l < 0) return {true, true, 1};
    return {true, true, sign_of(u, static_cast<std::uint64_t>(l))};
  }
  auto as_double = [](const auto& x) -> double {
    if (auto* i = std::get_if<std::int64_t>(&x)) return static_cast<double>(*i);
    if (auto* u = std::get_if<std::uint64_t>(&x)) return static_cast<double>(*u);
    return std::get<double>(x);
  };
  const double a = as_double(v);
  const double b = lit_int ? static_cast<double>(std::get<std::int64_t>(lit)) : std::get<double>(lit);
  if (a != a || b != b) return {};  // NaN is unordered and unequal
  return {true, true, sign_of(a, b)};
}

order compare(const value& v, const literal& lit) {
  const bool v_num = std::holds_alternative<std::int64_t>(v) || std::holds_alternative<std::uint64_t>(v) ||
                     std::holds_alternative<double>(v);
  const bool l_num = std::holds_alternative<std::int64_t>(lit) || std::holds_alternative<double>(lit);
  if (v_num && l_num) return compare_numbers(v, lit);
  if (std::holds_alternative<std::string_view>(v) && std::holds_alternative<std::string>(lit)) {
    const int c = std::get<std::string_view>(v).compare(std::get<std::string>(lit));
    return {true, true, c < 0 ? -1 : (c > 0 ? 1 : 0)};
  }
  if (std::holds_alternative<std::nullptr_t>(v) && std::holds_alternative<std::nullptr_t>(lit)) {
    return {true, false, 0};
  }
  if (std::holds_alternative<bool>(v) && std::holds_alternative<bool>(lit)) {
    return {true, false, std::get<bool>(v) == std::get<bool>(lit) ? 0 : 1};
  }
  return {};
}

bool equal(const value& v, const literal& lit) {
  const order o = compare(v, lit);
  return o.comparable && o.sign == 0;
}

bool apply(cmp_op op, const value& v, const literal& lit) {
  if (op == cmp_op::eq) return equal(v, lit);
  // "!=" is exactly "not =": values of different types are unequal.
  if (op == cmp_op::ne) return !equal(v, lit);
  const order o = compare(v, lit);
  if (!o.comparable || !o.ordered) return false;
  switch (op) {
    case cmp_op::lt:
      return o.sign < 0;
    case cmp_op::le:
      return o.sign <= 0;
    case cmp_op::gt:
      return o.sign > 0;
    case cmp_op::ge:
      return o.sign >= 0;
    default:
      return false;
  }
}

// Recursion depth is bounded by the parser's nesting limit (and/or chains are flat).
bool eval(const node& n, const row_ref& r) {
  switch (n.k) {
    case node::kind::compare:
      return apply(n.op, lookup(r, n.field), n.literals.front());
    case node::kind::in: {
      const value v = lookup(r, n.field);
      for (const auto& lit : n.literals) {
        if (equal(v, lit)) return true;
      }
      return false;
    }
    case node::kind::exists:
      if (own_field(n.field, "key") || own_field(n.field, "version")) return true;
      if (n.field.segments.front() == "key" || n.field.segments.front() == "version") return false;
      return find(r.row, n.field) != nullptr;
    case node::kind::not_:
      return !eval(n.children.front(), r);
    case node::kind::and_:
      for (const auto& c : n.children) {
        if (!eval(c, r)) return false;
      }
      return true;
    case node::kind::or_:
      for (const auto& c : n.children) {
        if (eval(c, r)) return true;
      }
      return false;
  }
  return false;
}

}  // namespace

bool matches(const plan& p, std::string_view key, std::uint64_t version, const nlohmann::json& row) {
  return eval(p.root, row_ref{key, version, row});
}

}  // namespace esflow::query
