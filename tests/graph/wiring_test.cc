// Load-time checks that make node kinds plug-ins safely: node-kind sections
// and settings, the contexts a stage needs on every path, and fan-out in
// front of a stage that writes the shared context. Each is a file:line error.
#include "graph/pipeline_loader.h"
#include "tests/graph/graph_test_util.h"

#include <gtest/gtest.h>

namespace esflow::graph::testing {
namespace {

// A node kind of the tests: section `widgets:` (a mapping; `bad: ...` inside
// is reported at its line), setting `widget_limit`, stage `widget.sink`.
node_kind_descriptor widget_kind() {
  node_kind_descriptor d;
  d.name = "widget";
  d.description = "test node kind";
  d.sections = {"widgets"};
  d.settings = {int_param("widget_limit", 3, "a kind's own setting", 1, 10)};
  d.check_section = [](const std::string& name, const YAML::Node& section, const std::string& file,
                       const std::string&) {
    std::vector<std::string> problems;
    if (!section) {
      problems.push_back(file + ":1: a widget pipeline needs a '" + name + "' section");
      return problems;
    }
    for (const auto& item : section)
      if (item.first.as<std::string>() == "bad")
        problems.push_back(file + ":" + std::to_string(item.first.Mark().line + 1) + ": " + name +
                           ": 'bad' is not a widget");
    return problems;
  };
  return d;
}

// A transform that leaves the "saga" context (another kind's).
stage_descriptor saga_maker() {
  stage_descriptor d;
  d.kind = "test.saga_context";
  d.description = "leaves another kind's context";
  d.provides_context = {"saga"};
  d.mutates_context = true;
  d.make = [](const stage_init&) -> result<std::unique_ptr<stage>> {
    return std::unique_ptr<stage>(new stage());
  };
  return d;
}

stage_descriptor widget_sink() {
  stage_descriptor d;
  d.kind = "widget.sink";
  d.node_kind = "widget";
  d.description = "the widget kind's sink";
  d.role = stage_role::sink;
  d.make = [](const stage_init&) -> result<std::unique_ptr<stage>> {
    return std::unique_ptr<stage>(new stage());
  };
  return d;
}

class wiring_test : public ::testing::Test {
 protected:
  wiring_test() {
    EXPECT_TRUE(reg.add(widget_kind()).ok());
    EXPECT_TRUE(reg.add(saga_maker()).ok());
    EXPECT_TRUE(reg.add(widget_sink()).ok());
  }
  result<pipeline_spec> load(const std::string& yaml) {
    path = dir.write("p.yaml", yaml);
    return load_pipeline_file(path, reg);
  }
  std::string load_error(const std::string& yaml) {
    auto spec = load(yaml);
    EXPECT_FALSE(spec.ok()) << "expected the pipeline to be rejected";
    if (spec.ok()) return {};
    EXPECT_EQ(spec.err().code, errc::invalid_config);
    return spec.err().message;
  }
  std::string at(int line, const std::string& what) const {
    return path + ":" + std::to_string(line) + ": " + what;
  }

