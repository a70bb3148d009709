#include "stages/runner/runner_grpc_admin.h"

#include "common/errc.h"
#include "common/log.h"
#include "schemas/proto/runner_admin.grpc.pb.h"
#include "stages/runner/runner_admin.h"
#include "transport/grpc_server.h"
#include "transport/grpc_status.h"
#include "transport/node_host.h"

namespace esflow::runner {
namespace {

class runner_admin_service final : public esflow::v1::RunnerAdmin::Service {
 public:
  explicit runner_admin_service(esflow::service_registry& services) : _services(services) {}

  grpc::Status Drain(grpc::ServerContext* ctx, const esflow::v1::DrainRequest*,
                     esflow::v1::DrainResponse* out) override {
    auto host = _services.find<transport::node_host>("");
    if (!host) return reject(*ctx, error::make(errc::internal, "the runner has no node host to drain"));
    const bool already = host->drain_requested();
    if (!already) {
      ESFLOW_INFO("runner", "drain requested over gRPC (RunnerAdmin.Drain, correlation {})",
                  transport::grpc_metadata(*ctx, "x-correlation-id").value_or("-"));
      host->request_drain();
    }
    out->set_draining(true);
    out->set_already_draining(already);
    if (auto st = collect_runner_status(_services); st.ok()) out->set_status_json(st.value().json);
    transport::grpc_echo_metadata(*ctx, {});
    return grpc::Status::OK;
  }

  grpc::Status Status(grpc::ServerContext* ctx, const esflow::v1::StatusRequest*,
                      esflow::v1::StatusResponse* out) override {
    auto st = collect_runner_status(_services);
    if (!st.ok()) return reject(*ctx, st.err());
    const auto& s = st.value();
    out->set_mode(s.mode);
    out->set_ready(s.ready);
    out->set_draining(s.draining);
    out->set_outbox_depth(s.outbox_depth);
    out->set_quarantine_count(s.quarantine_count);
    out->set_status_json(s.json);
    transport::grpc_echo_metadata(*ctx, {});
    return grpc::Status::OK;
  }

  grpc::Status Reload(grpc::ServerContext* ctx, const esflow::v1::ReloadRequest*,
                      esflow::v1::ReloadResponse* out) override {
    auto host = _services.find<transport::node_host>("");
    if (!host) return reject(*ctx, error::make(errc::internal, "the runner has no node host to reload"));
    // The process's reload (POST /admin/reload): saga programs, and whatever
    // else the process runs (aggregate programs, placement).
    const auto r = host->reload();
    if (!r["failed"].empty()) {
      // A refused part keeps what it had; FAILED_PRECONDITION with its own
      // code, as a program's rejection travels (docs/contract.md "Rejection codes").
      auto e = error::make(errc::domain_rejection, "reload refused: " + r["failed"].dump());
      e.code_text = "reload_failed";
      return reject(*ctx, e);
    }
    out->set_reloaded(true);
    out->set_reason(r["reloaded"].dump());
    transport::grpc_echo_metadata(*ctx, {});
    return grpc::Status::OK;
  }

 private:
  static grpc::Status reject(grpc::ServerContext& ctx, const error& e) {
    transport::grpc_echo_metadata(ctx, {});
    return transport::grpc_rejection(ctx, e);
  }

  esflow::service_registry& _services;  // the process's: outlives the gRPC server's calls
};

}  // namespace

status serve_grpc_runner_admin(esflow::service_registry& services) {
  auto grpc = services.find<transport::grpc_server>();
  if (!grpc) return {};
  auto made = services.get_or_create<runner_admin_service>("runner.grpc_admin", [&] {
    auto s = std::make_shared<runner_admin_service>(services);
    grpc->add_service(s);
    return result<std::shared_ptr<runner_admin_service>>(std::move(s));
  });
  if (!made.ok()) return std::move(made).err();
  return {};
}

}  // namespace esflow::runner
