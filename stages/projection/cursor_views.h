#pragma once
// The snapshots behind index- and sorted-order cursors (docs/projection.md
// "How a query runs"): the first page of such a query takes a read_view of
// the node store and later pages read that same view, so no row is returned
// twice and none that existed when the query started is skipped, however
// rows move in the order meanwhile. Bounded: at most `max` views, each kept
// `ttl` after it was made; the oldest is evicted first. A cursor whose view
// is gone is refused (invalid_query: start the query again).
//
// NOTE: thread-safe; views must be dropped before the store closes (the
// service that owns this table holds the store longer).
#include "storage/read_view.h"

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <unordered_map>

namespace esflow::projection {

class cursor_views {
 public:
  explicit cursor_views(std::size_t max = 256, std::chrono::seconds ttl = std::chrono::seconds(60))
      : _max(max), _ttl(ttl) {}
  // Keeps `view`; the id its cursors carry (never 0).
  std::uint64_t keep(std::shared_ptr<storage::read_view> view);
  // The view, or null when it expired or was evicted.
  std::shared_ptr<storage::read_view> find(std::uint64_t id);
  std::size_t size();

 private:
  void expire_locked(std::chrono::steady_clock::time_point now);

  struct entry {
    std::shared_ptr<storage::read_view> view;
    std::chrono::steady_clock::time_point expires;
  };
  std::size_t _max;
  std::chrono::seconds _ttl;
  std::mutex _mu;
  std::uint64_t _next;
  std::unordered_map<std::uint64_t, entry> _by_id;
  std::deque<std::uint64_t> _order;  // oldest first
  bool _seeded = false;
};

}  // namespace esflow::projection
