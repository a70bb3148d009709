#include "storage/readmodel_store.h"

#include "storage/index_value.h"
#include "storage/keys.h"

namespace esflow::storage {
namespace {

constexpr std::string_view row_mark = "r";
constexpr std::string_view index_mark = "i";

std::string row_prefix(std::string_view tenant, std::string_view view) {
  return keys::components({tenant, view, row_mark});
}

std::string index_prefix(std::string_view tenant, std::string_view view, std::string_view field) {
  return keys::components({tenant, view, index_mark, field});
}

std::string index_key(std::string_view tenant, std::string_view view, std::string_view field,
                      std::string_view encoded_value, std::string_view row_key) {
  auto k = index_prefix(tenant, view, field);
  k.append(encoded_value);
  keys::put_str(k, row_key);
  return k;
}

error corrupt(std::string_view what) {
  return error::make(errc::internal, "corrupt " + std::string(what) + " key", "cf=readmodels");
}

}  // namespace

result<std::optional<std::string>> readmodel_store::get(std::string_view tenant, std::string_view view,
                                                        std::string_view row_key, const read_view* at) const {
  return _space.get(keys::readmodel(tenant, view, row_key), at);
}

result<std::vector<std::optional<std::string>>> readmodel_store::get_many(
    std::string_view tenant, std::string_view view, const std::vector<std::string>& row_keys,
    const read_view* at) const {
  std::vector<std::string> full;
  full.reserve(row_keys.size());
  for (const auto& k : row_keys) full.push_back(keys::readmodel(tenant, view, k));
  return _space.get_many(full, at);
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
                                                         std::string_view after_key, std::size_t limit,
                                                         const read_view* at) const {
  const auto prefix = row_prefix(tenant, view);
  const auto after = after_key.empty() ? std::string() : keys::readmodel(tenant, view, after_key);
  auto rows = _space.scan(prefix, after, limit, at);
  if (!rows.ok()) return std::move(rows).err();
  std::vector<readmodel_row> out;
  out.reserve(rows->size());
  for (auto& kv : rows.value()) {
    std::size_t pos = prefix.size();
    std::string_view row_key;
    if (!keys::get_str(kv.key, pos, row_key) || pos != kv.key.size()) return corrupt("row");
    out.push_back({std::string(row_key), std::move(kv.value)});
  }
  return out;
}

void readmodel_store::put_index(write_set& ws, std::string_view tenant, std::string_view view,
                                std::string_view field, std::string_view encoded_value,
                                std::string_view row_key, std::string_view row_value) const {
  _space.put(ws, index_key(tenant, view, field, encoded_value, row_key), row_value);
}

void readmodel_store::erase_index(write_set& ws, std::string_view tenant, std::string_view view,
                                  std::string_view field, std::string_view encoded_value,
                                  std::string_view row_key) const {
  _space.erase(ws, index_key(tenant, view, field, encoded_value, row_key));
}

result<std::vector<index_hit>> readmodel_store::scan_index(std::string_view tenant, std::string_view view,
                                                           std::string_view field, std::string_view from,
                                                           std::string_view to, std::string_view after_value,
                                                           std::string_view after_key, std::size_t limit,
                                                           const read_view* at) const {
  const auto prefix = index_prefix(tenant, view, field);
  std::string lo = prefix + std::string(from);
  if (!after_value.empty()) {
    auto resume = index_key(tenant, view, field, after_value, after_key);
    resume.push_back('\0');  // the first key after it
    if (resume > lo) lo = std::move(resume);
  }
  const std::string hi = to.empty() ? keys::prefix_successor(prefix) : prefix + std::string(to);
  auto hits = _space.range(lo, hi, limit, at);
  if (!hits.ok()) return std::move(hits).err();
  std::vector<index_hit> out;
  out.reserve(hits->size());
  for (auto& kv : hits.value()) {
    std::string_view rest(kv.key);
    rest.remove_prefix(prefix.size());
    auto len = index_value::length_of(rest);
    if (!len) return corrupt("index");
    std::size_t pos = *len;
    std::string_view row_key;
    if (!keys::get_str(rest, pos, row_key) || pos != rest.size()) return corrupt("index");
    out.push_back({std::string(rest.substr(0, *len)), std::string(row_key), std::move(kv.value)});
  }
  return out;
}

result<std::string> readmodel_store::erase_view(std::string_view view, std::string_view after_key,
                                                std::size_t limit) const {
  std::string after(after_key);
  std::size_t erased = 0;
  write_set ws(_space.database());
  while (erased < limit) {
    auto page = _space.scan({}, after, 1024);
    if (!page.ok()) return std::move(page).err();
    for (const auto& kv : page.value()) {
      std::size_t pos = 0;
      std::string_view tenant, v;
      if (!keys::get_str(kv.key, pos, tenant) || !keys::get_str(kv.key, pos, v)) return corrupt("row");
      if (v == view) {
        _space.erase(ws, kv.key);
        ++erased;
      }
      after = kv.key;
      if (erased >= limit) break;
    }
    if (page->size() < 1024 && erased < limit) after.clear();  // scanned to the end
    if (page->size() < 1024) break;
  }
  if (ws.met_closed_db()) return error::make(errc::unavailable, "database is closed", "cf=readmodels");
  if (auto st = _space.database().write_unsynced(ws.batch()); !st.ok()) return std::move(st).err();
  return after;
}

status readmodel_store::for_each_row(
    std::string_view view,
    const std::function<bool(std::string_view, std::string_view, std::string_view)>& f) const {
  std::string after;
  for (;;) {
    auto page = _space.scan({}, after, 1024);
    if (!page.ok()) return std::move(page).err();
    for (const auto& kv : page.value()) {
      std::size_t pos = 0;
      std::string_view tenant, v, mark, row_key;
      if (!keys::get_str(kv.key, pos, tenant) || !keys::get_str(kv.key, pos, v) ||
          !keys::get_str(kv.key, pos, mark))
        return corrupt("row");
      if (v != view || mark != row_mark) continue;
      if (!keys::get_str(kv.key, pos, row_key)) return corrupt("row");
      if (!f(tenant, row_key, kv.value)) return {};
    }
    if (page->size() < 1024) return {};
    after = page->back().key;
  }
}

}  // namespace esflow::storage
