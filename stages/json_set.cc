// json.set: sets one top-level field of a JSON object body. A body that is not
// a JSON object goes to the error port as invalid_command.
// Concurrency: any; stateless.
#include "stages/builtin.h"

#include <nlohmann/json.hpp>

namespace esflow::stages {
namespace {

class json_set final : public graph::stage {
 public:
  json_set(std::string field, nlohmann::json value) : _field(std::move(field)), _value(std::move(value)) {}

  void process(graph::message_ptr m, const graph::emitter& out) override {
    auto doc = nlohmann::json::parse(m->body, nullptr, /*allow_exceptions=*/false);
    if (!doc.is_object()) {
      out.fail(std::move(m),
               error::make(errc::invalid_command, "body is not a JSON object", "stage=" + out.stage_name()));
      return;
    }
    doc[_field] = _value;
    m->body = doc.dump();
    out.emit(std::move(m));
  }

 private:
  std::string _field;
  nlohmann::json _value;
};

}  // namespace

graph::stage_descriptor json_set_descriptor() {
  graph::stage_descriptor d;
  d.kind = "json.set";
  d.description = "sets a top-level field of a JSON object body";
  d.params = {
      graph::string_param("field", std::nullopt, "field name"),
      graph::string_param("value", std::nullopt, "JSON value (text that is not JSON is set as a string)")};
  d.make = [](const graph::stage_init& init) -> result<std::unique_ptr<graph::stage>> {
    const auto& text = init.spec.params.str("value");
    auto value = nlohmann::json::parse(text, nullptr, false);
    if (value.is_discarded()) value = text;
    return std::unique_ptr<graph::stage>(new json_set(init.spec.params.str("field"), std::move(value)));
  };
  return d;
}

}  // namespace esflow::stages
