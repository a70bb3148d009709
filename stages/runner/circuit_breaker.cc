#include "stages/runner/circuit_breaker.h"

namespace esflow::runner {

circuit_breaker::circuit_breaker(const breaker_config& config, now_fn now)
    : _config(config), _now(now ? std::move(now) : now_fn([] { return clock::now(); })) {}

bool circuit_breaker::allow() {
  std::lock_guard lock(_mutex);
  switch (_state) {
    case state::closed:
      return true;
    case state::open:
      if (_now() - _opened_at < _config.open_for) return false;
      _state = state::half_open;
      _trial_in_flight = true;
      return true;
    case state::half_open:
      if (_trial_in_flight) return false;
      _trial_in_flight = true;
      return true;
  }
  return false;
}

void circuit_breaker::on_success() {
  std::lock_guard lock(_mutex);
  _consecutive_failures = 0;
  _trial_in_flight = false;
  _state = state::closed;
}

void circuit_breaker::on_failure() {
  std::lock_guard lock(_mutex);
  const auto now = _now();
  if (_state == state::half_open) {
    open_locked(now);
    return;
  }
  if (_state == state::open) return;  // an attempt allowed before the breaker opened
  if (++_consecutive_failures >= _config.failures) open_locked(now);
}

void circuit_breaker::open_locked(clock::time_point now) {
  _state = state::open;
  _opened_at = now;
  _trial_in_flight = false;
  _consecutive_failures = 0;
  ++_opened;
}

circuit_breaker::state circuit_breaker::current() const {
  std::lock_guard lock(_mutex);
  return _state;
}

std::uint64_t circuit_breaker::opened_count() const {
  std::lock_guard lock(_mutex);
  return _opened;
}

std::string_view to_string(circuit_breaker::state s) noexcept {
  switch (s) {
    case circuit_breaker::state::closed:
      return "closed";
    case circuit_breaker::state::open:
      return "open";
    case circuit_breaker::state::half_open:
      return "half_open";
  }
  return "?";
}

}  // namespace esflow::runner
