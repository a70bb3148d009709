// Pipeline file validation: every problem is reported as `file:line: what`,
// with a suggestion where one is close.
#include "graph/pipeline_loader.h"
#include "graph/stage_descriptor.h"
#include "tests/graph/graph_test_util.h"

#include <gtest/gtest.h>

namespace esflow::graph::testing {
namespace {

class loader_test : public ::testing::Test {
 protected:
  // Writes `yaml` as p.yaml and loads it; the load must fail with invalid_config.
  std::string load_error(const std::string& yaml, const load_options& options = {}) {
    path = dir.write("p.yaml", yaml);
    auto spec = load_pipeline_file(path, reg, options);
    EXPECT_FALSE(spec.ok()) << "expected " << path << " to be rejected";
    if (spec.ok()) return {};
    EXPECT_EQ(spec.err().code, errc::invalid_config);
    return spec.err().message;
  }
  result<pipeline_spec> load(const std::string& yaml, const load_options& options = {}) {
    path = dir.write("p.yaml", yaml);
    return load_pipeline_file(path, reg, options);
  }
  // "<path>:<line>: <what>"
  std::string at(int line, const std::string& what) const {
    return path + ":" + std::to_string(line) + ": " + what;
  }
  std::string at(const std::string& file, int line, const std::string& what) const {
    return dir.file(file) + ":" + std::to_string(line) + ": " + what;
  }

