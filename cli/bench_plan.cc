#include "cli/bench_plan.h"

#include <filesystem>

namespace esflow::cli {

bool is_command_ingest(const std::string& kind) {
  return kind == "http.commands" || kind == "nats.request" || kind == "jetstream.consumer" ||
         kind == "local.commands" || kind == "grpc.commands";
}

result<std::vector<std::string>> replace_ingest(graph::pipeline_spec& spec,
                                                const graph::kind_registry& registry,
                                                const workload_choice& workload) {
  auto found = registry.find("source.workload");
  if (!found.ok()) return std::move(found).err();
  const auto* d = found.value();
  std::vector<std::string> replaced;
  for (auto& s : spec.stages) {
    if (!is_command_ingest(s.kind)) continue;
    graph::param_values params;
    for (const auto& p : d->params)
      if (p.default_value) params.set(p.name, *p.default_value);
    if (replaced.empty()) {
      // The file is the user's, named from where they stand, not from the pipeline's folder.
      if (!workload.file.empty()) params.set("file", std::filesystem::absolute(workload.file).string());
      if (workload.commands) params.set("commands", *workload.commands);
      if (workload.accounts) params.set("accounts", *workload.accounts);
      if (workload.tenants) params.set("tenants", *workload.tenants);
      if (workload.seed) params.set("seed", *workload.seed);
    } else {
      params.set("commands", std::int64_t{0});  // one workload, whatever the number of transports
      params.set("accounts", std::int64_t{0});
    }
    // Same name, position and edges: the stages after the ingest run unchanged.
    s.kind = d->kind;
    s.descriptor = d;
    s.conc = d->default_concurrency;
    s.params = std::move(params);
    replaced.push_back(s.name);
  }
  return replaced;
}

std::vector<std::string> rate_limit_notes(const graph::pipeline_spec& spec) {
  std::vector<std::string> notes;
  for (const auto& s : spec.stages)
    if (s.kind == "source.generator" && s.params.integer("rate") > 0)
      notes.push_back("source '" + s.name + "' is rate-limited to " +
                      std::to_string(s.params.integer("rate")) +
                      " msgs/s: figures below measure the limit, not the pipeline");
  return notes;
}

}  // namespace esflow::cli
