#pragma once
// The projection node kind's `views:` section (docs/contract.md, "Projection
// node"): view name -> { from: [types], program, apply, index, gas, memory }.
//
// A view's row is keyed by the aggregate id of the events it folds. Either
//   - `program`: a Lua file defining project(row, event) -> row, or nil to
//     delete; `event` is the whole Event envelope (aggregate_id, version,
//     event_type, payload, ...); or
//   - no program: the row is the aggregate's state, folded by the aggregate
//     program's own initial_state/apply, named by `apply` (the aggregate's
//     .lua file); the view then follows exactly one aggregate type.
// `index` lists the row fields (dotted paths) with a secondary index.
#include "common/result.h"
#include "runtime/program.h"

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <string>
#include <vector>

namespace esflow::projection {

struct view_config {
  std::string name;               // [a-z][a-z0-9_]{0,63}
  std::vector<std::string> from;  // aggregate types
  std::string program_path;       // resolved; empty when folding with `apply`
  std::string apply_path;         // resolved; empty with a program
  std::vector<std::string> index;
  std::uint64_t gas = 10'000'000;
  std::size_t memory = std::size_t{64} << 20;
  runtime::program_ptr program;  // the view program or the aggregate program
  bool uses_project() const { return !program_path.empty(); }
  bool follows(std::string_view type) const;
};

bool is_valid_view_name(std::string_view name);

// Parses and validates `views:` (every problem as "file:line: ...", joined by
// newlines, in one invalid_config) and loads each program through `programs`.
result<std::vector<view_config>> parse_views(const YAML::Node& section, const std::string& file,
                                             const std::string& base_dir, runtime::program_cache& programs);

}  // namespace esflow::projection
