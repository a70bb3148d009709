#include "storage/quarantine_store.h"

#include "storage/keys.h"

namespace esflow::storage {

status quarantine_store::put(std::string_view source, std::uint64_t position, std::string_view record) const {
  write_set ws(_space.database());
  _space.put(ws, keys::quarantine(source, position), record);
  if (ws.met_closed_db()) return error::make(errc::unavailable, "database is closed", "cf=quarantine");
  return _space.database().write(ws.batch());
}

void quarantine_store::put(write_set& ws, std::string_view source, std::uint64_t position,
                           std::string_view record) const {
  _space.put(ws, keys::quarantine(source, position), record);
}

result<std::optional<std::string>> quarantine_store::get(std::string_view source,
                                                         std::uint64_t position) const {
  return _space.get(keys::quarantine(source, position));
}

result<std::vector<quarantined>> quarantine_store::list(std::size_t limit) const {
  auto rows = _space.scan({}, {}, limit);
  if (!rows.ok()) return std::move(rows).err();
  std::vector<quarantined> out;
  for (auto& kv : rows.value()) {
    std::size_t pos = 0;
    std::string_view source;
    if (!keys::get_str(kv.key, pos, source) || kv.key.size() - pos != 8)
      return error::make(errc::internal, "corrupt quarantine key", "cf=quarantine");
    out.push_back(
        {std::string(source), keys::get_u64_be(std::string_view(kv.key).substr(pos)), std::move(kv.value)});
  }
  return out;
}

void quarantine_store::erase(write_set& ws, std::string_view source, std::uint64_t position) const {
  _space.erase(ws, keys::quarantine(source, position));
}

}  // namespace esflow::storage
