#pragma once
// The door between a transport's own threads (httplib workers, gRPC
// callbacks, nats.c delivery threads) and a running source stage: run()
// opens it with its source_output and closes it at the stop; handlers admit
// through it only while it is open. Shared (shared_ptr) because the
// transport may call a handler after the stage is gone.
//
// NOTE: thread-safe. close() waits for handlers inside try_put (they hold
//       the shared lock), so the source_output never dangles.
#include "graph/stage.h"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <shared_mutex>
#include <stop_token>

namespace esflow::stages {

enum class admission : std::uint8_t { admitted, full, closed };

// What a source whose messages arrive on a transport's threads does in run()
// between opening its door and closing it: sleep until the pipeline stops.
inline void wait_for_stop(const graph::source_output& out) {
  std::mutex mu;
  std::condition_variable_any cv;
  std::unique_lock lock(mu);
  cv.wait(lock, out.stop_token(), [] { return false; });
}

class source_door {
 public:
  void open(graph::source_output* out) {
    {
      std::unique_lock lock(_mu);
      _out = out;
    }
    set_state(state::open);
  }
  void close() {
    {
      std::unique_lock lock(_mu);
      _out = nullptr;
    }
    set_state(state::closed);
  }
  // A server may listen before the pipeline's sources start: a request in
  // that window waits for the door (bounded) instead of being turned away.
  bool wait_open(std::chrono::milliseconds limit) {
    {
      std::unique_lock lock(_state_mu);
      _state_cv.wait_for(lock, limit, [&] { return _state != state::starting; });
    }
    return is_open();
  }
  bool is_open() const {
    std::shared_lock lock(_mu);
    return _out != nullptr && !_out->stopping();
  }
  // Never blocks; `m` stays the caller's unless admitted.
  admission try_put(graph::message_ptr& m) {
    std::shared_lock lock(_mu);
    if (_out == nullptr || _out->stopping()) return admission::closed;
    return _out->try_put(m) ? admission::admitted : admission::full;
  }

 private:
  enum class state { starting, open, closed };
  void set_state(state st) {
    {
      std::lock_guard lock(_state_mu);
      _state = st;
    }
    _state_cv.notify_all();
  }

  mutable std::shared_mutex _mu;
  graph::source_output* _out = nullptr;
  std::mutex _state_mu;
  std::condition_variable _state_cv;
  state _state = state::starting;  // guarded by _state_mu
};

}  // namespace esflow::stages
