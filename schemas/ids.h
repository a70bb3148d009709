#pragma once
// Identifier rules of docs/contract.md ("Identifiers", "Headers"), UUID v7
// generation, W3C traceparent handling and RFC 3339 timestamps.
//
// NOTE: every function here is thread-safe. UUID and trace-id generation keep
// per-thread state (thread_local), so they never contend; ids made on one
// thread are strictly increasing (UUID v7, also within one millisecond).
#include "common/result.h"
#include "schemas/envelopes.h"

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace esflow::schemas {

// ---- validators (pure, allocation-free) -------------------------------------

// [A-Za-z0-9_-]{1,64}; "_" alone is reserved (it spells the empty tenant in
// subjects and headers). Empty is valid only in single-tenant mode.
bool is_valid_tenant_id(std::string_view id) noexcept;
// [A-Za-z][A-Za-z0-9_]{0,63}
bool is_valid_aggregate_type(std::string_view type) noexcept;
// [A-Za-z0-9_-]{1,128}
bool is_valid_aggregate_id(std::string_view id) noexcept;
// [A-Za-z0-9_-]{1,128}
bool is_valid_command_id(std::string_view id) noexcept;
// [A-Za-z0-9_.:-]{1,128}
bool is_valid_correlation_id(std::string_view id) noexcept;

// The tenant rule of docs/contract.md 10.1 "Tenancy": multi-tenant mode needs a valid,
// non-empty id; single-tenant mode needs the empty one. errc::invalid_tenant
// otherwise, with a message that says which rule failed.
status validate_tenant(std::string_view tenant, bool single_tenant);
// errc::invalid_command naming `field` ("field 'aggregate_id' ...").
status validate_aggregate_type(std::string_view type, std::string_view field = "aggregate_type");
status validate_aggregate_id(std::string_view id, std::string_view field = "aggregate_id");
status validate_command_id(std::string_view id, std::string_view field = "command_id");

// ---- UUID v7 (RFC 9562) ------------------------------------------------------

// 48-bit Unix milliseconds, version 7, a 42-bit per-thread counter seeded at
// random each millisecond (rand_a + top of rand_b), 32 random bits, variant 10.
// Lowercase canonical form, 36 chars.
std::string new_uuid_v7();
// Writes the 36 chars into `out` (no terminator).
void new_uuid_v7(char* out) noexcept;
// 8-4-4-4-12 lowercase hex with version nibble 7 and variant bits 10.
bool is_uuid_v7(std::string_view s) noexcept;
// The millisecond timestamp in a UUID v7 (no validation beyond length).
std::uint64_t uuid_v7_millis(std::string_view s) noexcept;

// ---- W3C trace context ---------------------------------------------------------

struct traceparent {
  std::string_view trace_id;   // 32 lowercase hex, not all zero
  std::string_view parent_id;  // 16 lowercase hex, not all zero
  std::string_view flags;      // 2 lowercase hex
};
// Accepts exactly "00-<32 hex>-<16 hex>-<2 hex>" (55 chars), lowercase hex
// only, non-zero ids. The views point into `s`.
std::optional<traceparent> parse_traceparent(std::string_view s) noexcept;
// A fresh "00-<trace>-<parent>-01" with random non-zero ids.
std::string new_traceparent();
// Keeps a valid incoming traceparent / correlation id and replaces missing or
// invalid ones (fresh trace; UUID v7 correlation id). trace_id is the 32-hex
// part of the resulting traceparent.
trace_context make_trace_context(std::string_view incoming_traceparent,
                                 std::string_view incoming_correlation_id);

// ---- timestamps -------------------------------------------------------------------

// RFC 3339 UTC with milliseconds: "2026-11-22T16:00:00.123Z" (24 chars).
std::string format_timestamp(std::chrono::system_clock::time_point tp);
std::string now_timestamp();
// Strict check of the form above (digits, separators, field ranges).
bool is_valid_timestamp(std::string_view s) noexcept;

}  // namespace esflow::schemas
