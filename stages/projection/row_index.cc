#include "stages/projection/row_index.h"

#include "storage/index_value.h"

namespace esflow::projection {

const nlohmann::json* field_at(const nlohmann::json& row, const std::string& path) {
  const nlohmann::json* at = &row;
  std::size_t start = 0;
  while (start <= path.size()) {
    const auto dot = path.find('.', start);
    const auto name = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (!at->is_object()) return nullptr;
    auto it = at->find(name);
    if (it == at->end()) return nullptr;
    at = &*it;
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return at;
}

std::string index_entry(const nlohmann::json& row, const std::string& path) {
  const auto* v = field_at(row, path);
  if (v == nullptr) return storage::index_value::of_absent();
  if (v->is_boolean()) return storage::index_value::of_bool(v->get<bool>());
  if (v->is_number_integer()) {
    return storage::index_value::of_number(v->is_number_unsigned()
                                               ? static_cast<double>(v->get<std::uint64_t>())
                                               : static_cast<double>(v->get<std::int64_t>()));
  }
  if (v->is_number_float()) return storage::index_value::of_number(v->get<double>());
  if (v->is_string()) return storage::index_value::of_string(v->get_ref<const std::string&>());
  return storage::index_value::of_absent();
}

}  // namespace esflow::projection
