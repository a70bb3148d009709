// The runner's guarantees on the embedded backend (docs/runner.md,
// CONTRACT "Runner node"), each checked where it can break, on a real
// RocksDB data directory shared with the nodes of this process:
//   - a failed saga commit stores nothing (no checkpoint, record, outbox
//     item, schedule or marker) and the input is processed exactly once after;
//   - an input seen before (re-read after a checkpoint reset) makes no second
//     transition: same record, no outbox item, no command appended twice;
//   - an outbox item survives failed dispatches and is sent once, then deleted;
//   - an effect runs once per command id (the idempotency gate), a redelivery
//     re-publishes the stored result (the saga sees it once), 5xx then 2xx is
//     one `succeeded` result with attempts = 2 and one Idempotency-Key;
//   - reminders are delivered then deleted, per tenant; cancelled ones never fire;
//   - a poison input is quarantined, the instance unchanged, the rest goes on;
//   - an input that ends the instance is stored even when the next input of
//     its message meets the instance done; inputs of a done instance write
//     nothing (no marker) and a re-read of them changes nothing.
#include "stages/runner/stages.h"
#include "tests/stages/runner/runner_harness.h"
#include "tests/storage/requests.h"
#include "transport/nats/subjects.h"

#include <future>
#include <pthread.h>
#include <set>

