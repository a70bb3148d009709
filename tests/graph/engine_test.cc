// The engine running real pipelines: end to end through files, per-key order,
// backpressure, drain, and a stage that throws.
#include "graph/node.h"
#include "tests/graph/graph_test_util.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <regex>
#include <set>

namespace esflow::graph::testing {
namespace {

using namespace std::chrono_literals;

class engine_test : public ::testing::Test {
 protected:
  engine_test() { services.put<recorder>("", rec); }

  std::unique_ptr<node> build(const std::string& yaml) {
    auto spec = load_ok(dir, "p.yaml", yaml, reg);
    auto n = node::build(std::move(spec), services);
    if (!n.ok()) {
      ADD_FAILURE() << "building failed: " << n.err().message;
      return nullptr;
    }
    return std::move(n).value();
  }
  static stage_stats::totals stats(const node& n, const std::string& stage) {
    auto* rt = n.find_stage(stage);
    EXPECT_NE(rt, nullptr) << stage;
    return rt ? rt->stats().read() : stage_stats::totals{};
  }

  temp_dir dir;
  kind_registry reg = test_registry();
  service_registry services;
  std::shared_ptr<recorder> rec = std::make_shared<recorder>();
};

TEST_F(engine_test, runs_file_pipeline_end_to_end_with_bad_lines_on_their_own_sink) {
  dir.write("in.ndjson",
            "{\"id\":1,\"type\":\"a\"}\n"
            "{\"id\":2,\"type\":\"b\"}\n"
            "not json\n"
            "\n"
            "{\"type\":\"a\"}\n"
            "{\"id\":5,\"type\":\"c\"}\n"
            "{\"id\":6,\"type\":\"a\"}\n");
  auto n = build(
      "pipeline: files\n"
      "stages:\n"
      "  src: {kind: source.file, path: in.ndjson}\n"
      "  req: {kind: json.require, fields: [id, type]}\n"
      "  tag: {kind: json.set, field: seen, value: 'true'}\n"
      "  rt:\n"
      "    kind: route\n"
      "    field: type\n"
      "    routes: {a: alpha, b: beta}\n"
      "  out_a: {kind: sink.file, path: a.ndjson}\n"
      "  out_b: {kind: sink.file, path: b.ndjson}\n"
      "  out_other: {kind: sink.file, path: other.ndjson}\n"
      "  errs: {kind: sink.file, path: errors.ndjson}\n"
      "flow:\n"
      "  - src -> req -> tag -> rt.alpha -> out_a\n"
      "  - rt.beta -> out_b\n"
      "  - rt.default -> out_other\n"
      "  - \"*.error -> errs\"\n");
  ASSERT_NE(n, nullptr);
  n->start();
  ASSERT_TRUE(n->wait_finished(deadline_in(10s)));
  EXPECT_EQ(n->state(), lifecycle::stopped);

  auto sorted = [](std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
  };
  EXPECT_EQ(
      sorted(read_lines(dir.file("a.ndjson"))),
      (std::vector<std::string>{R"({"id":1,"seen":true,"type":"a"})", R"({"id":6,"seen":true,"type":"a"})"}));
  EXPECT_EQ(read_lines(dir.file("b.ndjson")),
            (std::vector<std::string>{R"({"id":2,"seen":true,"type":"b"})"}));
  EXPECT_EQ(read_lines(dir.file("other.ndjson")),
            (std::vector<std::string>{R"({"id":5,"seen":true,"type":"c"})"}));
  EXPECT_EQ(sorted(read_lines(dir.file("errors.ndjson"))),
            (std::vector<std::string>{"not json", R"({"type":"a"})"}));

  EXPECT_EQ(stats(*n, "src").out, 6u);  // the empty line is skipped
  EXPECT_EQ(stats(*n, "req").in, 6u);
  EXPECT_EQ(stats(*n, "req").out, 4u);
  EXPECT_EQ(stats(*n, "req").errors, 2u);
  EXPECT_EQ(stats(*n, "tag").in, 4u);
  EXPECT_EQ(stats(*n, "rt").out, 4u);
  EXPECT_EQ(stats(*n, "errs").in, 2u);
  EXPECT_EQ(n->gate().in_flight(), 0);
}

// Per-key ascending, and every i of 0..count-1 seen exactly once.
void expect_per_key_order(recorder& r, std::int64_t count, std::size_t keys) {
  std::lock_guard lock(r.mu);
  EXPECT_EQ(r.by_key.size(), keys);
  std::vector<int> seen(static_cast<std::size_t>(count), 0);
  for (const auto& [key, is] : r.by_key) {
    for (std::size_t j = 0; j < is.size(); ++j) {
      ASSERT_GE(is[j], 0) << key;
      ASSERT_LT(is[j], count) << key;
      ++seen[static_cast<std::size_t>(is[j])];
      EXPECT_EQ("k" + std::to_string(is[j] % static_cast<std::int64_t>(keys)), key) << "i=" << is[j];
      if (j > 0) {
        ASSERT_LT(is[j - 1], is[j]) << "key " << key << " out of order at position " << j;
      }
    }
  }
  for (std::int64_t i = 0; i < count; ++i)
    ASSERT_EQ(seen[static_cast<std::size_t>(i)], 1)
        << "i=" << i << " seen " << seen[static_cast<std::size_t>(i)];
}

TEST_F(engine_test, keyed_stage_keeps_per_key_order_across_eight_lanes) {
  auto n = build(
      "pipeline: keyed\n"
      "settings: {max_in_flight: 1024}\n"
      "stages:\n"
      "  gen: {kind: source.generator, count: 10000, keys: 100}\n"
      "  rec: {kind: test.record, key: message, concurrency: 8}\n"
      "  out: {kind: sink.null}\n"
      "flow:\n"
      "  - gen -> rec -> out\n");
  ASSERT_NE(n, nullptr);
  n->start();
  ASSERT_TRUE(n->wait_finished(deadline_in(20s)));
  EXPECT_EQ(rec->count.load(), 10000);
  expect_per_key_order(*rec, 10000, 100);
  EXPECT_EQ(stats(*n, "out").in, 10000u);
}

// runs_inline: the stage runs on the source's thread (no TBB task, no hop),
// both stages of an inline chain on that one thread; every message arrives.
TEST_F(engine_test, inline_stages_run_on_the_thread_that_emits) {
  auto n = build(
      "pipeline: inline\n"
      "stages:\n"
      "  gen: {kind: test.source, count: 2000}\n"
      "  a: {kind: test.inline}\n"
      "  b: {kind: test.inline}\n"
      "  out: {kind: sink.null}\n"
      "flow:\n"
      "  - gen -> a -> b -> out\n");
  ASSERT_NE(n, nullptr);
  n->start();
  ASSERT_TRUE(n->wait_finished(deadline_in(20s)));
  EXPECT_EQ(rec->count.load(), 4000);
  EXPECT_EQ(rec->inside_emit.load(), 4000);
  EXPECT_EQ(rec->threads.size(), 1u);
  EXPECT_EQ(stats(*n, "b").in, 2000u);
  EXPECT_EQ(stats(*n, "out").in, 2000u);
}

// The arena's workers are named for per-thread figures (top -H, perf):
// after the workers ran a task, at least one thread of the process is
// `esflow-graph`, and no more than the arena has workers.
TEST(graph_workers, carry_the_name_esflow_graph) {
  ASSERT_TRUE(workers_alive(5s));
  std::size_t named = 0;
  for (const auto& task : fs::directory_iterator("/proc/self/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    std::getline(comm, name);
    if (name == "esflow-graph") ++named;
  }
  EXPECT_GE(named, 1u);
  EXPECT_LE(named, std::max(2U, std::thread::hardware_concurrency()) - 1);
}

// A concurrency or a key in the pipeline outranks runs_inline: the stage
// then runs as a TBB task like any other, within its bound.
TEST_F(engine_test, inline_stage_with_a_concurrency_bound_runs_on_tbb_workers) {
  auto n = build(
      "pipeline: bounded\n"
      "stages:\n"
      "  gen: {kind: test.source, count: 2000}\n"
      "  a: {kind: test.inline, concurrency: 2}\n"
      "  b: {kind: test.inline, key: i, concurrency: 2}\n"
      "  out: {kind: sink.null}\n"
      "flow:\n"
      "  - gen -> a -> b -> out\n");
  ASSERT_NE(n, nullptr);
  n->start();
  ASSERT_TRUE(n->wait_finished(deadline_in(20s)));
  EXPECT_EQ(rec->count.load(), 4000);
  EXPECT_EQ(rec->inside_emit.load(), 0);
  EXPECT_EQ(stats(*n, "out").in, 2000u);
}

TEST_F(engine_test, keyed_async_stage_keeps_per_key_order) {
  auto n = build(
      "pipeline: keyed_async\n"
      "settings: {max_in_flight: 256}\n"
      "stages:\n"
      "  gen: {kind: source.generator, count: 3000, keys: 50}\n"
      "  hold: {kind: delay, key: key, micros: 100}\n"
      "  rec: {kind: test.record, concurrency: serial}\n"
      "  out: {kind: sink.null}\n"
      "flow:\n"
      "  - gen -> hold -> rec -> out\n");
  ASSERT_NE(n, nullptr);
  n->start();
  ASSERT_TRUE(n->wait_finished(deadline_in(20s)));
  EXPECT_EQ(rec->count.load(), 3000);
  expect_per_key_order(*rec, 3000, 50);
  EXPECT_EQ(rec->max_running.load(), 1);  // serial really is serial
  const auto hold = stats(*n, "hold");
  EXPECT_EQ(hold.in, 3000u);
  EXPECT_EQ(hold.out, 3000u);
  EXPECT_EQ(hold.in_flight(), 0);
}

TEST_F(engine_test, backpressure_keeps_in_flight_within_max_in_flight) {
  constexpr std::int64_t k_bound = 64;
  constexpr std::uint64_t k_count = 3000;
  auto n = build(
      "pipeline: bounded\n"
      "settings: {max_in_flight: 64}\n"
      "stages:\n"
      "  gen: {kind: source.generator, count: 3000}\n"
      "  pass: {kind: noop}\n"
      "  slow: {kind: delay, micros: 400}\n"
      "  out: {kind: sink.null}\n"
      "flow:\n"
      "  - gen -> pass -> slow -> out\n");
  ASSERT_NE(n, nullptr);
  n->start();
  std::int64_t max_gate = 0, max_slow = 0;
  int samples = 0;
  const auto deadline = deadline_in(20s);
  while (std::chrono::steady_clock::now() < deadline && samples < 100000) {
    ++samples;
    const auto in_gate = n->gate().in_flight();
    ASSERT_LE(in_gate, k_bound) << "sample " << samples;
    max_gate = std::max(max_gate, in_gate);
    bool done = false;
    for (const auto& rt : n->stages()) {
      const auto t = rt->stats().read();
      ASSERT_LE(t.in_flight(), k_bound) << rt->name() << " sample " << samples;
      ASSERT_LE(t.queued(), k_bound) << rt->name() << " sample " << samples;
      if (rt->name() == "slow") max_slow = std::max(max_slow, t.in_flight());
      if (rt->name() == "out") done = t.in == k_count;
    }
    if (done) break;
    std::this_thread::sleep_for(1ms);
  }
  ASSERT_TRUE(n->wait_finished(deadline_in(10s)));
  EXPECT_EQ(stats(*n, "out").in, k_count);
  EXPECT_LE(n->gate().peak(), k_bound);
  // The bound, not the source, limited the flow: the slow stage filled up.
  EXPECT_GE(max_gate, k_bound / 2) << "samples " << samples;
  EXPECT_GE(max_slow, k_bound / 2) << "samples " << samples;
}

TEST_F(engine_test, drain_stops_ingest_and_delivers_every_admitted_message_once) {
  auto n = build(
      "pipeline: paced\n"
      "stages:\n"
      "  gen: {kind: source.generator, count: 1000000, rate: 5000}\n"
      "  slow: {kind: delay, micros: 20000}\n"
      "  out: {kind: test.count}\n"
      "flow:\n"
      "  - gen -> slow -> out\n");
  ASSERT_NE(n, nullptr);
  n->start();
  const auto deadline = deadline_in(10s);
  while (rec->count.load() < 50 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(1ms);
  ASSERT_GE(rec->count.load(), 50);
  EXPECT_EQ(n->state(), lifecycle::running);

  auto drained = n->drain(5000ms);
  ASSERT_TRUE(drained.ok()) << drained.err().to_string();
  EXPECT_EQ(n->state(), lifecycle::stopped);
  const auto admitted = stats(*n, "gen").out;
  EXPECT_GT(admitted, 50u);
  EXPECT_LT(admitted, 1000000u);
  EXPECT_EQ(n->gate().in_flight(), 0);
  EXPECT_EQ(static_cast<std::uint64_t>(rec->count.load()), admitted);
  EXPECT_EQ(stats(*n, "out").in, admitted);

  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(stats(*n, "gen").out, admitted) << "ingest went on after drain";
  EXPECT_EQ(static_cast<std::uint64_t>(rec->count.load()), admitted);
  {
    std::lock_guard lock(rec->mu);
    std::set<std::int64_t> unique(rec->by_key[""].begin(), rec->by_key[""].end());
    EXPECT_EQ(unique.size(), admitted) << "a message reached the sink twice";
  }
  EXPECT_TRUE(n->drain(1000ms).ok()) << "drain is idempotent";
}

TEST_F(engine_test, drain_with_too_short_deadline_reports_in_flight_count) {
  auto n = build(
      "pipeline: stuck\n"
      "settings: {max_in_flight: 64}\n"
      "stages:\n"
      "  gen: {kind: source.generator, count: 100000}\n"
      "  slow: {kind: delay, micros: 300000}\n"
      "  out: {kind: test.count}\n"
      "flow:\n"
      "  - gen -> slow -> out\n");
  ASSERT_NE(n, nullptr);
  n->start();
  const auto deadline = deadline_in(5s);
  while (n->gate().in_flight() < 64 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(1ms);
  ASSERT_EQ(n->gate().in_flight(), 64);

  auto drained = n->drain(1ms);
  ASSERT_FALSE(drained.ok());
  EXPECT_EQ(drained.err().code, errc::unavailable);
  std::smatch m;
  const auto& text = drained.err().message;
  ASSERT_TRUE(std::regex_match(text, m, std::regex("drain deadline passed with ([0-9]+) messages in flight")))
      << text;
  const auto left = std::stoll(m[1].str());
  EXPECT_GT(left, 0);
  EXPECT_LE(left, 64);
  EXPECT_NE(drained.err().context.find("pipeline=stuck"), std::string::npos) << drained.err().context;
  EXPECT_EQ(n->state(), lifecycle::stopped);
  // Destroying the node with messages still held by the async stage must be safe.
  n.reset();
}

TEST_F(engine_test, throwing_stage_counts_errors_and_the_graph_keeps_running) {
  auto n = build(
      "pipeline: throws\n"
      "stages:\n"
      "  gen: {kind: source.generator, count: 1000}\n"
      "  boom: {kind: test.throw, every: 10}\n"
      "  out: {kind: test.count}\n"
      "flow:\n"
      "  - gen -> boom -> out\n");
  ASSERT_NE(n, nullptr);
  n->start();
  ASSERT_TRUE(n->wait_finished(deadline_in(10s))) << "the graph stopped or leaked admission tokens";
  const auto boom = stats(*n, "boom");
  EXPECT_EQ(boom.in, 1000u);
  EXPECT_EQ(boom.errors, 100u);
  EXPECT_EQ(boom.out, 900u);
  EXPECT_EQ(boom.in_flight(), 0);
  EXPECT_EQ(rec->count.load(), 900);
  EXPECT_EQ(n->gate().in_flight(), 0);
  std::lock_guard lock(rec->mu);
  const auto& seen = rec->by_key[""];
  EXPECT_TRUE(std::none_of(seen.begin(), seen.end(), [](std::int64_t i) { return i % 10 == 0; }));
  EXPECT_EQ(*std::max_element(seen.begin(), seen.end()), 999);  // messages after the throws still flowed
}

}  // namespace
}  // namespace esflow::graph::testing
