#pragma once
// A circuit breaker per upstream (one per effect config):
//   closed    -> open after `failures` consecutive retryable failures;
//   open      -> for `open_for`, allow() is false: calls fail fast ("circuit open");
//   half-open -> after open_for, allow() grants ONE trial attempt; its success
//                closes the breaker, its failure re-opens it for open_for.
// A non-retryable failure (e.g. an http 4xx) shows the upstream answering:
// it counts as a success here.
//
// NOTE: thread-safe (one mutex); every allow() that returned true must be
// followed by exactly one on_success() or on_failure().
// NOTE: the clock is injectable (tests); default std::chrono::steady_clock.
#include "stages/runner/effect_spec.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string_view>

namespace esflow::runner {

class circuit_breaker {
 public:
  using clock = std::chrono::steady_clock;
  using now_fn = std::function<clock::time_point()>;
  enum class state { closed, open, half_open };

  explicit circuit_breaker(const breaker_config& config, now_fn now = {});

  // Before an attempt: true = go ahead (closed, or the half-open trial).
  bool allow();
  void on_success();
  void on_failure();  // a retryable failure

  state current() const;
  // Times the breaker went from closed or half-open to open.
  std::uint64_t opened_count() const;

 private:
  void open_locked(clock::time_point now);

  breaker_config _config;
  now_fn _now;
  mutable std::mutex _mutex;
  state _state = state::closed;
  int _consecutive_failures = 0;
  clock::time_point _opened_at{};
  bool _trial_in_flight = false;
  std::uint64_t _opened = 0;
};

std::string_view to_string(circuit_breaker::state s) noexcept;

}  // namespace esflow::runner
