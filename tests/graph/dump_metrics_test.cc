// Figures after a run (stage stats, Prometheus text) and the graph dumps
// (DOT through graphviz, JSON shape, Mermaid).
#include "graph/graph_dump.h"
#include "graph/node.h"
#include "tests/graph/graph_test_util.h"
#include "transport/node_host.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <regex>
#include <set>

namespace esflow::graph::testing {
namespace {

using namespace std::chrono_literals;

const char* k_pipeline =
    "pipeline: figures\n"
    "stages:\n"
    "  src: {kind: source.file, path: in.ndjson}\n"
    "  req: {kind: json.require, fields: [id]}\n"
    "  tag: {kind: json.set, field: seen, value: 'true'}\n"
    "  rt:\n"
    "    kind: route\n"
    "    field: type\n"
    "    routes: {a: alpha}\n"
    "  out_a: {kind: sink.null}\n"
    "  rest: {kind: sink.null}\n"
    "  errs: {kind: sink.null}\n"
    "flow:\n"
    "  - src -> req -> tag -> rt.alpha -> out_a\n"
    "  - rt.default -> rest\n"
    "  - \"*.error -> errs\"\n";

class dump_metrics_test : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string in;
    for (int i = 0; i < 100; ++i) {
      if (i % 10 == 0)
        in += "{\"no_id\":" + std::to_string(i) + "}\n";  // 10 errors
      else
        in += "{\"id\":" + std::to_string(i) + ",\"type\":\"" + (i % 2 ? "a" : "b") + "\"}\n";
    }
    dir.write("in.ndjson", in);
  }
  std::shared_ptr<node> run() {
    auto spec = load_ok(dir, "p.yaml", k_pipeline, reg);
    auto built = node::build(std::move(spec), services);
    if (!built.ok()) {
      ADD_FAILURE() << built.err().message;
      return nullptr;
    }
    std::shared_ptr<node> n(std::move(built).value());
    n->start();
    EXPECT_TRUE(n->wait_finished(deadline_in(10s)));
    return n;
  }

  temp_dir dir;
  kind_registry reg = test_registry();
  service_registry services;
};

TEST_F(dump_metrics_test, stage_stats_count_every_message_including_routed_errors) {
  auto n = run();
  ASSERT_NE(n, nullptr);
  auto t = [&](const std::string& s) { return n->find_stage(s)->stats().read(); };
  EXPECT_EQ(t("src").out, 100u);
  EXPECT_EQ(t("req").in, 100u);
  EXPECT_EQ(t("req").out, 90u);
  EXPECT_EQ(t("req").errors, 10u);
  EXPECT_EQ(t("tag").in, 90u);
  EXPECT_EQ(t("tag").out, 90u);
  EXPECT_EQ(t("rt").in, 90u);
  EXPECT_EQ(t("rt").out, 90u);
  EXPECT_EQ(t("out_a").in, 50u);  // odd i are "a" (none of them a multiple of 10)
  EXPECT_EQ(t("rest").in, 40u);
  EXPECT_EQ(t("errs").in, 10u);
  for (const auto& rt : n->stages()) {
    const auto s = rt->stats().read();
    EXPECT_EQ(s.in_flight(), 0) << rt->name();
    EXPECT_EQ(s.queued(), 0) << rt->name();
    if (rt->spec().descriptor->role != stage_role::source) {
      EXPECT_EQ(s.latency.count, s.in) << rt->name();
    }
  }
}

// --- Prometheus text exposition ------------------------------------------------

struct sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

double parse_value(const std::string& v) {
  if (v == "+Inf") return INFINITY;
  if (v == "-Inf") return -INFINITY;
  if (v == "NaN") return NAN;
  std::size_t used = 0;
  const double d = std::stod(v, &used);
  if (used != v.size()) throw std::invalid_argument("bad value '" + v + "'");
  return d;
}

// Checks the text line by line; fails the test on any malformed line.
std::vector<sample> parse_prometheus(const std::string& text, std::map<std::string, std::string>& types,
                                     std::set<std::string>& helps) {
  static const std::regex help_re(R"(^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .*$)");
  static const std::regex type_re(
      R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$)");
  static const std::regex sample_re(R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)( -?[0-9]+)?$)");
  static const std::regex label_re(R"re(^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$))re");
  std::vector<sample> out;
  std::istringstream in(text);
  int line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (line.empty()) continue;
    std::smatch m;
    if (line[0] == '#') {
      if (std::regex_match(line, m, help_re))
        helps.insert(m[1]);
      else if (std::regex_match(line, m, type_re))
        types[m[1]] = m[2];
      else
        ADD_FAILURE() << "line " << line_no << ": bad comment: " << line;
      continue;
    }
    if (!std::regex_match(line, m, sample_re)) {
      ADD_FAILURE() << "line " << line_no << ": not `name{labels} value`: " << line;
      continue;
    }
    sample s;
    s.name = m[1];
    std::string labels = m[3];
    while (!labels.empty()) {
      std::smatch lm;
      if (!std::regex_search(labels, lm, label_re)) {
        ADD_FAILURE() << "line " << line_no << ": bad labels: " << line;
        break;
      }
      s.labels[lm[1]] = lm[2];
      labels = lm.suffix();
    }
    try {
      s.value = parse_value(m[4]);
    } catch (const std::exception&) {
      ADD_FAILURE() << "line " << line_no << ": bad value: " << line;
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::string family_of(const std::string& name, const std::map<std::string, std::string>& types) {
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    const std::string sfx = suffix;
    if (name.size() > sfx.size() && name.compare(name.size() - sfx.size(), sfx.size(), sfx) == 0) {
      auto base = name.substr(0, name.size() - sfx.size());
      if (types.count(base) && types.at(base) == "histogram") return base;
    }
  }
  return name;
}

