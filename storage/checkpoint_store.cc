#include "storage/checkpoint_store.h"

#include "storage/keys.h"

namespace esflow::storage {

result<std::optional<schemas::position_t>> checkpoint_store::get(std::string_view tenant,
                                                                 std::string_view consumer) const {
  auto value = _space.get(keys::checkpoint(tenant, consumer));
  if (!value.ok()) return std::move(value).err();
  if (!value.value()) return std::optional<schemas::position_t>{};
  if (value.value()->size() != 8)
    return error::make(errc::internal, "corrupt checkpoint",
                       "cf=checkpoints consumer=" + std::string(consumer) + " tenant=" + std::string(tenant));
  return std::optional<schemas::position_t>{keys::get_u64_be(**value)};
}

void checkpoint_store::put(write_set& ws, std::string_view tenant, std::string_view consumer,
                           schemas::position_t position) const {
  std::string value;
  keys::put_u64_be(value, position);
  _space.put(ws, keys::checkpoint(tenant, consumer), value);
}

}  // namespace esflow::storage
