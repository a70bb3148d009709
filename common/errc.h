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
  internal,
  // Engine-side errors that never reach a client as such.
  invalid_config,
};

// The wire name of a code ("invalid_command", ...). domain_rejection has no
// fixed name: the program supplies it.
std::string_view to_string(errc code) noexcept;
// HTTP status of docs/contract.md ("Rejection codes") for a code.
int http_status(errc code) noexcept;
// Only version_conflict and unavailable may be retried by a client.
bool retryable(errc code) noexcept;

const std::error_category& esflow_category() noexcept;
inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), esflow_category()}; }

}  // namespace esflow

template <>
struct std::is_error_code_enum<esflow::errc> : std::true_type {};
