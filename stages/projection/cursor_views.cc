#include "stages/projection/cursor_views.h"

#include <random>

namespace esflow::projection {

void cursor_views::expire_locked(std::chrono::steady_clock::time_point now) {
  while (!_order.empty()) {
    auto it = _by_id.find(_order.front());
    if (it != _by_id.end() && it->second.expires > now && _by_id.size() <= _max) break;
    if (it != _by_id.end()) _by_id.erase(it);
    _order.pop_front();
  }
}

std::uint64_t cursor_views::keep(std::shared_ptr<storage::read_view> view) {
  std::lock_guard lock(_mu);
  if (!_seeded) {
    // Ids do not repeat across restarts: an old cursor finds nothing, not another query's view.
    _next = std::random_device{}() | (std::uint64_t{std::random_device{}()} << 32);
    _seeded = true;
  }
  if (++_next == 0) ++_next;
  const auto now = std::chrono::steady_clock::now();
  _by_id[_next] = {std::move(view), now + _ttl};
  _order.push_back(_next);
  expire_locked(now);
  return _next;
}

std::shared_ptr<storage::read_view> cursor_views::find(std::uint64_t id) {
  std::lock_guard lock(_mu);
  expire_locked(std::chrono::steady_clock::now());
  auto it = _by_id.find(id);
  return it == _by_id.end() ? nullptr : it->second.view;
}

std::size_t cursor_views::size() {
  std::lock_guard lock(_mu);
  return _by_id.size();
}

}  // namespace esflow::projection
