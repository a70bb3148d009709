// source.file: one message per non-empty line of an NDJSON file.
// Concurrency: run() on the source thread; reads sequentially, in file order.
#include "graph/pipeline_spec.h"
#include "stages/builtin.h"
#include "stages/paths.h"

#include <fstream>

namespace esflow::stages {
namespace {

class source_file final : public graph::stage {
 public:
  explicit source_file(std::string path) : _path(std::move(path)) {}

  void run(graph::source_output& out) override {
    std::ifstream in(_path);
    std::string line;
    while (!out.stopping() && std::getline(in, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty()) continue;
      auto m = graph::make_message();
      m->body = std::move(line);
      if (!out.put(std::move(m))) return;
      line = std::string();
    }
  }

 private:
  std::string _path;
};

}  // namespace

graph::stage_descriptor source_file_descriptor() {
  graph::stage_descriptor d;
  d.kind = "source.file";
  d.description = "reads an NDJSON file: one message per non-empty line";
  d.role = graph::stage_role::source;
  d.default_concurrency = graph::concurrency::serial();  // one thread reads the input in order
  d.params = {graph::string_param("path", std::nullopt, "file to read, relative to the pipeline file")};
  d.make = [](const graph::stage_init& init) -> result<std::unique_ptr<graph::stage>> {
    auto path = resolve_path(init.pipeline, init.spec.params.str("path"));
    std::ifstream probe(path);
    if (!probe) return error::make(errc::invalid_config, "cannot read '" + path + "'");
    return std::unique_ptr<graph::stage>(new source_file(path));
  };
  return d;
}

}  // namespace esflow::stages
