#pragma once
// The ONLY place NATS subjects are built (docs/contract.md "NATS subjects").
//
// Token rule: a token made only of [A-Za-z0-9_-] (every id docs/contract.md
// allows) is used as is, so contract-valid ids give exactly the contract's
// subjects. Any other token (an id that bypassed validation: empty, with
// '.', '*', '>', whitespace, ':' or non-ASCII bytes) is written `~` followed
// by the lowercase hex of its bytes: `~` is outside the id alphabet, so the
// mapping is injective and no wildcard, separator or whitespace can ever
// reach a subject from input. The empty tenant (single-tenant mode) is `_`;
// the (invalid) tenant "_" itself is escaped, so the two never meet.
//
// validate_token() is the strict check for callers that must reject instead
// of escaping (subjects received from NATS, configuration).
// NOTE: every function here is pure and thread-safe.
#include "common/result.h"

#include <optional>
#include <string>
#include <string_view>

namespace esflow::nats {

// The subject token of a tenant ("" -> "_").
std::string tenant_token(std::string_view tenant);
// The subject token of any other id (type, id, effect, saga).
std::string id_token(std::string_view id);
// Inverse of tenant_token / id_token; nullopt for a malformed token.
std::optional<std::string> decode_tenant_token(std::string_view token);
std::optional<std::string> decode_id_token(std::string_view token);

// errc::invalid_command naming `field` unless `token` is non-empty and free of
// '.', '*', '>', whitespace and control bytes.
status validate_token(std::string_view token, std::string_view field);

// tenant.<tenant>.aggregate.<type>.<id>  (stream AGGREGATE_EVENTS)
std::string aggregate_subject(std::string_view tenant, std::string_view type, std::string_view id);
// tenant.<tenant>.command.<type>.<id>  (core request/reply)
std::string command_subject(std::string_view tenant, std::string_view type, std::string_view id);
// tenant.<tenant>.effect.<effect>  (stream WORKFLOW_COMMANDS)
std::string effect_subject(std::string_view tenant, std::string_view effect);
// tenant.<tenant>.effect_result.<effect>  (stream WORKFLOW_EVENTS)
std::string effect_result_subject(std::string_view tenant, std::string_view effect);
// tenant.<tenant>.reminder.<saga>  (stream WORKFLOW_EVENTS)
std::string reminder_subject(std::string_view tenant, std::string_view saga);
// tenant.<tenant>.command_result.<saga>  (stream WORKFLOW_EVENTS)
std::string command_result_subject(std::string_view tenant, std::string_view saga);
// tenant.<tenant>.view.<view>.<key>  (core NATS: a read-model row changed)
std::string view_subject(std::string_view tenant, std::string_view view, std::string_view key);

// Stream filters (wildcards: the only subjects built without input).
inline constexpr std::string_view aggregate_filter = "tenant.*.aggregate.>";
inline constexpr std::string_view command_filter = "tenant.*.command.>";
inline constexpr std::string_view effect_filter = "tenant.*.effect.>";
inline constexpr std::string_view effect_result_filter = "tenant.*.effect_result.>";
inline constexpr std::string_view reminder_filter = "tenant.*.reminder.>";
inline constexpr std::string_view command_result_filter = "tenant.*.command_result.>";

// A parsed tenant.<t>.aggregate.<type>.<id> subject (tokens decoded).
struct aggregate_address {
  std::string tenant, type, id;
};
std::optional<aggregate_address> parse_aggregate_subject(std::string_view subject);

// True when the subject `pattern` (with `*` / `>` wildcards) matches every
// subject that `subject` (possibly itself a wildcard) matches.
bool subject_covers(std::string_view pattern, std::string_view subject);

}  // namespace esflow::nats
