#include "stages/projection/view_directory.h"

#include "common/errc.h"
#include "schemas/ids.h"
#include "stages/projection/projection_service.h"

#include <utility>

namespace esflow::projection {

result<std::shared_ptr<view_directory>> view_directory::of(esflow::service_registry& services) {
  return services.get_or_create<view_directory>("projection.views", [] {
    return result<std::shared_ptr<view_directory>>(std::make_shared<view_directory>());
  });
}

status view_directory::add(const std::shared_ptr<projection_service>& s) {
  std::lock_guard lock(_mu);
  for (const auto& v : s->views())
    if (find_locked(v.name))
      return error::make(errc::invalid_config,
                         "view '" + v.name + "' of pipeline '" + s->pipeline() +
                             "' is already served by another projection pipeline of this process");
  _services.push_back(s);
  return {};
}

std::shared_ptr<projection_service> view_directory::find(const std::string& view) {
  std::lock_guard lock(_mu);
  return find_locked(view);
}

std::vector<std::shared_ptr<projection_service>> view_directory::all() {
  std::lock_guard lock(_mu);
  std::vector<std::shared_ptr<projection_service>> out;
  for (const auto& w : _services)
    if (auto s = w.lock()) out.push_back(std::move(s));
  return out;
}

error view_directory::unknown_view(const std::string& view) {
  std::string names;
  for (const auto& s : all())
    for (const auto& v : s->views()) names += (names.empty() ? "" : ", ") + v.name;
  return error::make(errc::invalid_query, "unknown view '" + view + "' (this node serves: " +
                                              (names.empty() ? "none" : names) + ")");
}

bool view_directory::claim_http_routes() {
  std::lock_guard lock(_mu);
  return !std::exchange(_http_routes, true);
}

std::shared_ptr<projection_service> view_directory::find_locked(const std::string& view) {
  for (const auto& w : _services)
    if (auto s = w.lock(); s && s->find_view(view)) return s;
  return nullptr;
}

result<std::string> request_tenant(const projection_service& service, std::optional<std::string> given,
                                   const std::string& source) {
  std::string tenant;
  if (!service.single_tenant()) {
    if (!given) return error::make(errc::invalid_tenant, source + " is required (multi-tenant node)");
    tenant = std::move(*given);
  }
  if (auto t = schemas::validate_tenant(tenant, service.single_tenant()); !t.ok()) return t.err();
  return tenant;
}

}  // namespace esflow::projection
