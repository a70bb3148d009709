// The aggregate node kind: commands -> events. Owns the `aggregates:` section
// (type -> { program, snapshot_every, gas, memory }), validated at load time
// with file:line — a missing program file or a Lua syntax error stops
// `esflow validate`, not the first command. Its messages start as an
// aggregate_context; its service is the directory's aggregate_service.
#include "runtime/program.h"
#include "stages/aggregate/aggregate_service.h"
#include "stages/aggregate/stages.h"
#include "stages/node_placement.h"

namespace esflow::aggregate {

graph::node_kind_descriptor aggregate_kind_descriptor() {
  graph::node_kind_descriptor d;
  d.name = "aggregate";
  d.description = "commands -> events: decide/apply programs per aggregate type, optimistic commits";
  d.sections = {"aggregates"};
  d.check_section = [](const std::string&, const YAML::Node& section, const std::string& file,
                       const std::string& base_dir) {
    runtime::program_cache programs;  // compiles each program once to find its errors
    auto parsed = parse_aggregates(section, file, base_dir, programs);
    if (parsed.ok()) return std::vector<std::string>();
    return graph::problem_lines(parsed.err().message);
  };
  d.make_context = [] { return std::make_shared<aggregate_context>(); };
  d.make_service = [](const graph::node_kind_init& init) -> result<std::shared_ptr<void>> {
    auto service = aggregate_service::for_pipeline(init);
    if (!service.ok()) return std::move(service).err();
    // Placement (when the pipeline names a node id) before any ingest admits a command.
    if (auto placed = stages::node_placement::of(init.pipeline, init.services); !placed.ok())
      return std::move(placed).err();
    return std::shared_ptr<void>(std::move(service).value());
  };
  return d;
}

}  // namespace esflow::aggregate
