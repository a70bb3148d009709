#pragma once
// What a saga instance reacts to (docs/contract.md "Runner node", inputs):
// the trigger events of committed aggregate commits and the workflow
// messages addressed to a saga (command results, effect results,
// reminders). Each becomes a saga_input: which instance (tenant, saga,
// correlation id), the input's id (its dedupe key: an Event's event_id,
// `cmdresult:<command id>`, `result:<command id>`, a reminder's schedule key)
// and the JSON table on_event receives.
//
// Workflow message bodies (docs/contract.md "Runner node"; the saga and
// correlation fields are this project's additions, which decoders of the
// contract's shapes ignore):
//   command result  {"tenant_id","saga","correlation_id","command_id","status",
//                    "code","message","events","aggregate_type","aggregate_id",
//                    "command_type","trace_id"}
//   effect result   the contract's envelope + "saga"
//   reminder        {"tenant_id","saga","correlation_id","name","due_at",
//                    "due_ms","payload","schedule_key","trace_id"}
#include "common/result.h"
#include "schemas/envelopes.h"
#include "stages/runner/saga_spec.h"

#include <string>
#include <vector>

namespace esflow::runner {

struct saga_input {
  std::string tenant;
  std::string saga;
  std::string correlation_id;
  std::string input_id;
  std::string kind;  // event | command_result | effect_result | reminder
  std::string input_json;
  std::string trace_id;  // the source's, when it had one
};

// The lane of an instance: one instance's inputs in order, others in parallel.
std::string instance_key(const std::string& tenant, const std::string& saga,
                         const std::string& correlation_id);

// The inputs a commit gives the sagas: one per (saga, trigger event). An
// event whose correlation field is missing or not an id is skipped with a
// warning naming it (it cannot address an instance).
std::vector<saga_input> inputs_of_commit(const std::vector<saga_config>& sagas, const schemas::commit& c);

// The input of a WORKFLOW_EVENTS message (subject tenant.<t>.<kind>.<saga>):
// nullopt when no saga of this runner is addressed; invalid_command for a
// body that does not parse or lacks a field.
result<std::optional<saga_input>> input_of_workflow_message(const std::vector<saga_config>& sagas,
                                                            const std::string& subject,
                                                            std::string_view body);

}  // namespace esflow::runner
