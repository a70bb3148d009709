#include "transport/grpc_server.h"

#include "common/errc.h"
#include "common/log.h"
#include "schemas/ids.h"
#include "schemas/json_encode.h"
#include "transport/grpc_status.h"
#include "transport/http_server.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/resource_quota.h>

namespace esflow::transport {

grpc_server::grpc_server(std::string listen) : _listen(std::move(listen)) {}

grpc_server::~grpc_server() { stop(); }

void grpc_server::add_service(std::shared_ptr<grpc::Service> service) {
  _services.push_back(std::move(service));
}

status grpc_server::start() {
  auto addr = parse_listen_address(_listen);
  if (!addr)
    return error::make(errc::invalid_config, "bad gRPC listen address '" + _listen + "' (want host:port)");
  _host = addr->first;
  grpc::ServerBuilder builder;
  grpc::ResourceQuota quota("esflow-grpc");
  quota.SetMaxThreads(static_cast<int>(max_threads));
  builder.SetResourceQuota(quota);
  builder.AddListeningPort(_listen, grpc::InsecureServerCredentials(), &_port);
  for (const auto& s : _services) builder.RegisterService(s.get());
  _server = builder.BuildAndStart();
  if (!_server || _port <= 0) {
    _server.reset();
    return error::make(errc::unavailable,
                       "cannot serve gRPC on " + _listen + " (address in use or not local)");
  }
  ESFLOW_INFO("grpc", "listening on {} ({} services, at most {} threads)", target(), _services.size(),
              max_threads);
  return {};
}

void grpc_server::stop() {
  if (!_server) return;
  _server->Shutdown(std::chrono::system_clock::now() + shutdown_grace);
  _server->Wait();
  _server.reset();
}

std::string grpc_server::target() const { return _host + ":" + std::to_string(_port); }

}  // namespace esflow::transport

namespace esflow::transport {

std::optional<std::string> grpc_metadata(const grpc::ServerContextBase& ctx, const std::string& key) {
  const auto& md = ctx.client_metadata();
  auto it = md.find(key);
  if (it == md.end()) return std::nullopt;
  return std::string(it->second.data(), it->second.size());
}

void grpc_echo_metadata(grpc::ServerContextBase& ctx, const std::string& tenant) {
  const auto trace = schemas::make_trace_context(grpc_metadata(ctx, "traceparent").value_or(""),
                                                 grpc_metadata(ctx, "x-correlation-id").value_or(""));
  ctx.AddInitialMetadata("x-correlation-id", trace.correlation_id);
  ctx.AddInitialMetadata("traceparent", trace.traceparent);
  ctx.AddInitialMetadata("tenant-id", tenant.empty() ? "_" : tenant);
  if (auto id = grpc_metadata(ctx, "x-request-id")) ctx.AddInitialMetadata("x-request-id", *id);
}

grpc::Status grpc_rejection(grpc::ServerContextBase& ctx, const error& e) {
  const auto r = schemas::make_rejection(e);
  const auto code = grpc_status(e.code);
  ctx.AddTrailingMetadata("esflow-code", r.code);
  if (code == grpc_code::unavailable)
    ctx.AddTrailingMetadata("retry-after", std::to_string(http_server::retry_after_seconds));
  if (!r.node.empty()) ctx.AddTrailingMetadata("esflow-node", r.node);
  return {static_cast<grpc::StatusCode>(static_cast<int>(code)), r.message};
}

}  // namespace esflow::transport
