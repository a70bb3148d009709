#pragma once
// An outbox item as the relay reads it: the stored JSON (saga_step.cc writes
// it) parsed once with simdjson, and the messages made from it — the command
// envelope sent to the aggregate, its command result, the effect command —
// written with schemas::json_writer (docs/runner.md "The relay"). The relay
// runs these for every item; a JSON tree per message was a fifth of a
// transfer's CPU (bench/RESULTS.md).
#include "common/result.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace esflow::runner {

struct outbox_work {
  std::string kind;  // command | effect
  std::string saga, correlation_id, command_id, trace_id;
  std::uint64_t created_ms = 0;
  std::string aggregate_type, aggregate_id;  // a command's
  std::string effect;                        // an effect's
  std::string payload = "{}";                // raw JSON object, as stored
  std::string command_type;                  // payload.type
  std::optional<std::string> answer;         // a stored rejection: the command result to publish again
};

// internal (corrupt item) when the text is not a JSON object or a field has the wrong type.
result<outbox_work> parse_outbox_work(std::string_view json);

// The Command envelope for the aggregate (docs/contract.md "JSON envelopes"):
// command_id, aggregate_type, aggregate_id, payload, metadata {saga,
// correlation_id}, and tenant_id when `tenant` is not empty.
std::string command_envelope(const outbox_work& w, const std::string& tenant);

// The command result published on WORKFLOW_EVENTS: the contract's fields plus
// which command it answers (aggregate_type, aggregate_id, command_type).
// `events_json` is a JSON array (raw).
std::string command_result_body(const outbox_work& w, const std::string& tenant, bool accepted,
                                std::string_view code, std::string_view message,
                                std::string_view events_json);

// The effect command published on WORKFLOW_COMMANDS.
std::string effect_command_body(const outbox_work& w, const std::string& tenant);

// The stored item with "answer" set to `answer` (the item must not hold one).
std::string item_with_answer(std::string_view item_json, std::string_view answer);

// The "events" array of a command result (raw JSON); "[]" when it has none.
std::string events_of_command_result(std::string_view result_json);

}  // namespace esflow::runner
