#include "query/index_probe.h"

#include <variant>

namespace esflow::query {

namespace {

bool has_null(const std::vector<literal>& lits) {
  for (const auto& l : lits) {
    if (std::holds_alternative<std::nullptr_t>(l)) return true;
  }
  return false;
}

std::optional<index_probe> probe_of(const node& n, const std::set<std::string>& indexed) {
  if (n.k != node::kind::compare && n.k != node::kind::in) return std::nullopt;
  if (!indexed.contains(n.field.text) || has_null(n.literals)) return std::nullopt;
  if (n.k == node::kind::compare && n.op == cmp_op::ne) return std::nullopt;
  return index_probe{n.k == node::kind::in ? index_probe::kind::in : index_probe::kind::compare, n.field.text,
                     n.op, n.literals};
}

}  // namespace

std::optional<index_probe> index_candidate(const plan& p, const std::set<std::string>& indexed_fields) {
  if (p.root.k != node::kind::and_) return probe_of(p.root, indexed_fields);
  for (const auto& c : p.root.children) {
    if (auto probe = probe_of(c, indexed_fields)) return probe;
  }
  return std::nullopt;
}

}  // namespace esflow::query
