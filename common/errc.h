#pragma once
// The rejection codes of docs/contract.md ("Rejection codes"). Every error that
// crosses a process boundary maps to exactly one of these.
#include <cstdint>
#include <string_view>
#include <system_error>

namespace esflow {

enum class errc : std::uint8_t {
  ok = 0,
  invalid_command,
  payload_too_large,
  command_id_reused,
  invalid_tenant,
  tenant_access_denied,
  tenant_not_hosted,
  domain_rejection,  // decide() rejected: the program's own code travels in error::code_text
  version_conflict,
  not_found,
  program_error,
  unavailable,
  invalid_query,  // projection: unparsable filter (message names the column), unknown view, bad cursor
  // Gateway (docs/contract.md "Gateway"): the edge's own rejections.
  unauthenticated,
  forbidden,
  deadline_exceeded,
  internal,
  // Engine-side errors that never reach a client as such.
  invalid_config,
};

// The wire name of a code ("invalid_command", ...). domain_rejection has no
// fixed name: the program supplies it.
std::string_view to_string(errc code) noexcept;
// The code of a wire name (an answer relayed by the gateway): any name that
// is not one of the contract's codes is a program's own code, domain_rejection.
errc errc_from_wire(std::string_view name) noexcept;
// HTTP status of docs/contract.md ("Rejection codes") for a code.
int http_status(errc code) noexcept;
// gRPC status of docs/contract.md ("Rejection codes", gRPC column). The
// values are grpc::StatusCode's (common/ includes no gRPC header; a gRPC
// server casts: grpc::StatusCode(static_cast<int>(grpc_status(code)))).
// Codes that share a status (invalid_query, invalid_tenant, invalid_command,
// payload_too_large: INVALID_ARGUMENT) travel apart in the trailing metadata
// `esflow-code` (to_string of the code, or the program's own code).
enum class grpc_code : std::uint8_t {
  ok = 0,
  cancelled = 1,
  unknown = 2,
  invalid_argument = 3,
  deadline_exceeded = 4,
  not_found = 5,
  already_exists = 6,
  permission_denied = 7,
  resource_exhausted = 8,
  failed_precondition = 9,
  aborted = 10,
  out_of_range = 11,
  unimplemented = 12,
  internal = 13,
  unavailable = 14,
  data_loss = 15,
  unauthenticated = 16,
};
grpc_code grpc_status(errc code) noexcept;
// Only version_conflict and unavailable may be retried by a client.
bool retryable(errc code) noexcept;

const std::error_category& esflow_category() noexcept;
inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), esflow_category()}; }

}  // namespace esflow

template <>
struct std::is_error_code_enum<esflow::errc> : std::true_type {};
