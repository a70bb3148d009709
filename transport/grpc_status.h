#pragma once
// What every esflow gRPC service answers besides its message
// (docs/contract.md "Headers", "Rejection codes"):
//   - initial metadata x-correlation-id, traceparent (the call's when valid,
//     else fresh ones), tenant-id ("_" when none) and x-request-id (echoed),
//     as HTTP answers carry them as headers;
//   - a rejection as the gRPC status of grpc_status(errc) (common/errc.h)
//     with the rejection's message, and trailing metadata `esflow-code` (the
//     wire code, as in the HTTP body), for UNAVAILABLE `retry-after`, and
//     for FAILED_PRECONDITION tenant_not_hosted `esflow-node` (the owner).
#include "common/error.h"

#include <grpcpp/server_context.h>
#include <grpcpp/support/status.h>

#include <optional>
#include <string>

namespace esflow::transport {

// The value of a call's metadata key (lowercase), nullopt when absent.
std::optional<std::string> grpc_metadata(const grpc::ServerContextBase& ctx, const std::string& key);
// Adds the answer's initial metadata; call once per call, before returning.
void grpc_echo_metadata(grpc::ServerContextBase& ctx, const std::string& tenant);
// The status of a rejection; adds its trailing metadata.
grpc::Status grpc_rejection(grpc::ServerContextBase& ctx, const error& e);

}  // namespace esflow::transport
