#include "common/errc.h"

#include <string>

namespace esflow {

std::string_view to_string(errc code) noexcept {
  switch (code) {
    case errc::ok:
      return "ok";
    case errc::invalid_command:
      return "invalid_command";
    case errc::payload_too_large:
      return "payload_too_large";
    case errc::command_id_reused:
      return "command_id_reused";
    case errc::invalid_tenant:
      return "invalid_tenant";
    case errc::tenant_access_denied:
      return "tenant_access_denied";
    case errc::tenant_not_hosted:
      return "tenant_not_hosted";
    case errc::domain_rejection:
      return "domain_rejection";
    case errc::version_conflict:
      return "version_conflict";
    case errc::not_found:
      return "not_found";
    case errc::program_error:
      return "program_error";
    case errc::unavailable:
      return "unavailable";
    case errc::invalid_query:
      return "invalid_query";
    case errc::unauthenticated:
      return "unauthenticated";
    case errc::forbidden:
      return "forbidden";
    case errc::deadline_exceeded:
      return "deadline_exceeded";
    case errc::internal:
      return "internal";
    case errc::invalid_config:
      return "invalid_config";
  }
  return "internal";
}

errc errc_from_wire(std::string_view name) noexcept {
  for (auto c = static_cast<int>(errc::invalid_command); c < static_cast<int>(errc::invalid_config); ++c) {
    auto code = static_cast<errc>(c);
    if (code != errc::domain_rejection && to_string(code) == name) return code;
  }
  return errc::domain_rejection;
}

int http_status(errc code) noexcept {
  switch (code) {
    case errc::ok:
      return 200;
    case errc::invalid_command:
      return 400;
    case errc::payload_too_large:
      return 413;
    case errc::command_id_reused:
      return 409;
    case errc::invalid_tenant:
      return 400;
    case errc::tenant_access_denied:
      return 403;
    case errc::tenant_not_hosted:
      return 421;
    case errc::domain_rejection:
      return 422;
    case errc::version_conflict:
      return 409;
    case errc::not_found:
      return 404;
    case errc::program_error:
      return 500;
    case errc::unavailable:
      return 503;
    case errc::invalid_query:
      return 400;
    case errc::unauthenticated:
      return 401;
    case errc::forbidden:
      return 403;
    case errc::deadline_exceeded:
      return 504;
    case errc::internal:
      return 500;
    case errc::invalid_config:
      return 500;
  }
  return 500;
}

grpc_code grpc_status(errc code) noexcept {
  switch (code) {
    case errc::ok:
      return grpc_code::ok;
    case errc::invalid_command:
    case errc::payload_too_large:
    case errc::invalid_tenant:
    case errc::invalid_query:
      return grpc_code::invalid_argument;
    case errc::command_id_reused:
      return grpc_code::already_exists;
    case errc::tenant_access_denied:
      return grpc_code::permission_denied;
    case errc::tenant_not_hosted:
    case errc::domain_rejection:
      return grpc_code::failed_precondition;
    case errc::version_conflict:
      return grpc_code::aborted;
    case errc::not_found:
      return grpc_code::not_found;
    case errc::program_error:
    case errc::internal:
    case errc::invalid_config:
      return grpc_code::internal;
    case errc::unavailable:
      return grpc_code::unavailable;
    case errc::unauthenticated:
      return grpc_code::unauthenticated;
    case errc::forbidden:
      return grpc_code::permission_denied;
    case errc::deadline_exceeded:
      return grpc_code::deadline_exceeded;
  }
  return grpc_code::internal;
}

bool retryable(errc code) noexcept { return code == errc::version_conflict || code == errc::unavailable; }

namespace {
class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "esflow"; }
  std::string message(int ev) const override { return std::string(to_string(static_cast<errc>(ev))); }
};
}  // namespace

const std::error_category& esflow_category() noexcept {
  static const category instance;
  return instance;
}

}  // namespace esflow
