#pragma once
// gRPC RunnerAdmin.{Drain,Status,Reload} (schemas/proto/runner_admin.proto,
// docs/runner.md "RunnerAdmin") on the node's gRPC server:
//   Drain   the process drain (node_host::request_drain, as POST /admin/drain):
//           sources stop taking inputs, in-flight messages finish and the relay
//           hands on what it holds while the run loop drains the nodes; answered
//           once requested, with the status after it. A runner pipeline shares
//           its process, HTTP server and stores with every other node of it, so
//           there is no finer runner-only drain to offer.
//   Status  collect_runner_status (runner_admin.h): /info's runner section,
//           GET /admin/outbox, the quarantine count, ready/draining.
//   Reload  the process's reload (node_host::reload, POST /admin/reload):
//           the saga programs (runner_service::reload_programs: all swap or
//           none), and the process's other parts (aggregate programs,
//           placement). A refused part: FAILED_PRECONDITION, esflow-code
//           reload_failed, naming it; it keeps what it had.
// Registered once per process, when it has a gRPC server (some pipeline set
// `grpc`) and a runner pipeline; serves every runner pipeline of the process.
// Calls run on the gRPC server's bounded threads and read the local store.
#include "common/result.h"
#include "common/service_registry.h"

namespace esflow::runner {

status serve_grpc_runner_admin(esflow::service_registry& services);

}  // namespace esflow::runner
