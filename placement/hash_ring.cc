#include "placement/hash_ring.h"

#include "common/sha256.h"

#include <algorithm>

namespace esflow::placement {

std::uint64_t ring_hash(std::string_view data) noexcept {
  const auto d = sha256_digest::of(data);
  std::uint64_t h = 0;
  for (int i = 0; i < 8; ++i) h = (h << 8) | d.bytes[static_cast<std::size_t>(i)];
  return h;
}

std::string_view tenant_token(std::string_view tenant) noexcept { return tenant.empty() ? "_" : tenant; }

std::uint64_t tenant_point(std::string_view tenant) noexcept { return ring_hash(tenant_token(tenant)); }

std::uint64_t vnode_point(std::string_view node, int i) {
  std::string s;
  s.reserve(node.size() + 12);
  s.append(node);
  s.push_back('#');
  s.append(std::to_string(i));
  return ring_hash(s);
}

result<hash_ring> hash_ring::build(std::vector<std::string> nodes, int vnodes) {
  if (vnodes < 1 || vnodes > k_max_vnodes) {
    return error::make(
        errc::invalid_config,
        "vnodes " + std::to_string(vnodes) + " is outside [1, " + std::to_string(k_max_vnodes) + "]",
        "placement=ring");
  }
  for (const auto& n : nodes)
    if (n.empty()) return error::make(errc::invalid_config, "empty node id in the ring", "placement=ring");
  std::sort(nodes.begin(), nodes.end());
  nodes.erase(std::unique(nodes.begin(), nodes.end()), nodes.end());
  hash_ring ring;
  ring._vnodes = vnodes;
  ring._points.reserve(nodes.size() * static_cast<std::size_t>(vnodes));
  for (std::uint32_t n = 0; n < nodes.size(); ++n)
    for (int i = 0; i < vnodes; ++i) ring._points.push_back({vnode_point(nodes[n], i), n});
  std::sort(ring._points.begin(), ring._points.end(), [](const vnode& a, const vnode& b) {
    return a.point != b.point ? a.point < b.point : a.node < b.node;
  });
  ring._nodes = std::move(nodes);
  return ring;
}

std::optional<std::string_view> hash_ring::owner_of_point(std::uint64_t point) const noexcept {
  if (_points.empty()) return std::nullopt;
  auto it = std::lower_bound(_points.begin(), _points.end(), point,
                             [](const vnode& v, std::uint64_t p) { return v.point < p; });
  if (it == _points.end()) it = _points.begin();  // past the last point: wrap
  return std::string_view(_nodes[it->node]);
}

std::optional<std::string_view> hash_ring::owner(std::string_view tenant) const noexcept {
  if (_points.empty()) return std::nullopt;
  return owner_of_point(tenant_point(tenant));
}

}  // namespace esflow::placement
