#pragma once
// An effect provider performs ONE attempt of an effect (docs/contract.md,
// "Runner node": the effect command / result envelopes, the `http` and `log`
// providers). Retries, backoff and the circuit breaker are the executor's
// (stages/runner/effect_executor.h), not the provider's.
//
// NOTE: attempt() runs synchronously on the caller's thread — an executor
// thread, never a TBB worker: it blocks up to the effect's timeout.
// NOTE: attempt() may run concurrently from several executor threads on one
// provider; implementations are thread-safe.
// NOTE: `stop` asks an attempt in progress to end early (the executor's
// stop()); a provider that honours it returns a retryable "unavailable: ..."
// failure — whether the upstream applied the effect is then unknown, which
// the idempotency key covers.
// NOTE: the same call may be attempted more than once (retries, redelivery
// after a crash); every attempt carries the same command id, so a receiver
// that honours it (the http provider's Idempotency-Key) applies it once.
#include "stages/runner/effect_spec.h"

#include <memory>
#include <stop_token>
#include <string>
#include <string_view>

namespace esflow::runner {

// One effect command (WORKFLOW_COMMANDS body) as the provider sees it.
struct effect_call {
  std::string tenant;
  std::string command_id;    // [A-Za-z0-9_-]{1,128}: the idempotency key
  std::string effect;        // an effect_config name
  std::string payload_json;  // a JSON object; empty is sent as {}
  std::string correlation_id;
  std::string trace_id;     // 32 hex digits, or empty
  std::string traceparent;  // W3C traceparent to forward; empty: made from trace_id
};

struct effect_outcome {
  enum class result_type { succeeded, failed };
  result_type result = result_type::failed;
  std::string payload_json;  // succeeded: a JSON object (the effect result's payload)
  std::string error;         // failed: why (never contains the secret)
  bool retryable = false;    // failed: another attempt may succeed
  int http_status = 0;       // http: the answer's status; 0 without one

  bool succeeded() const noexcept { return result == result_type::succeeded; }
  static effect_outcome success(std::string payload_json, int http_status = 0);
  static effect_outcome failure(std::string error, bool retryable, int http_status = 0);
  // The executor's own failures: "unavailable: <why>", retryable.
  static effect_outcome unavailable(std::string_view why);
};

// "succeeded" | "failed" (the effect result's result_type).
std::string_view to_string(effect_outcome::result_type type) noexcept;

class effect_provider {
 public:
  virtual ~effect_provider() = default;
  // One attempt. Never throws.
  virtual effect_outcome attempt(const effect_call& call, std::stop_token stop) = 0;
  effect_outcome attempt(const effect_call& call) { return attempt(call, std::stop_token{}); }
};

// The provider an effect's config names.
std::unique_ptr<effect_provider> make_effect_provider(const effect_config& config);

// The traceparent an attempt sends: the call's own, else one made from its
// trace_id (span id derived from the command id), else empty.
std::string traceparent_of(const effect_call& call);

}  // namespace esflow::runner
