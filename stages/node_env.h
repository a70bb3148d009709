#pragma once
// What every node kind's pipeline shares in a process, owned by no kind:
// the data directory's node store and its event log, made from the
// pipeline's node settings (declared here once), kept in the process's
// service_registry so that every pipeline on one directory — aggregate,
// runner, projection, a follower — gets the same store and the same log.
//
// Control plane only (node build): opening may block (RocksDB, a NATS
// connect). The host puts the event_log_factory (the backends this binary
// links) and the node_host into the registry before building nodes.
//
// NOTE: one directory has one durability and one event log: a pipeline that
//       asks another gets invalid_config naming both.
#include "common/result.h"
#include "common/service_registry.h"
#include "graph/params.h"
#include "graph/pipeline_spec.h"
#include "storage/event_log.h"
#include "storage/node_store.h"
#include "storage/workflow_stream.h"

#include <memory>
#include <vector>

namespace esflow::stages {

// data_dir, durability, event_log, nats_url, dedupe_ttl, stream_replicas,
// tenancy, metrics_tenant_cap: the `settings:` keys every node kind reads.
const std::vector<graph::param_spec>& node_settings_schema();

// The pipeline's data directory, absolute and normalised: the key of its
// store, its log and the services node kinds register per directory.
std::string data_dir_of(const graph::pipeline_spec& pipeline);

result<std::shared_ptr<storage::node_store>> node_store_for(const graph::pipeline_spec& pipeline,
                                                            esflow::service_registry& services);
result<std::shared_ptr<storage::event_log>> event_log_for(const graph::pipeline_spec& pipeline,
                                                          esflow::service_registry& services);
// The process's workflow stream `stream_name` (WORKFLOW_COMMANDS or
// WORKFLOW_EVENTS) for the pipeline's data directory and `event_log`
// backend: embedded -> the directory's node store (`streams` family);
// jetstream -> the JetStream stream through the same NATS link per URL as
// the event log. One object per (directory, backend, stream), shared by
// every pipeline that asks. invalid_config for an unknown stream name.
result<std::shared_ptr<storage::workflow_stream>> workflow_stream_for(const graph::pipeline_spec& pipeline,
                                                                      esflow::service_registry& services,
                                                                      const std::string& stream_name);

}  // namespace esflow::stages
