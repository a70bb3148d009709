#pragma once
// The hot state cache of an aggregate node: (tenant, type, id) -> the
// aggregate's committed head {version, state JSON, log position, token} plus,
// while commands of it are in flight, a *pending* head: the state a decided but
// not yet committed command would leave (speculative, see README.md).
//
// Tokens: every head carries a process-unique token. A command records the
// token of the head it was decided on; commit accepts the decision only if the
// committed head still carries that token when the command's turn comes (its
// base is then the latest committed state). Versions alone are not enough: a
// failed command's pending head at version v and a later committed v are
// different states.
//
// Memory: bounded by `capacity_bytes` (keys + states + a fixed overhead per
// entry), split over shards, each an LRU list under its own mutex. A head with
// a pending state is evicted like any other: its in-flight commands then take
// the re-decide path at commit (correct, only slower).
//
// NOTE: every method is thread-safe; none blocks on I/O.
#include "schemas/envelopes.h"

#include <atomic>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace esflow::aggregate {

struct state_head {
  schemas::version_t version = 0;
  std::string state_json;
  schemas::position_t position = 0;
  std::uint64_t token = 0;
};

struct cache_stats {
  std::uint64_t hits = 0;
  std::uint64_t misses = 0;
  std::uint64_t evictions = 0;
  std::uint64_t entries = 0;
  std::uint64_t bytes = 0;
};

class state_cache {
 public:
  explicit state_cache(std::size_t capacity_bytes, std::size_t shards = 16);

  // A fresh process-unique token (never 0).
  std::uint64_t next_token() noexcept { return _tokens.fetch_add(1, std::memory_order_relaxed); }

  // The committed head, or nullopt (counts a hit or a miss).
  std::optional<state_head> committed(const std::string& key);
  // The newest head: pending when there is one, else committed; nullopt when absent.
  std::optional<state_head> latest(const std::string& key);
  // Token of the committed head (0 when absent); no LRU touch, no stats.
  std::uint64_t committed_token(const std::string& key);

  // Inserts a committed head read from storage unless the cache already holds
  // one at the same or a newer version. Returns the head now cached (whose token
  // may be the existing one).
  state_head insert_loaded(const std::string& key, state_head head);
  // A commit at head.version succeeded: it becomes the committed head; a
  // pending head not newer than it is dropped.
  void commit(const std::string& key, state_head head);
  // A decided command would leave `head`: records it as pending if the newest
  // head still carries `base_token` (else the decision is already stale and the
  // commit will re-decide it).
  void set_pending(const std::string& key, std::uint64_t base_token, state_head head);
  // A command with events did not commit: speculative heads are void.
  void drop_pending(const std::string& key);
  // A version conflict: nothing cached about the aggregate can be trusted.
  void invalidate(const std::string& key);

  cache_stats stats() const;
  std::size_t capacity_bytes() const noexcept { return _capacity; }

 private:
  struct entry {
    std::string key;
    state_head committed;
    std::optional<state_head> pending;
    std::size_t charge = 0;
  };
  struct shard {
    mutable std::mutex mu;
    std::list<entry> lru;  // front = most recently used
    std::unordered_map<std::string, std::list<entry>::iterator> index;
    std::size_t bytes = 0;
    std::uint64_t hits = 0, misses = 0, evictions = 0;
  };

  shard& shard_of(const std::string& key);
  static std::size_t charge_of(const entry& e);
  void recharge(shard& s, entry& e);
  void evict(shard& s);

  std::size_t _capacity;
  std::size_t _per_shard;
  std::vector<std::unique_ptr<shard>> _shards;
  std::atomic<std::uint64_t> _tokens{1};
};

}  // namespace esflow::aggregate
