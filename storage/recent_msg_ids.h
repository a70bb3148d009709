#pragma once
// recent_msg_ids: what an embedded workflow stream remembers of the msg ids
// it stored within its dedupe window (embedded_workflow_stream.h), in
// memory: a 64-bit hash, the position and the expiry of each id in the order
// they were added (the expiry queue), and an open-addressing table from hash
// to entry. The durable copy is the stream's own entries, read back at open.
//
// Why memory and not a lookup key per id: msg ids are random, so a key per id
// cost every publish a search of the memtable's skiplist from the top and a
// read, about a quarter of the stream writer's CPU (docs/performance.md
// "Msg ids in memory").
//
// A hash only names candidates: two ids may share one, so the caller confirms
// a candidate against the stored message. Bounded: at most `capacity` ids;
// adding one more forgets the oldest before its expiry (forgotten_early()).
//
// NOTE: not thread-safe; one thread (the stream's writer) owns it.
#include <cstddef>
#include <cstdint>
#include <deque>
#include <string_view>
#include <vector>

namespace esflow::storage {

class recent_msg_ids {
 public:
  struct entry {
    std::uint64_t hash = 0;
    std::uint64_t position = 0;
    std::uint64_t expires_ms = 0;
  };

  explicit recent_msg_ids(std::size_t capacity);

  static std::uint64_t hash_of(std::string_view msg_id) noexcept;

  // Remembers an id until expires_ms. Entries are expired oldest-added first,
  // so add them in expiry order (publish order does that).
  void add(std::uint64_t hash, std::uint64_t position, std::uint64_t expires_ms);
  // Forgets the oldest entries while their expiry is before now_ms.
  void expire(std::uint64_t now_ms);
  // The entries under this hash (expired ones included: the caller decides).
  std::vector<entry> candidates(std::uint64_t hash) const;

  std::size_t size() const noexcept { return _queue.size(); }
  std::size_t capacity() const noexcept { return _capacity; }
  // Ids forgotten before their expiry because the bound was reached.
  std::uint64_t forgotten_early() const noexcept { return _forgotten_early; }

 private:
  // A slot holds an entry's sequence number + 1 (0: empty); the entry is
  // _queue[sequence - _first].
  const entry& at(std::uint64_t slot) const { return _queue[slot - 1 - _first]; }
  std::size_t home(std::uint64_t hash) const noexcept { return hash & (_slots.size() - 1); }
  void pop_oldest();
  void grow();

  std::size_t _capacity;
  std::deque<entry> _queue;
  std::uint64_t _first = 0;  // the sequence number of _queue.front()
  std::vector<std::uint64_t> _slots;
  std::uint64_t _forgotten_early = 0;
};

}  // namespace esflow::storage
