#include "cli/load/outcome.h"

#include <nlohmann/json.hpp>

#include <array>

namespace esflow::load {

outcome outcome_of_code(std::string_view code) {
  // The contract's codes after which a commit may have happened (or whose
  // answer says nothing about the command): the rest are rejections.
  static constexpr std::array<std::string_view, 4> k_server_errors = {"unavailable", "deadline_exceeded",
                                                                      "internal", "program_error"};
  for (const auto c : k_server_errors)
    if (code == c) return outcome::error;
  // The client's own failures are prefixed (client_*), never a contract code.
  if (code.empty() || code.starts_with("client_")) return outcome::error;
  return outcome::rejected;
}

answer answer_of_json(std::string_view body, const std::string& fallback_code) {
  const auto j = nlohmann::json::parse(body, nullptr, false);
  if (!j.is_object()) return {outcome::error, fallback_code};
  const auto status = j.value("status", std::string());
  if (status == "accepted") return {j.value("duplicate", false) ? outcome::duplicate : outcome::accepted, {}};
  auto code = j.value("code", std::string());
  if (status != "rejected" || code.empty()) return {outcome::error, fallback_code};
  const auto kind = fallback_code.starts_with("http_5") ? outcome::error : outcome_of_code(code);
  return {kind, std::move(code)};
}

std::string_view to_string(outcome o) {
  switch (o) {
    case outcome::accepted:
      return "accepted";
    case outcome::duplicate:
      return "duplicate";
    case outcome::rejected:
      return "rejected";
    case outcome::error:
      return "error";
    case outcome::none:
      break;
  }
  return "none";
}

}  // namespace esflow::load
