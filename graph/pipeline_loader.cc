#include "graph/pipeline_loader.h"

#include "graph/did_you_mean.h"
#include "graph/pipeline_settings.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace esflow::graph {
namespace {

namespace fs = std::filesystem;

constexpr int k_max_include_depth = 8;
const std::vector<std::string> k_engine_stage_keys = {"kind", "concurrency", "key", "max_in_flight"};

// Problems are collected, not thrown: a user fixing a file wants all of them.
struct problems {
  std::vector<std::string> lines;
  void add(const std::string& file, const YAML::Node& at, const std::string& what) {
    add(file_position{file, at.Mark().line >= 0 ? at.Mark().line + 1 : 0}, what);
  }
  void add(const file_position& at, const std::string& what) {
    lines.push_back(at.to_string() + ": " + what);
  }
};

file_position pos_of(const std::string& file, const YAML::Node& n) {
  return file_position{file, n.Mark().line >= 0 ? n.Mark().line + 1 : 0};
}

// Pieces of a document collected across includes, in order.
struct raw_stage {
  std::string name;
  YAML::Node name_node;
  YAML::Node body;
  std::string file;
};
struct raw_flow {
  std::string text;
  file_position at;
};
struct raw_doc {
  std::string name;
  std::vector<std::pair<std::string, std::pair<YAML::Node, YAML::Node>>> settings;  // file, key, value
  std::vector<raw_stage> stages;
  std::vector<raw_flow> flow;
  std::map<std::string, YAML::Node> sections;
};

class loader {
 public:
  loader(const kind_registry& registry, const load_options& options)
      : _registry(registry), _options(options) {}

  result<pipeline_spec> load(std::string_view text, const std::string& display_name,
                             const std::string& base_dir) {
    raw_doc doc;
    read_document(text, display_name, base_dir, doc, 0, {});
    pipeline_spec spec;
    spec.file = display_name;
    spec.base_dir = base_dir;
    spec.name = doc.name;
    spec.sections = doc.sections;
    if (_problems.lines.empty()) build(doc, spec);
    if (!_problems.lines.empty()) {
      std::string all;
      for (const auto& l : _problems.lines) all += (all.empty() ? "" : "\n") + l;
      return error::config(all);
    }
    return spec;
  }

 private:
  // --- reading -------------------------------------------------------------

