#include "placement/placement_map.h"

#include <algorithm>

namespace esflow::placement {
namespace {

error bad(std::string_view where, std::string what) {
  return error::make(errc::invalid_config, std::string(where) + ": " + what,
                     "placement=" + std::string(where));
}

result<std::string> string_field(const nlohmann::json& j, const char* name, std::string_view where,
                                 bool required) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) {
    if (required) return bad(where, std::string("field '") + name + "' is missing");
    return std::string();
  }
  if (!it->is_string()) return bad(where, std::string("field '") + name + "' is not a string");
  return it->get<std::string>();
}

}  // namespace

bool is_valid_placement_id(std::string_view id) noexcept {
  if (id.empty() || id.size() > 64) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

std::string node_key(std::string_view node) { return std::string(k_nodes_prefix) + std::string(node); }

std::string tenant_key(std::string_view tenant) {
  return std::string(k_tenants_prefix) + std::string(tenant_token(tenant));
}

bool node_registration::has_kind(std::string_view kind) const noexcept {
  return std::find(kinds.begin(), kinds.end(), kind) != kinds.end();
}

nlohmann::json node_registration::json() const {
  return {{"node", node}, {"kinds", kinds}, {"http", http}, {"grpc", grpc}, {"updated", updated}};
}

result<node_registration> node_registration::from_json(const nlohmann::json& j, std::string_view where) {
  if (!j.is_object()) return bad(where, "a node registration is not a JSON object");
  node_registration r;
  auto node = string_field(j, "node", where, true);
  if (!node.ok()) return std::move(node).err();
  r.node = std::move(node).value();
  if (!is_valid_placement_id(r.node))
    return bad(where, "node id '" + r.node + "' is not [A-Za-z0-9_-]{1,64}");
  auto kinds = j.find("kinds");
  if (kinds != j.end() && !kinds->is_null()) {
    if (!kinds->is_array()) return bad(where, "field 'kinds' is not an array");
    for (const auto& k : *kinds) {
      if (!k.is_string()) return bad(where, "field 'kinds' holds a non-string");
      r.kinds.push_back(k.get<std::string>());
    }
  }
  for (auto [name, field] :
       {std::pair{"http", &r.http}, std::pair{"grpc", &r.grpc}, std::pair{"updated", &r.updated}}) {
    auto v = string_field(j, name, where, false);
    if (!v.ok()) return std::move(v).err();
    *field = std::move(v).value();
  }
  return r;
}

result<node_registration> node_registration::parse(std::string_view text, std::string_view where) {
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return bad(where, "a node registration is not valid JSON");
  return from_json(j, where);
}

result<placement_map> placement_map::make(node_table nodes, tenant_table tenants, int vnodes,
                                          std::string_view ring_kind) {
  std::vector<std::string> ring_nodes;
  for (const auto& [id, reg] : nodes) {
    if (!is_valid_placement_id(id)) return bad(node_key(id), "node id is not [A-Za-z0-9_-]{1,64}");
    if (reg.node != id) return bad(node_key(id), "registration names node '" + reg.node + "'");
    if (reg.has_kind(ring_kind)) ring_nodes.push_back(id);
  }
  tenant_table normalized;
  for (auto& [t, node] : tenants) {
    auto token = std::string(tenant_token(t));
    if (!is_valid_placement_id(token)) return bad(tenant_key(t), "tenant id is not [A-Za-z0-9_-]{1,64}");
    if (!node.empty() && !is_valid_placement_id(node))
      return bad(tenant_key(t), "node id '" + node + "' is not [A-Za-z0-9_-]{1,64}");
    normalized[std::move(token)] = std::move(node);
  }
  auto ring = hash_ring::build(std::move(ring_nodes), vnodes);
  if (!ring.ok()) return std::move(ring).err();
  placement_map m;
  m._nodes = std::move(nodes);
  m._tenants = std::move(normalized);
  m._ring = std::move(ring).value();
  return m;
}

std::optional<std::string> placement_map::owner(std::string_view tenant) const {
  if (auto it = _tenants.find(tenant_token(tenant)); it != _tenants.end() && !it->second.empty())
    return it->second;
  auto o = _ring.owner(tenant);
  if (!o) return std::nullopt;
  return std::string(*o);
}

const node_registration* placement_map::registration(std::string_view node) const noexcept {
  auto it = _nodes.find(node);
  return it == _nodes.end() ? nullptr : &it->second;
}

std::vector<std::string> placement_map::listed_tenants() const {
  std::vector<std::string> out;
  out.reserve(_tenants.size());
  for (const auto& [t, _] : _tenants) out.push_back(t);
  return out;
}

std::vector<std::string> placement_map::tenants_hosted_by(std::string_view node) const {
  std::vector<std::string> out;
  for (const auto& [t, _] : _tenants)
    if (auto o = owner(t); o && *o == node) out.push_back(t);
  return out;
}

nlohmann::json placement_map::json() const {
  auto nodes = nlohmann::json::object();
  for (const auto& [id, reg] : _nodes) nodes[id] = reg.json();
  auto tenants = nlohmann::json::object();
  for (const auto& [t, node] : _tenants) tenants[t] = node;
  return {{"nodes", std::move(nodes)}, {"tenants", std::move(tenants)}};
}

}  // namespace esflow::placement
