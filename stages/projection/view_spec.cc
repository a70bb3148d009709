#include "stages/projection/view_spec.h"

#include "graph/did_you_mean.h"
#include "graph/node_kind_descriptor.h"
#include "graph/params.h"
#include "runtime/sandbox.h"
#include "schemas/ids.h"

#include <algorithm>
#include <filesystem>
#include <set>

namespace esflow::projection {
namespace {

bool is_valid_field_path(std::string_view path) {
  if (path.empty() || path.size() > 256) return false;
  bool start = true;
  for (char c : path) {
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    const bool digit = c >= '0' && c <= '9';
    if (c == '.') {
      if (start) return false;
      start = true;
    } else if (alpha || (digit && !start)) {
      start = false;
    } else {
      return false;
    }
  }
  return !start;
}

}  // namespace

bool view_config::follows(std::string_view type) const {
  return std::find(from.begin(), from.end(), type) != from.end();
}

bool is_valid_view_name(std::string_view name) {
  if (name.empty() || name.size() > 64 || name[0] < 'a' || name[0] > 'z') return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; });
}

result<std::vector<view_config>> parse_views(const YAML::Node& section, const std::string& file,
                                             const std::string& base_dir, runtime::program_cache& programs) {
  std::vector<std::string> problems;
  std::vector<view_config> out;
  auto fail = [&](const YAML::Node& n, const std::string& what) {
    problems.push_back(graph::yaml_where(file, n) + ": " + what);
  };
  if (!section || section.IsNull())
    return error::make(errc::invalid_config,
                       file + ":1: a projection pipeline needs a 'views:' section (view -> { from: [...] })");
  if (!section.IsMap()) {
    fail(section, "'views' must be a mapping of view name to { from, program | apply, index }");
  } else {
    static const std::vector<std::string> known = {"from", "program", "apply", "index", "gas", "memory"};
    for (const auto& item : section) {
      const auto name = item.first.as<std::string>();
      const auto owner = "views: '" + name + "': ";
      if (!is_valid_view_name(name)) {
        fail(item.first, owner + "a view name must match [a-z][a-z0-9_]{0,63}");
        continue;
      }
      const auto& body = item.second;
      if (!body.IsMap()) {
        fail(body,
             owner +
                 "must be a mapping { from: [Type], program: <file.lua> | apply: <file.lua>, index: [...] }");
        continue;
      }
      view_config v;
      v.name = name;
      bool ok = true;
      auto strings = [&](const YAML::Node& n, const std::string& key) {
        std::vector<std::string> list;
        if (n.IsScalar()) {
          list.push_back(n.Scalar());
        } else if (n.IsSequence()) {
          for (const auto& e : n) {
            if (!e.IsScalar()) {
              fail(e, owner + "'" + key + "' must list plain names");
              ok = false;
              continue;
            }
            list.push_back(e.Scalar());
          }
        } else {
          fail(n, owner + "'" + key + "' must be a name or a list of names");
          ok = false;
        }
        return list;
      };
      for (const auto& kv : body) {
        const auto key = kv.first.as<std::string>();
        const auto& val = kv.second;
        if (std::find(known.begin(), known.end(), key) == known.end()) {
          fail(kv.first, owner + "unknown key '" + key + "'" + graph::did_you_mean(key, known));
          ok = false;
          continue;
        }
        if (key == "from") {
          v.from = strings(val, key);
          for (const auto& t : v.from)
            if (!schemas::is_valid_aggregate_type(t)) {
              fail(val, owner + "'" + t + "' is not an aggregate type ([A-Za-z][A-Za-z0-9_]{0,63})");
              ok = false;
            }
        } else if (key == "index") {
          std::set<std::string> seen;
          for (auto& f : strings(val, key)) {
            if (!is_valid_field_path(f) || f == "key" || f == "version") {
              fail(val, owner + "index field '" + f +
                            "' must be a row field path like balance or owner.name (not key or version)");
              ok = false;
            } else if (seen.insert(f).second) {
              v.index.push_back(f);
            }
          }
        } else if (!val.IsScalar()) {
          fail(val, owner + "'" + key + "' must be a single value");
          ok = false;
        } else if (key == "program") {
          v.program_path = graph::resolve_section_path(val.Scalar(), base_dir);
        } else if (key == "apply") {
          v.apply_path = graph::resolve_section_path(val.Scalar(), base_dir);
        } else if (key == "gas") {
          auto n = graph::parse_integer(val.Scalar());
          if (!n || *n < 1000) {
            fail(val, owner + "'gas' must be an integer >= 1000 (instructions per call), got '" +
                          val.Scalar() + "'");
            ok = false;
          } else {
            v.gas = static_cast<std::uint64_t>(*n);
          }
        } else if (key == "memory") {
          auto n = graph::parse_size(val.Scalar());
          if (!n || *n < (1 << 20)) {
            fail(val, owner + "'memory' must be a size >= 1MiB (e.g. 64MiB), got '" + val.Scalar() + "'");
            ok = false;
          } else {
            v.memory = static_cast<std::size_t>(*n);
          }
        }
      }
      if (!ok) continue;
      if (v.from.empty()) {
        fail(body, owner + "missing 'from' (the aggregate types it follows)");
        continue;
      }
      if (v.program_path.empty() == v.apply_path.empty()) {
        fail(body, owner +
                       "needs exactly one of 'program' (project(row, event)) or 'apply' (the aggregate's "
                       "program: the row is its state)");
        continue;
      }
      if (!v.apply_path.empty() && v.from.size() != 1) {
        fail(body, owner + "'apply' folds one aggregate type's state: 'from' must name exactly one type");
        continue;
      }
      const auto& path = v.uses_project() ? v.program_path : v.apply_path;
      auto loaded = programs.get(path);
      if (!loaded.ok()) {
        fail(body[v.uses_project() ? "program" : "apply"], owner + "'" + path + "': " + loaded.err().message);
        continue;
      }
      v.program = loaded.value();
      // The function the view calls must exist: found now, not at the first event.
      runtime::sandbox probe(runtime::sandbox_options{v.gas, v.memory});
      if (auto st = probe.preload(*v.program); !st.ok()) {
        fail(body, owner + st.err().message);
        continue;
      }
      if (v.uses_project() && !probe.defines_project(*v.program)) {
        fail(body["program"], owner + "'" + path + "' defines no project(row, event)");
        continue;
      }
      out.push_back(std::move(v));
    }
    if (problems.empty() && out.empty()) fail(section, "'views' names no view");
  }
  if (auto st = graph::section_problems(problems); !st.ok()) return std::move(st).err();
  return out;
}

}  // namespace esflow::projection
