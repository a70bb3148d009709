#include "storage/runner_stores.h"

#include "storage/keys.h"

namespace esflow::storage {
namespace {

error corrupt_key(cf family) {
  return error::make(errc::internal, "corrupt key", "cf=" + std::string(to_string(family)));
}

}  // namespace

// --- saga ---------------------------------------------------------------------

result<std::optional<std::string>> saga_store::get(std::string_view tenant, std::string_view saga,
                                                   std::string_view correlation_id) const {
  return _space.get(keys::saga(tenant, saga, correlation_id));
}

void saga_store::put(write_set& ws, std::string_view tenant, std::string_view saga,
                     std::string_view correlation_id, std::string_view state) const {
  _space.put(ws, keys::saga(tenant, saga, correlation_id), state);
}

void saga_store::erase(write_set& ws, std::string_view tenant, std::string_view saga,
                       std::string_view correlation_id) const {
  _space.erase(ws, keys::saga(tenant, saga, correlation_id));
}

// --- outbox -------------------------------------------------------------------

void outbox_store::put(write_set& ws, std::string_view tenant, std::string_view kind,
                       std::string_view work_id, std::string_view item) const {
  _space.put(ws, keys::outbox(tenant, kind, work_id), item);
}

void outbox_store::erase(write_set& ws, std::string_view tenant, std::string_view kind,
                         std::string_view work_id) const {
  _space.erase(ws, keys::outbox(tenant, kind, work_id));
}

result<std::vector<outbox_item>> outbox_store::list(std::string_view after_key, std::size_t limit) const {
  auto rows = _space.scan({}, after_key, limit);
  if (!rows.ok()) return std::move(rows).err();
  std::vector<outbox_item> out;
  out.reserve(rows->size());
  for (auto& kv : rows.value()) {
    std::size_t pos = 0;
    std::string_view tenant, kind, id;
    if (!keys::get_str(kv.key, pos, tenant) || !keys::get_str(kv.key, pos, kind) ||
        !keys::get_str(kv.key, pos, id) || pos != kv.key.size())
      return corrupt_key(cf::outbox);
    out.push_back({kv.key, std::string(tenant), std::string(kind), std::string(id), std::move(kv.value)});
  }
  return out;
}

// --- schedules ----------------------------------------------------------------

void schedule_store::put(write_set& ws, const schedule_key& k, std::string_view payload) const {
  _space.put(ws, keys::schedule(k.due_ms, k.tenant, k.saga, k.correlation_id, k.name), payload);
}

void schedule_store::erase(write_set& ws, const schedule_key& k) const {
  _space.erase(ws, keys::schedule(k.due_ms, k.tenant, k.saga, k.correlation_id, k.name));
}

result<std::vector<schedule_item>> schedule_store::due(std::uint64_t now_ms, std::size_t limit,
                                                       std::uint64_t from_ms) const {
  std::string lower, upper;
  if (from_ms > 0) keys::put_u64_be(lower, from_ms);
  if (now_ms < UINT64_MAX) keys::put_u64_be(upper, now_ms + 1);
  auto rows = _space.range(lower, upper, limit);
  if (!rows.ok()) return std::move(rows).err();
  std::vector<schedule_item> out;
  out.reserve(rows->size());
  for (auto& kv : rows.value()) {
    if (kv.key.size() < 8) return corrupt_key(cf::schedules);
    schedule_item item;
    item.key.due_ms = keys::get_u64_be(kv.key);
    std::size_t pos = 8;
    std::string_view parts[4];
    for (auto& p : parts)
      if (!keys::get_str(kv.key, pos, p)) return corrupt_key(cf::schedules);
    if (pos != kv.key.size()) return corrupt_key(cf::schedules);
    item.key.tenant = parts[0];
    item.key.saga = parts[1];
    item.key.correlation_id = parts[2];
    item.key.name = parts[3];
    item.payload = std::move(kv.value);
    out.push_back(std::move(item));
  }
  return out;
}

}  // namespace esflow::storage
