#include "storage/commit_pool.h"

#include "common/log.h"

namespace esflow::storage {

commit_pool::commit_pool(std::shared_ptr<node_store> store, std::size_t threads, std::size_t max_pending)
    : _store(std::move(store)), _max_pending(max_pending) {
  for (std::size_t i = 0; i < std::max<std::size_t>(1, threads); ++i)
    _threads.emplace_back([this] { loop(); });
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
  for (;;) {
    std::unique_lock lock(_mu);
    _cv.wait(lock, [&] { return _stopping || !_queue.empty(); });
    if (_queue.empty()) return;  // stopping and drained
    auto j = std::move(_queue.front());
    _queue.pop_front();
    lock.unlock();
    status st = _store->commit(j.ws);
    try {
      j.done(std::move(st));
    } catch (const std::exception& e) {
      ESFLOW_ERROR("storage", "a commit completion threw: {}", e.what());
    } catch (...) {
      ESFLOW_ERROR("storage", "a commit completion threw a non-standard exception");
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
