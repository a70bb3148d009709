#pragma once
// The node's start-up choice of where placement comes from (docs/contract.md
// "Gateway (the edge) and tenant placement"): the KV bucket when it answers
// within start_timeout (register this node, watch, keep the file up to
// date), else the placement file (the last known placement), and the log
// says which and why.
//
//   auto svc = placement_service::start({.node_id = "agg-1", .kinds = {"aggregate"},
//                                        .file = data_dir / "placement.json", .nats = conn});
//   auto map = (*svc)->current();            // data plane: one snapshot per request
//   if (map->owner(tenant) != "agg-1") ...   // tenant_not_hosted
//
// NOTE: thread-safe. In KV mode one watcher thread (kv_placement.h) publishes
//       each new map; in file mode the map changes only on reload().
// NOTE: lifetime: options.nats (when set) must outlive the service.
#include "common/result.h"
#include "placement/kv_placement.h"
#include "placement/placement_map.h"

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace esflow::placement {

struct placement_options {
  std::string node_id;                    // --node-id / ESFLOW_NODE_ID
  std::vector<std::string> kinds;         // this node's kinds ("aggregate", ...)
  std::string http;                       // advertised host:port, "" when none
  std::string grpc;                       // advertised host:port, "" when none
  std::filesystem::path file;             // the fallback, saved on every KV change; may be empty
  nats::nats_connection* nats = nullptr;  // null: KV unreachable, use the file
  int vnodes = k_default_vnodes;
  int replicas = 1;  // of the bucket, when created
  std::string bucket = std::string(k_bucket);
  // The ring is over the nodes registered with this kind (one of `kinds` for this node to be on it).
  std::string ring_kind = std::string(k_aggregate_kind);
  // Bounds opening the bucket, each KV call and the wait for the initial values.
  std::chrono::milliseconds start_timeout{3000};
  std::chrono::milliseconds watch_poll{100};
};

enum class placement_source : std::uint8_t { kv, file, none };
std::string_view to_string(placement_source s) noexcept;

class placement_service {
 public:
  // KV when reachable, else the file. A file that does not exist gives a map
  // holding only this node (alone, it owns every tenant if it is an
  // aggregate node): source none. errc::invalid_config for bad options or a
  // malformed file (a broken fallback is the operator's to fix, not to guess).
  static result<std::unique_ptr<placement_service>> start(placement_options options);
  ~placement_service();
  placement_service(const placement_service&) = delete;
  placement_service& operator=(const placement_service&) = delete;

  placement_source source() const noexcept { return _source; }
  map_ptr current() const { return _kv ? _kv->current() : _feed.current(); }
  // Listeners run on the watcher thread (KV) or reload()'s caller (file); must not block.
  std::uint64_t add_listener(map_listener fn);
  void remove_listener(std::uint64_t id);
  // The KV side (moves, set_tenant); nullptr unless source() is kv.
  kv_placement* kv() noexcept { return _kv.get(); }
  // File mode: reads the file again and publishes it. KV mode: nothing to
  // do (the watch is live).
  status reload();
  void stop();

 private:
  explicit placement_service(placement_options o) : _options(std::move(o)) {}
  node_registration own_registration() const;

  placement_options _options;
  placement_source _source = placement_source::none;
  std::unique_ptr<kv_placement> _kv;
  map_feed _feed;  // file mode
};

}  // namespace esflow::placement
