#pragma once
// The projection's HTTP routes on the node's shared server
// (docs/contract.md "Projection node"):
//   GET /v1/query/<view>   tenant from x-tenant-id; view_query.h
//   GET /admin/views       every view of every projection pipeline of the process
// Routes are installed once per process (the first projection service);
// later services join the directory they read (view_directory.h). Handlers run on the HTTP
// server's bounded workers; a query waits at most wait_ms (<= 5 s) for
// min_position and is otherwise bounded by query_limits.
#include "common/result.h"
#include "common/service_registry.h"

#include <memory>

namespace esflow::projection {

class projection_service;

// Adds the service's views to the process's directory (refuses a view name
// another pipeline already serves) and installs the routes when the node has
// an HTTP server.
status serve_views(esflow::service_registry& services, const std::shared_ptr<projection_service>& service);

}  // namespace esflow::projection
