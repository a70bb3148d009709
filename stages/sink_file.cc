// sink.file: appends each message body as one line.
// Concurrency: any; writes are serialised by a mutex so lines never interleave.
// drain() flushes.
#include "graph/pipeline_spec.h"
#include "stages/builtin.h"
#include "stages/paths.h"

#include <fstream>
#include <mutex>

namespace esflow::stages {
namespace {

class sink_file final : public graph::stage {
 public:
  explicit sink_file(std::ofstream out) : _out(std::move(out)) {}

  void process(graph::message_ptr m, const graph::emitter&) override {
    std::lock_guard lock(_mu);
    _out << m->body << '\n';
  }
  void drain() override {
    std::lock_guard lock(_mu);
    _out.flush();
  }

 private:
  std::mutex _mu;
  std::ofstream _out;
};

}  // namespace

graph::stage_descriptor sink_file_descriptor() {
  graph::stage_descriptor d;
  d.kind = "sink.file";
  d.description = "writes each message body as one line of a file";
  d.role = graph::stage_role::sink;
  d.default_concurrency = graph::concurrency::serial();
  d.params = {graph::string_param("path", std::nullopt, "file to write, relative to the pipeline file"),
              graph::bool_param("append", false, "append instead of truncating"),
              graph::bool_param("in_data_dir", false,
                                "a relative path is relative to settings.data_dir (created if missing)")};
  d.make = [](const graph::stage_init& init) -> result<std::unique_ptr<graph::stage>> {
    auto path = resolve_path(init.pipeline, init.spec.params.str("path"));
    if (init.spec.params.boolean("in_data_dir") &&
        !std::filesystem::path(init.spec.params.str("path")).is_absolute()) {
      const std::filesystem::path dir(init.pipeline.settings.str("data_dir"));
      std::error_code ec;
      std::filesystem::create_directories(dir, ec);
      path = (dir / init.spec.params.str("path")).lexically_normal().string();
    }
    std::ofstream out(path, init.spec.params.boolean("append") ? std::ios::app : std::ios::trunc);
    if (!out) return error::make(errc::invalid_config, "cannot write '" + path + "'");
    return std::unique_ptr<graph::stage>(new sink_file(std::move(out)));
  };
  return d;
}

}  // namespace esflow::stages
