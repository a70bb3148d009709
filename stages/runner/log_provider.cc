#include "stages/runner/log_provider.h"

#include "common/log.h"

namespace esflow::runner {

effect_outcome log_provider::attempt(const effect_call& call, std::stop_token /*stop*/) {
  ESFLOW_INFO("runner", "effect tenant={} effect={} command_id={} correlation_id={} payload_bytes={}",
              call.tenant, _effect, call.command_id, call.correlation_id, call.payload_json.size());
  return effect_outcome::success(R"({"logged":true})");
}

}  // namespace esflow::runner