  void read_document(std::string_view text, const std::string& file, const std::string& base_dir,
                     raw_doc& doc, int depth, std::vector<std::string> include_chain) {
    YAML::Node root;
    try {
      root = YAML::Load(std::string(text));
    } catch (const YAML::ParserException& e) {
      _problems.add(file_position{file, e.mark.line + 1}, "YAML syntax error: " + e.msg);
      return;
    }
    if (!root.IsMap()) {
      _problems.add(file, root, "a pipeline file is a YAML mapping with 'pipeline', 'stages' and 'flow'");
      return;
    }
    // Every key of the file is read as a name: a list or mapping in key
    // position ("? [a, b]: 1") is reported here rather than thrown later.
    if (!check_scalar_keys(file, root)) return;
    check_unique_keys(file, root);
    std::vector<std::string> known = {"pipeline", "include", "settings", "stages", "flow"};
    for (const auto* k : _registry.node_kinds())
      known.insert(known.end(), k->sections.begin(), k->sections.end());
    include_chain.push_back(file);

    // Includes first: the including file's settings override theirs.
    if (auto inc = root["include"]) {
      if (!inc.IsSequence()) {
        _problems.add(file, inc, "'include' must be a list of file names");
      } else if (depth >= k_max_include_depth) {
        _problems.add(file, inc, "includes nested deeper than " + std::to_string(k_max_include_depth));
      } else {
        for (const auto& item : inc) {
          auto name = scalar(file, item, "include");
          if (!name) continue;
          const auto path = (fs::path(base_dir) / *name).lexically_normal().string();
          if (std::find(include_chain.begin(), include_chain.end(), path) != include_chain.end()) {
            _problems.add(file, item, "include cycle: '" + *name + "' includes itself");
            continue;
          }
          std::ifstream in(path);
          if (!in) {
            _problems.add(file, item, "cannot read included file '" + path + "'");
            continue;
          }
          std::stringstream buf;
          buf << in.rdbuf();
          read_document(buf.str(), path, fs::path(path).parent_path().string(), doc, depth + 1,
                        include_chain);
        }
      }
    }

    for (const auto& entry : root) {
      const auto key_node = entry.first;
      const auto key = key_node.as<std::string>();
      const auto& value = entry.second;
      if (key == "include") continue;
      if (key == "pipeline") {
        if (auto name = scalar(file, value, "pipeline")) {
          if (depth == 0 || doc.name.empty()) doc.name = *name;
        }
      } else if (key == "settings") {
        if (!value.IsMap()) {
          _problems.add(file, value, "'settings' must be a mapping");
          continue;
        }
        check_unique_keys(file, value);
        for (const auto& s : value) doc.settings.push_back({file, {s.first, s.second}});
      } else if (key == "stages") {
        if (!value.IsMap()) {
          _problems.add(file, value, "'stages' must be a mapping of stage name to its definition");
          continue;
        }
        for (const auto& s : value)
          doc.stages.push_back(raw_stage{s.first.as<std::string>(), s.first, s.second, file});
      } else if (key == "flow") {
        if (!value.IsSequence()) {
          _problems.add(file, value, "'flow' must be a list of 'a -> b -> c' lines");
          continue;
        }
        for (const auto& line : value) {
          if (auto t = scalar(file, line, "flow")) doc.flow.push_back(raw_flow{*t, pos_of(file, line)});
        }
      } else if (_registry.section_owner(key) != nullptr) {
        doc.sections[key] = value;
      } else {
        _problems.add(file, key_node, "unknown top-level key '" + key + "'" + did_you_mean(key, known));
      }
    }
    if (depth == 0 && doc.name.empty()) _problems.add(file_position{file, 1}, "missing 'pipeline: <name>'");
  }

  // False (with a problem per key) when a mapping anywhere below `n` has a
  // key that is not a scalar.
  bool check_scalar_keys(const std::string& file, const YAML::Node& n, int depth = 0) {
    if (depth > 64) {
      _problems.add(file, n, "nested deeper than 64 levels");
      return false;
    }
    bool ok = true;
    if (n.IsMap()) {
      for (const auto& entry : n) {
        if (!entry.first.IsScalar()) {
          _problems.add(file, entry.first, "a key must be a plain name, not a list or mapping");
          ok = false;
          continue;
        }
        ok = check_scalar_keys(file, entry.second, depth + 1) && ok;
      }
    } else if (n.IsSequence()) {
      for (const auto& item : n) ok = check_scalar_keys(file, item, depth + 1) && ok;
    }
    return ok;
  }

  // yaml-cpp 0.7 keeps both entries of a repeated mapping key (iteration sees
  // both, operator[] only the first): report it instead of letting one win.
  // Stage names and stage parameters have their own, more specific checks.
  void check_unique_keys(const std::string& file, const YAML::Node& map) {
    std::map<std::string, YAML::Node> seen;
    for (const auto& entry : map) {
      if (!entry.first.IsScalar()) continue;
      auto [it, inserted] = seen.emplace(entry.first.Scalar(), entry.first);
      if (!inserted)
        _problems.add(file, entry.first,
                      "duplicate key '" + entry.first.Scalar() + "' (first at " +
                          pos_of(file, it->second).to_string() + ")");
    }
  }

  std::optional<std::string> scalar(const std::string& file, const YAML::Node& n, const std::string& what) {
    if (!n.IsScalar()) {
      _problems.add(file, n, "'" + what + "' must be a single value");
      return std::nullopt;
    }
    std::string problem;
    auto v = substitute_env(n.Scalar(), _options, problem);
    if (!v) _problems.add(file, n, "'" + what + "': " + problem);
    return v;
  }

  // --- typed values ----------------------------------------------------------

