#include "stages/projection/grpc_query.h"

#include "common/errc.h"
#include "schemas/ids.h"
#include "schemas/proto/query_service.grpc.pb.h"
#include "stages/projection/projection_service.h"
#include "stages/projection/view_query.h"
#include "transport/grpc_server.h"
#include "transport/grpc_status.h"

#include <mutex>
#include <vector>

namespace esflow::projection {
namespace {

class query_service final : public esflow::v1::QueryService::Service {
 public:
  void add(const std::shared_ptr<projection_service>& s) {
    std::lock_guard lock(_mu);
    _services.push_back(s);
  }

  grpc::Status Query(grpc::ServerContext* ctx, const esflow::v1::QueryRequest* in,
                     esflow::v1::QueryResponse* out) override {
    query_request q;
    q.view = in->view();
    auto service = find(q.view);
    if (!service) return reject(*ctx, unknown_view(q.view));
    if (!service->single_tenant()) {
      auto tenant = transport::grpc_metadata(*ctx, "x-tenant-id");
      if (!tenant)
        return reject(
            *ctx, error::make(errc::invalid_tenant, "metadata x-tenant-id is required (multi-tenant node)"));
      q.tenant = std::move(*tenant);
    }
    if (auto t = schemas::validate_tenant(q.tenant, service->single_tenant()); !t.ok())
      return reject(*ctx, t.err());
    // The typed fields as the HTTP parameters' text: one parser for both.
    if (in->has_filter()) q.filter = in->filter();
    if (in->has_limit()) q.limit = std::to_string(in->limit());
    if (in->has_cursor()) q.cursor = in->cursor();
    if (in->has_order_by()) q.order_by = in->order_by();
    if (in->has_min_position()) q.min_position = std::to_string(in->min_position());
    if (in->has_wait_ms()) q.wait_ms = std::to_string(in->wait_ms());
    auto a = run_query(*service, q);
    if (!a.ok()) return reject(*ctx, a.err(), q.tenant);
    transport::grpc_echo_metadata(*ctx, q.tenant);
    for (const auto& r : a.value().rows) {
      auto* row = out->add_rows();
      row->set_key(r.key);
      row->set_version(r.version);
      row->set_row_json(r.row_json);
    }
    if (a.value().next_cursor) out->set_next_cursor(*a.value().next_cursor);
    out->set_position(a.value().position);
    return grpc::Status::OK;
  }

 private:
  static grpc::Status reject(grpc::ServerContext& ctx, const error& e, const std::string& tenant = {}) {
    transport::grpc_echo_metadata(ctx, tenant);
    return transport::grpc_rejection(ctx, e);
  }

  // The same message as the HTTP route's (http_views.cc).
  error unknown_view(const std::string& view) {
    std::string names;
    std::lock_guard lock(_mu);
    for (const auto& w : _services)
      if (auto s = w.lock())
        for (const auto& v : s->views()) names += (names.empty() ? "" : ", ") + v.name;
    return error::make(errc::invalid_query, "unknown view '" + view + "' (this node serves: " +
                                                (names.empty() ? "none" : names) + ")");
  }

  std::shared_ptr<projection_service> find(const std::string& view) {
    std::lock_guard lock(_mu);
    for (const auto& w : _services)
      if (auto s = w.lock(); s && s->find_view(view)) return s;
    return nullptr;
  }

  std::mutex _mu;
  std::vector<std::weak_ptr<projection_service>> _services;
};

}  // namespace

status serve_grpc_query(esflow::service_registry& services,
                        const std::shared_ptr<projection_service>& service) {
  auto grpc = services.find<transport::grpc_server>();
  if (!grpc) return {};
  auto made = services.get_or_create<query_service>("projection.grpc_query", [&] {
    auto s = std::make_shared<query_service>();
    grpc->add_service(s);
    return result<std::shared_ptr<query_service>>(std::move(s));
  });
  if (!made.ok()) return std::move(made).err();
  made.value()->add(service);
  return {};
}

}  // namespace esflow::projection
