#pragma once
// The runner node kind's `effects:` section (docs/contract.md, "Runner node"):
// effect name -> { provider, url, timeout, retries, backoff: {min, max},
// breaker: {failures, open_for}, secret_file }.
//
//   effects:
//     notify: { provider: http, url: "http://127.0.0.1:9999/hook", timeout: 2s, retries: 5,
//               backoff: { min: 100ms, max: 5s }, breaker: { failures: 5, open_for: 10s },
//               secret_file: /run/secrets/notify_token }
//
// Bounds: timeout and backoff.min/max 1ms..5min (min <= max), retries 0..20,
// breaker.failures 1..1000, breaker.open_for 1ms..1h. `url` is required for
// http and refused for log.
//
// NOTE: the secret file is read once, here (at node start); its trimmed content
// lives only in effect_config::secret and is never logged or rendered.
#include "common/result.h"

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace esflow::runner {

enum class provider_kind { http, log };
std::string_view to_string(provider_kind kind) noexcept;

// A credential read from a file. It has no stream operator and no formatter:
// printing one does not compile; reading it is spelled reveal().
class secret_value {
 public:
  secret_value() = default;
  explicit secret_value(std::string value) : _value(std::move(value)) {}
  bool empty() const noexcept { return _value.empty(); }
  const std::string& reveal() const noexcept { return _value; }

 private:
  std::string _value;
};

struct backoff_config {
  std::chrono::milliseconds min{100};
  std::chrono::milliseconds max{5000};
};

struct breaker_config {
  int failures = 5;  // consecutive retryable failures that open the breaker
  std::chrono::milliseconds open_for{10'000};
};

struct effect_config {
  std::string name;  // [A-Za-z][A-Za-z0-9_]{0,63}
  provider_kind provider = provider_kind::log;
  std::string url;                          // http: http:// or https://
  std::chrono::milliseconds timeout{5000};  // per attempt
  int retries = 3;                          // attempts = 1 + retries, at most 20 retries
  backoff_config backoff;
  breaker_config breaker;
  std::string secret_file;  // resolved path; empty: no Authorization header
  secret_value secret;      // the file's trimmed content
};

// Limits of the section (also in the error messages).
inline constexpr int k_max_retries = 20;
inline constexpr std::chrono::milliseconds k_max_timeout{300'000};
inline constexpr std::size_t k_max_secret_bytes = 64 * 1024;

bool is_valid_effect_name(std::string_view name);

// Parses and validates `effects:` (every problem as "file:line: effects: '<name>': ...",
// joined by newlines, in one invalid_config) and reads the secret files
// (relative paths resolve from base_dir). An absent or null section is no
// effects (an empty list).
result<std::vector<effect_config>> parse_effects(const YAML::Node& section, const std::string& file,
                                                 const std::string& base_dir);

}  // namespace esflow::runner