  std::optional<param_value> convert(const param_spec& p, const YAML::Node& n, const std::string& file,
                                     const std::string& owner) {
    const auto where = owner + "parameter '" + p.name + "'";
    auto bad = [&](const std::string& what) -> std::optional<param_value> {
      _problems.add(file, n, where + " " + what);
      return std::nullopt;
    };
    switch (p.type) {
      case param_type::string_list: {
        if (!n.IsSequence()) return bad("must be a list");
        std::vector<std::string> out;
        for (const auto& item : n) {
          auto s = scalar(file, item, p.name);
          if (!s) return std::nullopt;
          out.push_back(*s);
        }
        return out;
      }
      case param_type::string_map: {
        if (!n.IsMap()) return bad("must be a mapping");
        check_unique_keys(file, n);
        std::map<std::string, std::string> out;
        for (const auto& item : n) {
          auto v = scalar(file, item.second, p.name + "." + item.first.as<std::string>());
          if (!v) return std::nullopt;
          out[item.first.as<std::string>()] = *v;
        }
        return out;
      }
      default:
        break;
    }
    if (!n.IsScalar())
      return bad("must be a " + std::string(to_string(p.type)) + ", not a " +
                 (n.IsMap()        ? "mapping"
                  : n.IsSequence() ? "list"
                                   : "null"));
    std::string problem;
    auto text = substitute_env(n.Scalar(), _options, problem);
    if (!text) return bad(problem);
    auto in_range = [&](std::int64_t v) -> std::optional<param_value> {
      if (v < p.min || v > p.max)
        return bad("must be between " + std::to_string(p.min) + " and " + std::to_string(p.max) + ", got " +
                   std::to_string(v));
      return v;
    };
    switch (p.type) {
      case param_type::string:
        return *text;
      case param_type::integer: {
        auto v = parse_integer(*text);
        if (!v) return bad("must be an integer, got '" + *text + "'");
        return in_range(*v);
      }
      case param_type::size: {
        auto v = parse_size(*text);
        if (!v) return bad("must be a size such as 65536, 64KiB or 1MiB, got '" + *text + "'");
        return in_range(*v);
      }
      case param_type::duration: {
        auto v = parse_duration_ms(*text);
        if (!v) return bad("must be a duration such as 500ms, 2s or 1m, got '" + *text + "'");
        return in_range(*v);
      }
      case param_type::boolean:
        if (*text == "true") return true;
        if (*text == "false") return false;
        return bad("must be true or false, got '" + *text + "'");
      case param_type::choice:
        if (std::find(p.choices.begin(), p.choices.end(), *text) != p.choices.end()) return *text;
        {
          std::string all;
          for (const auto& c : p.choices) all += (all.empty() ? "" : "|") + c;
          return bad("must be one of " + all + ", got '" + *text + "'" + did_you_mean(*text, p.choices));
        }
      default:
        return std::nullopt;
    }
  }

  // --- building ----------------------------------------------------------------

  void build(raw_doc& doc, pipeline_spec& spec) {
    build_settings(doc, spec);
    build_stages(doc, spec);
    if (!_problems.lines.empty()) return;
    build_edges(doc, spec);
    if (!_problems.lines.empty()) return;
    check_connected(spec);
    check_cycles(spec);
    if (!_problems.lines.empty()) return;
    find_node_kinds(spec);
    check_sections(spec);
    check_contexts(spec);
    check_fan_out(spec);
  }

  // --- node kinds and contexts ---------------------------------------------------

  void find_node_kinds(pipeline_spec& spec) {
    for (const auto* kind : _registry.node_kinds()) {
      bool used = std::any_of(spec.stages.begin(), spec.stages.end(),
                              [&](const stage_spec& s) { return s.descriptor->node_kind == kind->name; });
      for (const auto& section : kind->sections) used = used || spec.sections.count(section) > 0;
      if (used) spec.node_kinds.push_back(kind);
    }
    for (const auto* kind : spec.node_kinds) {
      if (kind->make_context) {
        spec.make_context = kind->make_context;
        break;
      }
    }
    if (!spec.make_context) spec.make_context = _registry.default_context();
  }

