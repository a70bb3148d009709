#include "graph/pipeline_settings.h"

namespace esflow::graph {

const std::vector<param_spec>& engine_settings_schema() {
  static const std::vector<param_spec> schema = {
      int_param("max_in_flight", 4096, "messages alive in the pipeline at once (backpressure bound)", 1,
                1 << 24),
      duration_param("drain_timeout", 10000, "how long a drain waits for in-flight messages"),
      string_param("http", "127.0.0.1:8080", "HTTP listen address of the node (admin, metrics, ingest)"),
      string_param("grpc", "",
                   "gRPC listen address of the node (aggregate: CommandService, projection: QueryService); "
                   "empty: no gRPC server"),
      string_param("node_id", "",
                   "this node's id in tenant placement (--node-id, ESFLOW_NODE_ID; [A-Za-z0-9_-]{1,64}); "
                   "empty: placement off, the node serves every tenant"),
      string_param("advertise_http", "",
                   "host:port other nodes and the gateway dial for this node's HTTP (its placement "
                   "registration); empty: the `http` address"),
      string_param("advertise_grpc", "",
                   "host:port others dial for this node's gRPC (its placement registration); empty: `grpc`"),
  };
  return schema;
}

}  // namespace esflow::graph
