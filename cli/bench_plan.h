#pragma once
// How `esflow bench` turns a loaded pipeline into a finite, measurable run,
// in memory (the file is never rewritten): a node's command ingest (HTTP,
// NATS) becomes a source.workload, --messages sets every source.generator's
// count, and sources that pace themselves are named so the figures are not
// mistaken for the pipeline's.
#include "common/result.h"
#include "graph/kind_registry.h"
#include "graph/pipeline_spec.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace esflow::cli {

// The workload a replaced ingest sends (unset: source.workload's defaults).
struct workload_choice {
  std::string file;  // JSONL; absolute or relative to the working directory
  std::optional<std::int64_t> commands, accounts, tenants, seed;
};

// The ingest kinds bench replaces: every source that admits commands from a client.
bool is_command_ingest(const std::string& kind);

// Replaces the pipeline's command ingest stages: the first sends the
// workload, any other (a second transport) sends nothing. Returns the
// replaced stages' names (empty: the pipeline had none).
result<std::vector<std::string>> replace_ingest(graph::pipeline_spec& spec,
                                                const graph::kind_registry& registry,
                                                const workload_choice& workload);

// One line per source that is bound by its own pace (source.generator with a
// rate): what the run measures then is the rate, not the pipeline.
std::vector<std::string> rate_limit_notes(const graph::pipeline_spec& spec);

}  // namespace esflow::cli
