#include "graph/pipeline_settings.h"

namespace esflow::graph {

const std::vector<param_spec>& pipeline_settings_schema() {
  static const std::vector<param_spec> schema = {
      int_param("max_in_flight", 4096, "messages alive in the pipeline at once (backpressure bound)", 1,
                1 << 24),
      duration_param("drain_timeout", 10000, "how long a drain waits for in-flight messages"),
      choice_param("event_log", "embedded", {"embedded", "jetstream"}, "event-log backend"),
      string_param("nats_url", "", "NATS URL (jetstream backend and NATS ingest)"),
      string_param("data_dir", "./data", "RocksDB directory"),
      choice_param("tenancy", "multi", {"multi", "single"}, "tenant mode"),
      choice_param("durability", "fsync", {"fsync", "relaxed"},
                   "fsync: answer after the WAL is fsynced; relaxed: the OS flushes"),
      string_param("http", "127.0.0.1:8080", "HTTP listen address of the node (admin, metrics, ingest)"),
      int_param("metrics_tenant_cap", 100, "distinct tenant_id label values before 'other'", 1, 100000),
      duration_param("dedupe_ttl", 24LL * 3600 * 1000, "how long command ids are remembered"),
  };
  return schema;
}

}  // namespace esflow::graph
