#include "storage/commit_pool.h"

#include "common/log.h"

#include <pthread.h>

namespace esflow::storage {

commit_pool::commit_pool(std::shared_ptr<node_store> store, std::size_t threads, std::size_t max_pending,
                         std::size_t max_group)
    : _store(std::move(store)), _max_pending(max_pending), _max_group(std::max<std::size_t>(1, max_group)) {
  for (std::size_t i = 0; i < std::max<std::size_t>(1, threads); ++i)
    _threads.emplace_back([this] {
      // Named for top -H and debuggers (and tests that fail only the saga commits).
      pthread_setname_np(pthread_self(), "esflow-commitp");
      loop();
    });
}

commit_pool::~commit_pool() { stop(); }

void commit_pool::submit(write_set ws, done_callback done) {
  {
    std::lock_guard lock(_mu);
    if (!_stopping && _queue.size() < _max_pending) {
      _queue.push_back({std::move(ws), std::move(done)});
      _cv.notify_one();
      return;
    }
  }
  done(error::make(errc::unavailable, _stopping ? "commit pool stopped" : "commit queue full",
                   "data_dir=" + _store->data_dir()));
}

std::size_t commit_pool::pending() const {
  std::lock_guard lock(_mu);
  return _queue.size();
}

void commit_pool::loop() {
  std::vector<job> group;
  for (;;) {
    group.clear();
    {
      std::unique_lock lock(_mu);
      _cv.wait(lock, [&] { return _stopping || !_queue.empty(); });
      if (_queue.empty()) return;  // stopping and drained
      while (!_queue.empty() && group.size() < _max_group) {
        group.push_back(std::move(_queue.front()));
        _queue.pop_front();
      }
    }
    status st;
    if (group.size() == 1) {
      st = _store->commit(group.front().ws);
    } else {
      auto merged = _store->begin();
      bool ok = true;
      for (auto& j : group) ok = ok && merged.absorb(j.ws);
      st = ok ? _store->commit(merged)
              : status(error::make(errc::internal, "a write set could not join its commit group",
                                   "data_dir=" + _store->data_dir()));
    }
    for (auto& j : group) {
      try {
        j.done(st);
      } catch (const std::exception& e) {
        ESFLOW_ERROR("storage", "a commit completion threw: {}", e.what());
      } catch (...) {
        ESFLOW_ERROR("storage", "a commit completion threw a non-standard exception");
      }
    }
  }
}

void commit_pool::stop() {
  {
    std::lock_guard lock(_mu);
    if (_stopping && _threads.empty()) return;
    _stopping = true;
  }
  _cv.notify_all();
  for (auto& t : _threads)
    if (t.joinable()) t.join();
  _threads.clear();
}

}  // namespace esflow::storage
