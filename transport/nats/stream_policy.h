#pragma once
// The streams of docs/contract.md ("JetStream streams"): created if missing, validated if
// present, never changed.
//
// Validation of an existing stream (the first difference is the error,
// errc::invalid_config, message naming the field):
//   subjects   every required subject covered by one of the stream's (a
//              superset is fine)
//   duplicates the duplicate window >= the configured one (>= 2 min)
//   storage    equal (file)
//   retention  equal (limits / work queue)
//   allow_direct  set where esflow reads by direct get (AGGREGATE_EVENTS)
// Replicas only apply at creation; a difference is logged, not an error.
//
// NOTE: blocking JetStream API calls: control plane only (node start).
#include "common/result.h"

#include <nats/nats.h>

#include <chrono>
#include <string>
#include <vector>

namespace esflow::nats {

struct stream_spec {
  std::string name;
  std::vector<std::string> subjects;
  jsRetentionPolicy retention = js_LimitsPolicy;
  jsStorageType storage = js_FileStorage;
  std::chrono::milliseconds duplicate_window = std::chrono::minutes(2);
  bool allow_direct = false;
  int replicas = 1;
};

struct streams_config {
  int replicas = 1;  // 1 dev, 3 prod
  std::chrono::milliseconds duplicate_window = std::chrono::minutes(2);
};

stream_spec aggregate_events_spec(const streams_config& c = {});
stream_spec workflow_commands_spec(const streams_config& c = {});
stream_spec workflow_events_spec(const streams_config& c = {});

enum class stream_outcome : std::uint8_t { created, validated };

// Creates the stream if missing, else validates it (see above).
result<stream_outcome> ensure_stream(jsCtx* js, const stream_spec& spec);
// The three streams, in docs/contract.md order; stops at the first error.
status ensure_streams(jsCtx* js, const streams_config& c = {});

}  // namespace esflow::nats
