#pragma once
// What the HTTP reads need from an aggregate node: the folded state and the
// stored events of one aggregate, keyed by (tenant, type, id).
//
// NOTE: thread-safe; called from HTTP handler threads. An aggregate with no
// events (also one only another tenant has) is not_found with a message that
// names only what the caller gave, so both cases answer alike.
#include "common/result.h"
#include "common/service_registry.h"
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

// The body of GET /v1/aggregates/<type>/<id> (events false) or .../events
// (docs/contract.md): the same bounds and messages wherever it is served (the
// node's HTTP routes, the gateway's in-process upstream). `after` and `limit`
// are the raw query parameters (absent: 0 and 100; limit clamped to 1000).
result<std::string> read_aggregate_json(aggregate_reads& reads, const std::string& tenant,
                                        const std::string& type, const std::string& id, bool events,
                                        const std::optional<std::string>& after,
                                        const std::optional<std::string>& limit);

// The name under which a node kind serving aggregate reads on a data
// directory (data_dir_of) registers them in the services.
std::string aggregate_reads_key(const std::string& data_dir);

// The reads of the node whose pipeline has data directory `data_dir`: an
// aggregate_reads put in the services unnamed (tests), else the one a node
// kind registered for the directory; null when there is none.
std::shared_ptr<aggregate_reads> find_aggregate_reads(esflow::service_registry& services,
                                                      const std::string& data_dir);

}  // namespace esflow::stages
