#pragma once
// What a node kind (aggregate, runner, projection, gateway) tells the
// registry about itself, beside the stage kinds: the pipeline-file sections
// it owns, the settings it adds, how its sections are validated, the context
// its ingest messages start with, and the service its stages share.
//
// A pipeline uses a node kind when one of its stages belongs to the kind
// (stage_descriptor::node_kind) or it has one of the kind's sections. The
// loader validates the kind's sections (check_section, with file:line);
// node::build calls make_service once per used kind before any stage is made
// and hands the result to the stages (stage_init::kind_service).
#include "common/result.h"
#include "graph/message.h"
#include "graph/params.h"

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace esflow {
class service_registry;
}

namespace esflow::graph {

struct pipeline_spec;

struct node_kind_init {
  const pipeline_spec& pipeline;
  esflow::service_registry& services;
};

// The lines of a multi-line problem text (a section parser's invalid_config
// message, one "file:line: what" per line), as check_section returns them.
inline std::vector<std::string> problem_lines(const std::string& text) {
  std::vector<std::string> lines;
  for (std::size_t start = 0; start <= text.size();) {
    const auto end = text.find('\n', start);
    lines.push_back(text.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return lines;
}

// Helpers of the kinds' section parsers (check_section), one spelling for all:
// "file:line" of a YAML node (1-based; 0 when unknown) ...
inline std::string yaml_where(const std::string& file, const YAML::Node& n) {
  return file + ":" + std::to_string(n.Mark().line >= 0 ? n.Mark().line + 1 : 0);
}

// ... a path named in a pipeline file, relative to the file's folder ...
inline std::string resolve_section_path(const std::string& path, const std::string& base_dir) {
  std::filesystem::path p(path);
  if (p.is_relative() && !base_dir.empty()) p = std::filesystem::path(base_dir) / p;
  return p.lexically_normal().string();
}

// ... and the problems found, one invalid_config with one line each (ok when none).
inline status section_problems(const std::vector<std::string>& problems) {
  if (problems.empty()) return {};
  std::string all;
  for (const auto& p : problems) all += (all.empty() ? "" : "\n") + p;
  return error::config(all);
}

struct node_kind_descriptor {
  std::string name;         // "aggregate"
  std::string description;  // one line, shown by `esflow kinds`
  // Top-level keys of a pipeline file this kind owns ("aggregates").
  std::vector<std::string> sections;
  // Settings keys the kind adds to `settings:` (validated like stage params).
  std::vector<param_spec> settings;
  // Problems of one of its sections as "file:line: what" lines (empty: fine).
  // `section` is null when a pipeline uses the kind without the section.
  std::function<std::vector<std::string>(const std::string& name, const YAML::Node& section,
                                         const std::string& file, const std::string& base_dir)>
      check_section;
  // The context a message of this kind's pipelines starts with (ingest stages
  // create it; null: the shared ingest context).
  std::function<std::shared_ptr<message_context>()> make_context;
  // The kind's service for a pipeline (shared state of its stages); null when
  // the kind needs none.
  std::function<result<std::shared_ptr<void>>(const node_kind_init&)> make_service;
};

}  // namespace esflow::graph
