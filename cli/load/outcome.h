#pragma once
// What one command's answer was, in the same words for every transport.
//
// rejected: a contract rejection (docs/contract.md section 5: any 4xx, and
// version_conflict): nothing was stored. error: everything after which the
// command may or may not be stored (contract 10.6): 5xx codes (unavailable,
// deadline_exceeded, internal, program_error) and the client's own failures
// (timeout, connection lost). Verification treats an error as unknown.
#include <cstdint>
#include <string>
#include <string_view>

namespace esflow::load {

enum class outcome : std::uint8_t { none, accepted, duplicate, rejected, error };

struct answer {
  outcome kind = outcome::none;  // none: not sent
  std::string code;              // rejected / error: the rejection code or the client's failure
};

// The outcome of a non-accepted answer carrying `code`.
outcome outcome_of_code(std::string_view code);
// Accepted/duplicate from a CommandResult JSON body, or its code's outcome;
// `fallback_code` when the body is not a CommandResult.
answer answer_of_json(std::string_view body, const std::string& fallback_code);

std::string_view to_string(outcome o);

}  // namespace esflow::load
