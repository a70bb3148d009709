#pragma once
// The answer an HTTP worker waits for after it admitted a request: delivered
// once by the pipeline's reply handle (from whatever thread completes it),
// or given up at the deadline, after which a late delivery is dropped.
// Shared by http.commands and gateway.http.
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <utility>

namespace esflow::stages {

template <class Answer>
class reply_waiter {
 public:
  // The first delivery wins; later ones (and any after a timeout) are dropped.
  void deliver(Answer a) {
    {
      std::lock_guard lock(_mu);
      if (_done) return;
      _result = std::move(a);
      _done = true;
    }
    _cv.notify_one();
  }

  // The answer, or nullopt when none came within `timeout`.
  template <class Rep, class Period>
  std::optional<Answer> wait_for(std::chrono::duration<Rep, Period> timeout) {
    std::unique_lock lock(_mu);
    if (!_cv.wait_for(lock, timeout, [&] { return _done; })) {
      _done = true;
      return std::nullopt;
    }
    return std::move(_result);
  }

 private:
  std::mutex _mu;
  std::condition_variable _cv;
  bool _done = false;
  Answer _result{};
};

}  // namespace esflow::stages
