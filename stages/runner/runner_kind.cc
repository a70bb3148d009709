// The runner node kind: aggregate events -> sagas -> outbox -> commands and
// effects; timers as reminders (docs/contract.md "Runner node"). Owns the
// `sagas:` section (validated at load time with file:line); its messages
// start as a runner_context; its service is the pipeline's runner_service,
// which also serves GET /admin/outbox and GET /v1/sagas/<saga>/<correlation id>
// on the node's HTTP server, and RunnerAdmin on its gRPC server (runner_grpc_admin.h).
#include "common/errc.h"
#include "common/service_registry.h"
#include "graph/pipeline_spec.h"
#include "schemas/ids.h"
#include "stages/nats/tenant_router.h"
#include "stages/runner/runner_admin.h"
#include "stages/runner/runner_grpc_admin.h"
#include "stages/runner/runner_service.h"
#include "stages/runner/stages.h"
#include "transport/http_server.h"

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <stdexcept>

namespace esflow::runner {
namespace {

// `extra`: more fields of the body (a 421's owner address).
void reply_error(httplib::Response& res, const error& e,
                 const nlohmann::json& extra = nlohmann::json::object()) {
  res.status = http_status(e.code);
  nlohmann::json body = {{"status", "rejected"},
                         {"code", e.code_text.empty() ? std::string(to_string(e.code)) : e.code_text},
                         {"message", e.message},
                         {"retryable", e.code == errc::unavailable}};
  if (!e.node.empty()) body["node"] = e.node;
  body.update(extra);
  res.set_content(body.dump(), "application/json");
}

// One set of routes per process, serving every runner pipeline's sagas.
class runner_directory {
 public:
  void add(const std::shared_ptr<runner_service>& s) {
    std::lock_guard lock(_mu);
    _services.push_back(s);
  }
  std::vector<std::shared_ptr<runner_service>> all() {
    std::lock_guard lock(_mu);
    std::vector<std::shared_ptr<runner_service>> out;
    for (const auto& w : _services)
      if (auto s = w.lock()) out.push_back(std::move(s));
    return out;
  }
  bool claim_routes() {
    std::lock_guard lock(_mu);
    return !std::exchange(_routes, true);
  }

