#pragma once
// One saga transition: on_event(state, input) of the saga's program in a
// lane's sandbox, checked and turned into what the saga commit writes — the
// instance record, outbox work items with derived command ids, schedules
// added and cancelled (docs/contract.md "Runner node").
//
// Deterministic: the same record and input give the same record, items and
// command ids (schedule due times add the wall clock at the step, which the
// program never sees). The instance record is
//   {"state": {...}, "done": bool, "schedules": {"<name>": <due ms>}, "inputs": N}
// A done instance keeps its record and takes no more inputs (skipped).
#include "common/result.h"
#include "runtime/sandbox.h"
#include "stages/runner/saga_input.h"
#include "stages/runner/saga_spec.h"
#include "storage/runner_stores.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace esflow::runner {

struct work_item {
  std::string kind;  // command | effect
  std::string command_id;
  std::string item_json;  // the outbox value (outbox_item.h's shape)
};

struct schedule_change {
  storage::schedule_key key;
  std::string value_json;  // what the reminder will carry
};

struct step_result {
  bool skipped = false;  // the instance is done: the input changes nothing
  std::string record_json;
  bool done = false;
  std::vector<work_item> work;
  std::vector<schedule_change> add;
  std::vector<storage::schedule_key> cancel;
};

// [A-Za-z0-9_-]{41}: "w" + 40 hex digits of SHA-256 over the length-prefixed
// (tenant, saga, correlation id, input id, item index).
std::string derive_command_id(const std::string& tenant, const std::string& saga,
                              const std::string& correlation_id, const std::string& input_id,
                              std::size_t index);

// A reminder's schedule key as text: its input id, and (with the tenant) its Nats-Msg-Id.
std::string schedule_key_text(const storage::schedule_key& k);

// Errors: program_error (the program raised, ran out of gas or memory, or
// returned a malformed result: the message says which field), with
// tenant/saga/correlation context.
result<step_result> run_step(const saga_config& saga, runtime::sandbox& sandbox,
                             const std::optional<std::string>& record_json, const saga_input& input,
                             std::uint64_t now_ms);

}  // namespace esflow::runner
