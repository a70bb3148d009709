#pragma once
// Builders of append requests shared by the storage tests.
#include "storage/event_log.h"

#include <string>

namespace esflow::storage::testing {

// A request for `count` events whose payloads are derived from `tag`.
inline append_request make_request(std::string tenant, std::string type, std::string id,
                                   std::string command_id, version_t expected, std::size_t count,
                                   const std::string& tag = "x") {
  append_request r;
  r.tenant_id = std::move(tenant);
  r.aggregate_type = std::move(type);
  r.aggregate_id = std::move(id);
  r.command_id = std::move(command_id);
  r.expected_version = expected;
  std::string all_payloads;
  for (std::size_t i = 0; i < count; ++i) {
    schemas::event e;
    e.event_id = r.command_id + "-e" + std::to_string(i);
    e.event_type = "noted";
    e.payload_json = R"({"type":"noted","tag":")" + tag + R"(","i":)" + std::to_string(i) + "}";
    e.correlation_id = "corr-" + r.command_id;
    e.trace_id = "0af7651916cd43dd8448eb211c80319c";
    e.timestamp = "2026-11-22T16:00:00.123Z";
    all_payloads += e.payload_json;
    r.events.push_back(std::move(e));
  }
  r.request_hash = request_hash(r.aggregate_type, r.aggregate_id, all_payloads);
  return r;
}

}  // namespace esflow::storage::testing
