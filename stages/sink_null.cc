// sink.null: drops every message (benchmarks, and ends of flows nobody reads).
// Concurrency: any; stateless.
#include "stages/builtin.h"

namespace esflow::stages {
namespace {
class sink_null final : public graph::stage {
 public:
  void process(graph::message_ptr, const graph::emitter&) override {}
};
}  // namespace

graph::stage_descriptor sink_null_descriptor() {
  graph::stage_descriptor d;
  d.kind = "sink.null";
  d.description = "drops every message";
  d.role = graph::stage_role::sink;
  d.make = [](const graph::stage_init&) -> result<std::unique_ptr<graph::stage>> {
    return std::unique_ptr<graph::stage>(new sink_null());
  };
  return d;
}

}  // namespace esflow::stages
