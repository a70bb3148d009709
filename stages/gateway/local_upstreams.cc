// The gateway's in-process upstreams (stages/gateway/local_upstreams.h,
// docs/gateway.md "Dev mode"). Compiled into esflow_stages: it uses the
// aggregate node's reads, the local command port and the projection's views.
#include "stages/gateway/local_upstreams.h"

#include "graph/pipeline_spec.h"
#include "stages/ingest/aggregate_reads.h"
#include "stages/local_commands.h"
#include "stages/node_env.h"
#include "stages/projection/view_directory.h"
#include "stages/projection/view_query.h"

#include <optional>

namespace esflow::stages {
namespace {

std::optional<std::string> param(const gateway::local_upstreams::params& q, const char* name) {
  const auto it = q.find(name);
  if (it == q.end()) return std::nullopt;
  return it->second;
}

class process_upstreams final : public gateway::local_upstreams {
 public:
  process_upstreams(esflow::service_registry& services, std::string data_dir)
      : _services(services), _data_dir(std::move(data_dir)) {}

  void command(const std::string& tenant, std::string body, const std::string& correlation_id,
               const std::string& traceparent, std::function<void(result<std::string>)> done) override {
    auto port = local_command_port_for(_services, _data_dir);
    if (!port)
      return done(error::make(errc::unavailable, "no aggregate pipeline of this process takes commands"));
    port->submit({tenant, std::move(body), correlation_id, traceparent},
                 [done = std::move(done)](result<std::string> r) { done(std::move(r)); });
  }

  // The same bodies, bounds and messages as the aggregate node's read routes.
  result<read_answer> aggregate(const std::string& tenant, const std::string& type, const std::string& id,
                                bool events, const params& query) override {
    auto reads = find_aggregate_reads(_services, _data_dir);
    if (!reads)
      return error::make(errc::unavailable, "no aggregate node of this process serves " + _data_dir);
    auto body =
        read_aggregate_json(*reads, tenant, type, id, events, param(query, "after"), param(query, "limit"));
    if (!body.ok()) return std::move(body).err();
    return read_answer{200, std::move(body).value()};
  }

  bool has_views() override {
    auto dir = projection::view_directory::of(_services);
    return dir.ok() && !dir.value()->all().empty();
  }

  // As the projection's GET /v1/query/<view> (stages/projection/http_views.cc).
  result<read_answer> query(const std::string& tenant, const std::string& view,
                            const params& query) override {
    auto dir = projection::view_directory::of(_services);
    if (!dir.ok()) return std::move(dir).err();
    auto service = dir.value()->find(view);
    if (!service) return dir.value()->unknown_view(view);
    projection::query_request q;
    q.view = view;
    auto t = projection::request_tenant(*service, tenant.empty() ? std::nullopt : std::optional(tenant),
                                        "header x-tenant-id");
    if (!t.ok()) return std::move(t).err();
    q.tenant = std::move(t).value();
    q.filter = param(query, "filter");
    q.limit = param(query, "limit");
    q.cursor = param(query, "cursor");
    q.order_by = param(query, "order_by");
    q.min_position = param(query, "min_position");
    q.wait_ms = param(query, "wait_ms");
    auto a = projection::run_query(*service, q);
    if (!a.ok()) return std::move(a).err();
    return read_answer{200, projection::answer_json(a.value())};
  }

 private:
  esflow::service_registry& _services;  // the process's: outlives every node
  std::string _data_dir;
};

}  // namespace

std::shared_ptr<gateway::local_upstreams> make_local_upstreams(esflow::service_registry& services,
                                                               const graph::pipeline_spec& pipeline) {
  return std::make_shared<process_upstreams>(services, data_dir_of(pipeline));
}

}  // namespace esflow::stages
