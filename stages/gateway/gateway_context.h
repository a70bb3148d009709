#pragma once
// The gateway's per-message context (stages/README.md "The context chain"):
// one HTTP request at the edge, filled stage by stage —
//   gateway.http   the request as received (route, captures, headers, body)
//   gateway.auth   the key's grants, the tenant, the trace
//   gateway.route  the upstream call (subject and body, or the query, or the
//                  proxied path) and its deadline
//   gateway.call   the upstream's answer (status and body)
// and read by gateway.answer, which hands it to the request's reply handle.
//
// NOTE: one stage owns a message at a time; no field needs a lock.
#include "graph/message.h"
#include "schemas/envelopes.h"
#include "stages/gateway/api_keys.h"

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace esflow::gateway {

// runner_admin: /admin/runner/{drain,status,reload} (the call in `runner_call`).
enum class route_kind : std::uint8_t { command, query, aggregate, aggregate_events, saga, runner_admin };
std::string_view to_string(route_kind r) noexcept;

class gateway_context final : public graph::message_context {
 public:
  using clock = std::chrono::steady_clock;
  std::string_view context_name() const noexcept override { return "gateway"; }
  log_fields log_ids() const noexcept override {
    log_fields f;
    f.tenant_id = tenant;
    f.correlation_id = trace.correlation_id;
    f.trace_id = trace.trace_id;
    return f;
  }

  // ---- gateway.http
  route_kind route = route_kind::command;
  std::vector<std::string> captures;               // the path's parts: view; type, id; saga, correlation id
  std::string runner_call;                         // runner_admin: Drain | Status | Reload
  std::multimap<std::string, std::string> params;  // the query string, decoded
  std::string authorization;
  bool tenant_given = false;
  std::string header_tenant;  // raw x-tenant-id
  std::string request_id, incoming_traceparent, incoming_correlation_id, idempotency_key;
  std::optional<std::string> request_timeout;  // raw x-request-timeout
  clock::time_point received{};

  // ---- gateway.auth
  std::shared_ptr<const key_grants> grants;
  std::string tenant;  // validated
  bool tenant_valid = false;
  schemas::trace_context trace;
  std::optional<std::string> body_tenant;  // commands: the body's tenant_id

  // ---- gateway.route
  clock::time_point deadline{};
  std::chrono::milliseconds timeout{0};
  std::string subject;     // commands
  std::string command_id;  // commands: "" -> never retried
  std::string upstream;    // host:port of a query or a proxied read
  std::string path;        // a proxied read's path and query string

  // ---- gateway.call
  int status = 0;  // the answer's HTTP status (200 when accepted)
  std::string answer;
  int attempts = 0;
};

}  // namespace esflow::gateway
