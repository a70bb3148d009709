#include "storage/readmodel_store.h"

#include "storage/keys.h"

namespace esflow::storage {

result<std::optional<std::string>> readmodel_store::get(std::string_view tenant, std::string_view view,
                                                        std::string_view row_key) const {
  return _space.get(keys::readmodel(tenant, view, row_key));
}

void readmodel_store::put(write_set& ws, std::string_view tenant, std::string_view view,
                          std::string_view row_key, std::string_view value) const {
  _space.put(ws, keys::readmodel(tenant, view, row_key), value);
}

void readmodel_store::erase(write_set& ws, std::string_view tenant, std::string_view view,
                            std::string_view row_key) const {
  _space.erase(ws, keys::readmodel(tenant, view, row_key));
}

result<std::vector<readmodel_row>> readmodel_store::scan(std::string_view tenant, std::string_view view,
                                                         std::string_view after_key,
                                                         std::size_t limit) const {
  const auto prefix = keys::components({tenant, view});
  const auto after = after_key.empty() ? std::string() : keys::readmodel(tenant, view, after_key);
  auto rows = _space.scan(prefix, after, limit);
  if (!rows.ok()) return std::move(rows).err();
  std::vector<readmodel_row> out;
  out.reserve(rows->size());
  for (auto& kv : rows.value()) {
    std::size_t pos = prefix.size();
    std::string_view row_key;
    if (!keys::get_str(kv.key, pos, row_key) || pos != kv.key.size())
      return error::make(errc::internal, "corrupt key", "cf=readmodels");
    out.push_back({std::string(row_key), std::move(kv.value)});
  }
  return out;
}

}  // namespace esflow::storage
