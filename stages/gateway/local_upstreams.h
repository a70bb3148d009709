#pragma once
// The gateway's in-process upstreams (docs/gateway.md "Dev mode"): when the
// gateway pipeline has no `nats_url` (`esflow dev`, the embedded log), it
// calls the nodes of its own process instead of NATS, gRPC and HTTP:
//
//   commands         the aggregate pipeline's local.commands port of the data
//                    directory (stages/local_commands.h): the same pipeline
//                    as HTTP and NATS ingest, so the same CommandResult
//   aggregate reads  the aggregate node's aggregate_reads of the directory
//   queries          the process's projection views (view_directory), when
//                    `query_upstream` is empty
//
// The answers are the bodies the nodes' own HTTP routes give
// (docs/contract.md), so a client cannot tell the two paths apart.
//
// The interface lives here, header-only, and the implementation
// (local_upstreams.cc) in esflow_stages, which has the aggregate and
// projection parts: esflow_gateway must not link esflow_stages (which links
// it), so stages/stage_list.cc hands the factory to register_gateway_stages.
//
// NOTE: thread-safe. command() never blocks (local_command_port::submit is
//       async); its callback runs once, on a TBB worker or the log's thread,
//       or on the caller's for a refusal. aggregate() and query() block
//       (RocksDB reads; a query may wait for min_position): the gateway calls
//       them on its HTTP pool, never on a TBB worker. Nodes are looked up on
//       every call, so the order in which the process builds them does not matter.
#include "common/result.h"
#include "common/service_registry.h"

#include <functional>
#include <map>
#include <memory>
#include <string>

namespace esflow::graph {
struct pipeline_spec;
}

namespace esflow::gateway {

class local_upstreams {
 public:
  using params = std::multimap<std::string, std::string>;  // the request's query string, decoded
  struct read_answer {
    int status = 200;
    std::string body;
  };

  virtual ~local_upstreams() = default;

  // A Command envelope for the tenant ("" single-tenant). ok: the
  // CommandResult JSON the aggregate answered; an error: its rejection
  // (unavailable when no aggregate pipeline of the process takes commands).
  virtual void command(const std::string& tenant, std::string body, const std::string& correlation_id,
                       const std::string& traceparent, std::function<void(result<std::string>)> done) = 0;

  // GET /v1/aggregates/<type>/<id>[/events]: the aggregate node's answer, or
  // its rejection (unavailable when no aggregate node serves the directory).
  virtual result<read_answer> aggregate(const std::string& tenant, const std::string& type,
                                        const std::string& id, bool events, const params& query) = 0;

  // True when a projection pipeline of this process serves views now.
  virtual bool has_views() = 0;
  // GET /v1/query/<view>: the projection's answer, or its rejection.
  virtual result<read_answer> query(const std::string& tenant, const std::string& view,
                                    const params& query) = 0;
};

// Made once per gateway pipeline (its service) when it has no nats_url.
using local_upstreams_factory = std::function<std::shared_ptr<local_upstreams>(
    esflow::service_registry& services, const graph::pipeline_spec& pipeline)>;

}  // namespace esflow::gateway
