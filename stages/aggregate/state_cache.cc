#include "stages/aggregate/state_cache.h"

#include <functional>

namespace esflow::aggregate {

namespace {
constexpr std::size_t k_entry_overhead = 160;  // list node, map node, strings' headers
}

state_cache::state_cache(std::size_t capacity_bytes, std::size_t shards)
    : _capacity(capacity_bytes), _per_shard(capacity_bytes / std::max<std::size_t>(1, shards)) {
  for (std::size_t i = 0; i < std::max<std::size_t>(1, shards); ++i)
    _shards.push_back(std::make_unique<shard>());
}

state_cache::shard& state_cache::shard_of(const std::string& key) {
  return *_shards[std::hash<std::string>{}(key) % _shards.size()];
}

std::size_t state_cache::charge_of(const entry& e) {
  return k_entry_overhead + 2 * e.key.size() + e.committed.state_json.size() +
         (e.pending ? e.pending->state_json.size() : 0);
}

void state_cache::recharge(shard& s, entry& e) {
  s.bytes -= e.charge;
  e.charge = charge_of(e);
  s.bytes += e.charge;
}

void state_cache::evict(shard& s) {
  // Keep at least the entry just touched (front), even when it alone is too big.
  while (s.bytes > _per_shard && s.lru.size() > 1) {
    auto& victim = s.lru.back();
    s.bytes -= victim.charge;
    s.index.erase(victim.key);
    s.lru.pop_back();
    ++s.evictions;
  }
}

std::optional<state_head> state_cache::committed(const std::string& key) {
  auto& s = shard_of(key);
  std::lock_guard lock(s.mu);
  auto it = s.index.find(key);
  if (it == s.index.end()) {
    ++s.misses;
    return std::nullopt;
  }
  ++s.hits;
  s.lru.splice(s.lru.begin(), s.lru, it->second);
  return it->second->committed;
}

std::optional<state_head> state_cache::latest(const std::string& key) {
  auto& s = shard_of(key);
  std::lock_guard lock(s.mu);
  auto it = s.index.find(key);
  if (it == s.index.end()) return std::nullopt;
  s.lru.splice(s.lru.begin(), s.lru, it->second);
  return it->second->pending ? *it->second->pending : it->second->committed;
}

std::uint64_t state_cache::committed_token(const std::string& key) {
  auto& s = shard_of(key);
  std::lock_guard lock(s.mu);
  auto it = s.index.find(key);
  return it == s.index.end() ? 0 : it->second->committed.token;
}

state_head state_cache::insert_loaded(const std::string& key, state_head head) {
  auto& s = shard_of(key);
  std::lock_guard lock(s.mu);
  auto it = s.index.find(key);
  if (it != s.index.end()) {
    s.lru.splice(s.lru.begin(), s.lru, it->second);
    auto& e = *it->second;
    if (e.committed.version >= head.version) return e.committed;
    // Storage is ahead of the cache (another writer): the cached heads are stale.
    e.committed = std::move(head);
    e.pending.reset();
    recharge(s, e);
    auto out = e.committed;
    evict(s);
    return out;
  }
  s.lru.push_front(entry{key, std::move(head), std::nullopt, 0});
  auto& e = s.lru.front();
  s.index.emplace(key, s.lru.begin());
  e.charge = charge_of(e);
  s.bytes += e.charge;
  auto out = e.committed;
  evict(s);
  return out;
}

void state_cache::commit(const std::string& key, state_head head) {
  auto& s = shard_of(key);
  std::lock_guard lock(s.mu);
  auto it = s.index.find(key);
  if (it == s.index.end()) {
    s.lru.push_front(entry{key, std::move(head), std::nullopt, 0});
    auto& e = s.lru.front();
    s.index.emplace(key, s.lru.begin());
    e.charge = charge_of(e);
    s.bytes += e.charge;
  } else {
    s.lru.splice(s.lru.begin(), s.lru, it->second);
    auto& e = *it->second;
    if (e.pending && e.pending->version <= head.version) e.pending.reset();
    e.committed = std::move(head);
    recharge(s, e);
  }
  evict(s);
}

void state_cache::set_pending(const std::string& key, std::uint64_t base_token, state_head head) {
  auto& s = shard_of(key);
  std::lock_guard lock(s.mu);
  auto it = s.index.find(key);
  if (it == s.index.end()) return;
  auto& e = *it->second;
  const auto newest = e.pending ? e.pending->token : e.committed.token;
  if (newest != base_token) return;
  e.pending = std::move(head);
  recharge(s, e);
  evict(s);
}

void state_cache::drop_pending(const std::string& key) {
  auto& s = shard_of(key);
  std::lock_guard lock(s.mu);
  auto it = s.index.find(key);
  if (it == s.index.end() || !it->second->pending) return;
  it->second->pending.reset();
  recharge(s, *it->second);
}

void state_cache::invalidate(const std::string& key) {
  auto& s = shard_of(key);
  std::lock_guard lock(s.mu);
  auto it = s.index.find(key);
  if (it == s.index.end()) return;
  s.bytes -= it->second->charge;
  s.lru.erase(it->second);
  s.index.erase(it);
}

cache_stats state_cache::stats() const {
  cache_stats out;
  for (const auto& s : _shards) {
    std::lock_guard lock(s->mu);
    out.hits += s->hits;
    out.misses += s->misses;
    out.evictions += s->evictions;
    out.entries += s->index.size();
    out.bytes += s->bytes;
  }
  return out;
}

}  // namespace esflow::aggregate
