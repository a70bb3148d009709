#pragma once
// Runs effect calls to completion — attempts, backoff, circuit breaker — on
// its OWN bounded thread pool, so a slow upstream never blocks a TBB worker.
//
//   effect_executor ex(configs);                       // providers from the configs
//   ex.execute(call, [](effect_outcome final, int attempts) { ... publish the effect result ... });
//
// Per call: up to 1 + retries attempts (retry_policy); before every attempt
// the effect's circuit_breaker is consulted — when it refuses, the call ends
// at once with a retryable "circuit open" failure (no attempt, no wait); a
// retryable failure is retried after a backoff wait while attempts remain;
// success or a non-retryable failure ends the call.
//
// NOTE: threads — `threads` executor threads (default 4) run the attempts,
// the backoff waits and `done`. done runs exactly once per execute():
//   - on an executor thread after the final attempt (or, during stop(), with a
//     retryable "unavailable: ..." failure for calls still queued or waiting
//     out a backoff);
//   - INLINE on the caller's thread, before execute() returns, when the call
//     cannot be queued: the queue is full or the executor stopped
//     (retryable "unavailable: ..."), or the effect is unknown (not retryable).
//   So done must not block long, must not throw (it is caught and logged), and
//   must not call stop() (an executor thread cannot join itself).
// NOTE: execute() never blocks (a bounded queue, default 1024 calls).
// NOTE: backoff waits are condition-variable waits: stop() interrupts them at
// once; an attempt in progress is asked to stop through its stop_token (the
// http provider ends it within about a second; a provider that ignores it
// ends by its timeout).
// NOTE: attempts reported to done count calls to the provider (a call refused
// by an open breaker reports 0).
#include "stages/runner/circuit_breaker.h"
#include "stages/runner/effect_provider.h"
#include "stages/runner/retry_policy.h"

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

namespace esflow::runner {

struct effect_executor_options {
  std::size_t threads = 4;
  std::size_t queue_capacity = 1024;
  // Seeds of the threads' backoff jitter (seed + thread index); none: random.
  std::optional<std::uint64_t> seed;
  // The breakers' clock; empty: std::chrono::steady_clock.
  circuit_breaker::now_fn now;
};

// Plain counters (relaxed atomics), read by a probe or a test.
struct effect_metrics {
  std::atomic<std::uint64_t> calls{0};         // execute() calls
  std::atomic<std::uint64_t> succeeded{0};     // calls that ended succeeded
  std::atomic<std::uint64_t> failed{0};        // calls that ended failed (any reason)
  std::atomic<std::uint64_t> attempts{0};      // provider attempts
  std::atomic<std::uint64_t> retries{0};       // attempts after the first
  std::atomic<std::uint64_t> breaker_open{0};  // calls refused by an open breaker
  std::atomic<std::uint64_t> rejected{0};  // calls refused at execute() (queue full, stopped, unknown effect)
  std::atomic<std::uint64_t> duration_us{0};  // sum of the calls' durations, queue wait excluded
};

// An effect's config with the provider that performs it.
struct effect_upstream {
  effect_config config;
  std::unique_ptr<effect_provider> provider;
};

class effect_executor {
 public:
  using done_fn = std::function<void(effect_outcome final_outcome, int attempts)>;

  // With the providers the configs name (make_effect_provider).
  explicit effect_executor(const std::vector<effect_config>& configs, effect_executor_options options = {});
  // With the given providers (tests; providers made elsewhere).
  effect_executor(std::vector<effect_upstream> upstreams, effect_executor_options options);
  ~effect_executor();  // stop()
  effect_executor(const effect_executor&) = delete;
  effect_executor& operator=(const effect_executor&) = delete;

  void execute(effect_call call, done_fn done);

  // Stops admitting calls, interrupts backoff waits and asks attempts in
  // progress to stop, completes every call not yet finished with a retryable
  // "unavailable" failure, joins the threads. Idempotent.
  void stop();

  const effect_metrics& metrics() const noexcept { return _metrics; }
  // The effect's breaker; nullptr for an unknown effect.
  const circuit_breaker* breaker(const std::string& effect) const;
  std::size_t queued() const;

 private:
  struct upstream_state {
    effect_config config;
    std::unique_ptr<effect_provider> provider;
    circuit_breaker breaker;
    retry_policy policy;
    upstream_state(effect_upstream u, const circuit_breaker::now_fn& now);
  };
  struct job {
    upstream_state* upstream = nullptr;
    effect_call call;
    done_fn done;
  };

  void start(std::size_t threads, std::optional<std::uint64_t> seed);
  void run(std::uint64_t seed);
  void perform(job& j, std::mt19937_64& rng);
  void finish(job& j, effect_outcome outcome, int attempts);

  std::map<std::string, std::unique_ptr<upstream_state>, std::less<>> _upstreams;
  std::size_t _capacity;
  effect_metrics _metrics;

  mutable std::mutex _mutex;
  std::condition_variable _work_cv;  // a job queued, or stopping
  std::condition_variable _stop_cv;  // stopping: ends backoff waits
  std::deque<job> _queue;
  bool _stopping = false;
  std::stop_source _stop_source;  // handed to every attempt

  std::mutex _join_mutex;
  std::vector<std::thread> _threads;
};

}  // namespace esflow::runner
