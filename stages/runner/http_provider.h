#pragma once
// The `http` effect provider (libcurl): one POST of the payload as JSON per
// attempt, with
//   Content-Type: application/json
//   Idempotency-Key: <command id>            (every attempt, the same)
//   Authorization: Bearer <secret>           (when the effect has a secret_file)
//   traceparent, x-correlation-id            (when the call has them)
// Outcomes: 2xx -> succeeded (payload: the body when it is a JSON object, else
// {"status":N}); 4xx -> failed, not retryable; 5xx, connect errors, timeouts
// -> failed, retryable; 1xx/3xx (redirects are not followed) and an answer
// body over k_max_response_bytes -> failed, not retryable.
//
// NOTE: attempt() blocks its thread up to the effect's timeout (connect and
// transfer together). Each calling thread keeps one CURL easy handle (a
// thread_local, freed when the thread ends), so an executor thread reuses its
// connections; handles are never shared between threads.
// NOTE: a stop request ends an attempt in progress within about a second
// (libcurl's progress callback) as a retryable "unavailable" failure.
// NOTE: curl_global_init runs once per process, on the first provider made.
#include "stages/runner/effect_provider.h"

#include <chrono>
#include <cstddef>
#include <string>

namespace esflow::runner {

class http_provider final : public effect_provider {
 public:
  static constexpr std::size_t k_max_response_bytes = std::size_t{1} << 20;

  explicit http_provider(const effect_config& config);
  using effect_provider::attempt;
  effect_outcome attempt(const effect_call& call, std::stop_token stop) override;

 private:
  std::string _effect;
  std::string _url;
  std::chrono::milliseconds _timeout;
  std::string _authorization;  // "Authorization: Bearer ..." or empty; never logged
};

}  // namespace esflow::runner
