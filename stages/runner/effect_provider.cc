#include "stages/runner/effect_provider.h"

#include "stages/runner/http_provider.h"
#include "stages/runner/log_provider.h"

#include <algorithm>
#include <cstdio>
#include <functional>

namespace esflow::runner {
namespace {

bool is_hex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

}  // namespace

effect_outcome effect_outcome::success(std::string payload_json, int http_status) {
  effect_outcome o;
  o.result = result_type::succeeded;
  o.payload_json = std::move(payload_json);
  o.http_status = http_status;
  return o;
}

effect_outcome effect_outcome::failure(std::string error, bool retryable, int http_status) {
  effect_outcome o;
  o.result = result_type::failed;
  o.error = std::move(error);
  o.retryable = retryable;
  o.http_status = http_status;
  return o;
}

effect_outcome effect_outcome::unavailable(std::string_view why) {
  return failure("unavailable: " + std::string(why), true);
}

std::string_view to_string(effect_outcome::result_type type) noexcept {
  return type == effect_outcome::result_type::succeeded ? "succeeded" : "failed";
}

std::unique_ptr<effect_provider> make_effect_provider(const effect_config& config) {
  switch (config.provider) {
    case provider_kind::http:
      return std::make_unique<http_provider>(config);
    case provider_kind::log:
      return std::make_unique<log_provider>(config);
  }
  return std::make_unique<log_provider>(config);
}

std::string traceparent_of(const effect_call& call) {
  if (!call.traceparent.empty()) return call.traceparent;
  if (call.trace_id.size() != 32 || !is_hex(call.trace_id) || call.trace_id == std::string(32, '0'))
    return {};
  char span[17];
  const auto h = std::hash<std::string>{}(call.command_id) | 1U;  // never the all-zero span id
  std::snprintf(span, sizeof span, "%016llx", static_cast<unsigned long long>(h));
  return "00-" + call.trace_id + "-" + span + "-01";
}

}  // namespace esflow::runner
