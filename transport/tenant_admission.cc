#include "transport/tenant_admission.h"

#include <mutex>
#include <thread>

namespace esflow::transport {

void tenant_admission::set_placement(placement_hook hook) {
  std::atomic_store(&_placement, hook ? std::make_shared<const placement_hook>(std::move(hook)) : nullptr);
}

std::shared_ptr<std::atomic<std::int64_t>> tenant_admission::raise(const std::string& tenant) {
  {
    std::shared_lock lock(_mu);
    if (auto it = _in_flight.find(tenant); it != _in_flight.end()) {
      it->second->fetch_add(1);
      return it->second;
    }
  }
  std::unique_lock lock(_mu);
  if (_in_flight.size() >= _max_tracked) prune_locked();
  auto& c = _in_flight[tenant];
  if (!c) c = std::make_shared<std::atomic<std::int64_t>>(0);
  c->fetch_add(1);
  return c;
}

void tenant_admission::prune_locked() {
  for (auto it = _in_flight.begin(); it != _in_flight.end();) {
    if (it->second->load() == 0 && _draining.count(it->first) == 0)
      it = _in_flight.erase(it);
    else
      ++it;
  }
}

std::size_t tenant_admission::tracked() const {
  std::shared_lock lock(_mu);
  return _in_flight.size();
}

result<std::shared_ptr<void>> tenant_admission::admit(const std::string& tenant) {
  if (auto hook = std::atomic_load(&_placement)) {
    if (auto owner = (*hook)(tenant)) {
      auto e = error::make(errc::tenant_not_hosted,
                           "tenant '" + tenant + "' is hosted by node '" + *owner + "', not by this node");
      e.node = *owner;
      return e;
    }
  }
  auto c = raise(tenant);
  if (_draining_count.load() != 0 && draining(tenant)) {
    c->fetch_sub(1);
    return error::make(errc::unavailable,
                       "tenant '" + tenant + "' is draining on this node (being moved); retry");
  }
  // The lease owns the counter: it may outlive this object's map entry.
  return std::shared_ptr<void>(c.get(), [c](void*) { c->fetch_sub(1); });
}

bool tenant_admission::drain(const std::string& tenant, std::chrono::milliseconds limit) {
  {
    std::unique_lock lock(_mu);
    if (_draining.insert(tenant).second) _draining_count.fetch_add(1);
  }
  const auto until = std::chrono::steady_clock::now() + limit;
  while (in_flight(tenant) > 0) {
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

void tenant_admission::resume(const std::string& tenant) {
  std::unique_lock lock(_mu);
  if (_draining.erase(tenant) != 0) _draining_count.fetch_sub(1);
}

bool tenant_admission::draining(const std::string& tenant) const {
  std::shared_lock lock(_mu);
  return _draining.count(tenant) != 0;
}

std::set<std::string> tenant_admission::draining_tenants() const {
  std::shared_lock lock(_mu);
  return _draining;
}

std::int64_t tenant_admission::in_flight(const std::string& tenant) const {
  std::shared_lock lock(_mu);
  auto it = _in_flight.find(tenant);
  return it == _in_flight.end() ? 0 : it->second->load();
}

}  // namespace esflow::transport