  void check_sections(const pipeline_spec& spec) {
    for (const auto* kind : spec.node_kinds) {
      if (!kind->check_section) continue;
      for (const auto& section : kind->sections) {
        auto it = spec.sections.find(section);
        const YAML::Node node =
            it == spec.sections.end() ? YAML::Node(YAML::NodeType::Undefined) : it->second;
        for (auto& line : kind->check_section(section, node, spec.file, spec.base_dir))
          _problems.lines.push_back(std::move(line));
      }
    }
  }

  // Every message reaching a stage must carry the context it needs: the
  // contexts guaranteed on a stage's input are those every path from a
  // source provides (a stage's `error` port passes on only what it received).
  void check_contexts(const pipeline_spec& spec) {
    const auto n = spec.stages.size();
    std::vector<std::vector<const edge_spec*>> incoming(n);
    for (const auto& e : spec.edges) incoming[spec.index_of(e.to)].push_back(&e);
    std::vector<std::optional<std::set<std::string>>> in(n), out(n);
    // The flow has no cycles (checked before): settle in at most n rounds.
    for (std::size_t round = 0; round <= n; ++round) {
      bool changed = false;
      for (std::size_t i = 0; i < n; ++i) {
        const auto& st = spec.stages[i];
        std::optional<std::set<std::string>> guaranteed;
        if (st.descriptor->role == stage_role::source) guaranteed.emplace();
        bool complete = true;
        for (const auto* e : incoming[i]) {
          const auto from = spec.index_of(e->from);
          const auto& via = e->port == "error" ? in[from] : out[from];
          if (!via) {
            complete = false;
            break;
          }
          if (!guaranteed) {
            guaranteed = *via;
          } else {
            std::set<std::string> both;
            for (const auto& c : *guaranteed)
              if (via->count(c)) both.insert(c);
            guaranteed = std::move(both);
          }
        }
        if (!complete || !guaranteed || in[i]) continue;
        in[i] = guaranteed;
        out[i] = guaranteed;
        for (const auto& c : st.descriptor->provides_context) out[i]->insert(c);
        changed = true;
      }
      if (!changed) break;
    }
    for (std::size_t i = 0; i < n; ++i) {
      const auto& st = spec.stages[i];
      const auto& need = st.descriptor->needs_context;
      if (need.empty() || !in[i] || in[i]->count(need)) continue;
      std::string providers;
      for (const auto* d : _registry.all())
        if (std::find(d->provides_context.begin(), d->provides_context.end(), need) !=
            d->provides_context.end())
          providers += (providers.empty() ? "" : ", ") + d->kind;
      std::string have;
      for (const auto& c : *in[i]) have += (have.empty() ? "" : ", ") + c;
      _problems.add(st.at, "stage '" + st.name + "' (" + st.kind + ") needs the " + need +
                               " context on every message, but a path reaches it without one (put " +
                               (providers.empty() ? std::string("a stage providing it") : providers) +
                               " before it; the messages carry: " + (have.empty() ? "none" : have) + ")");
    }
  }

  // Copies of a message share its context: a port feeding two stages must not
  // lead to a stage that writes the context.
  void check_fan_out(const pipeline_spec& spec) {
    std::map<std::pair<std::string, std::string>, std::vector<std::string>> receivers;
    for (const auto& e : spec.edges) receivers[{e.from, e.port}].push_back(e.to);
    for (const auto& [port, to] : receivers) {
      if (to.size() < 2) continue;
      std::set<std::string> reached(to.begin(), to.end());
      for (bool grew = true; grew;) {
        grew = false;
        for (const auto& e : spec.edges)
          if (reached.count(e.from) && reached.insert(e.to).second) grew = true;
      }
      for (const auto& name : reached) {
        const auto* st = spec.find_stage(name);
        if (!st->descriptor->mutates_context) continue;
        std::string list;
        for (const auto& t : to) list += (list.empty() ? "" : ", ") + t;
        const auto* from = spec.find_stage(port.first);
        _problems.add(from->at, "'" + port.first + "." + port.second + "' fans out to " + list +
                                    ": the copies would share one context, and stage '" + name + "' (" +
                                    st->kind + ") writes it; send it to one stage");
        break;
      }
    }
  }

