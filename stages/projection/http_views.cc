#include "stages/projection/http_views.h"

#include "common/errc.h"
#include "schemas/ids.h"
#include "schemas/json_encode.h"
#include "stages/projection/projection_service.h"
#include "stages/projection/view_directory.h"
#include "stages/projection/view_query.h"
#include "transport/http_server.h"

#include <httplib.h>

#include <optional>

namespace esflow::projection {
namespace {

// The headers every answer carries (docs/contract.md "Headers"): the
// request's trace and correlation when valid, else fresh ones; the tenant
// the answer is scoped to ("_" when none was valid).
void reply(const httplib::Request& req, httplib::Response& res, int status, std::string body,
           const std::string& tenant) {
  const auto trace = schemas::make_trace_context(req.get_header_value("traceparent"),
                                                 req.get_header_value("x-correlation-id"));
  res.status = status;
  res.set_header("x-correlation-id", trace.correlation_id);
  res.set_header("traceparent", trace.traceparent);
  res.set_header("tenant-id", tenant.empty() ? "_" : tenant);
  if (req.has_header("x-request-id")) res.set_header("x-request-id", req.get_header_value("x-request-id"));
  if (status == 503)
    res.set_header("Retry-After", std::to_string(transport::http_server::retry_after_seconds));
  res.set_content(std::move(body), "application/json");
}

void reply_error(const httplib::Request& req, httplib::Response& res, const error& e,
                 const std::string& tenant = {}) {
  reply(req, res, http_status(e.code), schemas::encode_command_result(schemas::make_rejection(e)), tenant);
}

std::optional<std::string> param(const httplib::Request& req, const char* name) {
  if (!req.has_param(name)) return std::nullopt;
  return req.get_param_value(name);
}

// The view's service and the request's tenant, or the error answered.
std::shared_ptr<projection_service> resolve(view_directory& dir, const httplib::Request& req,
                                            httplib::Response& res, const std::string& view,
                                            std::string& tenant) {
  auto service = dir.find(view);
  if (!service) {
    reply_error(req, res, dir.unknown_view(view));
    return nullptr;
  }
  auto t = request_tenant(
      *service,
      req.has_header("x-tenant-id") ? std::optional(req.get_header_value("x-tenant-id")) : std::nullopt,
      "header x-tenant-id");
  if (!t.ok()) {
    reply_error(req, res, t.err());
    return nullptr;
  }
  tenant = std::move(t).value();
  return service;
}

void handle_watch(view_directory& dir, const httplib::Request& req, httplib::Response& res) {
  const std::string view = req.matches[1];
  std::string tenant;
  auto service = resolve(dir, req, res, view, tenant);
  if (!service) return;
  auto st = service->watches().start(service, tenant, view, req.get_param_value("filter"), res);
  if (!st.ok()) return reply_error(req, res, st.err(), tenant);
  const auto trace = schemas::make_trace_context(req.get_header_value("traceparent"),
                                                 req.get_header_value("x-correlation-id"));
  res.status = 200;
  res.set_header("x-correlation-id", trace.correlation_id);
  res.set_header("traceparent", trace.traceparent);
  res.set_header("tenant-id", tenant.empty() ? "_" : tenant);
}

// POST /admin/views/<view>/rebuild {"confirm":true}: 202 with the view's state.
void handle_rebuild(view_directory& dir, const httplib::Request& req, httplib::Response& res) {
  const std::string view = req.matches[1];
  auto service = dir.find(view);
  if (!service) return reply_error(req, res, error::make(errc::invalid_query, "unknown view '" + view + "'"));
  auto body = nlohmann::json::parse(req.body, nullptr, false);
  if (!body.is_object() || body.value("confirm", false) != true)
    return reply_error(req, res,
                       error::make(errc::invalid_command,
                                   "a rebuild re-reads the whole log; send {\"confirm\":true} to start it"));
  auto state = service->start_rebuild(view);
  if (!state.ok()) return reply_error(req, res, state.err());
  reply(req, res, 202, state.value().dump(), {});
}

void handle_query(view_directory& dir, const httplib::Request& req, httplib::Response& res) {
  query_request q;
  q.view = req.matches[1];
  auto service = resolve(dir, req, res, q.view, q.tenant);
  if (!service) return;
  q.filter = param(req, "filter");
  q.limit = param(req, "limit");
  q.cursor = param(req, "cursor");
  q.order_by = param(req, "order_by");
  q.min_position = param(req, "min_position");
  q.wait_ms = param(req, "wait_ms");
  auto a = run_query(*service, q);
  if (!a.ok()) return reply_error(req, res, a.err(), q.tenant);
  reply(req, res, 200, answer_json(a.value()), q.tenant);
}

}  // namespace

status serve_views(esflow::service_registry& services, const std::shared_ptr<projection_service>& service) {
  auto dir = view_directory::of(services);
  if (!dir.ok()) return std::move(dir).err();
  if (auto st = dir.value()->add(service); !st.ok()) return st;
  auto http = services.find<transport::http_server>();
  // The routes serve the whole directory: installed once.
  if (!http || !dir.value()->claim_http_routes()) return {};
  auto& server = http->routes();
  std::weak_ptr<view_directory> weak = dir.value();
  server.Get(R"(/v1/query/([^/]+)/watch)", [weak](const httplib::Request& req, httplib::Response& res) {
    if (auto d = weak.lock()) handle_watch(*d, req, res);
  });
  server.Get(R"(/v1/query/([^/]+))", [weak](const httplib::Request& req, httplib::Response& res) {
    if (auto d = weak.lock()) handle_query(*d, req, res);
  });
  server.Post(R"(/admin/views/([^/]+)/rebuild)", [weak](const httplib::Request& req, httplib::Response& res) {
    if (auto d = weak.lock()) handle_rebuild(*d, req, res);
  });
  server.Get("/admin/views", [weak](const httplib::Request&, httplib::Response& res) {
    auto out = nlohmann::json::array();
    if (auto d = weak.lock())
      for (const auto& s : d->all())
        for (auto& v : s->views_json()) out.push_back(std::move(v));
    res.status = 200;
    res.set_content(out.dump(), "application/json");
  });
  return {};
}

}  // namespace esflow::projection
