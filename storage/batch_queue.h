#pragma once
// The bounded queue of a group-commit thread (embedded_event_log,
// embedded_workflow_stream): callers push, one thread takes everything queued
// (up to a batch) while its previous write ran.
//
// NOTE: thread-safe. push() refuses (closed / full) without taking the item,
//       so the caller can complete it. After close(), take() hands out what
//       is left, then answers false.
#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <vector>

namespace esflow::storage {

enum class push_outcome : unsigned char { queued, closed, full };

template <class T>
class batch_queue {
 public:
  explicit batch_queue(std::size_t max_pending) : _max_pending(max_pending) {}

  // On closed / full, `item` is left as it was.
  push_outcome push(T& item) {
    std::unique_lock lock(_mu);
    if (_closing) return push_outcome::closed;
    if (_queue.size() >= _max_pending) return push_outcome::full;
    bool was_empty = _queue.empty();
    _queue.push_back(std::move(item));
    lock.unlock();
    if (was_empty) _cv.notify_one();
    return push_outcome::queued;
  }

  // Waits for items, then moves up to max of them into out (appended);
  // false once closed and drained.
  bool take(std::vector<T>& out, std::size_t max) {
    std::unique_lock lock(_mu);
    _cv.wait(lock, [this] { return _closing || !_queue.empty(); });
    if (_queue.empty()) return false;
    std::size_t n = std::min(_queue.size(), max);
    for (std::size_t i = 0; i < n; ++i) {
      out.push_back(std::move(_queue.front()));
      _queue.pop_front();
    }
    return true;
  }

  void close() {
    {
      std::lock_guard lock(_mu);
      _closing = true;
    }
    _cv.notify_one();
  }

 private:
  const std::size_t _max_pending;
  std::mutex _mu;
  std::condition_variable _cv;
  std::deque<T> _queue;   // guarded by _mu
  bool _closing = false;  // guarded by _mu
};

}  // namespace esflow::storage
