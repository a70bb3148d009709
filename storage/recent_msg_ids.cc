#include "storage/recent_msg_ids.h"

#include <algorithm>
#include <functional>

namespace esflow::storage {
namespace {
constexpr std::size_t k_initial_slots = 1024;
}  // namespace

recent_msg_ids::recent_msg_ids(std::size_t capacity)
    : _capacity(std::max<std::size_t>(1, capacity)), _slots(k_initial_slots, 0) {}

std::uint64_t recent_msg_ids::hash_of(std::string_view msg_id) noexcept {
  return std::hash<std::string_view>{}(msg_id);
}

void recent_msg_ids::add(std::uint64_t hash, std::uint64_t position, std::uint64_t expires_ms) {
  if (_queue.size() >= _capacity) {
    pop_oldest();
    ++_forgotten_early;
  }
  // At most half the slots in use: probes stay short.
  if (2 * (_queue.size() + 1) > _slots.size()) grow();
  _queue.push_back({hash, position, expires_ms});
  const std::uint64_t slot = _first + _queue.size();  // sequence number + 1
  for (std::size_t i = home(hash);; i = (i + 1) & (_slots.size() - 1)) {
    if (_slots[i] == 0) {
      _slots[i] = slot;
      return;
    }
  }
}

void recent_msg_ids::expire(std::uint64_t now_ms) {
  while (!_queue.empty() && _queue.front().expires_ms < now_ms) pop_oldest();
}

std::vector<recent_msg_ids::entry> recent_msg_ids::candidates(std::uint64_t hash) const {
  std::vector<entry> out;
  for (std::size_t i = home(hash); _slots[i] != 0; i = (i + 1) & (_slots.size() - 1)) {
    const auto& e = at(_slots[i]);
    if (e.hash == hash) out.push_back(e);
  }
  return out;
}

// Removes the oldest entry's slot by backward-shift deletion (linear probing
// without tombstones): each later slot of the run moves into the hole when
// its home does not lie cyclically between the hole and itself.
void recent_msg_ids::pop_oldest() {
  const std::uint64_t slot = _first + 1;
  const std::size_t mask = _slots.size() - 1;
  std::size_t hole = home(_queue.front().hash);
  while (_slots[hole] != slot) hole = (hole + 1) & mask;
  for (std::size_t j = (hole + 1) & mask; _slots[j] != 0; j = (j + 1) & mask) {
    const std::size_t k = home(at(_slots[j]).hash);
    const bool stays = hole <= j ? (hole < k && k <= j) : (hole < k || k <= j);
    if (stays) continue;
    _slots[hole] = _slots[j];
    hole = j;
  }
  _slots[hole] = 0;
  _queue.pop_front();
  ++_first;
}

void recent_msg_ids::grow() {
  std::vector<std::uint64_t> old(_slots.size() * 2, 0);
  old.swap(_slots);
  const std::size_t mask = _slots.size() - 1;
  for (const auto slot : old) {
    if (slot == 0) continue;
    std::size_t i = home(at(slot).hash);
    while (_slots[i] != 0) i = (i + 1) & mask;
    _slots[i] = slot;
  }
}

}  // namespace esflow::storage
