#include "stages/runner/retry_policy.h"

#include <algorithm>

namespace esflow::runner {

retry_policy::retry_policy(int retries, backoff_config backoff)
    : _retries(std::max(0, retries)), _backoff(backoff) {
  if (_backoff.min.count() < 0) _backoff.min = std::chrono::milliseconds(0);
  if (_backoff.max < _backoff.min) _backoff.max = _backoff.min;
}

bool retry_policy::should_retry(const effect_outcome& last, int attempts) const noexcept {
  return !last.succeeded() && last.retryable && attempts < max_attempts();
}

std::chrono::milliseconds retry_policy::window(int retry) const noexcept {
  const auto min = _backoff.min.count();
  const auto max = _backoff.max.count();
  std::int64_t cap = std::max<std::int64_t>(min, 1);
  for (int i = 1; i < retry && cap < max; ++i) cap *= 2;  // at most ~40 doublings before passing max
  return std::chrono::milliseconds(std::clamp<std::int64_t>(cap, min, max));
}

std::chrono::milliseconds retry_policy::delay(int retry, std::uint64_t random_bits) const noexcept {
  const auto lo = static_cast<std::uint64_t>(_backoff.min.count());
  const auto hi = static_cast<std::uint64_t>(window(retry).count());
  if (hi <= lo) return std::chrono::milliseconds(static_cast<std::int64_t>(lo));
  const auto span = hi - lo + 1;
  return std::chrono::milliseconds(static_cast<std::int64_t>(lo + random_bits % span));
}

}  // namespace esflow::runner
