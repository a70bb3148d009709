#include "stages/runner/saga_spec.h"

#include "graph/did_you_mean.h"
#include "graph/node_kind_descriptor.h"
#include "graph/params.h"
#include "runtime/sandbox.h"
#include "schemas/ids.h"

#include <algorithm>
#include <filesystem>

namespace esflow::runner {
namespace {

bool is_valid_correlation_path(std::string_view path) {
  static constexpr std::string_view envelope_fields[] = {"aggregate_id", "aggregate_type", "command_id",
                                                         "correlation_id", "event_id"};
  if (std::find(std::begin(envelope_fields), std::end(envelope_fields), path) != std::end(envelope_fields))
    return true;
  if (path.substr(0, 8) != "payload." || path.size() == 8 || path.size() > 256) return false;
  return std::all_of(path.begin() + 8, path.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.';
  });
}

}  // namespace

bool saga_config::triggered_by(std::string_view aggregate_type, std::string_view event_type) const {
  return std::any_of(triggers.begin(), triggers.end(), [&](const saga_trigger& t) {
    return t.aggregate_type == aggregate_type &&
           (t.events.empty() || std::find(t.events.begin(), t.events.end(), event_type) != t.events.end());
  });
}

bool is_valid_saga_name(std::string_view name) { return schemas::is_valid_aggregate_type(name); }

result<std::vector<saga_config>> parse_sagas(const YAML::Node& section, const std::string& file,
                                             const std::string& base_dir, runtime::program_cache& programs) {
  std::vector<std::string> problems;
  std::vector<saga_config> out;
  auto fail = [&](const YAML::Node& n, const std::string& what) {
    problems.push_back(graph::yaml_where(file, n) + ": " + what);
  };
  if (!section || section.IsNull()) return out;  // an effect-only runner has no sagas
  if (!section.IsMap()) {
    fail(section, "'sagas' must be a mapping of saga name to { program, triggers, correlate_by }");
  } else {
    static const std::vector<std::string> known = {"program", "triggers", "correlate_by", "gas", "memory"};
    for (const auto& item : section) {
      const auto name = item.first.as<std::string>();
      const auto owner = "sagas: '" + name + "': ";
      if (!is_valid_saga_name(name)) {
        fail(item.first, owner + "a saga name must match [A-Za-z][A-Za-z0-9_]{0,63}");
        continue;
      }
      const auto& body = item.second;
      if (!body.IsMap()) {
        fail(body,
             owner + "must be a mapping { program: <file.lua>, triggers: [...], correlate_by: <field> }");
        continue;
      }
      saga_config s;
      s.name = name;
      bool ok = true;
      for (const auto& kv : body) {
        const auto key = kv.first.as<std::string>();
        const auto& val = kv.second;
        if (std::find(known.begin(), known.end(), key) == known.end()) {
          fail(kv.first, owner + "unknown key '" + key + "'" + graph::did_you_mean(key, known));
          ok = false;
        } else if (key == "triggers") {
          if (!val.IsSequence() || val.size() == 0) {
            fail(val, owner + "'triggers' must list { aggregate_type: T, events: [e, ...] }");
            ok = false;
            continue;
          }
          for (const auto& t : val) {
            saga_trigger trig;
            if (!t.IsMap() || !t["aggregate_type"] || !t["aggregate_type"].IsScalar()) {
              fail(t, owner + "a trigger needs 'aggregate_type' (and optionally 'events')");
              ok = false;
              continue;
            }
            for (const auto& tk : t) {
              const auto k = tk.first.as<std::string>();
              if (k != "aggregate_type" && k != "events") {
                fail(tk.first, owner + "unknown trigger key '" + k + "'" +
                                   graph::did_you_mean(k, {"aggregate_type", "events"}));
                ok = false;
              }
            }
            trig.aggregate_type = t["aggregate_type"].Scalar();
            if (!schemas::is_valid_aggregate_type(trig.aggregate_type)) {
              fail(t, owner + "'" + trig.aggregate_type + "' is not an aggregate type");
              ok = false;
            }
            if (const auto& ev = t["events"]; ev) {
              if (!ev.IsSequence()) {
                fail(ev, owner + "'events' must list event types");
                ok = false;
              } else {
                for (const auto& e : ev) {
                  if (e.IsScalar() && !e.Scalar().empty()) {
                    trig.events.push_back(e.Scalar());
                  } else {
                    fail(e, owner + "'events' must list event types");
                    ok = false;
                  }
                }
              }
            }
            s.triggers.push_back(std::move(trig));
          }
        } else if (!val.IsScalar()) {
          fail(val, owner + "'" + key + "' must be a single value");
          ok = false;
        } else if (key == "program") {
          s.program_path = graph::resolve_section_path(val.Scalar(), base_dir);
        } else if (key == "correlate_by") {
          if (!is_valid_correlation_path(val.Scalar())) {
            fail(val, owner +
                          "'correlate_by' must be aggregate_id, event_id, command_id, correlation_id or "
                          "payload.<field>, got '" +
                          val.Scalar() + "'");
            ok = false;
          } else {
            s.correlate_by = val.Scalar();
          }
        } else if (key == "gas") {
          auto n = graph::parse_integer(val.Scalar());
          if (!n || *n < 1000) {
            fail(val, owner + "'gas' must be an integer >= 1000, got '" + val.Scalar() + "'");
            ok = false;
          } else {
            s.gas = static_cast<std::uint64_t>(*n);
          }
        } else if (key == "memory") {
          auto n = graph::parse_size(val.Scalar());
          if (!n || *n < (1 << 20)) {
            fail(val, owner + "'memory' must be a size >= 1MiB, got '" + val.Scalar() + "'");
            ok = false;
          } else {
            s.memory = static_cast<std::size_t>(*n);
          }
        }
      }
      if (!ok) continue;
      if (s.program_path.empty()) {
        fail(body, owner + "missing 'program' (a Lua file defining on_event(state, input))");
        continue;
      }
      if (s.triggers.empty()) {
        fail(body, owner + "missing 'triggers' (the events that start or advance an instance)");
        continue;
      }
      auto loaded = programs.get(s.program_path);
      if (!loaded.ok()) {
        fail(body["program"], owner + "'" + s.program_path + "': " + loaded.err().message);
        continue;
      }
      s.program = loaded.value();
      runtime::sandbox probe(runtime::sandbox_options{s.gas, s.memory});
      if (auto st = probe.preload(*s.program); !st.ok()) {
        fail(body, owner + st.err().message);
        continue;
      }
      if (!probe.defines_on_event(*s.program)) {
        fail(body["program"], owner + "'" + s.program_path + "' defines no on_event(state, input)");
        continue;
      }
      out.push_back(std::move(s));
    }
  }
  if (auto st = graph::section_problems(problems); !st.ok()) return std::move(st).err();
  return out;
}

}  // namespace esflow::runner
