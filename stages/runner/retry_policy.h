#pragma once
// Bounded retries with exponential backoff and full jitter: attempts are
// 1 + retries; the wait before retry n (n = 1, 2, ...) is drawn uniformly from
// [min, min(max, min * 2^(n-1))] — full jitter over the exponential window,
// never below min (so a flapping upstream is not hammered) nor above max.
//
// NOTE: immutable after construction and thread-safe; the randomness is the
// caller's (one generator per executor thread; a seeded one in tests makes the
// delays deterministic).
#include "stages/runner/effect_provider.h"

#include <chrono>
#include <cstdint>
#include <random>

namespace esflow::runner {

class retry_policy {
 public:
  retry_policy(int retries, backoff_config backoff);
  explicit retry_policy(const effect_config& config) : retry_policy(config.retries, config.backoff) {}

  int max_attempts() const noexcept { return 1 + _retries; }
  // Whether the call goes on after `attempts` attempts ending with `last`.
  bool should_retry(const effect_outcome& last, int attempts) const noexcept;
  // The wait before retry `retry` (1-based), given 64 random bits.
  std::chrono::milliseconds delay(int retry, std::uint64_t random_bits) const noexcept;
  std::chrono::milliseconds delay(int retry, std::mt19937_64& rng) const { return delay(retry, rng()); }
  // The upper end of the window before retry `retry`.
  std::chrono::milliseconds window(int retry) const noexcept;

 private:
  int _retries;
  backoff_config _backoff;
};

}  // namespace esflow::runner
