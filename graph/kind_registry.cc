#include "graph/kind_registry.h"

#include "graph/did_you_mean.h"
#include "graph/pipeline_settings.h"

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

kind_registry::kind_registry() {
  // The engine's settings cannot clash: the registry is empty.
  ignore(add_settings_checked("engine", engine_settings_schema()));
}

status kind_registry::add(stage_descriptor d) {
  if (d.kind.empty() || !d.make)
    return error::make(errc::internal, "stage descriptor without kind or factory");
  if (d.role == stage_role::sink) d.output_ports.clear();
  auto kind = d.kind;
  if (!_kinds.emplace(kind, std::move(d)).second)
    return error::make(errc::internal, "stage kind '" + kind + "' registered twice");
  return {};
}

status kind_registry::add(node_kind_descriptor d) {
  if (d.name.empty()) return error::make(errc::internal, "node kind without a name");
  if (_node_kinds.count(d.name))
    return error::make(errc::internal, "node kind '" + d.name + "' registered twice");
  for (const auto& s : d.sections) {
    if (const auto* other = section_owner(s))
      return error::make(errc::internal, "section '" + s + "' claimed by node kinds '" + other->name +
                                             "' and '" + d.name + "'");
  }
  if (auto ok = add_settings_checked(d.name, d.settings); !ok.ok()) return ok;
  auto name = d.name;
  _node_kinds.emplace(name, std::move(d));
  return {};
}

status kind_registry::add_settings(const std::string& owner, const std::vector<param_spec>& settings) {
  return add_settings_checked(owner, settings);
}

status kind_registry::add_settings_checked(const std::string& owner,
                                           const std::vector<param_spec>& settings) {
  for (const auto& p : settings) {
    if (auto it = _settings_owner.find(p.name); it != _settings_owner.end())
      return error::make(errc::internal,
                         "setting '" + p.name + "' declared by '" + it->second + "' and '" + owner + "'");
  }
  for (const auto& p : settings) {
    _settings_owner[p.name] = owner;
    _settings.push_back(p);
  }
  return {};
}

result<const stage_descriptor*> kind_registry::find(const std::string& kind) const {
  auto it = _kinds.find(kind);
  if (it != _kinds.end()) return &it->second;
  std::vector<std::string> names;
  names.reserve(_kinds.size());
  for (const auto& [k, _] : _kinds) names.push_back(k);
  return error::make(errc::invalid_config, "unknown kind '" + kind + "'" + did_you_mean(kind, names));
}

std::vector<const stage_descriptor*> kind_registry::all() const {
  std::vector<const stage_descriptor*> out;
  out.reserve(_kinds.size());
  for (const auto& [_, d] : _kinds) out.push_back(&d);
  return out;
}

const node_kind_descriptor* kind_registry::find_node_kind(const std::string& name) const {
  auto it = _node_kinds.find(name);
  return it == _node_kinds.end() ? nullptr : &it->second;
}

const node_kind_descriptor* kind_registry::section_owner(const std::string& section) const {
  for (const auto& [_, k] : _node_kinds)
    for (const auto& s : k.sections)
      if (s == section) return &k;
  return nullptr;
}

std::vector<const node_kind_descriptor*> kind_registry::node_kinds() const {
  std::vector<const node_kind_descriptor*> out;
  for (const auto& [_, k] : _node_kinds) out.push_back(&k);
  return out;
}

std::string kind_registry::settings_owner(const std::string& key) const {
  auto it = _settings_owner.find(key);
  return it == _settings_owner.end() ? std::string() : it->second;
}

}  // namespace esflow::graph
