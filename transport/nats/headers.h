#pragma once
// The headers of docs/contract.md ("Headers") on outgoing NATS messages, and
// their reading on incoming ones.
//
// NOTE: pure helpers, thread-safe; they never take ownership of the natsMsg.
#include "common/result.h"
#include "common/sha256.h"
#include "schemas/envelopes.h"

#include <nats/nats.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace esflow::nats {

namespace header {
inline constexpr const char* tenant_id = "tenant-id";
inline constexpr const char* msg_id = "Nats-Msg-Id";
inline constexpr const char* x_correlation_id = "x-correlation-id";
inline constexpr const char* correlation_id = "correlation-id";
inline constexpr const char* traceparent = "traceparent";
inline constexpr const char* trace_id = "trace-id";
inline constexpr const char* event_count = "esflow-event-count";
// esflow's own: the append's request hash (SHA-256, 64 lowercase hex), so a
// JetStream-level duplicate can be told apart from a reused command id.
inline constexpr const char* request_hash = "esflow-request-hash";
}  // namespace header

// Nats-Msg-Id of a Commit: `<tenant>:<command id>` with the tenant's subject
// token (`_` for the empty tenant; the token has no ':', so it is injective).
std::string commit_msg_id(std::string_view tenant, std::string_view command_id);

// The trace context of a commit from its first event: the event's
// correlation id when valid (else a fresh UUID) and a traceparent carrying
// the event's trace id when valid (else a fresh trace).
schemas::trace_context commit_trace(const schemas::commit& c);

// Sets tenant-id, the correlation pair and the trace pair.
status set_common_headers(natsMsg* msg, std::string_view tenant, const schemas::trace_context& trace);
// set_common_headers + Nats-Msg-Id, esflow-event-count, esflow-request-hash.
status set_commit_headers(natsMsg* msg, const schemas::commit& c, const schemas::trace_context& trace,
                          const sha256_digest& request_hash);

// A header's value or nullopt.
std::optional<std::string> get_header(natsMsg* msg, const char* key);
// esflow-request-hash of a stored commit message; nullopt when absent or not
// 64 hex digits (a message stored before the SHA-256 hash had 16).
std::optional<sha256_digest> get_request_hash(natsMsg* msg);

}  // namespace esflow::nats