  void build_settings(raw_doc& doc, pipeline_spec& spec) {
    const auto& schema = _registry.settings();
    std::vector<std::string> names;
    for (const auto& p : schema) names.push_back(p.name);
    for (const auto& p : schema) spec.settings.set(p.name, *p.default_value);
    for (auto& [file, kv] : doc.settings) {
      const auto key = kv.first.as<std::string>();
      auto it =
          std::find_if(schema.begin(), schema.end(), [&](const param_spec& p) { return p.name == key; });
      if (it == schema.end()) {
        _problems.add(file, kv.first, "unknown setting '" + key + "'" + did_you_mean(key, names));
        continue;
      }
      if (auto v = convert(*it, kv.second, file, "setting: ")) spec.settings.set(key, *v);
    }
  }

  void build_stages(raw_doc& doc, pipeline_spec& spec) {
    std::map<std::string, file_position> seen;
    for (auto& raw : doc.stages) {
      const auto at = pos_of(raw.file, raw.name_node);
      const std::string who = "stage '" + raw.name + "': ";
      if (auto [it, inserted] = seen.emplace(raw.name, at); !inserted) {
        _problems.add(
            at, "duplicate stage name '" + raw.name + "' (first defined at " + it->second.to_string() + ")");
        continue;
      }
      if (raw.name.empty() || raw.name.find_first_of(".*-> \t") != std::string::npos) {
        _problems.add(at, "stage name '" + raw.name + "' may not contain '.', '*', '-', '>' or spaces");
        continue;
      }
      if (!raw.body.IsMap()) {
        _problems.add(raw.file, raw.body, who + "a stage is a mapping with at least 'kind'");
        continue;
      }
      const auto problems_before = _problems.lines.size();
      stage_spec s;
      s.name = raw.name;
      s.at = at;
      auto kind_node = raw.body["kind"];
      if (!kind_node) {
        _problems.add(at, who + "missing 'kind'");
        continue;
      }
      auto kind = scalar(raw.file, kind_node, "kind");
      if (!kind) continue;
      s.kind = *kind;
      auto desc = _registry.find(s.kind);
      if (!desc.ok()) {
        _problems.add(raw.file, kind_node, who + desc.err().message);
        continue;
      }
      s.descriptor = *desc;
      s.conc = s.descriptor->default_concurrency;

      std::vector<std::string> allowed = k_engine_stage_keys;
      for (const auto& p : s.descriptor->params) allowed.push_back(p.name);
      std::set<std::string> given;
      for (const auto& entry : raw.body) {
        const auto pname = entry.first.as<std::string>();
        if (!given.insert(pname).second) {
          _problems.add(raw.file, entry.first, who + "parameter '" + pname + "' given twice");
          continue;
        }
        if (pname == "kind") continue;
        if (pname == "concurrency") {
          auto text = scalar(raw.file, entry.second, "concurrency");
          if (!text) continue;
          auto c = concurrency::parse(*text);
          if (!c) {
            _problems.add(
                raw.file, entry.second,
                who + "concurrency must be serial, unlimited or a number >= 1, got '" + *text + "'");
          } else {
            s.conc = *c;
          }
          continue;
        }
        if (pname == "key") {
          if (auto text = scalar(raw.file, entry.second, "key")) s.key = *text;
          continue;
        }
        if (pname == "max_in_flight") {
          auto text = scalar(raw.file, entry.second, "max_in_flight");
          auto v = text ? parse_integer(*text) : std::nullopt;
          if (text && (!v || *v < 1))
            _problems.add(raw.file, entry.second, who + "max_in_flight must be an integer >= 1");
          else if (v)
            s.max_in_flight = *v;
          continue;
        }
        auto pit = std::find_if(s.descriptor->params.begin(), s.descriptor->params.end(),
                                [&](const param_spec& p) { return p.name == pname; });
        if (pit == s.descriptor->params.end()) {
          _problems.add(raw.file, entry.first,
                        who + "unknown parameter '" + pname + "' for kind '" + s.kind + "'" +
                            did_you_mean(pname, allowed));
          continue;
        }
        if (auto v = convert(*pit, entry.second, raw.file, who)) s.params.set(pname, *v);
      }
      for (const auto& p : s.descriptor->params) {
        if (s.params.has(p.name) || given.count(p.name)) continue;  // given but invalid: reported above
        if (p.required())
          _problems.add(at, who + "missing required parameter '" + p.name + "' (" + p.doc + ")");
        else
          s.params.set(p.name, *p.default_value);
      }
      // An inline kind given a key but no concurrency: one ordered lane, as a
      // serial default would give (a keyed stage cannot run inline).
      if (!s.key.empty() && s.descriptor->runs_inline && !given.count("concurrency"))
        s.conc = concurrency::serial();
      if (!s.key.empty() && s.conc.kind == concurrency::mode::unlimited && !s.descriptor->async) {
        _problems.add(at,
                      who + "a keyed stage runs one lane per unit of concurrency: give it 'concurrency: N'");
      }
      if (s.descriptor->role == stage_role::source && !s.key.empty()) {
        _problems.add(at, who + "a source takes no 'key'");
      }
      // ports_from_params reads the parameters: only once they are all valid.
      if (_problems.lines.size() != problems_before) continue;
      s.ports = s.descriptor->ports_from_params ? s.descriptor->ports_from_params(s.params)
                                                : s.descriptor->output_ports;
      s.ports.push_back("error");
      spec.stages.push_back(std::move(s));
    }
    if (spec.stages.empty() && _problems.lines.empty())
      _problems.add(file_position{spec.file, 1}, "the pipeline has no stages");
  }

