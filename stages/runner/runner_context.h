#pragma once
// The runner node kind's message context: ingest_context + what the runner's
// pipelines carry. One context type for the saga path (inputs of one
// instance -> transitions -> one commit), the outbox relay (one work item),
// the scheduler (one due reminder) and the effect path (one effect
// command); each stage uses its part.
#include "common/error.h"
#include "stages/ingest_context.h"
#include "stages/runner/effect_provider.h"
#include "stages/runner/saga_input.h"
#include "stages/runner/saga_step.h"
#include "storage/runner_stores.h"

#include <optional>
#include <string>
#include <vector>

namespace esflow::runner {

struct saga_config;

struct runner_context : stages::ingest_context {
  using base = stages::ingest_context;
  runner_context() = default;
  explicit runner_context(stages::ingest_context&& b) : ingest_context(std::move(b)) {}

  // --- sources -----------------------------------------------------------------
  std::string source;  // log | events (WORKFLOW_EVENTS) | outbox | schedule | commands
  schemas::position_t position = 0;

  // --- saga path: saga.follow / saga.dedupe / saga.load / saga.run ------------------
  std::vector<saga_input> inputs;  // of one instance, in order
  const saga_config* saga = nullptr;
  std::optional<std::string> record;  // the instance record before (saga.load)
  bool record_pending = false;        // `record` is a transition not yet stored (runner_service::load)
  std::uint64_t record_mark = 0;      // `record` came from the store at this mark (runner_service::load)
  std::vector<step_result> steps;     // one per input left after dedupe
  std::vector<std::string> seen;      // marker ids of the inputs to mark (all inputs)
  std::uint64_t pending_serial = 0;   // the transition saga.run left in runner_service::_records
  std::vector<std::string> running;   // runner_service::_running_markers this message holds
  // The program failed on these inputs (program_error: it would fail again): saga.commit
  // quarantines them with the reason, marks them seen and leaves the instance as it was.
  std::optional<esflow::error> poison;

  // --- relay: outbox.scan / outbox.dispatch / outbox.confirm -----------------------
  storage::outbox_item item;
  std::string item_json;  // the parsed item (as stored)
  int attempts = 0;
  bool item_deleted = false;     // the dispatch's publish deleted the item in its own write
  std::uint64_t created_ms = 0;  // the item's created_ms (dispatch latency)

  // --- scheduler ---------------------------------------------------------------
  storage::schedule_item due;

  // --- effects: effect.follow / effect.gate / effect.execute / effect.publish / effect.done ---
  effect_call call;
  std::string saga_name;       // the saga that asked (its metadata), echoed in the result
  bool replay = false;         // a result is stored: re-published, not run again
  std::string result_body;     // the effect result (docs/contract.md "Runner node")
  bool result_stored = false;  // the result's publish wrote effect_done_writes with it

  std::string_view context_name() const noexcept override { return "runner"; }
};

inline runner_context& context_of(graph::message& m) {
  return stages::context_for<runner_context>(m, "the runner stages");
}

}  // namespace esflow::runner
