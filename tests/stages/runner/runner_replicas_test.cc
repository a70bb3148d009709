// Effect runners scale out as replicas: two real `esflow run` children of
// pipelines/runner-effect-jetstream.yaml (its durable pull consumer
// `esflow-runner-effect-commands` on WORKFLOW_COMMANDS shared, each with its
// own data directory and port; `notify` POSTs to a receiver per replica, so
// the test sees which one ran a call) take effect commands published the way
// the saga's outbox relay publishes them, spread over time. Meanwhile replica
// A is rolled: SIGTERM (it drains: /ready stops answering 200, exit 0), then
// started again on its directory and port. In the end every command ran
// exactly once (one Idempotency-Key per command over both receivers, no
// retries), both replicas and the restarted A did part of the work,
// WORKFLOW_EVENTS holds one effect_result per command, and every command was
// acked (the work queue is empty), soon: none waited for ack_wait.
#include "stages/runner/runner_service.h"
#include "stages/runner/stages.h"
#include "storage/jetstream/jetstream_workflow_stream.h"
#include "tests/stages/runner/child_node.h"

#include <atomic>
#include <sstream>

namespace esflow::runner_test {
namespace {

using namespace std::chrono_literals;

constexpr int k_commands = 400;
const std::string k_tenant = "acme";

std::string command_id(int i) { return "fx-" + std::to_string(i); }

// The value of esflow_runner_effects_total{effect="notify",outcome="succeeded"} on a child (-1: none).
double notify_succeeded(const child_node& node) {
  httplib::Client c("127.0.0.1", node.port());
  c.set_connection_timeout(1, 0);
  auto r = c.Get("/metrics");
  if (!r || r->status != 200) return -1;
  std::istringstream lines(r->body);
  for (std::string line; std::getline(lines, line);)
    if (line.rfind("esflow_runner_effects_total{", 0) == 0 &&
        line.find("effect=\"notify\"") != std::string::npos &&
        line.find("outcome=\"succeeded\"") != std::string::npos)
      return std::stod(line.substr(line.rfind(' ') + 1));
  return -1;
}

// command id -> effect_result messages on WORKFLOW_EVENTS.
std::map<std::string, int> results_per_command(storage::workflow_stream& events) {
  std::map<std::string, int> n;
  storage::position_t after = 0;
  for (int page = 0; page < 100; ++page) {
    auto msgs = events.read_from(after, 1000);
    if (!msgs.ok() || msgs->empty()) break;
    for (const auto& m : msgs.value()) {
      after = m.position;
      if (m.subject.find(".effect_result.") == std::string::npos) continue;
      const auto body = json::parse(m.body, nullptr, false);
      ++n[body.is_object() ? body.value("command_id", "") : std::string()];
    }
  }
  return n;
}

// The shared durable consumer on WORKFLOW_COMMANDS, as the server sees it.
struct consumer_state {
  bool found = false;
  std::uint64_t stream_msgs = 0;  // a work queue keeps a message until it is acked
  std::int64_t ack_pending = 0;
};
consumer_state shared_consumer(nats::nats_connection& conn) {
  consumer_state out;
  jsOptions jo;
  jsOptions_Init(&jo);
  auto js = conn.jetstream(jo);
  if (!js.ok()) return out;
  jsStreamInfo* si = nullptr;
  jsConsumerInfo* ci = nullptr;
  if (js_GetStreamInfo(&si, *js, "WORKFLOW_COMMANDS", nullptr, nullptr) == NATS_OK &&
      js_GetConsumerInfo(&ci, *js, "WORKFLOW_COMMANDS", "esflow-runner-effect-commands", nullptr, nullptr) ==
          NATS_OK) {
    out = {true, si->State.Msgs, ci->NumAckPending};
  }
  if (si != nullptr) jsStreamInfo_Destroy(si);
  if (ci != nullptr) jsConsumerInfo_Destroy(ci);
  jsCtx_Destroy(*js);
  return out;
}

std::unique_ptr<storage::workflow_stream> open_stream(nats::nats_connection& conn, const std::string& name) {
  storage::jetstream::jetstream_stream_options o;
  o.ensure_stream = false;  // the replicas created it, with their settings
  auto s = storage::jetstream::jetstream_workflow_stream::open(conn, name, o);
  EXPECT_TRUE(s.ok()) << name << ": " << s.err().to_string();
  return s.ok() ? std::move(s).value() : nullptr;
}

TEST(runner_replicas, two_effect_runners_share_one_durable_consumer_and_a_rolling_restart_loses_nothing) {
  nats::testing::nats_server_fixture nats_server;
  ASSERT_TRUE(nats_server.start()) << "nats-server did not start";
  http_test::temp_dir dir;
  hook_receiver hook_a(runner_hooks::answer(200)), hook_b(runner_hooks::answer(200));
  const auto file_a = jetstream_effect_pipeline(dir.path() / "a", hook_a.url());
  const auto file_b = jetstream_effect_pipeline(dir.path() / "b", hook_b.url());
  ASSERT_FALSE(file_a.empty() || file_b.empty()) << "runner-effect-jetstream.yaml lost its `notify` line";
  const auto data_a = (dir.path() / "data-a").string(), data_b = (dir.path() / "data-b").string();
  const std::vector<std::string> nats_args = {"--nats", nats_server.url()};

  auto a = std::make_unique<child_node>(data_a, std::vector{file_a}, "", nats_args);
  child_node b(data_b, {file_b}, "", nats_args);
  ASSERT_TRUE(a->ready(20s)) << log_tail(data_a);
  ASSERT_TRUE(b.ready(20s)) << log_tail(data_b);
  const int port_a = a->port();

  auto conn = nats::nats_connection::connect({.url = nats_server.url(), .name = "runner-replicas-test"});
  ASSERT_TRUE(conn.ok()) << conn.err().to_string();
  auto commands = open_stream(*conn.value(), "WORKFLOW_COMMANDS");
  auto events = open_stream(*conn.value(), "WORKFLOW_EVENTS");
  ASSERT_TRUE(commands && events);

  // The publisher: what the relay sends for an effect outbox item, every ~10 ms; the last quarter waits
  // for the restarted A, so that it rejoins the shared consumer with work left.
  std::atomic<int> sent{0};
  std::atomic<bool> a_back{false};
  std::thread publisher([&] {
    for (int i = 0; i < k_commands; ++i) {
      if (i == k_commands * 3 / 4)
        for (int w = 0; w < 3000 && !a_back; ++w) std::this_thread::sleep_for(10ms);
      const json item = {{"command_id", command_id(i)},
                         {"effect", "notify"},
                         {"payload", {{"n", i}}},
                         {"saga", "Transfer"},
                         {"correlation_id", "corr-" + std::to_string(i)},
                         {"trace_id", ""}};
      bool stored = false;
      for (int attempt = 0; attempt < 5 && !stored; ++attempt)
        stored = storage::publish_and_wait(
                     *commands,
                     runner::effect_command_request(k_tenant, runner::parse_outbox_work(item.dump()).value()))
                     .ok();
      if (!stored) return;
      sent = i + 1;
      std::this_thread::sleep_for(10ms);
    }
  });

  // The rolling restart of A, with a third of the commands sent.
  ASSERT_TRUE(eventually([&] { return sent >= k_commands / 3; }, 30s));
  const int a_before = hook_a.calls();
  const auto t_term = std::chrono::steady_clock::now();
  a->terminate();
  // The drain: /ready answers non-200 (503 draining) until the process is gone.
  int ready_while_draining = 200;
  EXPECT_TRUE(eventually(
      [&] {
        if (a->ended()) return true;
        ready_while_draining = a->ready_status();
        return ready_while_draining != 200;
      },
      10s))
      << "/ready still 200 after SIGTERM";
  const int a_exit = a->wait_exit(20s);
  const auto drain_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t_term)
          .count();
  EXPECT_EQ(a_exit, 0) << "a drained replica exits 0\n" << log_tail(data_a);
  const int a_drained = hook_a.calls();
  const int sent_at_exit = sent;
  a = std::make_unique<child_node>(data_a, std::vector{file_a}, "", nats_args, port_a);
  EXPECT_TRUE(a->ready(20s)) << log_tail(data_a);
  a_back = true;
  publisher.join();
  ASSERT_EQ(sent, k_commands) << "the publisher stopped";
  const auto t_published = std::chrono::steady_clock::now();

