#include "common/blocking_pool.h"

#include "common/log.h"

#include <exception>
#include <pthread.h>

namespace esflow {

blocking_pool::blocking_pool(std::string name, std::size_t threads, std::size_t max_queued)
    : _name(std::move(name)), _max_queued(std::max<std::size_t>(1, max_queued)) {
  threads = std::max<std::size_t>(1, threads);
  _threads.reserve(threads);
  for (std::size_t i = 0; i < threads; ++i) {
    _threads.emplace_back([this] {
      // Linux limits thread names to 15 characters.
      pthread_setname_np(pthread_self(), _name.substr(0, 15).c_str());
      run();
    });
  }
}

blocking_pool::~blocking_pool() { stop(); }

bool blocking_pool::try_submit(job j) {
  {
    std::lock_guard lock(_mu);
    if (_stopping || _jobs.size() >= _max_queued) return false;
    _jobs.push_back(std::move(j));
  }
  _cv.notify_one();
  return true;
}

void blocking_pool::stop() {
  {
    std::lock_guard lock(_mu);
    if (_stopping && _threads.empty()) return;
    _stopping = true;
  }
  _cv.notify_all();
  for (auto& t : _threads) {
    if (t.joinable() && t.get_id() != std::this_thread::get_id()) t.join();
  }
  std::lock_guard lock(_mu);
  _threads.clear();
}

std::size_t blocking_pool::queued() const {
  std::lock_guard lock(_mu);
  return _jobs.size();
}

void blocking_pool::run() {
  for (;;) {
    job j;
    {
      std::unique_lock lock(_mu);
      _cv.wait(lock, [this] { return _stopping || !_jobs.empty(); });
      if (_jobs.empty()) return;  // stopping, and every queued job has run
      j = std::move(_jobs.front());
      _jobs.pop_front();
    }
    // Thread boundary: a job's failure is its own; the pool goes on.
    try {
      j();
    } catch (const std::exception& e) {
      ESFLOW_ERROR("common", "{}: a job threw: {}", _name, e.what());
    } catch (...) {
      ESFLOW_ERROR("common", "{}: a job threw a non-standard exception", _name);
    }
  }
}

}  // namespace esflow
