#pragma once
// JSON decoding of the docs/contract.md envelopes with simdjson On-Demand.
//
// NOTE: thread-safe; each thread reuses one parser and one padded buffer
// (thread_local), so a decode allocates only for the strings it returns.
// NOTE: input need not be padded. decode_*(json) copies into the thread's padded
// buffer; decode_*(json, readable) skips the copy when `readable` bytes
// starting at json.data() may be read (>= json.size() + 64, simdjson padding;
// e.g. a std::string's capacity()+1 or a network buffer's size).
// NOTE: decoders ignore unknown fields and tolerate missing optional ones; an
// optional field set to null counts as missing. Unknown fields are skipped, not
// validated beyond simdjson's structural and UTF-8 checks.
// NOTE: payload/metadata/state keep their exact JSON text (whitespace inside
// included, surrounding whitespace trimmed): numbers are never re-encoded, so
// integers beyond 2^53 survive.
#include "common/result.h"
#include "schemas/envelopes.h"

#include <cstddef>
#include <string_view>

namespace esflow::schemas {

// A decoded command body and which optional fields it carried. The caller
// fills the missing ones (tenant from the header/subject, command id from
// Idempotency-Key or a fresh UUID, aggregate id a fresh UUID v7).
struct command_fields {
  command cmd;
  bool has_tenant_id = false;
  bool has_command_id = false;
  bool has_aggregate_id = false;
  bool has_metadata = false;
};

// Failures are errc::invalid_command with a message naming the field, e.g.
// "field 'aggregate_type' must be a string", "field 'payload' is required",
// except a non-empty tenant_id outside [A-Za-z0-9_-]{1,64} (or "_"), which is
// errc::invalid_tenant (docs/contract.md "Rejection codes"). An empty tenant_id is
// accepted here (single-tenant mode); tenancy rules are the caller's
// (validate_tenant in ids.h).
result<command_fields> decode_command(std::string_view json);
result<command_fields> decode_command(std::string_view json, std::size_t readable);

// The other envelopes, for storage round-trips, consumers and tests. Failures
// are errc::internal (a stored or published envelope that does not decode is
// corruption or a bug, not a client error), message naming the field.
// Required: event: event_id, aggregate_type, aggregate_id, version,
// event_type, payload. commit: aggregate_type, aggregate_id, first_version,
// events. snapshot: aggregate_type, aggregate_id, version, state.
// command_result: status ("accepted" | "rejected"); rejected needs code.
result<event> decode_event(std::string_view json);
result<commit> decode_commit(std::string_view json);
result<command_result> decode_command_result(std::string_view json);
result<snapshot> decode_snapshot(std::string_view json);

}  // namespace esflow::schemas
