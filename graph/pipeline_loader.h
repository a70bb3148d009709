#pragma once
// Pipeline files (YAML) -> validated pipeline_spec. Every problem found is
// reported, one per line, as `file:line: <what> (did you mean '...'?)`.
//
// Format (docs/pipeline-files.md):
//   pipeline: <name>
//   include: [fragment.yaml, ...]     # merged first; this file's settings win
//   settings: { key: value, ... }     # kind_registry::settings()
//   <section>: ...                    # a node kind's (e.g. aggregates:), checked by the kind
//   stages:
//     <name>: { kind: <kind>, concurrency: serial|N|unlimited, key: <field>|message,
//               max_in_flight: N, <param>: <value>, ... }
//   flow:
//     - a -> b -> c                   # a.out -> b, b.out -> c
//     - b.error -> errors             # a named port
//     - "*.error -> errors"           # every stage's unconnected error port
// Scalars may use ${VAR} and ${VAR:-default}.
#include "common/result.h"
#include "graph/kind_registry.h"
#include "graph/pipeline_spec.h"

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace esflow::graph {

struct load_options {
  // Environment lookup; tests substitute their own.
  std::function<std::optional<std::string>(const std::string&)> getenv;
};

result<pipeline_spec> load_pipeline_file(const std::string& path, const kind_registry& registry,
                                         const load_options& options = {});
// `display_name` stands for the file in error messages; includes resolve from `base_dir`.
result<pipeline_spec> load_pipeline_text(std::string_view yaml, const std::string& display_name,
                                         const std::string& base_dir, const kind_registry& registry,
                                         const load_options& options = {});

// ${VAR} / ${VAR:-default} substitution of one scalar; nullopt + `problem` when malformed or unset.
std::optional<std::string> substitute_env(std::string_view text, const load_options& options,
                                          std::string& problem);

}  // namespace esflow::graph
