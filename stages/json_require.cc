// json.require: passes JSON object bodies that have every listed field; others
// go to the error port as invalid_command naming the first missing field.
// Concurrency: any; stateless.
#include "stages/builtin.h"

#include <simdjson.h>

namespace esflow::stages {
namespace {

class json_require final : public graph::stage {
 public:
  explicit json_require(std::vector<std::string> fields) : _fields(std::move(fields)) {}

  void process(graph::message_ptr m, const graph::emitter& out) override {
    thread_local simdjson::dom::parser parser;
    simdjson::dom::element doc;
    if (parser.parse(m->body).get(doc) || !doc.is_object()) {
      out.fail(std::move(m),
               error::make(errc::invalid_command, "body is not a JSON object", "stage=" + out.stage_name()));
      return;
    }
    for (const auto& f : _fields) {
      if (doc[f].error()) {
        out.fail(std::move(m), error::make(errc::invalid_command, "missing field '" + f + "'",
                                           "stage=" + out.stage_name()));
        return;
      }
    }
    out.emit(std::move(m));
  }

 private:
  std::vector<std::string> _fields;
};

}  // namespace

graph::stage_descriptor json_require_descriptor() {
  graph::stage_descriptor d;
  d.kind = "json.require";
  d.description = "passes JSON objects that have every listed field; others go to `error`";
  d.params = {graph::list_param("fields", std::nullopt, "top-level fields that must be present")};
  d.make = [](const graph::stage_init& init) -> result<std::unique_ptr<graph::stage>> {
    return std::unique_ptr<graph::stage>(new json_require(init.spec.params.list("fields")));
  };
  return d;
}

}  // namespace esflow::stages