  temp_dir dir;
  kind_registry reg = test_registry();
  std::string path;
};

// The aggregate pipeline's stages, with `flow` lines of the test's choosing.
std::string aggregate_pipeline(const std::string& flow, const std::string& extra_stages = "") {
  return "pipeline: p\n"  // 1
         "aggregates:\n"  // 2
         "  Account: { program: " ESFLOW_SOURCE_DIR
         "/pipelines/programs/account.lua }\n"                         // 3
         "stages:\n"                                                   // 4
         "  src: { kind: source.generator, count: 1 }\n"               // 5
         "  tenant: { kind: tenant.gate }\n"                           // 6
         "  decode: { kind: decode.command }\n"                        // 7
         "  rehydrate: { kind: aggregate.rehydrate, key: message }\n"  // 8
         "  decide: { kind: aggregate.decide, key: message }\n"        // 9
         "  commit: { kind: aggregate.commit, key: message }\n"        // 10
         "  answer: { kind: aggregate.answer }\n"                      // 11
         "  out: { kind: sink.null }\n" +                              // 12
         extra_stages +
         "flow:\n" + flow;
}

TEST_F(wiring_test, the_shipped_order_loads) {
  auto spec = load(
      aggregate_pipeline("  - src -> tenant -> decode -> rehydrate -> decide -> commit -> answer -> out\n"
                         "  - \"*.error -> answer\"\n"));
  ASSERT_TRUE(spec.ok()) << spec.err().message;
  ASSERT_EQ(spec->node_kinds.size(), 1U);
  EXPECT_EQ(spec->node_kinds[0]->name, "aggregate");
  EXPECT_TRUE(spec->make_context) << "the aggregate kind's context";
}

// The aggregate pipeline's stages without decode.command and rehydrate.
std::string without_decode(const std::string& middle, const std::string& flow) {
  return "pipeline: p\n"  // 1
         "aggregates:\n"  // 2
         "  Account: { program: " ESFLOW_SOURCE_DIR
         "/pipelines/programs/account.lua }\n"                   // 3
         "stages:\n"                                             // 4
         "  src: { kind: source.generator, count: 1 }\n"         // 5
         "  tenant: { kind: tenant.gate }\n" +                   // 6
         middle +                                                // 7
         "  decide: { kind: aggregate.decide, key: message }\n"  // 8
         "  commit: { kind: aggregate.commit, key: message }\n"  // 9
         "  answer: { kind: aggregate.answer }\n"                // 10
         "  out: { kind: sink.null }\n"                          // 11
         "flow:\n" +
         flow;
}

TEST_F(wiring_test, an_aggregate_stage_without_decode_before_it_is_a_load_error) {
  auto msg =
      load_error(without_decode("  rehydrate: { kind: aggregate.rehydrate, key: message }\n",
                                "  - src -> tenant -> rehydrate -> decide -> commit -> answer -> out\n"));
  EXPECT_NE(msg.find(at(7,
                        "stage 'rehydrate' (aggregate.rehydrate) needs the command context on every message, "
                        "but a path reaches it without one (put decode.command before it; the messages "
                        "carry: ingest)")),
            std::string::npos)
      << msg;
}

TEST_F(wiring_test, one_path_without_decode_is_enough_to_refuse) {
  auto msg = load_error(
      aggregate_pipeline("  - src -> tenant -> decode -> rehydrate -> decide -> commit -> answer -> out\n"
                         "  - tenant.error -> rehydrate\n"));
  EXPECT_NE(msg.find(at(8, "stage 'rehydrate' (aggregate.rehydrate) needs the command context")),
            std::string::npos)
      << msg;
}

TEST_F(wiring_test, an_error_port_passes_on_only_what_its_stage_received) {
  // decode's rejections never got a command: they cannot feed rehydrate.
  auto msg = load_error(
      aggregate_pipeline("  - src -> tenant -> decode -> rehydrate -> decide -> commit -> answer -> out\n"
                         "  - decode.error -> rehydrate\n"));
  EXPECT_NE(msg.find(at(8, "stage 'rehydrate' (aggregate.rehydrate) needs the command context")),
            std::string::npos)
      << msg;
}

TEST_F(wiring_test, another_kinds_context_is_a_type_mismatch_at_load) {
  auto msg = load_error(without_decode("  saga: { kind: test.saga_context }\n",
                                       "  - src -> tenant -> saga -> decide -> commit -> answer -> out\n"));
  EXPECT_NE(
      msg.find(at(8,
                  "stage 'decide' (aggregate.decide) needs the aggregate context on every message, but a "
                  "path reaches it without one (put aggregate.rehydrate before it; the messages carry: "
                  "ingest, saga)")),
      std::string::npos)
      << msg;
}

TEST_F(wiring_test, fan_out_in_front_of_a_stage_that_writes_the_context_is_refused) {
  auto msg = load_error(
      aggregate_pipeline("  - src -> tenant -> decode -> rehydrate -> decide -> commit -> answer -> out\n"
                         "  - tenant -> copy\n",
                         "  copy: { kind: sink.null }\n"));
  EXPECT_NE(
      msg.find(at(6,
                  "'tenant.out' fans out to decode, copy: the copies would share one context, and stage "
                  "'answer' (aggregate.answer) writes it; send it to one stage")),
      std::string::npos)
      << msg;
}

TEST_F(wiring_test, fan_out_to_stages_that_only_read_is_fine) {
  auto spec = load(
      "pipeline: p\nstages:\n  src: { kind: source.generator, count: 1 }\n  a: { kind: sink.null }\n"
      "  b: { kind: sink.null }\nflow:\n  - src -> a\n  - src -> b\n");
  ASSERT_TRUE(spec.ok()) << spec.err().message;
  EXPECT_TRUE(spec->node_kinds.empty());
}

TEST_F(wiring_test, a_node_kinds_section_is_checked_by_the_kind_with_its_line) {
  auto msg = load_error(
      "pipeline: p\n"
      "widgets:\n"
      "  good: 1\n"
      "  bad: 2\n"
      "stages:\n  src: { kind: source.generator, count: 1 }\n  w: { kind: widget.sink }\nflow:\n  - src -> "
      "w\n");
  EXPECT_EQ(msg, at(4, "widgets: 'bad' is not a widget"));
}

TEST_F(wiring_test, a_kind_used_by_its_stages_without_its_section_is_asked_too) {
  auto msg = load_error(
      "pipeline: p\nstages:\n  src: { kind: source.generator, count: 1 }\n  w: { kind: widget.sink }\n"
      "flow:\n  - src -> w\n");
  EXPECT_EQ(msg, at(1, "a widget pipeline needs a 'widgets' section"));
}

TEST_F(wiring_test, a_section_alone_makes_the_pipeline_use_its_kind) {
  auto spec = load(
      "pipeline: p\nwidgets: {}\nsettings: { widget_limit: 5 }\n"
      "stages:\n  src: { kind: source.generator, count: 1 }\n  out: { kind: sink.null }\n"
      "flow:\n  - src -> out\n");
  ASSERT_TRUE(spec.ok()) << spec.err().message;
  ASSERT_EQ(spec->node_kinds.size(), 1U);
  EXPECT_EQ(spec->node_kinds[0]->name, "widget");
  EXPECT_EQ(spec->settings.integer("widget_limit"), 5);
}

TEST_F(wiring_test, unknown_sections_and_settings_name_the_known_ones) {
  auto msg = load_error(
      "pipeline: p\nwidget: {}\n"
      "stages:\n  src: { kind: source.generator, count: 1 }\n  out: { kind: sink.null }\n"
      "flow:\n  - src -> out\n");
  EXPECT_NE(msg.find(at(2, "unknown top-level key 'widget' (did you mean 'widgets'?)")), std::string::npos)
      << msg;
  msg = load_error(
      "pipeline: p\nwidgets: {}\nsettings: { widget_limt: 5 }\n"
      "stages:\n  src: { kind: source.generator, count: 1 }\n  out: { kind: sink.null }\n"
      "flow:\n  - src -> out\n");
  EXPECT_NE(msg.find(at(3, "unknown setting 'widget_limt' (did you mean 'widget_limit'?)")),
            std::string::npos)
      << msg;
}

TEST(kind_registry, sections_and_settings_have_one_owner) {
  kind_registry reg;
  ASSERT_TRUE(reg.add(widget_kind()).ok());
  auto twin = widget_kind();
  twin.name = "widget2";
  auto clash = reg.add(twin);
  ASSERT_FALSE(clash.ok());
  EXPECT_NE(clash.err().message.find("section 'widgets' claimed by node kinds 'widget' and 'widget2'"),
            std::string::npos)
      << clash.err().message;
  auto setting = reg.add_settings("node", {int_param("max_in_flight", 1, "again", 1, 2)});
  ASSERT_FALSE(setting.ok());
  EXPECT_NE(setting.err().message.find("setting 'max_in_flight' declared by 'engine' and 'node'"),
            std::string::npos)
      << setting.err().message;
  EXPECT_EQ(reg.settings_owner("widget_limit"), "widget");
  EXPECT_EQ(reg.section_owner("widgets")->name, "widget");
  EXPECT_EQ(reg.section_owner("views"), nullptr);
}

// --- hostile shapes: every one an answer with its line, none an abort -------------------

TEST_F(wiring_test, lists_and_mappings_where_names_or_values_belong_are_errors_with_lines) {
  const std::string tail =
      "stages:\n  src: { kind: source.generator, count: 1 }\n  out: { kind: sink.null }\nflow:\n  - src -> "
      "out\n";
  struct hostile {
    std::string yaml;
    int line;
  };
  const std::vector<hostile> cases = {
      {"pipeline: p\n? [a, b]\n: 1\n" + tail, 2},                        // a list as a top-level key
      {"pipeline: p\nsettings:\n  ? {x: 1}\n  : 2\n" + tail, 3},         // a mapping as a setting name
      {"pipeline: p\nsettings: { max_in_flight: [1, 2] }\n" + tail, 2},  // a list as a setting value
      {"pipeline: [p]\n" + tail, 1},                                     // a list as the name
      {"pipeline: p\nstages:\n  src: { kind: [source.generator] }\n  out: { kind: sink.null }\n"
       "flow:\n  - src -> out\n",
       3},  // a list as a kind
      {"pipeline: p\nstages:\n  src: { kind: source.generator, count: {a: 1} }\n  out: { kind: sink.null }\n"
       "flow:\n  - src -> out\n",
       3},  // a mapping as a parameter
      {"pipeline: p\nstages:\n  ? [src]\n  : { kind: source.generator }\nflow:\n  - src -> out\n", 3},
      {"pipeline: p\nstages:\n  src: { kind: source.generator, count: 1 }\n  out: { kind: sink.null }\n"
       "flow:\n  - {src: out}\n",
       6},                                                    // a mapping as a flow line
      {"pipeline: p\nwidgets:\n  ? [a]\n  : 1\n" + tail, 3},  // inside a node kind's section
  };
  for (const auto& c : cases) {
    auto spec = load(c.yaml);
    ASSERT_FALSE(spec.ok()) << c.yaml;
    EXPECT_EQ(spec.err().code, errc::invalid_config) << c.yaml;
    EXPECT_EQ(spec.err().message.rfind(at(c.line, ""), 0), 0U) << c.yaml << "\n-> " << spec.err().message;
  }
}

}  // namespace
}  // namespace esflow::graph::testing
