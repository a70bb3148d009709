// noop: passes every message on unchanged (benchmarks, placeholders).
// Concurrency: any; stateless.
#include "stages/builtin.h"

namespace esflow::stages {
namespace {
class noop final : public graph::stage {
 public:
  void process(graph::message_ptr m, const graph::emitter& out) override { out.emit(std::move(m)); }
};
}  // namespace

graph::stage_descriptor noop_descriptor() {
  graph::stage_descriptor d;
  d.kind = "noop";
  d.description = "passes every message on unchanged";
  d.make = [](const graph::stage_init&) -> result<std::unique_ptr<graph::stage>> {
    return std::unique_ptr<graph::stage>(new noop());
  };
  return d;
}

}  // namespace esflow::stages
