// sink.error_log: logs each error with its context (pipeline, failing stage,
// code, message, key, sequence, the start of the body) and answers the
// message's caller, if any.
// Concurrency: any; logging is thread-safe.
#include "common/log.h"
#include "graph/pipeline_spec.h"
#include "stages/builtin.h"

namespace esflow::stages {
namespace {

class sink_error_log final : public graph::stage {
 public:
  sink_error_log(std::string pipeline, std::size_t body_bytes)
      : _pipeline(std::move(pipeline)), _body_bytes(body_bytes) {}

  void process(graph::message_ptr m, const graph::emitter&) override {
    const auto what = m->error ? m->error->to_string() : std::string("no error attached");
    ESFLOW_WARN("stages", "pipeline '{}' stage '{}': {} [key={} seq={}] body: {}", _pipeline, m->error_stage,
                what, m->key, m->seq, m->body.substr(0, _body_bytes));
    if (m->reply) m->reply->complete(*m);
  }

 private:
  std::string _pipeline;
  std::size_t _body_bytes;
};

}  // namespace

graph::stage_descriptor sink_error_log_descriptor() {
  graph::stage_descriptor d;
  d.kind = "sink.error_log";
  d.description = "logs each error with its context and answers its caller";
  d.role = graph::stage_role::sink;
  d.params = {graph::int_param("body_bytes", 256, "how much of the body to log", 0, 1 << 20)};
  d.make = [](const graph::stage_init& init) -> result<std::unique_ptr<graph::stage>> {
    return std::unique_ptr<graph::stage>(new sink_error_log(
        init.pipeline.name, static_cast<std::size_t>(init.spec.params.integer("body_bytes"))));
  };
  return d;
}

}  // namespace esflow::stages