  struct endpoint {
    std::string stage;
    std::string port;  // "" when not given
  };

  std::optional<endpoint> parse_endpoint(std::string token, const file_position& at) {
    auto trim = [](std::string& s) {
      s.erase(0, s.find_first_not_of(" \t"));
      s.erase(s.find_last_not_of(" \t") + 1);
    };
    trim(token);
    if (token.empty()) {
      _problems.add(at, "empty stage name in flow line");
      return std::nullopt;
    }
    endpoint e;
    auto dot = token.find('.');
    e.stage = token.substr(0, dot);
    if (dot != std::string::npos) e.port = token.substr(dot + 1);
    return e;
  }

  void build_edges(raw_doc& doc, pipeline_spec& spec) {
    std::vector<std::string> names;
    for (const auto& s : spec.stages) names.push_back(s.name);
    std::vector<std::pair<std::string, file_position>> wildcard_error_targets;
    std::set<std::tuple<std::string, std::string, std::string>> seen;

    auto check_stage = [&](const std::string& name, const file_position& at) -> const stage_spec* {
      const auto* s = spec.find_stage(name);
      if (!s) _problems.add(at, "flow: unknown stage '" + name + "'" + did_you_mean(name, names));
      return s;
    };

    for (const auto& line : doc.flow) {
      std::vector<std::string> tokens;
      std::string rest = line.text;
      for (auto pos = rest.find("->"); pos != std::string::npos; pos = rest.find("->")) {
        tokens.push_back(rest.substr(0, pos));
        rest = rest.substr(pos + 2);
      }
      tokens.push_back(rest);
      if (tokens.size() < 2) {
        _problems.add(line.at, "flow line '" + line.text + "' needs at least 'a -> b'");
        continue;
      }
      std::vector<endpoint> eps;
      bool ok = true;
      for (auto& t : tokens) {
        auto e = parse_endpoint(t, line.at);
        if (!e)
          ok = false;
        else
          eps.push_back(*e);
      }
      if (!ok) continue;
      if (eps[0].stage == "*") {
        if (eps[0].port != "error" || eps.size() != 2 || !eps[1].port.empty()) {
          _problems.add(line.at, "a wildcard flow line is exactly '*.error -> <stage>'");
          continue;
        }
        if (check_stage(eps[1].stage, line.at)) wildcard_error_targets.emplace_back(eps[1].stage, line.at);
        continue;
      }
      for (std::size_t i = 0; i + 1 < eps.size(); ++i) {
        const auto& from = eps[i];
        const auto& to = eps[i + 1];
        const auto* fs_ = check_stage(from.stage, line.at);
        const auto* ts = check_stage(to.stage, line.at);
        if (!fs_ || !ts) continue;
        if (i + 2 == eps.size() && !to.port.empty()) {
          _problems.add(line.at, "flow: '" + to.stage + "." + to.port +
                                     "': a stage has one input; name a port only on the sending side");
          continue;
        }
        std::string port = from.port;
        if (port.empty()) {
          if (fs_->ports.size() <= 1) {  // only `error`
            _problems.add(line.at,
                          "flow: stage '" + from.stage + "' (" + fs_->kind + ") is a sink and has no output");
            continue;
          }
          port = fs_->ports.front();
        } else if (std::find(fs_->ports.begin(), fs_->ports.end(), port) == fs_->ports.end()) {
          _problems.add(line.at, "flow: stage '" + from.stage + "' (" + fs_->kind + ") has no port '" + port +
                                     "'" + did_you_mean(port, fs_->ports));
          continue;
        }
        if (ts->descriptor->role == stage_role::source) {
          _problems.add(line.at, "flow: stage '" + to.stage + "' is a source and takes no input");
          continue;
        }
        if (!seen.insert({from.stage, port, to.stage}).second) continue;
        spec.edges.push_back(edge_spec{from.stage, port, to.stage, line.at});
      }
    }
    for (const auto& [target, at] : wildcard_error_targets) {
      // Stages downstream of the target (e.g. `ack` after `publish`) keep their
      // error port to themselves: wiring it back to the target would be a cycle.
      std::set<std::string> downstream = {target};
      for (bool grew = true; grew;) {
        grew = false;
        for (const auto& e : spec.edges)
          if (downstream.count(e.from) && downstream.insert(e.to).second) grew = true;
      }
      for (const auto& s : spec.stages) {
        if (downstream.count(s.name)) continue;
        const bool connected = std::any_of(spec.edges.begin(), spec.edges.end(), [&](const edge_spec& e) {
          return e.from == s.name && e.port == "error";
        });
        if (connected) continue;
        if (!seen.insert({s.name, "error", target}).second) continue;
        spec.edges.push_back(edge_spec{s.name, "error", target, at});
      }
    }
  }

