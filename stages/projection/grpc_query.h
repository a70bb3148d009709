#pragma once
// gRPC QueryService.Query (schemas/proto/query_service.proto) on the node's
// gRPC server: the same request, answer and errors as GET /v1/query/<view>
// (http_views.h), both through run_query (view_query.h). Tenant from the
// metadata x-tenant-id; errors as transport/grpc_status.h makes them.
// The service is registered once per process (the first projection service
// while the gRPC server exists, i.e. some pipeline set `grpc`); later
// services join the views it looks in. Calls run on the gRPC server's bounded
// threads; a call waits at most wait_ms (<= 5 s) for min_position.
#include "common/result.h"
#include "common/service_registry.h"

#include <memory>

namespace esflow::projection {

class projection_service;

status serve_grpc_query(esflow::service_registry& services,
                        const std::shared_ptr<projection_service>& service);

}  // namespace esflow::projection
