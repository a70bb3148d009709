#pragma once
// The process's projection views by name, shared by every transport that
// serves them (HTTP routes in http_views.cc, gRPC QueryService in
// grpc_query.cc): one lookup, one "unknown view" message, one tenant rule.
//
// NOTE: thread-safe. Services are held weakly: a stopped pipeline's views
//       disappear from the directory with it.
#include "common/result.h"
#include "common/service_registry.h"

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace esflow::projection {

class projection_service;

class view_directory {
 public:
  // The process's directory (made on first use).
  static result<std::shared_ptr<view_directory>> of(esflow::service_registry& services);

  // Refuses a view name another projection pipeline of this process serves.
  status add(const std::shared_ptr<projection_service>& s);
  std::shared_ptr<projection_service> find(const std::string& view);
  std::vector<std::shared_ptr<projection_service>> all();
  // `invalid_query` naming the view and what this node serves.
  error unknown_view(const std::string& view);
  // True exactly once: for the caller that installs the HTTP routes.
  bool claim_http_routes();

 private:
  std::shared_ptr<projection_service> find_locked(const std::string& view);
  std::mutex _mu;
  std::vector<std::weak_ptr<projection_service>> _services;
  bool _http_routes = false;
};

// The tenant a request reads as: `given` (the x-tenant-id header or
// metadata, named by `source`) on a multi-tenant node, where it is required;
// empty on a single-tenant one; validated either way.
result<std::string> request_tenant(const projection_service& service, std::optional<std::string> given,
                                   const std::string& source);

}  // namespace esflow::projection
