#pragma once
// What a stage kind tells the registry about itself: the single source of its
// name, description, parameters, ports and factory.
#include "common/result.h"
#include "graph/concurrency.h"
#include "graph/params.h"
#include "graph/stage.h"

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace esflow::graph {

struct pipeline_spec;
struct stage_spec;
class service_registry;

enum class stage_role { source, transform, sink };
std::string_view to_string(stage_role r) noexcept;

struct stage_init {
  const stage_spec& spec;
  const pipeline_spec& pipeline;
  service_registry& services;
};

struct stage_descriptor {
  std::string kind;         // "decode.command"
  std::string description;  // one line, shown by `esflow stages`
  stage_role role = stage_role::transform;
  std::vector<param_spec> params;
  // Output ports besides `error` (which every non-source stage has). Stages
  // whose ports depend on their parameters (route) compute them instead.
  std::vector<std::string> output_ports = {"out"};
  std::function<std::vector<std::string>(const param_values&)> ports_from_params;
  // Completes messages from its own threads via emitter::finish().
  bool async = false;
  concurrency default_concurrency = concurrency::unlimited();
  std::function<result<std::unique_ptr<stage>>(const stage_init&)> make;
};

}  // namespace esflow::graph
