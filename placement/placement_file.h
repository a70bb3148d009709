#pragma once
// The placement file: the last known placement, the fallback when the KV
// bucket is unreachable at start (docs/contract.md "Gateway (the edge) and
// tenant placement"). Format: placement_map::json(),
//   {"nodes":{"<id>":{"node","kinds","http","grpc","updated"}},
//    "tenants":{"<tenant>":"<node id or empty>"}}
//
// NOTE: save is atomic (a temp file in the same directory, fsync, rename):
//       a reader sees the old file or the new one, never a torn one.
//       Concurrent saves to one path are the caller's to serialise.
#include "common/result.h"
#include "placement/placement_map.h"

#include <filesystem>
#include <string_view>

namespace esflow::placement {

// errc::not_found when the file does not exist; errc::invalid_config for a
// malformed one. Both messages start with the path.
result<placement_map> load_placement_file(const std::filesystem::path& path, int vnodes = k_default_vnodes,
                                          std::string_view ring_kind = k_aggregate_kind);
// Parses the file's text; `where` (the path) starts every error message.
result<placement_map> parse_placement(std::string_view text, std::string_view where,
                                      int vnodes = k_default_vnodes,
                                      std::string_view ring_kind = k_aggregate_kind);
// errc::unavailable naming the path when it cannot be written.
status save_placement_file(const std::filesystem::path& path, const placement_map& map);

}  // namespace esflow::placement