  // Every command's key seen, every result published (bounded), then a moment for late duplicates.
  auto keys = [&] {
    auto n = calls_per_key(hook_a);
    for (const auto& [k, c] : calls_per_key(hook_b)) n[k] += c;
    return n;
  };
  EXPECT_TRUE(eventually(
      [&] {
        return static_cast<int>(keys().size()) == k_commands &&
               static_cast<int>(results_per_command(*events).size()) == k_commands;
      },
      10s))
      << keys().size() << " keys, " << results_per_command(*events).size() << " results of " << k_commands
      << " (messages a drained replica fetched wait for ack_wait unless handed back)";
  // Every command acked: the work queue is empty, nothing pending on the one shared consumer.
  consumer_state cs;
  EXPECT_TRUE(eventually(
      [&] {
        cs = shared_consumer(*conn.value());
        return cs.found && cs.stream_msgs == 0 && cs.ack_pending == 0;
      },
      10s))
      << "consumer found " << cs.found << ", " << cs.stream_msgs << " commands left, " << cs.ack_pending
      << " unacked";
  const auto settle_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t_published)
          .count();
  std::this_thread::sleep_for(500ms);

  const auto per_key = keys();
  const int calls_a = hook_a.calls(), calls_b = hook_b.calls();
  std::cout << "[ replicas ] " << k_commands << " commands; A " << a_before << " before SIGTERM, "
            << a_drained - a_before << " while draining (" << drain_ms << " ms, /ready "
            << ready_while_draining << ", exit " << a_exit << ", " << sent_at_exit << " sent), "
            << calls_a - a_drained << " after its restart; B " << calls_b << "; raw calls "
            << calls_a + calls_b << ", keys " << per_key.size() << "; all done " << settle_ms
            << " ms after the last publish\n";
  // (a) both replicas, and A after its restart, took part.
  EXPECT_GT(a_before, 0) << "replica A ran nothing";
  EXPECT_GT(calls_b, 0) << "replica B ran nothing";
  EXPECT_GT(calls_a - a_drained, 0) << "the restarted A ran nothing";
  EXPECT_EQ(notify_succeeded(b), calls_b) << "B's metrics count its calls";
  EXPECT_EQ(notify_succeeded(*a), calls_a - a_drained) << "the restarted A's metrics count its calls";
  // (b) each command's Idempotency-Key exactly once over both receivers: nothing lost, nothing twice.
  EXPECT_EQ(calls_a + calls_b, k_commands) << "raw calls (200 answers: no retries)";
  for (int i = 0; i < k_commands; ++i) {
    const auto it = per_key.find(command_id(i));
    EXPECT_EQ(it == per_key.end() ? 0 : it->second, 1) << command_id(i);
  }
  // (c) one effect_result per command on WORKFLOW_EVENTS.
  const auto results = results_per_command(*events);
  EXPECT_EQ(static_cast<int>(results.size()), k_commands);
  for (int i = 0; i < k_commands; ++i) {
    const auto it = results.find(command_id(i));
    EXPECT_EQ(it == results.end() ? 0 : it->second, 1) << "effect_result of " << command_id(i);
  }
  EXPECT_TRUE(commands->close().ok());
  EXPECT_TRUE(events->close().ok());
}

}  // namespace
}  // namespace esflow::runner_test
