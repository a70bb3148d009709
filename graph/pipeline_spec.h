#pragma once
// A pipeline file after parsing and validation: nothing is built from a file
// that has not become a complete, checked pipeline_spec.
#include "graph/concurrency.h"
#include "graph/message.h"
#include "graph/params.h"

#include <yaml-cpp/yaml.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace esflow::graph {

struct stage_descriptor;
struct node_kind_descriptor;

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
  param_values settings;  // validated against kind_registry::settings()
  std::vector<stage_spec> stages;
  std::vector<edge_spec> edges;
  // Sections owned by a node kind (e.g. `aggregates:`), validated by it at load.
  std::map<std::string, YAML::Node> sections;
  // The node kinds the pipeline uses (its stages' kinds and its sections'
  // owners), in registry order; empty for a pipeline of shared stages only.
  std::vector<const node_kind_descriptor*> node_kinds;
  // The context new ingest messages get (the first used kind's, else the
  // registry's default); set by the loader.
  std::function<std::shared_ptr<message_context>()> make_context;
  std::string base_dir;  // directory of the top-level file: relative paths resolve from here

  const stage_spec* find_stage(const std::string& name) const;
  std::size_t index_of(const std::string& name) const;  // npos when absent
};

}  // namespace esflow::graph
