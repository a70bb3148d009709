#pragma once
// The runner node's operations (docs/runner.md "Reads and operations"):
// its metrics (runner_metrics.h), its /info section `runner` and the admin
// routes on the node's HTTP server:
//   GET  /admin/quarantine[?limit=N&after=ID]  quarantined inputs of the node's store (any node kind's)
//   GET  /admin/quarantine/<id>                one record
//   POST /admin/quarantine/<id>/retry          a runner saga record: markers + record deleted in one
//                                              write, its inputs handed to saga.follow again
//   POST /admin/sagas/<saga>/replay            {"tenant_id","from","confirm"}: a tenant's trigger
//                                              events after `from` run through the saga again
// An id is base64url (no padding) of the record's quarantine key (source, position).
//
// Control plane only: the routes run on the HTTP server's threads, read the
// local store, write through it synchronously and hand inputs to the saga
// path through runner_service's retry queue (drained by saga.follow).
#include "common/result.h"
#include "common/service_registry.h"
#include "graph/node_kind_descriptor.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace esflow::runner {

class runner_service;

// Metrics, /info and routes for the pipeline's service (once per process for the routes).
status attach_runner_operations(const graph::node_kind_init& init,
                                const std::shared_ptr<runner_service>& service);

// The facts RunnerAdmin.Status answers (docs/runner.md "RunnerAdmin"), of every runner
// pipeline of the process: the same as /info's `runner` section and GET /admin/outbox,
// plus the quarantine count and the node's ready/draining.
struct runner_status {
  std::string mode;  // saga | effect | combined ("combined" when pipelines' modes differ)
  bool ready = false;
  std::string ready_detail;
  bool draining = false;
  std::uint64_t outbox_depth = 0;      // per data directory, summed (never twice for one store)
  std::uint64_t quarantine_count = 0;  // records in the quarantine family, at most k_max_quarantine_count
  bool quarantine_truncated = false;
  std::string json;  // the status_json object
};
inline constexpr std::uint64_t k_max_quarantine_count = 100'000;
// not_found when the process runs no runner pipeline.
result<runner_status> collect_runner_status(esflow::service_registry& services);

std::string quarantine_id(std::string_view source, std::uint64_t position);
// nullopt: not an id (not base64url, or not a quarantine key).
std::optional<std::pair<std::string, std::uint64_t>> parse_quarantine_id(std::string_view id);

}  // namespace esflow::runner
