#pragma once
// Tenant ranges for Docker Swarm: tenants split by their first character
// over aggregate services, each service pinned to the hosts labelled with
// its range (`node.labels.tenant_range==a-h`). A static alternative to the
// ring for operators who place by label (docs/operations.md).
//
// A range is `<first>-<last>` or a single `<c>`, both ends letters or both
// digits, first <= last. Letters compare case-insensitively (tenant "Acme"
// falls in a-h; write ranges lowercase). Tenants that start with '_' or '-'
// (and the empty tenant "_") fall in no range. Ranges must not overlap.
//
// NOTE: pure functions, thread-safe.
#include "common/result.h"

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace esflow::placement {

struct tenant_range {
  char first = 'a';
  char last = 'z';
  std::string name;  // as written: "a-h", "x"
  bool contains(char c) const noexcept;
};

// "a-h,i-p,q-z" (spaces around items ignored). errc::invalid_config naming
// the bad item, or the two ranges that overlap.
result<std::vector<tenant_range>> parse_ranges(std::string_view spec);
// A file {"ranges": ["a-h", ...]} in JSON or YAML (YAML reads both).
result<std::vector<tenant_range>> load_ranges_file(const std::filesystem::path& path);
// The range whose characters include the tenant's first character.
std::optional<tenant_range> range_of(std::string_view tenant, const std::vector<tenant_range>& ranges);
// One stanza per range:
//   <service>-a-h:
//     deploy:
//       placement:
//         constraints: [node.labels.tenant_range==a-h]
std::string swarm_constraints(const std::vector<tenant_range>& ranges,
                              std::string_view service = "aggregate");
// parse_ranges(spec), then the stanzas.
result<std::string> swarm_constraints(std::string_view spec, std::string_view service = "aggregate");

}  // namespace esflow::placement
