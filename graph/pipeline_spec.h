#pragma once
// A pipeline file after parsing and validation: nothing is built from a file
// that has not become a complete, checked pipeline_spec.
#include "graph/concurrency.h"
#include "graph/params.h"

#include <yaml-cpp/yaml.h>

#include <map>
#include <string>
#include <vector>

namespace esflow::graph {

struct stage_descriptor;

struct file_position {
  std::string file;
  int line = 0;  // 1-based
  std::string to_string() const { return file + ":" + std::to_string(line); }
};

struct stage_spec {
  std::string name;
  std::string kind;
  const stage_descriptor* descriptor = nullptr;
  concurrency conc;
  std::string key;  // "": not keyed; "message": message.key; else a JSON field path of the body
  std::int64_t max_in_flight = 0;  // async stages: started-not-finished bound (0 = the pipeline's)
  param_values params;
  std::vector<std::string> ports;  // output ports, `error` last for non-sources
  file_position at;
};

struct edge_spec {
  std::string from;
  std::string port;
  std::string to;
  file_position at;
};

struct pipeline_spec {
  std::string name;
  std::string file;       // the top-level file
  param_values settings;  // validated against pipeline_settings_schema()
  std::vector<stage_spec> stages;
  std::vector<edge_spec> edges;
  // Sections owned by a node kind (e.g. `aggregates:`), kept for its stages to validate.
  std::map<std::string, YAML::Node> sections;
  std::string base_dir;  // directory of the top-level file: relative paths resolve from here

  const stage_spec* find_stage(const std::string& name) const;
  std::size_t index_of(const std::string& name) const;  // npos when absent
};

}  // namespace esflow::graph