  temp_dir dir;
  kind_registry reg = test_registry();
  std::string path;
};

// A valid two-stage pipeline whose generator body is given as line 5.
std::string gen_to_null(const std::string& gen_extra, const std::string& out_extra = "") {
  return "pipeline: p\n"
         "stages:\n"
         "  gen:\n"
         "    kind: source.generator\n" +
         gen_extra +
         "  out:\n"
         "    kind: sink.null\n" +
         out_extra +
         "flow:\n"
         "  - gen -> out\n";
}

TEST_F(loader_test, accepts_a_valid_pipeline_with_defaults_filled_in) {
  auto spec = load(gen_to_null("    count: 7\n"));
  ASSERT_TRUE(spec.ok()) << spec.err().message;
  EXPECT_EQ(spec->name, "p");
  ASSERT_EQ(spec->stages.size(), 2u);
  EXPECT_EQ(spec->stages[0].params.integer("count"), 7);
  EXPECT_EQ(spec->stages[0].params.integer("rate"), 0);  // default
  EXPECT_EQ(spec->stages[0].at.line, 3);
  ASSERT_EQ(spec->edges.size(), 1u);
  EXPECT_EQ(spec->edges[0].from, "gen");
  EXPECT_EQ(spec->edges[0].port, "out");
  EXPECT_EQ(spec->edges[0].to, "out");
  EXPECT_EQ(spec->settings.integer("max_in_flight"), 4096);
}

TEST_F(loader_test, rejects_unknown_kind_with_suggestion) {
  auto msg = load_error(
      "pipeline: p\n"
      "stages:\n"
      "  gen:\n"
      "    kind: source.generatr\n"
      "  out:\n"
      "    kind: sink.null\n"
      "flow:\n"
      "  - gen -> out\n");
  EXPECT_EQ(msg, at(4, "stage 'gen': unknown kind 'source.generatr' (did you mean 'source.generator'?)"));
}

TEST_F(loader_test, rejects_unknown_kind_without_suggestion_when_nothing_is_close) {
  auto msg = load_error(
      "pipeline: p\n"
      "stages:\n"
      "  gen: {kind: source.generator}\n"
      "  out: {kind: quux.zap}\n"
      "flow:\n"
      "  - gen -> out\n");
  EXPECT_EQ(msg, at(4, "stage 'out': unknown kind 'quux.zap'"));
}

TEST_F(loader_test, rejects_unknown_parameter_with_suggestion) {
  auto msg = load_error(gen_to_null("    cout: 5\n"));
  EXPECT_EQ(
      msg,
      at(5, "stage 'gen': unknown parameter 'cout' for kind 'source.generator' (did you mean 'count'?)"));
}

TEST_F(loader_test, rejects_missing_required_parameter_at_the_stage) {
  auto msg = load_error(
      "pipeline: p\n"
      "stages:\n"
      "  gen:\n"
      "    kind: source.generator\n"
      "  out:\n"
      "    kind: sink.file\n"
      "flow:\n"
      "  - gen -> out\n");
  EXPECT_EQ(
      msg,
      at(5, "stage 'out': missing required parameter 'path' (file to write, relative to the pipeline file)"));
}

TEST_F(loader_test, rejects_integer_parameter_that_is_not_a_number) {
  auto msg = load_error(gen_to_null("    count: abc\n"));
  EXPECT_EQ(msg, at(5, "stage 'gen': parameter 'count' must be an integer, got 'abc'"));
}

TEST_F(loader_test, rejects_boolean_parameter_spelled_yes) {
  auto msg = load_error(
      "pipeline: p\n"
      "stages:\n"
      "  gen: {kind: source.generator}\n"
      "  out:\n"
      "    kind: sink.file\n"
      "    path: out.txt\n"
      "    append: yes\n"
      "flow:\n"
      "  - gen -> out\n");
  EXPECT_EQ(msg, at(7, "stage 'out': parameter 'append' must be true or false, got 'yes'"));
}

TEST_F(loader_test, rejects_list_parameter_given_a_scalar) {
  auto msg = load_error(
      "pipeline: p\n"
      "stages:\n"
      "  gen: {kind: source.generator}\n"
      "  req:\n"
      "    kind: json.require\n"
      "    fields: id\n"
      "  out: {kind: sink.null}\n"
      "flow:\n"
      "  - gen -> req -> out\n");
  EXPECT_EQ(msg, at(6, "stage 'req': parameter 'fields' must be a list"));
}

TEST_F(loader_test, rejects_map_parameter_given_a_scalar) {
  auto msg = load_error(
      "pipeline: p\n"
      "stages:\n"
      "  gen: {kind: source.generator}\n"
      "  rt:\n"
      "    kind: route\n"
      "    field: type\n"
      "    routes: a\n"
      "  out: {kind: sink.null}\n"
      "flow:\n"
      "  - gen -> rt.default -> out\n");
  EXPECT_EQ(msg, at(7, "stage 'rt': parameter 'routes' must be a mapping"));
}

TEST_F(loader_test, rejects_scalar_parameter_given_a_list) {
  auto msg = load_error(gen_to_null("    count: [1, 2]\n"));
  EXPECT_EQ(msg, at(5, "stage 'gen': parameter 'count' must be a integer, not a list"));
}

TEST_F(loader_test, rejects_choice_not_in_list_with_suggestion) {
  auto msg = load_error(
      "pipeline: p\n"
      "settings:\n"
      "  event_log: jetsteam\n" +
      gen_to_null("").substr(std::string("pipeline: p\n").size()));
  EXPECT_EQ(msg,
            at(3,
               "setting: parameter 'event_log' must be one of embedded|jetstream, got 'jetsteam' (did you "
               "mean 'jetstream'?)"));
}

TEST_F(loader_test, rejects_size_with_unknown_unit) {
  auto msg = load_error(
      "pipeline: p\n"
      "stages:\n"
      "  gen: {kind: source.generator}\n"
      "  sz:\n"
      "    kind: test.sized\n"
      "    buffer: 12XB\n"
      "  out: {kind: sink.null}\n"
      "flow:\n"
      "  - gen -> sz -> out\n");
  EXPECT_EQ(msg,
            at(6, "stage 'sz': parameter 'buffer' must be a size such as 65536, 64KiB or 1MiB, got '12XB'"));
}

TEST_F(loader_test, accepts_sizes_with_binary_and_decimal_units) {
  auto spec = load(
      "pipeline: p\n"
      "stages:\n"
      "  gen: {kind: source.generator}\n"
      "  sz: {kind: test.sized, buffer: 2MiB}\n"
      "  out: {kind: sink.null}\n"
      "flow:\n"
      "  - gen -> sz -> out\n");
  ASSERT_TRUE(spec.ok()) << spec.err().message;
  EXPECT_EQ(spec->find_stage("sz")->params.integer("buffer"), 2 * 1024 * 1024);
}

TEST_F(loader_test, rejects_out_of_range_values) {
  auto msg = load_error(
      "pipeline: p\n"
      "settings:\n"
      "  max_in_flight: 0\n"
      "stages:\n"
      "  gen: {kind: source.generator}\n"
      "  slow:\n"
      "    kind: delay\n"
      "    micros: 70000000\n"
      "  out: {kind: sink.null}\n"
      "flow:\n"
      "  - gen -> slow -> out\n");
  EXPECT_EQ(msg, at(3, "setting: parameter 'max_in_flight' must be between 1 and 16777216, got 0") + "\n" +
                     at(8, "stage 'slow': parameter 'micros' must be between 0 and 60000000, got 70000000"));
}

TEST_F(loader_test, rejects_bad_concurrency) {
  auto msg = load_error(gen_to_null("", "    concurrency: lots\n"));
  EXPECT_EQ(msg, at(7, "stage 'out': concurrency must be serial, unlimited or a number >= 1, got 'lots'"));
}

TEST_F(loader_test, rejects_unknown_port_with_suggestion) {
  auto msg = load_error(
      "pipeline: p\n"
      "stages:\n"
      "  gen: {kind: source.generator}\n"
      "  req: {kind: json.require, fields: [id]}\n"
      "  out: {kind: sink.null}\n"
      "  errs: {kind: sink.null}\n"
      "flow:\n"
      "  - gen -> req -> out\n"
      "  - req.eror -> errs\n");
  EXPECT_EQ(msg, at(9, "flow: stage 'req' (json.require) has no port 'eror' (did you mean 'error'?)"));
}

TEST_F(loader_test, rejects_unknown_stage_in_flow_with_suggestion) {
  auto msg = load_error(
      "pipeline: p\n"
      "stages:\n"
      "  gen: {kind: source.generator}\n"
      "  out: {kind: sink.null}\n"
      "flow:\n"
      "  - gen -> outt\n");
  EXPECT_EQ(msg, at(6, "flow: unknown stage 'outt' (did you mean 'out'?)"));
}

TEST_F(loader_test, rejects_port_on_a_flow_target) {
  auto msg = load_error(
      "pipeline: p\n"
      "stages:\n"
      "  gen: {kind: source.generator}\n"
      "  out: {kind: sink.null}\n"
      "flow:\n"
      "  - gen -> out.in\n");
  EXPECT_EQ(msg, at(6, "flow: 'out.in': a stage has one input; name a port only on the sending side"));
}

TEST_F(loader_test, rejects_sink_used_as_sender) {
  auto msg = load_error(
      "pipeline: p\n"
      "stages:\n"
      "  gen: {kind: source.generator}\n"
      "  out: {kind: sink.null}\n"
      "  more: {kind: sink.null}\n"
      "flow:\n"
      "  - gen -> out\n"
      "  - out -> more\n");
  EXPECT_EQ(msg, at(8, "flow: stage 'out' (sink.null) is a sink and has no output"));
}

TEST_F(loader_test, rejects_source_used_as_target) {
  auto msg = load_error(
      "pipeline: p\n"
      "stages:\n"
      "  gen: {kind: source.generator}\n"
      "  gen2: {kind: source.generator}\n"
      "  out: {kind: sink.null}\n"
      "flow:\n"
      "  - gen -> out\n"
      "  - gen -> gen2 -> out\n");
  EXPECT_EQ(msg, at(8, "flow: stage 'gen2' is a source and takes no input"));
}

TEST_F(loader_test, rejects_unconnected_stages_both_ways) {
  auto msg = load_error(
      "pipeline: p\n"
      "stages:\n"
      "  gen: {kind: source.generator}\n"
      "  lonely: {kind: noop}\n"
      "  out: {kind: sink.null}\n"
      "  src2: {kind: source.generator}\n"
      "flow:\n"
      "  - gen -> out\n");
  EXPECT_EQ(msg, at(4, "stage 'lonely' is not connected: nothing flows into it") + "\n" +
                     at(4, "stage 'lonely' is not connected: its output goes nowhere") + "\n" +
                     at(6, "stage 'src2' is not connected: its output goes nowhere"));
}

TEST_F(loader_test, rejects_cycle_and_shows_its_path) {
  auto msg = load_error(
      "pipeline: p\n"
      "stages:\n"
      "  gen: {kind: source.generator}\n"
      "  a: {kind: noop}\n"
      "  b: {kind: noop}\n"
      "  c: {kind: noop}\n"
      "  out: {kind: sink.null}\n"
      "flow:\n"
      "  - gen -> a -> b -> c -> out\n"
      "  - c.error -> a\n");
  EXPECT_EQ(msg, at(4, "the flow has a cycle: a -> b -> c -> a"));
}

TEST_F(loader_test, rejects_duplicate_stage_names_in_one_file) {
  auto msg = load_error(
      "pipeline: p\n"
      "stages:\n"
      "  gen: {kind: source.generator}\n"
      "  out: {kind: sink.null}\n"
      "  out:\n"
      "    kind: sink.file\n"
      "    path: x.txt\n"
      "flow:\n"
      "  - gen -> out\n");
  EXPECT_EQ(msg, at(5, "duplicate stage name 'out' (first defined at " + path + ":4)"));
}

TEST_F(loader_test, rejects_duplicate_stage_names_across_an_include) {
  dir.write("common.yaml",
            "stages:\n"
            "  errs: {kind: sink.null}\n"
            "  out: {kind: sink.null}\n");
  auto msg = load_error(
      "pipeline: p\n"
      "include: [common.yaml]\n"
      "stages:\n"
      "  gen: {kind: source.generator}\n"
      "  out: {kind: sink.null}\n"
      "flow:\n"
      "  - gen -> out\n");
  EXPECT_EQ(msg, at(5, "duplicate stage name 'out' (first defined at " + dir.file("common.yaml") + ":3)"));
}

TEST_F(loader_test, rejects_duplicate_parameter_in_a_stage) {
  auto msg = load_error(gen_to_null("    count: 1\n    count: 2\n"));
  EXPECT_EQ(msg, at(6, "stage 'gen': parameter 'count' given twice"));
}

// yaml-cpp 0.7 keeps duplicate mapping keys: iteration sees both, operator[]
// only the first. The loader must not let either copy win silently.
TEST_F(loader_test, rejects_duplicate_top_level_key) {
  dir.write("a.yaml", "stages:\n  extra: {kind: sink.null}\n");
  auto msg = load_error(
      "pipeline: p\n"
      "include: [a.yaml]\n"
      "stages:\n"
      "  gen: {kind: source.generator}\n"
      "  out: {kind: sink.null}\n"
      "flow:\n"
      "  - gen -> out\n"
      "include: [b.yaml]\n");
  EXPECT_EQ(msg, at(8, "duplicate key 'include' (first at " + path + ":2)"));
}

TEST_F(loader_test, rejects_duplicate_setting_in_one_file) {
  auto msg = load_error(
      "pipeline: p\n"
      "settings:\n"
      "  max_in_flight: 10\n"
      "  max_in_flight: 20\n" +
      gen_to_null("").substr(std::string("pipeline: p\n").size()));
  EXPECT_EQ(msg, at(4, "duplicate key 'max_in_flight' (first at " + path + ":3)"));
}

TEST_F(loader_test, rejects_duplicate_key_in_a_map_parameter) {
  auto msg = load_error(
      "pipeline: p\n"
      "stages:\n"
      "  gen: {kind: source.generator}\n"
      "  rt:\n"
      "    kind: route\n"
      "    field: type\n"
      "    routes:\n"
      "      a: left\n"
      "      a: right\n"
      "  out: {kind: sink.null}\n"
      "flow:\n"
      "  - gen -> rt.default -> out\n"
      "  - rt.left -> out\n"
      "  - rt.right -> out\n");
  EXPECT_EQ(msg, at(9, "duplicate key 'a' (first at " + path + ":8)"));
}

TEST_F(loader_test, substitutes_env_default_when_unset) {
  load_options opts;
  opts.getenv = [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
  auto spec = load(gen_to_null("    count: ${GEN_COUNT:-3}\n"), opts);
  ASSERT_TRUE(spec.ok()) << spec.err().message;
  EXPECT_EQ(spec->find_stage("gen")->params.integer("count"), 3);
}

TEST_F(loader_test, substitutes_env_value_when_set) {
  load_options opts;
  opts.getenv = [](const std::string& name) -> std::optional<std::string> {
    if (name == "GEN_COUNT") return "42";
    if (name == "PIPE") return "from-env";
    return std::nullopt;
  };
  auto spec = load("pipeline: ${PIPE}\n" + gen_to_null("    count: ${GEN_COUNT:-3}\n").substr(12), opts);
  ASSERT_TRUE(spec.ok()) << spec.err().message;
  EXPECT_EQ(spec->name, "from-env");
  EXPECT_EQ(spec->find_stage("gen")->params.integer("count"), 42);
}

TEST_F(loader_test, rejects_unset_env_without_default_naming_the_variable) {
  load_options opts;
  opts.getenv = [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
  auto msg = load_error(gen_to_null("    body: \"${GEN_BODY}\"\n"), opts);
  EXPECT_EQ(msg,
            at(5,
               "stage 'gen': parameter 'body' environment variable 'GEN_BODY' is not set and has no default "
               "(${GEN_BODY:-default})"));
}

TEST_F(loader_test, substituted_value_is_validated_like_a_literal) {
  load_options opts;
  opts.getenv = [](const std::string& name) -> std::optional<std::string> {
    return name == "GEN_COUNT" ? std::optional<std::string>("many") : std::nullopt;
  };
  auto msg = load_error(gen_to_null("    count: ${GEN_COUNT:-3}\n"), opts);
  EXPECT_EQ(msg, at(5, "stage 'gen': parameter 'count' must be an integer, got 'many'"));
}

TEST_F(loader_test, merges_includes_and_the_including_file_wins_settings) {
  dir.write("base.yaml",
            "pipeline: base\n"
            "settings:\n"
            "  max_in_flight: 10\n"
            "  drain_timeout: 5s\n"
            "stages:\n"
            "  gen: {kind: source.generator, count: 9}\n"
            "flow:\n"
            "  - gen -> out\n");
  auto spec = load(
      "pipeline: main\n"
      "include: [base.yaml]\n"
      "settings:\n"
      "  max_in_flight: 20\n"
      "stages:\n"
      "  out: {kind: sink.null}\n");
  ASSERT_TRUE(spec.ok()) << spec.err().message;
  EXPECT_EQ(spec->name, "main");
  EXPECT_EQ(spec->settings.integer("max_in_flight"), 20);
  EXPECT_EQ(spec->settings.integer("drain_timeout"), 5000);
  ASSERT_EQ(spec->stages.size(), 2u);
  EXPECT_EQ(spec->stages[0].name, "gen");
  EXPECT_EQ(spec->stages[0].at.file, dir.file("base.yaml"));
  EXPECT_EQ(spec->stages[0].params.integer("count"), 9);
  ASSERT_EQ(spec->edges.size(), 1u);
  EXPECT_EQ(spec->edges[0].at.to_string(), dir.file("base.yaml") + ":8");
}

TEST_F(loader_test, reports_problems_inside_an_include_at_the_included_file) {
  dir.write("base.yaml",
            "stages:\n"
            "  gen: {kind: source.generator, cuont: 9}\n");
  auto msg = load_error(
      "pipeline: main\n"
      "include: [base.yaml]\n"
      "stages:\n"
      "  out: {kind: sink.null}\n"
      "flow:\n"
      "  - gen -> out\n");
  EXPECT_EQ(msg,
            at("base.yaml", 2,
               "stage 'gen': unknown parameter 'cuont' for kind 'source.generator' (did you mean 'count'?)"));
}

TEST_F(loader_test, rejects_include_cycle) {
  dir.write("a.yaml", "include: [b.yaml]\n");
  dir.write("b.yaml", "settings: {}\ninclude: [a.yaml]\n");
  auto msg = load_error(
      "pipeline: p\n"
      "include: [a.yaml]\n" +
      gen_to_null("").substr(std::string("pipeline: p\n").size()));
  EXPECT_EQ(msg, at("b.yaml", 2, "include cycle: 'a.yaml' includes itself"));
}

TEST_F(loader_test, rejects_file_that_includes_itself) {
  auto msg = load_error("pipeline: p\ninclude: [p.yaml]\n" + gen_to_null("").substr(12));
  EXPECT_EQ(msg, at(2, "include cycle: 'p.yaml' includes itself"));
}

TEST_F(loader_test, rejects_missing_include) {
  auto msg = load_error("pipeline: p\ninclude: [nope.yaml]\n" + gen_to_null("").substr(12));
  EXPECT_EQ(msg, at(2, "cannot read included file '" + dir.file("nope.yaml") + "'"));
}

TEST_F(loader_test, rejects_unknown_setting_with_suggestion) {
  auto msg = load_error("pipeline: p\nsettings:\n  max_inflight: 5\n" + gen_to_null("").substr(12));
  EXPECT_EQ(msg, at(3, "unknown setting 'max_inflight' (did you mean 'max_in_flight'?)"));
}

TEST_F(loader_test, rejects_unknown_top_level_key_with_suggestion) {
  auto msg = load_error(
      "pipeline: p\n"
      "stages:\n"
      "  gen: {kind: source.generator}\n"
      "  out: {kind: sink.null}\n"
      "flw:\n"
      "  - gen -> out\n");
  EXPECT_EQ(msg, at(5, "unknown top-level key 'flw' (did you mean 'flow'?)"));
}

TEST_F(loader_test, rejects_yaml_syntax_error_with_its_line) {
  auto msg = load_error(
      "pipeline: p\n"
      "stages:\n"
      "  gen: {kind: source.generator}\n"
      "  out: {kind: sink.null\n"
      "flow:\n"
      "  - gen -> out\n");
  EXPECT_EQ(msg.rfind(path + ":", 0), 0u) << msg;
  EXPECT_NE(msg.find("YAML syntax error: "), std::string::npos) << msg;
  // The parser notices the unclosed '{' on line 4 or where the flow mapping breaks (line 5).
  const auto line = std::stoi(msg.substr(path.size() + 1));
  EXPECT_GE(line, 4) << msg;
  EXPECT_LE(line, 5) << msg;
}

TEST_F(loader_test, rejects_keyed_stage_with_unlimited_concurrency) {
  auto msg = load_error(
      "pipeline: p\n"
      "stages:\n"
      "  gen: {kind: source.generator}\n"
      "  by_key:\n"
      "    kind: noop\n"
      "    key: message\n"
      "  out: {kind: sink.null}\n"
      "flow:\n"
      "  - gen -> by_key -> out\n");
  EXPECT_EQ(msg, at(4,
                    "stage 'by_key': a keyed stage runs one lane per unit of concurrency: give it "
                    "'concurrency: N'"));
}

TEST_F(loader_test, accepts_keyed_async_stage_with_unlimited_concurrency) {
  auto spec = load(
      "pipeline: p\n"
      "stages:\n"
      "  gen: {kind: source.generator}\n"
      "  hold: {kind: delay, key: message}\n"
      "  out: {kind: sink.null}\n"
      "flow:\n"
      "  - gen -> hold -> out\n");
  ASSERT_TRUE(spec.ok()) << spec.err().message;
  EXPECT_EQ(spec->find_stage("hold")->key, "message");
}

TEST_F(loader_test, reports_several_problems_at_once) {
  auto msg = load_error(
      "pipeline: p\n"
      "settings:\n"
      "  drain_timout: 1s\n"
      "stages:\n"
      "  gen:\n"
      "    kind: source.generator\n"
      "    count: lots\n"
      "  mid:\n"
      "    kind: nop\n"
      "  out:\n"
      "    kind: sink.file\n"
      "flow:\n"
      "  - gen -> mid -> out\n");
  EXPECT_EQ(msg, at(3, "unknown setting 'drain_timout' (did you mean 'drain_timeout'?)") + "\n" +
                     at(7, "stage 'gen': parameter 'count' must be an integer, got 'lots'") + "\n" +
                     at(9, "stage 'mid': unknown kind 'nop' (did you mean 'noop'?)") + "\n" +
                     at(10,
                        "stage 'out': missing required parameter 'path' (file to write, relative to the "
                        "pipeline file)"));
}

TEST_F(loader_test, wildcard_error_line_connects_every_unconnected_error_port) {
  auto spec = load(
      "pipeline: p\n"
      "stages:\n"
      "  gen: {kind: source.generator}\n"
      "  req: {kind: json.require, fields: [i]}\n"
      "  set: {kind: json.set, field: f, value: '1'}\n"
      "  out: {kind: sink.null}\n"
      "  errs: {kind: sink.null}\n"
      "  req_errs: {kind: sink.null}\n"
      "flow:\n"
      "  - gen -> req -> set -> out\n"
      "  - req.error -> req_errs\n"
      "  - \"*.error -> errs\"\n");
  ASSERT_TRUE(spec.ok()) << spec.err().message;
  std::vector<std::string> error_edges;
  for (const auto& e : spec->edges)
    if (e.port == "error") error_edges.push_back(e.from + "->" + e.to);
  // req keeps its own error edge; errs does not feed itself.
  EXPECT_EQ(error_edges, (std::vector<std::string>{"req->req_errs", "gen->errs", "set->errs", "out->errs",
                                                   "req_errs->errs"}));
}

}  // namespace
}  // namespace esflow::graph::testing
