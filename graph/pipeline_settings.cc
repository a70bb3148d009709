#include "graph/pipeline_settings.h"

namespace esflow::graph {

const std::vector<param_spec>& engine_settings_schema() {
  static const std::vector<param_spec> schema = {
      int_param("max_in_flight", 4096, "messages alive in the pipeline at once (backpressure bound)", 1,
                1 << 24),
      duration_param("drain_timeout", 10000, "how long a drain waits for in-flight messages"),
      string_param("http", "127.0.0.1:8080", "HTTP listen address of the node (admin, metrics, ingest)"),
      string_param("grpc", "",
                   "gRPC listen address of the node (projection: QueryService); empty: no gRPC server"),
  };
  return schema;
}

}  // namespace esflow::graph