namespace esflow::runner_test {
namespace {

using namespace std::chrono_literals;

const std::string k_log_cp = "runner:runner:log";
const std::string k_events_cp = "runner:runner:events";
const std::string k_commands_cp = "runner:runner-effect:commands";

class runner_guarantees : public ::testing::Test {
 protected:
  http_test::temp_dir dir;
  std::string data() const { return (dir.path() / "data").string(); }
};

// Inputs of `kind` the saga of runner-saga.yaml met with its instance done.
double inputs_skipped_done(files_node& node, const std::string& kind) {
  auto r = node.client().Get("/metrics");
  return r && r->status == 200 ? metric(r->body, "esflow_runner_inputs_total",
                                        R"(kind=")" + kind + R"(",outcome="skipped_done",pipeline="runner")")
                               : -1;
}
double effect_results_skipped(files_node& node) { return inputs_skipped_done(node, "effect_result"); }

// acme's acc-a (100) and acc-b (0), and the transfer t-1 of 30 between them.
::testing::AssertionResult request_t1(files_node& node) {
  node.command("acme", "Account", "acc-a", open_account(100));
  node.command("acme", "Account", "acc-b", open_account(0));
  auto r = node.command("acme", "Transfer", "t-1", request_transfer("acc-a", "acc-b", 30));
  if (r.value("status", "") != "accepted") return ::testing::AssertionFailure() << r.dump();
  return ::testing::AssertionSuccess();
}

TEST_F(runner_guarantees, a_failed_saga_commit_stores_nothing_and_the_input_is_processed_once_after) {
  std::atomic<bool> fail{false};
  std::atomic<int> failed{0};
  const auto test_thread = std::this_thread::get_id();
  // Every write of the runner's threads fails while `fail` holds (this
  // thread's writes, e.g. the readiness probe, go through).
  auto store = shared_store(data(), [&] {
    if (!fail || std::this_thread::get_id() == test_thread) return false;
    ++failed;
    return true;
  });
  ASSERT_TRUE(store);
  {
    runner_node aggregate_only(data(), true, false);
    ASSERT_TRUE(aggregate_only.ok());
    ASSERT_TRUE(request_t1(aggregate_only));
  }
  fail = true;
  {
    runner_node runner_only(data(), false, true);
    ASSERT_TRUE(runner_only.ok());
    ASSERT_TRUE(eventually([&] { return failed >= 5; })) << "the saga commit was retried";
    std::this_thread::sleep_for(200ms);
    EXPECT_EQ(checkpoint(*store, k_log_cp), 0U) << "no checkpoint moved";
    EXPECT_EQ(checkpoint(*store, k_events_cp), 0U);
    EXPECT_TRUE(saga_record(*store, "acme", "Transfer", "t-1").is_null());
    EXPECT_TRUE(outbox(*store).empty());
    EXPECT_TRUE(schedules(*store).empty());
    auto q = store->quarantine().list(100);
    ASSERT_TRUE(q.ok());
    EXPECT_TRUE(q->empty()) << "a failed write is not poison";
    fail = false;
    // Had a marker been stored, the input would now be skipped and no record ever appear.
    ASSERT_TRUE(eventually([&] { return !saga_record(*store, "acme", "Transfer", "t-1").is_null(); }));
    ASSERT_TRUE(eventually([&] { return checkpoint(*store, k_log_cp) > 0; }));
    std::this_thread::sleep_for(200ms);
    auto rec = saga_record(*store, "acme", "Transfer", "t-1");
    EXPECT_EQ(rec["inputs"], 1) << rec.dump();
    EXPECT_EQ(rec["state"]["step"], "withdrawing");
    EXPECT_EQ(outbox(*store).size(), 1U) << "one withdraw (no aggregate node to send it to)";
    EXPECT_EQ(schedules(*store).size(), 1U) << "one timeout";
  }
}

TEST_F(runner_guarantees, a_re_read_input_makes_no_second_transition) {
  auto store = shared_store(data());
  ASSERT_TRUE(store);
  json before;
  std::uint64_t log_cp = 0, events_cp = 0;
  {
    runner_node node(data());
    ASSERT_TRUE(node.ok());
    ASSERT_TRUE(request_t1(node));
    ASSERT_TRUE(node.eventually([&] { return node.transfer_status("acme", "t-1") == "completed"; }));
    ASSERT_TRUE(eventually([&] { return outbox(*store).empty(); }));
    // Settled: the last inputs committed, the idle checkpoints written.
    ASSERT_TRUE(eventually([&] {
      const auto a = checkpoint(*store, k_log_cp), b = checkpoint(*store, k_events_cp);
      std::this_thread::sleep_for(150ms);
      return a > 0 && b > 0 && a == checkpoint(*store, k_log_cp) && b == checkpoint(*store, k_events_cp);
    }));
    before = saga_record(*store, "acme", "Transfer", "t-1");
    log_cp = checkpoint(*store, k_log_cp);
    events_cp = checkpoint(*store, k_events_cp);
  }
  ASSERT_EQ(before["done"], true) << before.dump();
  const auto commits_before = commits_per_command(*store);
  set_checkpoint(*store, k_log_cp, 0);
  set_checkpoint(*store, k_events_cp, 0);
  {
    runner_node node(data());
    ASSERT_TRUE(node.ok());
    ASSERT_TRUE(eventually([&] {
      return checkpoint(*store, k_log_cp) >= log_cp && checkpoint(*store, k_events_cp) >= events_cp;
    })) << "everything re-read";
    std::this_thread::sleep_for(300ms);
    EXPECT_EQ(saga_record(*store, "acme", "Transfer", "t-1"), before) << "no second transition";
    EXPECT_TRUE(outbox(*store).empty());
    EXPECT_EQ(node.balance("acme", "acc-a"), 70);
    EXPECT_EQ(node.balance("acme", "acc-b"), 30);
  }
  const auto commits_after = commits_per_command(*store);
  EXPECT_EQ(commits_after, commits_before) << "no command appended again";
  for (const auto& [id, n] : commits_after) EXPECT_EQ(n, 1) << id;
}

TEST_F(runner_guarantees, an_outbox_item_survives_failed_dispatches_and_is_sent_and_deleted_once) {
  auto store = shared_store(data());
  ASSERT_TRUE(store);
  {
    runner_node aggregate_only(data(), true, false);
    ASSERT_TRUE(aggregate_only.ok());
    ASSERT_TRUE(request_t1(aggregate_only));
  }
  std::string withdraw_id;
  {
    // No aggregate pipeline: every dispatch fails (unavailable); the item stays.
    files_node runner_only(data(), {pipeline("runner-saga.yaml")});
    ASSERT_TRUE(runner_only.ok());
    ASSERT_TRUE(eventually([&] { return outbox(*store).size() == 1; }));
    withdraw_id = outbox(*store).front().work_id;
    std::this_thread::sleep_for(600ms);  // several dispatches (backoff from 100 ms)
    auto items = outbox(*store);
    ASSERT_EQ(items.size(), 1U);
    EXPECT_EQ(items.front().work_id, withdraw_id);
    EXPECT_EQ(runner_only.outbox_depth(), 1);
  }
  {
    files_node both(data(), {pipeline("aggregate.yaml"), pipeline("runner-saga.yaml")});
    ASSERT_TRUE(both.ok());
    ASSERT_TRUE(eventually([&] { return both.transfer_status("acme", "t-1") == "completed"; }));
    ASSERT_TRUE(eventually([&] { return both.outbox_depth() == 0; })) << "deleted after its confirmation";
    EXPECT_TRUE(outbox(*store).empty());
  }
  const auto commits = commits_per_command(*store);
  ASSERT_TRUE(commits.count(withdraw_id)) << "the withdraw reached its aggregate";
  EXPECT_EQ(commits.at(withdraw_id), 1);
  for (const auto& [id, n] : commits) EXPECT_EQ(n, 1) << id;
}

TEST_F(runner_guarantees, an_effect_runs_once_per_command_id_and_a_redelivery_republishes_its_result) {
  hook_receiver hook([](int n, httplib::Response& res) {  // 503 on the first call, then 200
    runner_hooks::answer(n == 1 ? 503 : 200)(n, res);
  });
  const auto effect_yaml = effect_pipeline(dir.path(), hook.url());
  const std::vector<std::string> files = {pipeline("aggregate.yaml"), pipeline("runner-saga.yaml"),
                                          effect_yaml};
  auto store = shared_store(data());
  ASSERT_TRUE(store);
  json before;
  std::uint64_t commands_cp = 0;
  {
    files_node node(data(), files);
    ASSERT_TRUE(node.ok());
    ASSERT_TRUE(request_t1(node));
    ASSERT_TRUE(eventually([&] { return node.transfer_status("acme", "t-1") == "completed"; }));
    // The effect result reached the saga (the instance is done: the input is skipped, nothing written).
    ASSERT_TRUE(eventually([&] {
      return calls_per_key(hook).size() == 1 && effect_results_skipped(node) >= 1;
    })) << hook.calls();
    EXPECT_FALSE(marker_stored(*store, "acme", "saga:Transfer:result:" + calls_per_key(hook).begin()->first));
    ASSERT_TRUE(eventually([&] { return checkpoint(*store, k_commands_cp) > 0; }));
    before = saga_record(*store, "acme", "Transfer", "t-1");
    commands_cp = checkpoint(*store, k_commands_cp);
  }
  EXPECT_EQ(hook.calls(), 2);
  auto keys = calls_per_key(hook);
  ASSERT_EQ(keys.size(), 1U) << "every attempt carries the same Idempotency-Key";
  EXPECT_EQ(keys.begin()->second, 2);
  auto commands = stream_messages(*store, "WORKFLOW_COMMANDS");
  ASSERT_EQ(commands.size(), 1U);
  EXPECT_EQ(json::parse(commands[0].body)["command_id"], keys.begin()->first);
  auto results = [&] {
    std::vector<json> r;
    for (const auto& m : stream_messages(*store, "WORKFLOW_EVENTS"))
      if (m.subject.find(".effect_result.") != std::string::npos) r.push_back(json::parse(m.body));
    return r;
  };
  auto first = results();
  ASSERT_EQ(first.size(), 1U);
  EXPECT_EQ(first[0]["result_type"], "succeeded") << first[0].dump();
  EXPECT_EQ(first[0]["payload"], json({{"ok", true}})) << "the receiver's answer";
  EXPECT_TRUE(first[0]["error"].is_null());
  EXPECT_EQ(first[0]["saga"], "Transfer");
  EXPECT_EQ(first[0]["tenant_id"], "acme");
  EXPECT_EQ(first[0]["correlation_id"], "t-1");
  EXPECT_EQ(first[0]["attempts"], 2) << first[0].dump();
  EXPECT_EQ(first[0]["command_id"], keys.begin()->first);

  // Redeliver the effect command: the gate finds the stored result.
  set_checkpoint(*store, k_commands_cp, 0);
  {
    files_node node(data(), files);
    ASSERT_TRUE(node.ok());
    ASSERT_TRUE(eventually([&] { return checkpoint(*store, k_commands_cp) >= commands_cp; }));
    std::this_thread::sleep_for(300ms);
    EXPECT_EQ(saga_record(*store, "acme", "Transfer", "t-1"), before) << "the saga saw the result once";
  }
  EXPECT_EQ(hook.calls(), 2) << "not executed again";
  auto again = results();
  ASSERT_GE(again.size(), 1U);
  EXPECT_LE(again.size(), 1U) << "re-published under the same msg id (deduped by the stream)";
}

// The name of the calling thread (pthread), e.g. "esflow-stream" for a workflow stream's writer.
std::string thread_name() {
  char buf[32] = {};
  pthread_getname_np(pthread_self(), buf, sizeof buf);
  return buf;
}

// A `notify` effect command of tenant acme, as the relay publishes it, into WORKFLOW_COMMANDS.
bool publish_notify(storage::workflow_stream& stream, const std::string& command_id,
                    const std::string& correlation_id, const json& payload) {
  auto item = runner::parse_outbox_work(json{
      {"command_id", command_id},
      {"effect", "notify"},
      {"saga", "Transfer"},
      {"correlation_id", correlation_id},
      {"payload", payload}}.dump());
  return item.ok() && storage::publish_and_wait(stream, runner::effect_command_request("acme", *item)).ok();
}

// Effect commands a client wrote wrong into WORKFLOW_COMMANDS (a malformed value deep inside, not
// an object, no command id) are skipped with a warning; the valid one after them runs once.
TEST_F(runner_guarantees, malformed_effect_commands_are_skipped_and_the_next_one_runs) {
  hook_receiver hook(runner_hooks::answer(200, R"({"id":"r-1","n":[1,2]})"));
  auto store = shared_store(data());
  ASSERT_TRUE(store);
  std::string valid_id;
  {
    auto stream = storage::embedded_workflow_stream::open(store->database(), "WORKFLOW_COMMANDS");
    ASSERT_TRUE(stream.ok());
    const auto subject = nats::effect_subject("acme", "notify");
    int n = 0;
    for (const std::string bad : {R"({"command_id":"e1","effect":"notify","payload":{"a":tru}})", "[1]",
                                  R"({"effect":"notify","payload":{}})"}) {
      storage::publish_request req;
      req.subject = subject;
      req.msg_id = "bad-" + std::to_string(++n);
      req.body = bad;
      ASSERT_TRUE(storage::publish_and_wait(*stream.value(), req).ok());
    }
    ASSERT_TRUE(publish_notify(*stream.value(), "e-ok", "t-9", {{"to", "x"}}));
    ASSERT_TRUE(stream.value()->close().ok());
  }
  {
    files_node node(data(), {effect_pipeline(dir.path(), hook.url())});
    ASSERT_TRUE(node.ok());
    ASSERT_TRUE(eventually([&] { return checkpoint(*store, k_commands_cp) >= 4; })) << "all four read";
    ASSERT_TRUE(eventually([&] { return hook.calls() == 1; }));
  }
  const auto keys = calls_per_key(hook);
  ASSERT_EQ(keys.size(), 1U);
  EXPECT_EQ(keys.begin()->first, "e-ok");
  std::vector<json> results;
  for (const auto& m : stream_messages(*store, "WORKFLOW_EVENTS"))
    if (m.subject.find(".effect_result.") != std::string::npos) results.push_back(json::parse(m.body));
  ASSERT_EQ(results.size(), 1U);
  EXPECT_EQ(results[0]["command_id"], "e-ok");
  EXPECT_EQ(results[0]["payload"], json({{"id", "r-1"}, {"n", {1, 2}}}));
  EXPECT_EQ(results[0]["correlation_id"], "t-9");
}

// The inputs a finished instance still gets (the `complete` command's result and the `notify`
// effect's) are dropped by the follower: no stage sees them, no marker is written, and the events
// checkpoint still passes them. The drop needs the instance's record stored as far as memory knows:
// the outbox's periodic pass (every 2 s) can list the last commit's items in the moment between
// that commit's write and its completion, and an answer to such an item can come before the
// completion. Such an input goes through the stages as any other (and changes nothing): the test
// accepts it for one of the two inputs, never for both, and never a missing one.
TEST_F(runner_guarantees, a_finished_instances_inputs_are_dropped_before_the_saga_stages) {
  hook_receiver hook(runner_hooks::answer(200));
  const std::vector<std::string> files = {pipeline("aggregate.yaml"), pipeline("runner-saga.yaml"),
                                          effect_pipeline(dir.path(), hook.url())};
  auto store = shared_store(data());
  ASSERT_TRUE(store);
  files_node node(data(), files);
  ASSERT_TRUE(node.ok());
  ASSERT_TRUE(request_t1(node));
  ASSERT_TRUE(eventually([&] { return node.transfer_status("acme", "t-1") == "completed"; }));
  auto skipped = [&](const char* kind) { return inputs_skipped_done(node, kind); };
  auto dedupe_in = [&] {
    auto graph = node.client().Get("/admin/graph?pipeline=runner");
    if (!graph || graph->status != 200) return 0.0;
    const auto g = json::parse(graph->body);
    for (const auto& st : g["stages"])
      if (st["name"] == "dedupe") return st["stats"]["in"].get<double>();
    return 0.0;
  };
  // Both inputs after the instance ended are taken as done (dropped by the follower, or skipped
  // by a later stage); transfer_requested, the withdraw's and the deposit's results reach the
  // stages, and the follower drops at least one of the other two (see above).
  ASSERT_TRUE(eventually([&] { return skipped("effect_result") == 1 && skipped("command_result") == 1; }))
      << "effect results " << skipped("effect_result") << ", command results " << skipped("command_result");
  const double reached = dedupe_in();
  EXPECT_GE(reached, 3.0);
  EXPECT_LE(reached, 4.0) << "the follower dropped none of a finished instance's inputs";
  const auto events = stream_messages(*store, "WORKFLOW_EVENTS");
  ASSERT_EQ(events.size(), 4U) << "3 command results and 1 effect result";
  for (const auto& m : events) {
    const auto body = json::parse(m.body);
    if (body.value("command_type", "") == "complete" && reached == 3.0) {
      EXPECT_FALSE(
          marker_stored(*store, "acme", "saga:Transfer:cmdresult:" + body["command_id"].get<std::string>()));
    }
  }
  ASSERT_TRUE(eventually([&] { return checkpoint(*store, k_events_cp) >= events.back().position; }))
      << "the checkpoint passes the dropped inputs: " << checkpoint(*store, k_events_cp) << " of "
      << events.back().position;
}

TEST_F(runner_guarantees, a_failed_result_publish_does_not_mark_the_effect_done) {
  std::atomic<bool> fail{false};
  std::atomic<int> failed{0};
  // The workflow streams' writes fail while `fail` holds: no result can be published.
  auto store = shared_store(data(), [&] {
    if (!fail || thread_name() != "esflow-stream") return false;
    ++failed;
    return true;
  });
  ASSERT_TRUE(store);
  // The first call turns the fault on before it answers: its result's publish fails.
  hook_receiver hook([&](int n, httplib::Response& res) {
    if (n == 1) fail = true;
    runner_hooks::answer(200)(n, res);
  });
  std::string key;
  {
    files_node node(data(), {pipeline("aggregate.yaml"), pipeline("runner-saga.yaml"),
                             effect_pipeline(dir.path(), hook.url())});
    ASSERT_TRUE(node.ok());
    ASSERT_TRUE(request_t1(node));
    ASSERT_TRUE(eventually([&] { return hook.calls() >= 2; }))
        << "run again: the first result was not stored";
    key = calls_per_key(hook).begin()->first;
    EXPECT_GT(failed, 0);
    EXPECT_FALSE(marker_stored(*store, "acme", "effect:" + key)) << "no result stored while publishing fails";
    fail = false;
    ASSERT_TRUE(eventually([&] { return marker_stored(*store, "acme", "effect:" + key); }));
    ASSERT_TRUE(eventually([&] { return effect_results_skipped(node) >= 1; })) << "the saga got the result";
  }
  auto keys = calls_per_key(hook);
  EXPECT_EQ(keys.size(), 1U) << "every attempt with the same Idempotency-Key";
  std::cout << "[ effect ] " << hook.calls() << " calls while the result could not be published\n";
  int results = 0;
  for (const auto& m : stream_messages(*store, "WORKFLOW_EVENTS"))
    results += m.subject.find(".effect_result.") != std::string::npos ? 1 : 0;
  EXPECT_EQ(results, 1);
}

// On the embedded stream an effect's result and what marks it done (its stored result, the
// commands checkpoint) are ONE write: no crash can leave a published result not done. The commit
// pool's writes all fail here, and the effect still ends done without one.
TEST_F(runner_guarantees, on_the_embedded_stream_the_result_and_its_done_record_are_one_write) {
  std::atomic<int> pool_writes{0};
  auto store = shared_store(data(), [&] {
    if (thread_name() != "esflow-commitp") return false;
    ++pool_writes;
    return true;
  });
  ASSERT_TRUE(store);
  hook_receiver hook(runner_hooks::answer(200));
  {
    auto stream = storage::embedded_workflow_stream::open(store->database(), "WORKFLOW_COMMANDS");
    ASSERT_TRUE(stream.ok());
    for (const std::string id : {"e-1", "e-2"})
      ASSERT_TRUE(publish_notify(*stream.value(), id, "t-" + id, json::object()));
    ASSERT_TRUE(stream.value()->close().ok());
  }
  {
    files_node node(data(), {effect_pipeline(dir.path(), hook.url())});
    ASSERT_TRUE(node.ok());
    ASSERT_TRUE(eventually([&] {
      return marker_stored(*store, "acme", "effect:e-1") && marker_stored(*store, "acme", "effect:e-2");
    })) << "done without the commit pool";
  }
  EXPECT_EQ(pool_writes, 0) << "the done record went through the commit pool";
  EXPECT_EQ(hook.calls(), 2);
  int results = 0;
  for (const auto& m : stream_messages(*store, "WORKFLOW_EVENTS"))
    results += m.subject.find(".effect_result.") != std::string::npos ? 1 : 0;
  EXPECT_EQ(results, 2);
}

TEST_F(runner_guarantees, reminders_fire_per_tenant_and_are_deleted_after_delivery) {
  auto store = shared_store(data());
  ASSERT_TRUE(store);
  const std::vector<std::string> tenants = {"acme", "beta"};
  {
    runner_node aggregate_only(data(), true, false);
    ASSERT_TRUE(aggregate_only.ok());
    for (const auto& t : tenants) {
      aggregate_only.command(t, "Account", "acc-a", open_account(100));
      auto req = request_transfer("acc-a", "acc-b", 25);
      req["timeout_ms"] = 100;
      ASSERT_EQ(aggregate_only.command(t, "Transfer", "t-same", req)["status"], "accepted");
    }
  }
  {
    files_node runner_only(data(), {pipeline("runner-saga.yaml")});
    ASSERT_TRUE(runner_only.ok());
    for (const auto& t : tenants)
      ASSERT_TRUE(eventually([&] {
        return saga_record(*store, t, "Transfer", "t-same")["state"]["step"] == "timed_out";
      })) << t;
    ASSERT_TRUE(eventually([&] { return schedules(*store).empty(); })) << "deleted after delivery";
    std::this_thread::sleep_for(300ms);
    for (const auto& t : tenants)
      EXPECT_EQ(saga_record(*store, t, "Transfer", "t-same")["inputs"], 2) << t << ": its own reminder only";
  }
  auto events = stream_messages(*store, "WORKFLOW_EVENTS");
  std::multiset<std::string> reminded;
  for (const auto& m : events) {
    if (m.subject.find(".reminder.") == std::string::npos) continue;
    auto b = json::parse(m.body);
    EXPECT_EQ(m.subject, "tenant." + b.value("tenant_id", "") + ".reminder.Transfer");
    EXPECT_EQ(b["correlation_id"], "t-same");
    reminded.insert(b.value("tenant_id", ""));
  }
  EXPECT_EQ(reminded, (std::multiset<std::string>{"acme", "beta"}));
}

// schedule.scan starts its scans near the last scan's time (skipping the
// deleted past) and from the first item every full_every (10 s): an item due
// long before the floor — written while the runner runs — is skipped by the
// next scans and found by the full pass, then published and deleted.
TEST_F(runner_guarantees, a_schedule_item_behind_the_scans_floor_is_found_by_a_full_pass) {
  auto store = shared_store(data());
  ASSERT_TRUE(store);
  {
    files_node runner_only(data(), {pipeline("runner-saga.yaml")});
    ASSERT_TRUE(runner_only.ok());
    std::this_thread::sleep_for(300ms);  // a scan or more: the floor is set
    const auto now_ms = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                       std::chrono::system_clock::now().time_since_epoch())
                                                       .count());
    auto ws = store->begin();
    store->schedules().put(ws, {now_ms - 60'000, "acme", "Transfer", "t-old", "timeout"}, "{}");
    ASSERT_TRUE(store->commit(ws).ok());
    std::this_thread::sleep_for(1s);
    EXPECT_EQ(schedules(*store).size(), 1U) << "behind the floor: not seen by the scans in between";
    ASSERT_TRUE(eventually([&] { return schedules(*store).empty(); }, 15s)) << "the full pass fires it";
  }
  EXPECT_EQ(count_subject(stream_messages(*store, "WORKFLOW_EVENTS"), ".reminder."), 1);
}

TEST_F(runner_guarantees, a_cancelled_reminder_never_fires) {
  auto store = shared_store(data());
  ASSERT_TRUE(store);
  {
    runner_node node(data());
    ASSERT_TRUE(node.ok());
    node.command("acme", "Account", "acc-a", open_account(100));
    node.command("acme", "Account", "acc-b", open_account(0));
    auto req = request_transfer("acc-a", "acc-b", 10);
    req["timeout_ms"] = 800;
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_EQ(node.command("acme", "Transfer", "t-c", req)["status"], "accepted");
    ASSERT_TRUE(node.eventually([&] { return node.transfer_status("acme", "t-c") == "completed"; }));
    ASSERT_LT(std::chrono::steady_clock::now() - t0, 800ms) << "completed before its timeout";
    EXPECT_TRUE(schedules(*store).empty()) << "cancelled in the completing commit";
    std::this_thread::sleep_for(800ms + 400ms - (std::chrono::steady_clock::now() - t0));
  }
  EXPECT_EQ(count_subject(stream_messages(*store, "WORKFLOW_EVENTS"), ".reminder."), 0);
}

TEST_F(runner_guarantees, a_poison_input_is_quarantined_and_the_rest_goes_on) {
  write_file(dir.path() / "programs" / "counter_saga.lua", R"(
function on_event(state, input)
  if input.payload ~= nil and input.payload.amount == 13 then error("unlucky amount") end
  local n = 1
  if state ~= nil then n = state.n + 1 end
  return {state = {n = n}}
end
)");
  std::ifstream shipped(pipeline("runner-saga.yaml"));
  std::string yaml((std::istreambuf_iterator<char>(shipped)), std::istreambuf_iterator<char>());
  const auto from = yaml.find("sagas:"), to = yaml.find("stages:");
  ASSERT_TRUE(from != std::string::npos && to != std::string::npos && from < to);
  yaml.replace(from, to - from, R"(sagas:
  Counter:
    program: programs/counter_saga.lua
    triggers:
      - { aggregate_type: Account }
    correlate_by: aggregate_id
)");
  write_file(dir.path() / "runner-counter.yaml", yaml);
  auto store = shared_store(data());
  ASSERT_TRUE(store);
  files_node node(data(), {pipeline("aggregate.yaml"), (dir.path() / "runner-counter.yaml").string()});
  ASSERT_TRUE(node.ok());
  auto deposit = [](int n) { return json{{"type", "deposit"}, {"amount", n}}; };
  ASSERT_EQ(node.command("acme", "Account", "acc-p", open_account(1))["status"], "accepted");
  ASSERT_TRUE(eventually([&] { return saga_record(*store, "acme", "Counter", "acc-p")["state"]["n"] == 1; }));
  const auto before = saga_record(*store, "acme", "Counter", "acc-p");
  ASSERT_EQ(node.command("acme", "Account", "acc-p", deposit(13))["status"], "accepted");
  ASSERT_TRUE(eventually([&] {
    auto q = store->quarantine().list(100);
    return q.ok() && q->size() == 1;
  }));
  auto q = store->quarantine().list(100);
  ASSERT_TRUE(q.ok() && q->size() == 1);
  auto rec = json::parse(q->front().record);
  EXPECT_EQ(rec["saga"], "Counter");
  EXPECT_EQ(rec["correlation_id"], "acc-p");
  EXPECT_EQ(rec["tenant_id"], "acme");
  EXPECT_NE(rec.value("reason", "").find("unlucky amount"), std::string::npos) << rec.dump();
  EXPECT_EQ(saga_record(*store, "acme", "Counter", "acc-p"), before) << "the instance as it was";
  // Later inputs, of other instances and of this one, are processed.
  ASSERT_EQ(node.command("acme", "Account", "acc-q", open_account(1))["status"], "accepted");
  ASSERT_EQ(node.command("acme", "Account", "acc-q", deposit(2))["status"], "accepted");
  ASSERT_EQ(node.command("acme", "Account", "acc-p", deposit(4))["status"], "accepted");
  ASSERT_TRUE(eventually([&] { return saga_record(*store, "acme", "Counter", "acc-q")["state"]["n"] == 2; }));
  ASSERT_TRUE(eventually([&] { return saga_record(*store, "acme", "Counter", "acc-p")["state"]["n"] == 2; }));
  EXPECT_EQ(saga_record(*store, "acme", "Counter", "acc-p")["inputs"], 2);
  auto q2 = store->quarantine().list(100);
  ASSERT_TRUE(q2.ok());
  EXPECT_EQ(q2->size(), 1U);
}

// New outbox items reach the scan in memory, at most `max_hints` of them; the
// rest are left to a pass over the outbox. With max_hints 0 every item takes
// that path: each transfer still completes, each command is appended once,
// and the outbox ends empty.
TEST_F(runner_guarantees, outbox_items_over_max_hints_are_found_by_a_pass) {
  const auto file = saga_pipeline_with_scan(dir.path(), "runner-passes-only.yaml", "max_hints: 0");
  files_node node(data(), {pipeline("aggregate.yaml"), file});
  ASSERT_TRUE(node.ok());
  constexpr int k_accounts = 6, k_transfers = 24;
  for (int i = 0; i < k_accounts; ++i)
    ASSERT_EQ(
        node.command("acme", "Account", "acc-" + std::to_string(i), open_account(100)).value("status", ""),
        "accepted");
  for (int i = 0; i < k_transfers; ++i) {
    const auto from = "acc-" + std::to_string(i % k_accounts),
               to = "acc-" + std::to_string((i + 1) % k_accounts);
    ASSERT_EQ(node.command("acme", "Transfer", "t-" + std::to_string(i), request_transfer(from, to, 10))
                  .value("status", ""),
              "accepted");
  }
  for (int i = 0; i < k_transfers; ++i)
    ASSERT_TRUE(eventually([&] {
      return node.transfer_status("acme", "t-" + std::to_string(i)) == "completed";
    })) << "t-"
        << i << ": " << node.transfer_status("acme", "t-" + std::to_string(i));
  ASSERT_TRUE(eventually([&] { return node.outbox_depth() == 0; }));
  std::int64_t sum = 0;
  for (int i = 0; i < k_accounts; ++i) sum += node.balance("acme", "acc-" + std::to_string(i));
  EXPECT_EQ(sum, 100 * k_accounts);
  auto m = node.client().Get("/metrics");
  ASSERT_TRUE(m);
  const std::string dropped = "esflow_runner_outbox_hints_dropped_total{pipeline=\"runner\"} ";
  const auto at = m->body.find(dropped);
  ASSERT_NE(at, std::string::npos) << m->body;
  // Every withdraw, deposit, completion and notify went through a pass.
  EXPECT_GE(std::stod(m->body.substr(at + dropped.size())), 3.0 * k_transfers);
  auto store = shared_store(data());
  ASSERT_TRUE(store);
  for (const auto& [id, n] : commits_per_command(*store)) EXPECT_EQ(n, 1) << id;
}

// A saga that ends at its first input with one command; later inputs leave it as it is.
std::string ends_at_once_pipeline(const std::filesystem::path& dir) {
  write_file(dir / "once.lua", R"(
function on_event(state, input)
  if state ~= nil then return {state = state} end
  return {state = {first = input.event_id},
          work = {{kind = "command", aggregate_type = "Account", aggregate_id = "acc-x",
                   payload = {type = "deposit", amount = 1}}},
          done = true}
end
)");
  return saga_path_pipeline(dir, "once", "Once", "once.lua");
}

// Appends `events` "noted" events of Order `id` in one commit; its position.
std::uint64_t append_noted(storage::node_store& store, const std::string& id, const std::string& command_id,
                           std::uint64_t expected, std::size_t events) {
  auto log = storage::embedded_event_log::open(store.database());
  EXPECT_TRUE(log.ok());
  if (!log.ok()) return 0;
  std::promise<result<storage::append_result>> appended;
  log.value()->append(storage::testing::make_request("acme", "Order", id, command_id, expected, events),
                      [&](result<storage::append_result> r) { appended.set_value(std::move(r)); });
  auto r = appended.get_future().get();
  EXPECT_TRUE(r.ok()) << r.err().to_string();
  EXPECT_TRUE(log.value()->close().ok());
  return r.ok() ? r.value().position : 0;
}

TEST_F(runner_guarantees,
       an_input_that_ends_the_instance_is_stored_when_the_next_one_in_its_message_is_skipped) {
  const auto file = ends_at_once_pipeline(dir.path());
  auto store = shared_store(data());
  ASSERT_TRUE(store);
  // Two inputs of one instance in one commit: one message. The first ends the instance.
  const auto first = append_noted(*store, "o-1", "c-1", 0, 2);
  ASSERT_GT(first, 0U);
  const std::string cp = "runner:once:log";
  {
    files_node node(data(), {file});
    ASSERT_TRUE(node.ok());
    ASSERT_TRUE(eventually([&] { return checkpoint(*store, cp) >= first; }));
    auto rec = saga_record(*store, "acme", "Once", "o-1");
    ASSERT_FALSE(rec.is_null()) << "the transition was stored";
    EXPECT_EQ(rec["done"], true) << rec.dump();
    EXPECT_EQ(rec["inputs"], 1) << rec.dump();
    EXPECT_EQ(rec["state"]["first"], "c-1-e0") << rec.dump();
    ASSERT_EQ(outbox(*store).size(), 1U) << "its command (no aggregate node to send it to)";
    EXPECT_TRUE(marker_stored(*store, "acme", "saga:Once:c-1-e0"));
    EXPECT_TRUE(marker_stored(*store, "acme", "saga:Once:c-1-e1"));
  }
  // Inputs of the done instance, alone in their message: acked, nothing written for them.
  const auto later = append_noted(*store, "o-1", "c-2", 2, 1);
  ASSERT_GT(later, first);
  const auto before = saga_record(*store, "acme", "Once", "o-1");
  {
    files_node node(data(), {file});
    ASSERT_TRUE(node.ok());
    ASSERT_TRUE(eventually([&] { return checkpoint(*store, cp) >= later; })) << "the checkpoint moves on";
    EXPECT_EQ(saga_record(*store, "acme", "Once", "o-1"), before);
    EXPECT_FALSE(marker_stored(*store, "acme", "saga:Once:c-2-e0")) << "no write for a done instance";
    EXPECT_EQ(outbox(*store).size(), 1U);
  }
  // Read again from the start: the done record skips everything, nothing changes.
  set_checkpoint(*store, cp, 0);
  {
    files_node node(data(), {file});
    ASSERT_TRUE(node.ok());
    ASSERT_TRUE(eventually([&] { return checkpoint(*store, cp) >= later; }));
    EXPECT_EQ(saga_record(*store, "acme", "Once", "o-1"), before);
    EXPECT_EQ(outbox(*store).size(), 1U);
  }
}

}  // namespace
}  // namespace esflow::runner_test