TEST_F(dump_metrics_test, metrics_text_is_valid_prometheus_exposition_with_stage_figures) {
  auto n = run();
  ASSERT_NE(n, nullptr);
  transport::node_host host(std::make_shared<transport::http_server>("127.0.0.1:0"));
  host.add_node(n);
  const auto text = host.metrics_text();
  std::map<std::string, std::string> types;
  std::set<std::string> helps;
  const auto samples = parse_prometheus(text, types, helps);
  ASSERT_FALSE(samples.empty()) << text;

  for (const auto& [family, type] :
       std::map<std::string, std::string>{{"esflow_stage_messages_in_total", "counter"},
                                          {"esflow_stage_messages_out_total", "counter"},
                                          {"esflow_stage_errors_total", "counter"},
                                          {"esflow_stage_in_flight", "gauge"},
                                          {"esflow_stage_queue_depth", "gauge"},
                                          {"esflow_stage_latency_seconds", "histogram"},
                                          {"esflow_pipeline_in_flight", "gauge"}}) {
    EXPECT_EQ(types[family], type) << family;
    EXPECT_TRUE(helps.count(family)) << "no HELP for " << family;
  }
  for (const auto& s : samples)
    EXPECT_TRUE(types.count(family_of(s.name, types))) << "no TYPE for " << s.name;

  auto value = [&](const std::string& name, const std::string& stage) -> double {
    for (const auto& s : samples)
      if (s.name == name && s.labels.count("stage") && s.labels.at("stage") == stage) {
        EXPECT_EQ(s.labels.at("pipeline"), "figures");
        return s.value;
      }
    ADD_FAILURE() << "no " << name << " for stage " << stage;
    return -1;
  };
  EXPECT_EQ(value("esflow_stage_messages_in_total", "req"), 100);
  EXPECT_EQ(value("esflow_stage_messages_out_total", "req"), 90);
  EXPECT_EQ(value("esflow_stage_errors_total", "req"), 10);
  EXPECT_EQ(value("esflow_stage_messages_in_total", "errs"), 10);
  EXPECT_EQ(value("esflow_stage_messages_in_total", "out_a"), 50);
  EXPECT_EQ(value("esflow_stage_in_flight", "rt"), 0);
  EXPECT_EQ(value("esflow_stage_latency_seconds_count", "req"), 100);

  // Histogram buckets: cumulative, ascending `le`, ending with +Inf == _count.
  std::map<std::string, std::vector<std::pair<double, double>>> buckets;  // stage -> (le, value)
  for (const auto& s : samples) {
    if (s.name != "esflow_stage_latency_seconds_bucket") continue;
    ASSERT_TRUE(s.labels.count("le")) << "bucket without le";
    buckets[s.labels.at("stage")].emplace_back(parse_value(s.labels.at("le")), s.value);
  }
  EXPECT_EQ(buckets.size(), n->stages().size());
  for (const auto& [stage, bs] : buckets) {
    ASSERT_GE(bs.size(), 2u) << stage;
    for (std::size_t i = 1; i < bs.size(); ++i) {
      EXPECT_LT(bs[i - 1].first, bs[i].first) << stage << " le not ascending";
      EXPECT_LE(bs[i - 1].second, bs[i].second) << stage << " buckets not cumulative";
    }
    EXPECT_TRUE(std::isinf(bs.back().first)) << stage << " last bucket is not +Inf";
    EXPECT_EQ(bs.back().second, value("esflow_stage_latency_seconds_count", stage)) << stage;
  }
}

// --- dumps -------------------------------------------------------------------------

bool on_path(const std::string& tool) {
  return std::system(("command -v " + tool + " >/dev/null 2>&1").c_str()) == 0;
}

