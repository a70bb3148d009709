#pragma once
// The per-message state of an aggregate pipeline (message::context): the
// shared command context (stages/ingest_context.h) extended stage by stage:
// ingest -> tenant.gate -> decode.command -> aggregate.rehydrate ->
// aggregate.decide -> aggregate.commit -> aggregate.answer -> ack.
//
// NOTE: one stage at a time owns the message, so fields need no locking.
#include "common/error.h"
#include "graph/message.h"
#include "schemas/envelopes.h"
#include "stages/ingest_context.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace esflow::aggregate {

struct aggregate_type_config;
using stages::aggregate_key;
using stages::ingest_ack;

struct aggregate_context : stages::command_context {
  using base = stages::command_context;
  aggregate_context() = default;
  explicit aggregate_context(stages::command_context&& b) : stages::command_context(std::move(b)) {}

  // --- aggregate.rehydrate ------------------------------------------------------
  const aggregate_type_config* type = nullptr;  // the `aggregates:` entry of cmd.aggregate_type

  // --- aggregate.rehydrate / decide ---------------------------------------------
  schemas::version_t version = 0;      // the aggregate's version the decision was made on
  std::string state_json;              // state at `version`
  std::vector<schemas::event> events;  // decided events (version/ids stamped by commit)
  std::string new_state_json;          // state after applying `events`
  bool cache_hit = false;
  // rehydrate assumed a never-seen aggregate (version 0, initial state)
  // without asking the log (aggregate_service::rehydrate, `guess_new`): the
  // log's expected version 0 verifies a decision with events; a rejection
  // or an empty decision on such a guess is re-decided by commit on a real read.
  bool guessed_new = false;
  std::uint32_t attempts = 0;       // commit attempts (bounded retries on conflict)
  std::uint64_t base_token = 0;     // state_cache token of the head decided on
  std::uint64_t decided_token = 0;  // token of the head the decision leaves (== base when no events)
  bool known_command = false;       // decide found the command id in the log: commit's append answers it
  // decide's rejection (program's code, program_error): final only once commit,
  // in the key's turn, confirms the state it was decided on was the latest.
  std::optional<esflow::error> rejection;
  bool retry = false;  // commit: re-rehydrate and re-decide before appending

  // --- aggregate.commit -------------------------------------------------------------
  schemas::command_result result;  // accepted answer (rejections travel as message::error)

  std::string_view context_name() const noexcept override { return "aggregate"; }
};

// The message's aggregate context (created or extended from the shared one;
// another kind's context throws: see stages::context_for).
inline aggregate_context& context_of(graph::message& m) {
  return stages::context_for<aggregate_context>(m, "the aggregate stages");
}

}  // namespace esflow::aggregate
