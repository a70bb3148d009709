#pragma once
// gRPC QueryService.Query (schemas/proto/query_service.proto) on the node's
// gRPC server: the same request, answer and errors as GET /v1/query/<view>
// (http_views.h), both through run_query (view_query.h). Tenant from the
// metadata x-tenant-id; errors as transport/grpc_status.h makes them.
// The service is registered once per process (while the gRPC server exists,
// i.e. some pipeline set `grpc`) and serves the process's view directory
// (view_directory.h), the one the HTTP routes read. Calls run on the gRPC server's bounded
// threads; a call waits at most wait_ms (<= 5 s) for min_position.
#include "common/result.h"
#include "common/service_registry.h"

#include <memory>

namespace esflow::projection {

status serve_grpc_query(esflow::service_registry& services);

}  // namespace esflow::projection