TEST_F(dump_metrics_test, dot_dump_is_accepted_by_graphviz) {
  // graphviz is one of the packages deploy/install-deps.sh installs.
  ASSERT_TRUE(on_path("dot")) << "graphviz `dot` is not on PATH";
  auto n = run();
  ASSERT_NE(n, nullptr);
  for (const auto* live : {static_cast<const node*>(nullptr), static_cast<const node*>(n.get())}) {
    const auto dot = graph_dot(n->spec(), live);
    EXPECT_EQ(dot.rfind("digraph \"figures\" {", 0), 0u) << dot;
    // Labels break lines with DOT's \n escape, never a literal backslash before it.
    EXPECT_NE(dot.find("\\n"), std::string::npos) << dot;
    EXPECT_EQ(dot.find("\\\\n"), std::string::npos) << dot;
    for (const auto& e : n->spec().edges)
      EXPECT_NE(dot.find("\"" + e.from + "\" -> \"" + e.to + "\""), std::string::npos)
          << e.from << "->" << e.to;
    const auto in = dir.write("g.dot", dot);
    const auto out = dir.file("g.svg");
    const auto cmd = "dot -Tsvg " + in + " -o " + out + " 2>" + dir.file("dot.err");
    ASSERT_EQ(std::system(cmd.c_str()), 0) << read_file(dir.file("dot.err")) << "\n" << dot;
    const auto svg = read_file(out);
    EXPECT_NE(svg.find("<svg"), std::string::npos);
    EXPECT_NE(svg.find("json.require"), std::string::npos);
  }
}

TEST_F(dump_metrics_test, json_dump_has_the_documented_shape_and_live_figures) {
  auto n = run();
  ASSERT_NE(n, nullptr);
  const auto j = graph_json(n->spec(), n.get());
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j.at("pipeline"), "figures");
  ASSERT_TRUE(j.at("stages").is_array());
  ASSERT_EQ(j.at("stages").size(), n->spec().stages.size());
  for (const auto& s : j.at("stages")) {
    for (const char* key : {"name", "kind", "concurrency", "params", "stats"})
      EXPECT_TRUE(s.contains(key)) << key;
    EXPECT_TRUE(s.at("name").is_string());
    EXPECT_TRUE(s.at("kind").is_string());
    EXPECT_TRUE(s.at("concurrency").is_string());
    EXPECT_TRUE(s.at("params").is_object());
    for (const char* key : {"in", "out", "errors", "in_flight", "p50_us", "p99_us"})
      EXPECT_TRUE(s.at("stats").contains(key) && s.at("stats").at(key).is_number())
          << s.at("name") << "." << key;
  }
  const auto& req = j.at("stages").at(1);
  EXPECT_EQ(req.at("name"), "req");
  EXPECT_EQ(req.at("kind"), "json.require");
  EXPECT_EQ(req.at("params").at("fields"), nlohmann::json::array({"id"}));
  EXPECT_EQ(req.at("stats").at("in"), 100);
  EXPECT_EQ(req.at("stats").at("errors"), 10);
  EXPECT_EQ(j.at("stages").at(3).at("params").at("routes"), (nlohmann::json{{"a", "alpha"}}));

  ASSERT_TRUE(j.at("edges").is_array());
  std::set<std::string> edges;
  for (const auto& e : j.at("edges")) {
    for (const char* key : {"from", "port", "to"}) ASSERT_TRUE(e.at(key).is_string()) << key;
    edges.insert(e.at("from").get<std::string>() + "." + e.at("port").get<std::string>() + "->" +
                 e.at("to").get<std::string>());
  }
  EXPECT_EQ(edges.size(), n->spec().edges.size());
  for (const char* e : {"src.out->req", "req.out->tag", "tag.out->rt", "rt.alpha->out_a", "rt.default->rest",
                        "req.error->errs", "rt.error->errs"})
    EXPECT_TRUE(edges.count(e)) << e;

  // Without a live node the figures are zero but the shape is the same.
  const auto cold = graph_json(n->spec());
  EXPECT_EQ(cold.at("stages").at(1).at("stats").at("in"), 0);
  EXPECT_FALSE(cold.contains("state"));
}

TEST_F(dump_metrics_test, mermaid_dump_starts_with_flowchart_and_has_every_edge) {
  auto spec = load_ok(dir, "p.yaml", k_pipeline, reg);
  const auto text = graph_mermaid(spec);
  EXPECT_EQ(text.rfind("flowchart LR\n", 0), 0u) << text;
  auto id = [&](const std::string& name) { return "s" + std::to_string(spec.index_of(name)); };
  ASSERT_FALSE(spec.edges.empty());
  for (const auto& e : spec.edges) {
    std::string want;
    if (e.port == "error")
      want = id(e.from) + " -.->|error| " + id(e.to);
    else if (e.port == "out")
      want = id(e.from) + " --> " + id(e.to);
    else
      want = id(e.from) + " -->|" + e.port + "| " + id(e.to);
    EXPECT_NE(text.find("  " + want + "\n"), std::string::npos) << want << "\n" << text;
  }
  for (const auto& s : spec.stages)
    EXPECT_NE(text.find(id(s.name) + "[\"" + s.name + "<br/>"), std::string::npos);
}

}  // namespace
}  // namespace esflow::graph::testing
