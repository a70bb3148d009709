#pragma once
// commit_pool: node_store::commit off the caller's thread, with group commit.
// A committer thread takes every set waiting (up to max_group), appends them
// into one batch (write_set::absorb) and writes it once — one WAL write and
// one fsync for the group, like the embedded event log's commit thread — so
// the rate with fsync grows with the load instead of paying one fsync per
// set. The group is all-or-none: a failed write fails every set in it (each
// owner retries its own). Callers (async stages on TBB workers) never wait on
// I/O. One committer thread by default: sets are then written in the order
// they were submitted (a checkpoint never goes back); more threads build one
// group while another is written, but may reorder groups.
//
// Bounded: at most max_pending sets wait; beyond it submit() completes at
// once with unavailable ("commit queue full").
//
// NOTE: thread-safe. done runs exactly once, on a committer thread (or on
//       the caller's for a refused set); it must not block. stop() commits
//       what is queued, then refuses new sets (unavailable).
#include "common/result.h"
#include "storage/node_store.h"

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace esflow::storage {

class commit_pool {
 public:
  using done_callback = std::function<void(status)>;

  commit_pool(std::shared_ptr<node_store> store, std::size_t threads = 1, std::size_t max_pending = 4096,
              std::size_t max_group = 512);
  ~commit_pool();
  commit_pool(const commit_pool&) = delete;
  commit_pool& operator=(const commit_pool&) = delete;

  void submit(write_set ws, done_callback done);
  void stop();
  std::size_t pending() const;

 private:
  struct job {
    write_set ws;
    done_callback done;
  };
  void loop();

  std::shared_ptr<node_store> _store;
  std::size_t _max_pending;
  std::size_t _max_group;
  mutable std::mutex _mu;
  std::condition_variable _cv;
  std::deque<job> _queue;
  bool _stopping = false;
  std::vector<std::thread> _threads;
};

}  // namespace esflow::storage
