// route: sends each message to the port named for the value of one body
// field; values not listed (or a missing field) go to `default`.
// Concurrency: any; stateless.
#include "graph/json_field.h"
#include "stages/builtin.h"

#include <algorithm>

namespace esflow::stages {
namespace {

std::vector<std::string> route_ports(const graph::param_values& p) {
  std::vector<std::string> ports;
  for (const auto& [value, port] : p.map("routes"))
    if (std::find(ports.begin(), ports.end(), port) == ports.end()) ports.push_back(port);
  if (std::find(ports.begin(), ports.end(), "default") == ports.end()) ports.push_back("default");
  return ports;
}

class route final : public graph::stage {
 public:
  route(std::string field, const std::map<std::string, std::string>& routes,
        const std::vector<std::string>& ports)
      : _field(std::move(field)) {
    for (const auto& [value, port] : routes)
      _port_of[value] = static_cast<std::size_t>(std::find(ports.begin(), ports.end(), port) - ports.begin());
    _default = static_cast<std::size_t>(std::find(ports.begin(), ports.end(), "default") - ports.begin());
  }

  void process(graph::message_ptr m, const graph::emitter& out) override {
    auto value = graph::json_field(m->body, _field);
    auto it = value ? _port_of.find(*value) : _port_of.end();
    out.emit(std::move(m), it == _port_of.end() ? _default : it->second);
  }

 private:
  std::string _field;
  std::map<std::string, std::size_t> _port_of;
  std::size_t _default = 0;
};

}  // namespace

graph::stage_descriptor route_descriptor() {
  graph::stage_descriptor d;
  d.kind = "route";
  d.description = "sends each message to the port named for a body field's value (else `default`)";
  d.params = {graph::string_param("field", std::nullopt, "dotted path of the body field to route on"),
              graph::map_param("routes", std::nullopt, "field value -> port name")};
  d.ports_from_params = route_ports;
  d.make = [](const graph::stage_init& init) -> result<std::unique_ptr<graph::stage>> {
    const auto& p = init.spec.params;
    return std::unique_ptr<graph::stage>(new route(p.str("field"), p.map("routes"), route_ports(p)));
  };
  return d;
}

}  // namespace esflow::stages
