#include "graph/stage_registry.h"

#include "graph/did_you_mean.h"

namespace esflow::graph {

std::string_view to_string(stage_role r) noexcept {
  switch (r) {
    case stage_role::source:
      return "source";
    case stage_role::transform:
      return "transform";
    case stage_role::sink:
      return "sink";
  }
  return "?";
}

status stage_registry::add(stage_descriptor d) {
  if (d.kind.empty() || !d.make)
    return error::make(errc::internal, "stage descriptor without kind or factory");
  if (d.role == stage_role::sink) d.output_ports.clear();
  auto kind = d.kind;
  if (!_kinds.emplace(kind, std::move(d)).second)
    return error::make(errc::internal, "stage kind '" + kind + "' registered twice");
  return {};
}

result<const stage_descriptor*> stage_registry::find(const std::string& kind) const {
  auto it = _kinds.find(kind);
  if (it != _kinds.end()) return &it->second;
  std::vector<std::string> names;
  names.reserve(_kinds.size());
  for (const auto& [k, _] : _kinds) names.push_back(k);
  return error::make(errc::invalid_config, "unknown kind '" + kind + "'" + did_you_mean(kind, names));
}

std::vector<const stage_descriptor*> stage_registry::all() const {
  std::vector<const stage_descriptor*> out;
  out.reserve(_kinds.size());
  for (const auto& [_, d] : _kinds) out.push_back(&d);
  return out;
}

}  // namespace esflow::graph
