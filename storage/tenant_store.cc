#include "storage/tenant_store.h"

#include "storage/keys.h"

#include <optional>

namespace esflow::storage {
namespace {

result<tenant_activity> decode(std::string_view tenant, std::string_view value) {
  if (value.size() != 16)
    return error::make(errc::internal, "corrupt tenant entry", "cf=tenants tenant=" + std::string(tenant));
  return tenant_activity{keys::get_u64_be(value), keys::get_u64_be(value.substr(8))};
}

}  // namespace

result<std::optional<tenant_activity>> tenant_store::get(std::string_view tenant) const {
  std::string key;
  keys::put_str(key, tenant);
  auto value = _space.get(key);
  if (!value.ok()) return std::move(value).err();
  if (!value.value()) return std::optional<tenant_activity>{};
  auto a = decode(tenant, **value);
  if (!a.ok()) return std::move(a).err();
  return std::optional<tenant_activity>{a.value()};
}

void tenant_store::put(write_set& ws, std::string_view tenant, const tenant_activity& a) const {
  std::string key;
  keys::put_str(key, tenant);
  std::string value;
  keys::put_u64_be(value, a.aggregates);
  keys::put_u64_be(value, a.last_activity_ms);
  _space.put(ws, key, value);
}

result<std::vector<tenant_entry>> tenant_store::list(std::string_view start_after, std::size_t limit) const {
  std::string after;
  if (!start_after.empty()) keys::put_str(after, start_after);
  auto kvs = _space.scan("", after, limit);
  if (!kvs.ok()) return std::move(kvs).err();
  std::vector<tenant_entry> out;
  out.reserve(kvs->size());
  for (const auto& kv : kvs.value()) {
    std::size_t pos = 0;
    std::string_view tenant;
    if (!keys::get_str(kv.key, pos, tenant))
      return error::make(errc::internal, "corrupt tenant key", "cf=tenants");
    auto a = decode(tenant, kv.value);
    if (!a.ok()) return std::move(a).err();
    out.push_back({std::string(tenant), a.value()});
  }
  return out;
}

}  // namespace esflow::storage
