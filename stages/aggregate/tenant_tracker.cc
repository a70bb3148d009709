#include "stages/aggregate/tenant_tracker.h"

#include "common/log.h"
#include "schemas/ids.h"

namespace esflow::aggregate {
namespace {

constexpr auto k_flush_every = std::chrono::seconds(1);

std::uint64_t now_ms() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

}  // namespace

result<std::unique_ptr<tenant_tracker>> tenant_tracker::open(storage::node_store& store,
                                                             std::size_t max_tenants) {
  std::unique_ptr<tenant_tracker> t(new tenant_tracker(store, max_tenants));
  std::string after;
  while (t->_by_tenant.size() < max_tenants) {
    auto page = store.tenants().list(after, 1000);
    if (!page.ok()) return std::move(page).err();
    for (auto& e : page.value()) t->_by_tenant.emplace(e.tenant_id, e.activity);
    if (page->size() < 1000) break;
    after = page->back().tenant_id;
  }
  return t;
}

tenant_tracker::~tenant_tracker() {
  if (auto ok = flush(); !ok.ok())
    ESFLOW_WARN("aggregate", "tenant activity not written at shutdown: {}", ok.err().to_string());
}

void tenant_tracker::record(const std::string& tenant, bool new_aggregate) {
  bool due = false;
  {
    std::lock_guard lock(_mu);
    auto it = _by_tenant.find(tenant);
    if (it == _by_tenant.end()) {
      if (_by_tenant.size() >= _max) {
        if (!_warned_full)
          ESFLOW_WARN("aggregate",
                      "tenant activity tracks at most {} tenants; '{}' and later ones are not listed", _max,
                      tenant);
        _warned_full = true;
        return;
      }
      it = _by_tenant.emplace(tenant, storage::tenant_activity{}).first;
    }
    if (new_aggregate) ++it->second.aggregates;
    it->second.last_activity_ms = now_ms();
    _dirty.insert(tenant);
    due = std::chrono::steady_clock::now() - _last_flush >= k_flush_every;
  }
  if (due) {
    if (auto ok = flush(); !ok.ok())
      ESFLOW_WARN("aggregate", "tenant activity not written (kept for the next try): {}",
                  ok.err().to_string());
  }
}

status tenant_tracker::flush() {
  auto ws = _store.begin();
  std::set<std::string, std::less<>> written;
  {
    std::lock_guard lock(_mu);
    _last_flush = std::chrono::steady_clock::now();
    if (_dirty.empty()) return {};
    for (const auto& t : _dirty) _store.tenants().put(ws, t, _by_tenant.at(t));
    written.swap(_dirty);
  }
  auto ok = _store.commit_unsynced(ws);
  if (!ok.ok()) {
    std::lock_guard lock(_mu);
    _dirty.merge(written);
  }
  return ok;
}

nlohmann::json tenant_tracker::list() const {
  auto out = nlohmann::json::array();
  std::lock_guard lock(_mu);
  for (const auto& [tenant, a] : _by_tenant) {
    out.push_back({{"tenant_id", tenant},
                   {"aggregates", a.aggregates},
                   {"last_activity", schemas::format_timestamp(std::chrono::system_clock::time_point(
                                         std::chrono::milliseconds(a.last_activity_ms)))}});
  }
  return out;
}

}  // namespace esflow::aggregate
