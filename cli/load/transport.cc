#include "cli/load/transport.h"

namespace esflow::load {

result<std::unique_ptr<transport>> open_transport(const transport_options& o) {
  if (o.kind == "http") return open_http_transport(o);
  if (o.kind == "nats") return open_nats_transport(o);
  if (o.kind == "grpc") return open_grpc_transport(o);
  return error::make(errc::invalid_config, "unknown transport '" + o.kind + "' (http, nats or grpc)");
}

}  // namespace esflow::load
