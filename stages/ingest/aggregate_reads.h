#pragma once
// What the HTTP reads need from an aggregate node: the folded state and the
// stored events of one aggregate, keyed by (tenant, type, id).
//
// NOTE: thread-safe; called from HTTP handler threads. An aggregate with no
// events (also one only another tenant has) is version 0 / an empty list, never
// an error: the caller turns it into not_found so both cases answer alike.
#include "common/result.h"
#include "graph/services.h"
#include "schemas/envelopes.h"

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace esflow::stages {

struct aggregate_state_view {
  schemas::version_t version = 0;
  std::string state_json = "{}";
};

class aggregate_reads {
 public:
  virtual ~aggregate_reads() = default;
  // unknown aggregate type: invalid_command.
  virtual result<aggregate_state_view> state(std::string_view tenant, std::string_view type,
                                             std::string_view id) = 0;
  virtual result<std::vector<schemas::event>> events(std::string_view tenant, std::string_view type,
                                                     std::string_view id, schemas::version_t after,
                                                     std::size_t limit) = 0;
  virtual result<schemas::version_t> version(std::string_view tenant, std::string_view type,
                                             std::string_view id) = 0;
};

// The node's reads: an aggregate_reads put in the services (tests), else an
// adapter over the aggregate stages' service; null when the node has neither.
std::shared_ptr<aggregate_reads> find_aggregate_reads(graph::service_registry& services);

}  // namespace esflow::stages
