#include "stages/gateway/timer_thread.h"

#include "common/log.h"

#include <pthread.h>

namespace esflow::gateway {

timer_thread::timer_thread(const char* name) {
  _thread = std::thread([this, name] {
    pthread_setname_np(pthread_self(), name);
    loop();
  });
}

timer_thread::~timer_thread() { stop(); }

timer_thread::id timer_thread::schedule(clock::time_point at, std::function<void()> fn) {
  std::lock_guard lock(_mu);
  if (_stopping) return 0;
  const id i = _next++;
  const bool earliest = _due.empty() || at < _due.begin()->first.first;
  _due.emplace(std::make_pair(at, i), std::move(fn));
  _when.emplace(i, at);
  if (earliest) _cv.notify_one();
  return i;
}

bool timer_thread::cancel(id which) {
  std::lock_guard lock(_mu);
  const auto it = _when.find(which);
  if (it == _when.end()) return false;
  _due.erase({it->second, which});
  _when.erase(it);
  return true;
}

void timer_thread::stop() {
  {
    std::lock_guard lock(_mu);
    if (_stopping && !_thread.joinable()) return;
    _stopping = true;
    _due.clear();
    _when.clear();
  }
  _cv.notify_all();
  if (_thread.joinable() && _thread.get_id() != std::this_thread::get_id()) _thread.join();
}

void timer_thread::loop() {
  std::unique_lock lock(_mu);
  while (!_stopping) {
    if (_due.empty()) {
      _cv.wait(lock);
      continue;
    }
    const auto at = _due.begin()->first.first;
    if (clock::now() < at) {
      _cv.wait_until(lock, at);
      continue;
    }
    auto node = _due.extract(_due.begin());
    _when.erase(node.key().second);
    lock.unlock();
    try {
      node.mapped()();
    } catch (const std::exception& e) {
      ESFLOW_ERROR("gateway", "a timer callback threw: {}", e.what());
    } catch (...) {
      ESFLOW_ERROR("gateway", "a timer callback threw a non-standard exception");
    }
    lock.lock();
  }
}

}  // namespace esflow::gateway