  void check_connected(const pipeline_spec& spec) {
    for (const auto& s : spec.stages) {
      const bool has_input = std::any_of(spec.edges.begin(), spec.edges.end(),
                                         [&](const edge_spec& e) { return e.to == s.name; });
      const bool has_output = std::any_of(spec.edges.begin(), spec.edges.end(), [&](const edge_spec& e) {
        return e.from == s.name && e.port != "error";
      });
      if (s.descriptor->role != stage_role::source && !has_input)
        _problems.add(s.at, "stage '" + s.name + "' is not connected: nothing flows into it");
      if (s.descriptor->role != stage_role::sink && !has_output)
        _problems.add(s.at, "stage '" + s.name + "' is not connected: its output goes nowhere");
    }
  }

  void check_cycles(const pipeline_spec& spec) {
    const auto n = spec.stages.size();
    std::vector<std::vector<std::size_t>> next(n);
    for (const auto& e : spec.edges) next[spec.index_of(e.from)].push_back(spec.index_of(e.to));
    std::vector<int> color(n, 0);  // 0 new, 1 on stack, 2 done
    std::vector<std::size_t> stack;
    std::function<bool(std::size_t)> visit = [&](std::size_t u) {
      color[u] = 1;
      stack.push_back(u);
      for (auto v : next[u]) {
        if (color[v] == 1) {
          std::string path;
          auto it = std::find(stack.begin(), stack.end(), v);
          for (; it != stack.end(); ++it) path += spec.stages[*it].name + " -> ";
          path += spec.stages[v].name;
          _problems.add(spec.stages[v].at, "the flow has a cycle: " + path);
          return true;
        }
        if (color[v] == 0 && visit(v)) return true;
      }
      stack.pop_back();
      color[u] = 2;
      return false;
    };
    for (std::size_t i = 0; i < n; ++i)
      if (color[i] == 0 && visit(i)) return;
  }

