#pragma once
// The `log` effect provider (for demos): logs the effect — tenant, effect,
// command id and payload size, never the payload — and succeeds with
// {"logged":true}. Thread-safe; never blocks beyond the logger.
#include "stages/runner/effect_provider.h"

namespace esflow::runner {

class log_provider final : public effect_provider {
 public:
  explicit log_provider(const effect_config& config) : _effect(config.name) {}
  using effect_provider::attempt;
  effect_outcome attempt(const effect_call& call, std::stop_token stop) override;

 private:
  std::string _effect;
};

}  // namespace esflow::runner
