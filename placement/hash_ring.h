#pragma once
// The consistent-hash ring that places tenants on aggregate nodes
// (docs/contract.md "Gateway (the edge) and tenant placement"). The hash is
// part of the contract, so another implementation (a gateway in another
// language, an operator's script) computes the same owner:
//
//   H(s)        = the first 8 bytes of SHA-256(s), read as a big-endian uint64
//   vnode i of node N        -> point H("N#i"), i in decimal, 0 <= i < vnodes
//   tenant T                 -> point H(T); the empty (single-tenant) tenant is
//                               written "_" (as in NATS subjects)
//   owner(T)    = the node of the first vnode whose point >= H(T), wrapping to
//                 the first vnode; vnodes on the same point are ordered by
//                 node id (byte-wise), the smallest first.
//
// Example: H("acme") = 0x822b33ad87c148a0 (`printf acme | sha256sum`).
//
// NOTE: immutable after build(); every const member is thread-safe. Lookups
//       are one SHA-256 plus a binary search over nodes * vnodes points.
#include "common/result.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace esflow::placement {

inline constexpr int k_default_vnodes = 128;
inline constexpr int k_max_vnodes = 4096;

// H(s): the first 8 bytes of SHA-256(s), big-endian.
std::uint64_t ring_hash(std::string_view data) noexcept;
// The tenant as the ring and the KV keys spell it: "" -> "_".
std::string_view tenant_token(std::string_view tenant) noexcept;
// H(tenant_token(tenant)).
std::uint64_t tenant_point(std::string_view tenant) noexcept;
// H("<node>#<i>").
std::uint64_t vnode_point(std::string_view node, int i);

class hash_ring {
 public:
  // An empty ring: owner() is always nullopt.
  hash_ring() = default;
  // Duplicate node ids count once. errc::invalid_config when vnodes is
  // outside [1, k_max_vnodes] or a node id is empty.
  static result<hash_ring> build(std::vector<std::string> nodes, int vnodes = k_default_vnodes);

  // The owning node of a tenant; nullopt on an empty ring. The view points
  // into this ring.
  std::optional<std::string_view> owner(std::string_view tenant) const noexcept;
  // The owner of a point already hashed (tenant_point()).
  std::optional<std::string_view> owner_of_point(std::uint64_t point) const noexcept;

  bool empty() const noexcept { return _points.empty(); }
  // Sorted, without duplicates.
  const std::vector<std::string>& nodes() const noexcept { return _nodes; }
  int vnodes() const noexcept { return _vnodes; }
  std::size_t points() const noexcept { return _points.size(); }

 private:
  struct vnode {
    std::uint64_t point;
    std::uint32_t node;  // index into _nodes; _nodes is sorted, so index order is id order
  };
  std::vector<vnode> _points;  // sorted by (point, node)
  std::vector<std::string> _nodes;
  int _vnodes = k_default_vnodes;
};

}  // namespace esflow::placement
