#include "stages/projection/grpc_query.h"

#include "common/errc.h"
#include "schemas/ids.h"
#include "schemas/proto/query_service.grpc.pb.h"
#include "stages/projection/projection_service.h"
#include "stages/projection/view_directory.h"
#include "stages/projection/view_query.h"
#include "transport/grpc_server.h"
#include "transport/grpc_status.h"

namespace esflow::projection {
namespace {

class query_service final : public esflow::v1::QueryService::Service {
 public:
  explicit query_service(std::shared_ptr<view_directory> views) : _views(std::move(views)) {}

  grpc::Status Query(grpc::ServerContext* ctx, const esflow::v1::QueryRequest* in,
                     esflow::v1::QueryResponse* out) override {
    query_request q;
    q.view = in->view();
    auto service = _views->find(q.view);
    if (!service) return reject(*ctx, _views->unknown_view(q.view));
    auto tenant =
        request_tenant(*service, transport::grpc_metadata(*ctx, "x-tenant-id"), "metadata x-tenant-id");
    if (!tenant.ok()) return reject(*ctx, tenant.err());
    q.tenant = std::move(tenant).value();
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

  std::shared_ptr<view_directory> _views;
};

}  // namespace

status serve_grpc_query(esflow::service_registry& services) {
  auto grpc = services.find<transport::grpc_server>();
  if (!grpc) return {};
  auto views = view_directory::of(services);
  if (!views.ok()) return std::move(views).err();
  // Registered once; it serves the directory's views, whichever pipeline added them.
  auto made = services.get_or_create<query_service>("projection.grpc_query", [&] {
    auto s = std::make_shared<query_service>(views.value());
    grpc->add_service(s);
    return result<std::shared_ptr<query_service>>(std::move(s));
  });
  if (!made.ok()) return std::move(made).err();
  return {};
}

}  // namespace esflow::projection
