#pragma once
// What the HTTP reads need from an aggregate node: the folded state and the
// stored events of one aggregate, keyed by (tenant, type, id).
//
// NOTE: thread-safe; called from HTTP handler threads. An aggregate with no
// events (also one only another tenant has) is not_found with a message that
// names only what the caller gave, so both cases answer alike.
#include "common/result.h"
#include "graph/services.h"
#include "schemas/envelopes.h"

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace esflow::stages {

struct aggregate_state_view {
  schemas::version_t version = 0;
  std::string state_json = "{}";
};

struct aggregate_event_page {
  std::vector<schemas::event> events;
  std::optional<schemas::version_t> next_after;  // set when more may follow
};

class aggregate_reads {
 public:
  virtual ~aggregate_reads() = default;
  // unknown aggregate type: invalid_command; no events: not_found.
  virtual result<aggregate_state_view> state(const std::string& tenant, const std::string& type,
                                             const std::string& id) = 0;
  // Events with version > after, at most limit (1..1000); no events at all: not_found.
  virtual result<aggregate_event_page> events(const std::string& tenant, const std::string& type,
                                              const std::string& id, schemas::version_t after,
                                              std::size_t limit) = 0;
};

// The reads of the node whose pipeline has data directory `data_dir`: an
// aggregate_reads put in the services (tests), else an adapter over the
// aggregate stages' aggregate_service; null when the node has neither.
std::shared_ptr<aggregate_reads> find_aggregate_reads(graph::service_registry& services,
                                                      const std::string& data_dir);

}  // namespace esflow::stages
