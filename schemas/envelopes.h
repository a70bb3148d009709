#pragma once
// The envelopes of docs/contract.md ("JSON envelopes") as plain C++ types.
// Payloads, metadata and state stay JSON text (canonical, as received or as
// produced by a program): no DOM is built on the hot path.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace esflow::schemas {

using version_t = std::uint64_t;   // 0 = no events yet
using position_t = std::uint64_t;  // global log position (embedded) or stream sequence (JetStream)

// Transport context that every hop carries (docs/contract.md "Headers").
struct trace_context {
  std::string correlation_id;  // [A-Za-z0-9_.:-]{1,128}
  std::string traceparent;     // 00-<32 hex>-<16 hex>-<2 hex>
  std::string trace_id;        // the 32-hex part of traceparent
};

struct command {
  std::string tenant_id;  // "" in single-tenant mode
  std::string command_id;
  std::string aggregate_type;
  std::string aggregate_id;
  std::string payload_type;  // payload.type
  std::string payload_json;  // the payload object, JSON text
  std::string metadata_json = "{}";
  trace_context trace;
};

struct event {
  std::string tenant_id;
  std::string event_id;  // UUID v7
  std::string aggregate_type;
  std::string aggregate_id;
  version_t version = 0;
  std::string event_type;    // == payload.type
  std::string payload_json;  // JSON object text
  std::string command_id;
  std::string correlation_id;
  std::string trace_id;
  std::string timestamp;  // RFC 3339 UTC with milliseconds
};

// One committed command: contiguous versions first_version .. first_version+events.size()-1.
struct commit {
  std::string tenant_id;
  std::string aggregate_type;
  std::string aggregate_id;
  std::string command_id;
  version_t first_version = 0;
  std::vector<event> events;
};

struct command_result {
  bool accepted = false;
  // accepted
  std::string aggregate_id;
  version_t version = 0;
  // The log position of the commit (embedded: global position; JetStream:
  // the Commit message's stream sequence); a duplicate carries the original's;
  // 0 when the command stored nothing. Clients wait on it to read their write.
  position_t position = 0;
  bool duplicate = false;
  std::vector<event> events;
  // rejected
  std::string code;
  std::string message;
  bool retryable = false;
  std::string node;  // tenant_not_hosted: the owner ("node" in JSON; absent when empty)
};

struct snapshot {
  std::string tenant_id;
  std::string aggregate_type;
  std::string aggregate_id;
  version_t version = 0;
  position_t log_position = 0;
  std::string state_json = "{}";
  std::string created_at;
};

}  // namespace esflow::schemas
