#pragma once
// The per-message state of an aggregate pipeline (message::context), filled
// stage by stage: ingest -> tenant.gate -> decode.command -> aggregate.rehydrate
// -> aggregate.decide -> aggregate.commit -> publish -> ack.
//
// NOTE: one stage at a time owns the message, so fields need no locking.
#include "common/error.h"
#include "graph/message.h"
#include "schemas/envelopes.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace esflow::aggregate {

struct aggregate_type_config;

// Acknowledges the ingest message after the durable commit (JetStream ack,
// NATS reply is the publish step). Ingests without acks leave it null.
class ingest_ack {
 public:
  virtual ~ingest_ack() = default;
  virtual void ack() = 0;
  virtual void nak() = 0;  // not processed: the transport may redeliver
};

struct command_context {
  // --- set by the ingest ---------------------------------------------------
  std::string transport;         // "http", "nats", "file"
  bool tenant_given = false;     // a transport tenant exists (x-tenant-id header, subject token)
  std::string transport_tenant;  // its value (raw: tenant.gate validates it)
  std::string subject_type;      // NATS subject's type/id, which win over the body's
  std::string subject_id;
  std::string idempotency_key;  // HTTP Idempotency-Key
  std::string request_id;       // HTTP x-request-id, echoed
  std::string incoming_traceparent;
  std::string incoming_correlation_id;
  std::shared_ptr<ingest_ack> ack;

  // --- tenant.gate ------------------------------------------------------------
  std::string tenant;            // validated; "" in single-tenant mode
  schemas::trace_context trace;  // validated or generated

  // --- decode.command -----------------------------------------------------------
  schemas::command cmd;                         // complete: ids generated where allowed
  std::uint64_t request_hash = 0;               // storage::request_hash(type, id, payload)
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
};

// The message's context, created on first use (file ingest has none).
inline command_context& context_of(graph::message& m) {
  if (!m.context) m.context = std::make_shared<command_context>();
  return *m.context_as<command_context>();
}

// Lane key of an aggregate: tenant, type and id, separated by a byte no
// valid id contains.
inline std::string aggregate_key(const std::string& tenant, const std::string& type, const std::string& id) {
  std::string k;
  k.reserve(tenant.size() + type.size() + id.size() + 2);
  k += tenant;
  k += '\x1f';
  k += type;
  k += '\x1f';
  k += id;
  return k;
}

}  // namespace esflow::aggregate
