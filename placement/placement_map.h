#pragma once
// One immutable snapshot of tenant placement (docs/contract.md "Gateway (the
// edge) and tenant placement"): the registered nodes (KV `nodes.<id>`), the
// explicit tenant entries (KV `tenants.<tenant>`: a node id, or "" = the ring
// decides) and the hash ring over the registered nodes whose kinds include
// "aggregate".
//
// Tenants are stored and listed in their token spelling (tenant_token():
// the empty single-tenant tenant is "_"); owner("") and owner("_") agree.
//
// NOTE: immutable after make(); share it as std::shared_ptr<const
//       placement_map> (kv_placement and placement_service publish it that
//       way) and read it from any thread without locks.
#include "common/result.h"
#include "placement/hash_ring.h"

#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace esflow::placement {

inline constexpr std::string_view k_aggregate_kind = "aggregate";
inline constexpr std::string_view k_nodes_prefix = "nodes.";
inline constexpr std::string_view k_tenants_prefix = "tenants.";

// [A-Za-z0-9_-]{1,64}: node ids and tenant tokens (docs/contract.md
// "Identifiers"); both are KV key tokens, so no '.', '*' or '>' can enter.
bool is_valid_placement_id(std::string_view id) noexcept;
// "nodes.<node>" / "tenants.<tenant token>".
std::string node_key(std::string_view node);
std::string tenant_key(std::string_view tenant);

// A node's registration: {"node","kinds","http","grpc","updated"}.
struct node_registration {
  std::string node;
  std::vector<std::string> kinds;  // node kinds: "aggregate", "projection", ...
  std::string http;                // host:port, "" when none
  std::string grpc;                // host:port, "" when none
  std::string updated;             // RFC 3339 UTC, set by the registering node

  bool has_kind(std::string_view kind) const noexcept;
  nlohmann::json json() const;
  // errc::invalid_config naming `where` (a KV key or a file) and the field.
  static result<node_registration> from_json(const nlohmann::json& j, std::string_view where);
  static result<node_registration> parse(std::string_view text, std::string_view where);
  friend bool operator==(const node_registration&, const node_registration&) = default;
};

class placement_map {
 public:
  using node_table = std::map<std::string, node_registration, std::less<>>;
  using tenant_table = std::map<std::string, std::string, std::less<>>;  // tenant token -> node or ""

  // No nodes, no tenants: owner() is always nullopt.
  placement_map() = default;
  // Checks every id (is_valid_placement_id; tenant "" is taken as "_") and
  // that each registration's node equals its key; errc::invalid_config
  // otherwise. Builds the ring over the nodes registered with ring_kind
  // (aggregate nodes in TENANT_PLACEMENT; a pipeline's replicas in its own
  // bucket, stages/nats/tenant_router.h).
  static result<placement_map> make(node_table nodes, tenant_table tenants, int vnodes = k_default_vnodes,
                                    std::string_view ring_kind = k_aggregate_kind);

  // The explicit entry when it names a node (even one not registered: the
  // operator's word wins), else the ring; nullopt when the ring is empty.
  std::optional<std::string> owner(std::string_view tenant) const;
  // nullptr when the node is not registered; points into this map.
  const node_registration* registration(std::string_view node) const noexcept;
  // The tenants with an entry (explicit or ""), sorted.
  std::vector<std::string> listed_tenants() const;
  // The listed tenants whose owner() is `node`, sorted.
  std::vector<std::string> tenants_hosted_by(std::string_view node) const;

  // {"nodes":{id:registration}, "tenants":{tenant:node_or_empty}}: the
  // placement file's format (placement_file.h) and /admin's.
  nlohmann::json json() const;

  const node_table& nodes() const noexcept { return _nodes; }
  const tenant_table& tenants() const noexcept { return _tenants; }
  const hash_ring& ring() const noexcept { return _ring; }

 private:
  node_table _nodes;
  tenant_table _tenants;
  hash_ring _ring;
};

}  // namespace esflow::placement