 private:
  std::mutex _mu;
  std::vector<std::weak_ptr<runner_service>> _services;
  bool _routes = false;
};

void handle_saga(esflow::service_registry& services, runner_directory& dir, const httplib::Request& req,
                 httplib::Response& res) {
  const std::string saga = req.matches[1];
  const std::string correlation_id = req.matches[2];
  for (const auto& s : dir.all()) {
    if (s->find_saga(saga) == nullptr) continue;
    std::string tenant;
    if (!s->single_tenant()) {
      if (!req.has_header("x-tenant-id"))
        return reply_error(
            res, error::make(errc::invalid_tenant, "header x-tenant-id is required (multi-tenant node)"));
      tenant = req.get_header_value("x-tenant-id");
    }
    if (auto t = schemas::validate_tenant(tenant, s->single_tenant()); !t.ok())
      return reply_error(res, t.err());
    auto found = s->instance_json(tenant, saga, correlation_id);
    if (!found.ok()) return reply_error(res, found.err());
    // Saga replicas (docs/runner.md "Saga replicas"): the instance lives on the tenant's owner.
    const auto router = found.value() ? nullptr : stages::tenant_router::find(services, s->pipeline());
    if (const auto owner = router ? router->other_owner(tenant) : std::nullopt) {
      auto e = error::make(errc::tenant_not_hosted,
                           "tenant '" + tenant + "' is hosted by runner '" + *owner + "', not by this node");
      e.node = *owner;
      // With the owner's address, so the gateway can ask it.
      return reply_error(res, e, {{"http", router->http_of(*owner)}});
    }
    if (!found.value())
      return reply_error(res, error::make(errc::not_found, "no instance '" + correlation_id + "' of saga '" +
                                                               saga + "' for this tenant"));
    res.status = 200;
    res.set_content(*found.value(), "application/json");
    return;
  }
  reply_error(res, error::make(errc::not_found, "no saga '" + saga + "' on this node"));
}

status serve_runner_routes(esflow::service_registry& services,
                           const std::shared_ptr<runner_service>& service) {
  auto dir = services.get_or_create<runner_directory>("runner.directory", [] {
    return result<std::shared_ptr<runner_directory>>(std::make_shared<runner_directory>());
  });
  if (!dir.ok()) return std::move(dir).err();
  dir.value()->add(service);
  auto http = services.find<transport::http_server>();
  if (!http || !dir.value()->claim_routes()) return {};
  std::weak_ptr<runner_directory> weak = dir.value();
  auto& server = http->routes();
  // The registry owns the HTTP server, so it outlives these routes.
  server.Get(R"(/v1/sagas/([^/]+)/([^/]+))",
             [weak, &services](const httplib::Request& req, httplib::Response& res) {
               if (auto d = weak.lock()) handle_saga(services, *d, req, res);
             });
  server.Get("/admin/outbox", [weak](const httplib::Request&, httplib::Response& res) {
    auto out = nlohmann::json::array();
    if (auto d = weak.lock())
      for (const auto& s : d->all()) {
        auto j = s->outbox_json();
        if (!j.ok()) return reply_error(res, j.err());
        out.push_back(nlohmann::json::parse(j.value()));
      }
    res.status = 200;
    res.set_content(out.dump(), "application/json");
  });
  return {};
}

}  // namespace

result<std::shared_ptr<runner_service>> stage_service(const graph::stage_init& init) {
  auto service = init.service_as<runner_service>();
  if (!service) return error::make(errc::internal, "the runner node kind made no service");
  return service;
}

result<std::shared_ptr<runner_service>> keyed_stage_service(const graph::stage_init& init) {
  if (init.spec.key == "message") return stage_service(init);
  return error::config(
      init.spec.at.to_string() + ": stage '" + init.spec.name + "' (" + init.spec.kind +
      ") needs 'key: message' (saga.follow keys messages by saga instance; every stage up to "
      "saga.commit must keep one instance's inputs in order, and only keyed lanes do)");
}

void end_async(const graph::emitter& out, graph::message* raw, status st) {
  graph::run_guarded(out, graph::message_ptr(raw), [&](graph::message_ptr& msg) {
    if (st.ok())
      out.emit(std::move(msg));
    else
      out.fail(std::move(msg), std::move(st).err());
    out.finish();
  });
}

void publish_and_end(graph::message_ptr m, const graph::emitter& out, storage::workflow_stream& stream,
                     storage::publish_request req, bool runner_context::*wrote_with) {
  auto* raw = m.release();  // owned by the completion, which runs exactly once
  stream.publish(std::move(req), [raw, out, wrote_with](result<storage::publish_ack> ack) {
    if (wrote_with != nullptr && ack.ok() && ack->wrote_with) context_of(*raw).*wrote_with = true;
    end_async(out, raw, ack.ok() ? status{} : status(std::move(ack).err()));
  });
}

graph::node_kind_descriptor runner_kind_descriptor() {
  graph::node_kind_descriptor d;
  d.name = "runner";
  d.description =
      "sagas, a durable outbox relay, effects and timers: long-lived workflows over the event log";
  d.sections = {"sagas", "effects"};
  d.check_section = [](const std::string& name, const YAML::Node& section, const std::string& file,
                       const std::string& base_dir) {
    if (name == "effects") {
      auto parsed = parse_effects(section, file, base_dir);
      return parsed.ok() ? std::vector<std::string>() : graph::problem_lines(parsed.err().message);
    }
    runtime::program_cache programs;
    auto parsed = parse_sagas(section, file, base_dir, programs);
    if (parsed.ok()) return std::vector<std::string>();
    return graph::problem_lines(parsed.err().message);
  };
  d.make_context = [] { return std::make_shared<runner_context>(); };
  d.make_service = [](const graph::node_kind_init& init) -> result<std::shared_ptr<void>> {
    auto service = runner_service::for_pipeline(init);
    if (!service.ok()) return std::move(service).err();
    if (auto st = serve_runner_routes(init.services, service.value()); !st.ok()) return std::move(st).err();
    if (auto st = attach_runner_operations(init, service.value()); !st.ok()) return std::move(st).err();
    if (auto st = serve_grpc_runner_admin(init.services); !st.ok()) return std::move(st).err();
    return std::shared_ptr<void>(std::move(service).value());
  };
  return d;
}

}  // namespace esflow::runner

namespace esflow::stages {

void register_runner_stages(graph::kind_registry& registry) {
  using namespace esflow::runner;
  for (auto make : {saga_follow_descriptor, saga_decode_descriptor, saga_dedupe_descriptor,
                    saga_load_descriptor, saga_run_descriptor, saga_commit_descriptor, outbox_scan_descriptor,
                    outbox_dispatch_descriptor, outbox_confirm_descriptor, schedule_scan_descriptor,
                    schedule_publish_descriptor, schedule_delete_descriptor, effect_follow_descriptor,
                    effect_decode_descriptor, effect_gate_descriptor, effect_execute_descriptor,
                    effect_publish_descriptor, effect_done_descriptor}) {
    auto added = registry.add(make());
    if (!added.ok()) throw std::logic_error(added.err().to_string());
  }
  if (auto added = registry.add(runner_kind_descriptor()); !added.ok())
    throw std::logic_error(added.err().to_string());
}

}  // namespace esflow::stages
