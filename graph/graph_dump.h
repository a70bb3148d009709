#pragma once
// Renders a pipeline as DOT, Mermaid or JSON. With a running node the JSON
// carries live per-stage figures (GET /admin/graph); without, they are zero.
// The JSON shape is documented in docs/graph-json.md and docs/contract.md
// ("HTTP endpoints of every node").
#include "graph/node.h"
#include "graph/pipeline_spec.h"

#include <nlohmann/json.hpp>

#include <string>

namespace esflow::graph {

nlohmann::json graph_json(const pipeline_spec& spec, const node* live = nullptr);
std::string graph_dot(const pipeline_spec& spec, const node* live = nullptr);
std::string graph_mermaid(const pipeline_spec& spec);

nlohmann::json stats_json(const stage_stats& stats);

}  // namespace esflow::graph