  const kind_registry& _registry;
  const load_options& _options;
  problems _problems;
};

}  // namespace

std::optional<std::string> substitute_env(std::string_view text, const load_options& options,
                                          std::string& problem) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '$' || i + 1 >= text.size() || text[i + 1] != '{') {
      out += text[i];
      continue;
    }
    const auto close = text.find('}', i + 2);
    if (close == std::string_view::npos) {
      problem = "unterminated '${' in '" + std::string(text) + "'";
      return std::nullopt;
    }
    std::string_view inner = text.substr(i + 2, close - i - 2);
    std::string_view name = inner;
    std::optional<std::string_view> fallback;
    if (auto sep = inner.find(":-"); sep != std::string_view::npos) {
      name = inner.substr(0, sep);
      fallback = inner.substr(sep + 2);
    }
    const bool valid_name = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
      return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    });
    if (!valid_name) {
      problem = "bad variable reference '${" + std::string(inner) + "}'";
      return std::nullopt;
    }
    std::optional<std::string> value;
    if (options.getenv) {
      value = options.getenv(std::string(name));
    } else if (const char* v = std::getenv(std::string(name).c_str())) {
      value = std::string(v);
    }
    if (!value || value->empty()) {
      if (!fallback) {
        if (value) {
          out += *value;
        } else {
          problem = "environment variable '" + std::string(name) + "' is not set and has no default (${" +
                    std::string(name) + ":-default})";
          return std::nullopt;
        }
      } else {
        out += *fallback;
      }
    } else {
      out += *value;
    }
    i = close;
  }
  return out;
}

result<pipeline_spec> load_pipeline_text(std::string_view yaml, const std::string& display_name,
                                         const std::string& base_dir, const kind_registry& registry,
                                         const load_options& options) {
  loader l(registry, options);
  // The loader checks shapes before reading values; a conversion it missed is
  // still an answer with the line, never an abort of `esflow validate`.
  try {
    return l.load(yaml, display_name, base_dir);
  } catch (const YAML::Exception& e) {
    return error::config(display_name + ":" + std::to_string(e.mark.line >= 0 ? e.mark.line + 1 : 0) + ": " +
                         e.msg);
  }
}

result<pipeline_spec> load_pipeline_file(const std::string& path, const kind_registry& registry,
                                         const load_options& options) {
  std::ifstream in(path);
  if (!in) return error::config("cannot read pipeline file '" + path + "'");
  std::stringstream buf;
  buf << in.rdbuf();
  auto base = fs::path(path).parent_path().string();
  if (base.empty()) base = ".";
  return load_pipeline_text(buf.str(), path, base, registry, options);
}

const stage_spec* pipeline_spec::find_stage(const std::string& n) const {
  for (const auto& s : stages)
    if (s.name == n) return &s;
  return nullptr;
}

std::size_t pipeline_spec::index_of(const std::string& n) const {
  for (std::size_t i = 0; i < stages.size(); ++i)
    if (stages[i].name == n) return i;
  return static_cast<std::size_t>(-1);
}

std::optional<concurrency> concurrency::parse(std::string_view text) {
  if (text == "serial") return serial();
  if (text == "unlimited") return unlimited();
  auto n = parse_integer(text);
  if (!n || *n < 1 || *n > 4096) return std::nullopt;
  return bounded(static_cast<std::size_t>(*n));
}

std::string concurrency::to_string() const {
  switch (kind) {
    case mode::serial:
      return "serial";
    case mode::unlimited:
      return "unlimited";
    case mode::bounded:
      return std::to_string(limit);
  }
  return "?";
}

}  // namespace esflow::graph
