#include "graph/graph_dump.h"

#include "graph/stage_descriptor.h"

namespace esflow::graph {
namespace {

nlohmann::json param_json(const param_value& v) {
  struct visitor {
    nlohmann::json operator()(const std::string& s) const { return s; }
    nlohmann::json operator()(std::int64_t i) const { return i; }
    nlohmann::json operator()(bool b) const { return b; }
    nlohmann::json operator()(const std::vector<std::string>& l) const { return l; }
    nlohmann::json operator()(const std::map<std::string, std::string>& m) const { return m; }
  };
  return std::visit(visitor{}, v);
}

std::string dot_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\n') {
      out += "\\n";  // DOT's line break inside a label
      continue;
    }
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

}  // namespace

nlohmann::json stats_json(const stage_stats& s) {
  const auto t = s.read();
  return {{"in", t.in},
          {"out", t.out},
          {"errors", t.errors},
          {"in_flight", std::max<std::int64_t>(0, t.in_flight())},
          {"queued", std::max<std::int64_t>(0, t.queued())},
          {"p50_us", t.latency.quantile_ns(0.50) / 1000.0},
          {"p99_us", t.latency.quantile_ns(0.99) / 1000.0}};
}

nlohmann::json graph_json(const pipeline_spec& spec, const node* live) {
  nlohmann::json stages = nlohmann::json::array();
  for (const auto& s : spec.stages) {
    nlohmann::json params = nlohmann::json::object();
    for (const auto& [k, v] : s.params.all()) params[k] = param_json(v);
    nlohmann::json st = {{"in", 0},     {"out", 0},      {"errors", 0},  {"in_flight", 0},
                         {"queued", 0}, {"p50_us", 0.0}, {"p99_us", 0.0}};
    if (live) {
      if (auto* rt = live->find_stage(s.name)) st = stats_json(rt->stats());
    }
    stages.push_back({{"name", s.name},
                      {"kind", s.kind},
                      {"role", std::string(to_string(s.descriptor->role))},
                      {"concurrency", s.conc.to_string()},
                      {"key", s.key.empty() ? nlohmann::json(nullptr) : nlohmann::json(s.key)},
                      {"async", s.descriptor->async},
                      {"ports", s.ports},
                      {"params", params},
                      {"stats", st}});
  }
  nlohmann::json edges = nlohmann::json::array();
  for (const auto& e : spec.edges) edges.push_back({{"from", e.from}, {"port", e.port}, {"to", e.to}});
  nlohmann::json out = {{"pipeline", spec.name}, {"stages", stages}, {"edges", edges}};
  if (live) {
    out["state"] = std::string(to_string(live->state()));
    out["in_flight"] = live->gate().in_flight();
    out["max_in_flight"] = live->gate().capacity();
  }
  return out;
}

std::string graph_dot(const pipeline_spec& spec, const node* live) {
  std::string out =
      "digraph \"" + dot_escape(spec.name) + "\" {\n  rankdir=LR;\n  node [shape=box, style=rounded];\n";
  for (const auto& s : spec.stages) {
    std::string label =
        s.name + "\n" + s.kind + " (" + s.conc.to_string() + (s.key.empty() ? "" : ", key " + s.key) + ")";
    if (live) {
      if (auto* rt = live->find_stage(s.name)) {
        auto st = stats_json(rt->stats());
        label += "\nin " + st["in"].dump() + " / out " + st["out"].dump() + " / err " + st["errors"].dump();
      }
    }
    const char* shape = s.descriptor->role == stage_role::source ? ", shape=cds"
                        : s.descriptor->role == stage_role::sink ? ", shape=folder"
                                                                 : "";
    out += "  \"" + dot_escape(s.name) + "\" [label=\"" + dot_escape(label) + "\"" + shape + "];\n";
  }
  for (const auto& e : spec.edges) {
    out += "  \"" + dot_escape(e.from) + "\" -> \"" + dot_escape(e.to) + "\"";
    if (e.port == "error")
      out += " [label=\"error\", style=dashed, color=red]";
    else if (e.port != "out")
      out += " [label=\"" + dot_escape(e.port) + "\"]";
    out += ";\n";
  }
  return out + "}\n";
}

std::string graph_mermaid(const pipeline_spec& spec) {
  std::string out = "flowchart LR\n";
  auto id = [&](const std::string& name) { return "s" + std::to_string(spec.index_of(name)); };
  for (const auto& s : spec.stages)
    out += "  " + id(s.name) + "[\"" + s.name + "<br/>" + s.kind + " (" + s.conc.to_string() + ")\"]\n";
  for (const auto& e : spec.edges) {
    if (e.port == "error")
      out += "  " + id(e.from) + " -.->|error| " + id(e.to) + "\n";
    else if (e.port != "out")
      out += "  " + id(e.from) + " -->|" + e.port + "| " + id(e.to) + "\n";
    else
      out += "  " + id(e.from) + " --> " + id(e.to) + "\n";
  }
  return out;
}

}  // namespace esflow::graph
