#pragma once
// One thread that runs short callbacks at given times: the gateway's request
// deadlines and retry backoffs (docs/gateway.md "Retries and deadlines"), so
// no TBB worker ever sleeps and no request needs a thread of its own.
//
// NOTE: thread-safe. Callbacks run on the timer's thread, one at a time, in
//       time order; they must not block (they emit into the flow graph or
//       start an asynchronous call). cancel() of a callback already running
//       or run returns false. stop() drops what is left without running it
//       (its owners answer their requests themselves) and joins.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

namespace esflow::gateway {

class timer_thread {
 public:
  using clock = std::chrono::steady_clock;
  using id = std::uint64_t;

  explicit timer_thread(const char* name = "esflow-gw-timer");
  ~timer_thread();
  timer_thread(const timer_thread&) = delete;
  timer_thread& operator=(const timer_thread&) = delete;

  // Runs `fn` at `at` (at once when past). Returns 0 after stop().
  id schedule(clock::time_point at, std::function<void()> fn);
  // true when `fn` was removed before it ran.
  bool cancel(id which);
  void stop();

 private:
  void loop();

  std::mutex _mu;
  std::condition_variable _cv;
  std::map<std::pair<clock::time_point, id>, std::function<void()>> _due;  // guarded by _mu
  std::unordered_map<id, clock::time_point> _when;                         // guarded by _mu
  id _next = 1;                                                            // guarded by _mu
  bool _stopping = false;                                                  // guarded by _mu
  std::thread _thread;
};

}  // namespace esflow::gateway
