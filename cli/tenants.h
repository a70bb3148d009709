#pragma once
// `esflow tenants add|list|move` and `esflow placement constraints`: the
// operator's side of tenant placement (docs/placement.md). They speak to the
// TENANT_PLACEMENT KV bucket on --nats and, for a move, to the nodes' admin
// HTTP routes named in their registrations.
#include <chrono>
#include <iosfwd>
#include <string>

namespace esflow::cli {

struct tenants_options {
  std::string nats_url;
  std::chrono::milliseconds drain_timeout{30000};
  std::chrono::milliseconds settle_timeout{10000};  // the new node subscribes
  bool force = false;                               // move without draining (the old node is down)
};

// Exit codes: 0 done, 1 failed (the message says where), 2 bad usage.
int tenants_add_command(const tenants_options& o, const std::string& tenant, const std::string& node,
                        std::ostream& out, std::ostream& err);
int tenants_list_command(const tenants_options& o, std::ostream& out, std::ostream& err);
// Drain on the old node, compare-and-set the placement, wait until the new
// node hosts the tenant (its GET /admin/placement lists it).
int tenants_move_command(const tenants_options& o, const std::string& tenant, const std::string& to,
                         std::ostream& out, std::ostream& err);
// `esflow placement constraints --ranges a-h,i-z|FILE`: the Swarm stanzas
// pinning each tenant range's aggregate service to hosts labelled
// tenant_range=<range> (placement/swarm_constraints.h).
int placement_ranges_command(const std::string& ranges, const std::string& service, std::ostream& out,
                             std::ostream& err);

}  // namespace esflow::cli
