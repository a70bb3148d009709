// What the runner keeps in memory to save reads, checked where it could go
// stale (docs/runner.md "Inputs on one machine" and "The relay"), on a real
// RocksDB data directory with the nodes in this process:
//   - saga records: with none kept after their commit (cache 0), one kept
//     (every commit evicts another) and the default, every input of many
//     interleaved instances makes one transition on the latest record, also
//     when an instance's next message is loaded before the previous one ran;
//   - saga.run reads a record saga.load read from the store again exactly when
//     memory forgot a record in between (a transition may have been stored);
//     memory answers for the last `cache` stored records;
//   - outbox hints: with a pass over the outbox every millisecond racing the
//     commits' hints, every transfer ends once, each command is appended
//     once, and a rejected withdraw is not sent again once its account could
//     pay it (the sum over all accounts stays what was put in).
#include "stages/runner/runner_service.h"
#include "tests/stages/runner/runner_harness.h"
#include "tests/storage/requests.h"

#include <future>

namespace esflow::runner_test {
namespace {

using namespace std::chrono_literals;

class runner_memory : public ::testing::Test {
 protected:
  http_test::temp_dir dir;
  std::string data() const { return (dir.path() / "data").string(); }
};

// A saga that counts its instance's inputs; `cache` is saga.load's.
std::string counting_pipeline(const std::filesystem::path& dir, int cache) {
  write_file(dir / "count.lua", R"(
function on_event(state, input)
  -- Slow on purpose: messages queue before saga.run, so an instance's earlier
  -- commit often ends between its next message's saga.load and saga.run.
  local x = 0
  for i = 1, 20000 do x = x + i end
  local n = 1
  if state ~= nil then n = state.n + 1 end
  return {state = {n = n}}
end
)");
  return saga_path_pipeline(dir, "count", "Count", "count.lua",
                            cache < 0 ? std::string() : "cache: " + std::to_string(cache));
}

// `rounds` commits of one "noted" event for each of `instances` Orders, the
// instances interleaved: each commit is its own message. The last position.
std::uint64_t append_rounds(storage::node_store& store, int instances, int rounds) {
  auto log = storage::embedded_event_log::open(store.database());
  EXPECT_TRUE(log.ok());
  if (!log.ok()) return 0;
  std::uint64_t last = 0;
  for (int r = 0; r < rounds; ++r)
    for (int i = 0; i < instances; ++i) {
      std::promise<result<storage::append_result>> appended;
      const auto id = "o-" + std::to_string(i);
      log.value()->append(storage::testing::make_request("acme", "Order", id, id + "-c" + std::to_string(r),
                                                         static_cast<std::uint64_t>(r), 1),
                          [&](result<storage::append_result> a) { appended.set_value(std::move(a)); });
      auto a = appended.get_future().get();
      EXPECT_TRUE(a.ok()) << a.err().to_string();
      if (a.ok()) last = a.value().position;
    }
  EXPECT_TRUE(log.value()->close().ok());
  return last;
}

TEST_F(runner_memory, every_input_counts_once_whatever_number_of_records_memory_keeps) {
  constexpr int k_instances = 64, k_rounds = 10;
  auto store = shared_store(data());
  ASSERT_TRUE(store);
  const auto last = append_rounds(*store, k_instances, k_rounds);
  ASSERT_GT(last, 0U);
  const std::string cp = "runner:count:log";
  for (const int cache : {0, 1, -1}) {
    SCOPED_TRACE("cache " + std::to_string(cache));
    // The same backlog again from the start, into fresh records: the markers and records go.
    set_checkpoint(*store, cp, 0);
    {
      auto ws = store->begin();
      for (int i = 0; i < k_instances; ++i) {
        storage::keyspace(store->database(), storage::cf::saga)
            .erase(ws, storage::keys::saga(std::string("acme"), "Count", "o-" + std::to_string(i)));
        for (int r = 0; r < k_rounds; ++r)
          storage::keyspace(store->database(), storage::cf::dedupe)
              .erase(ws, storage::keys::dedupe(
                             "acme", "saga:Count:o-" + std::to_string(i) + "-c" + std::to_string(r) + "-e0"));
      }
      ASSERT_TRUE(store->commit(ws).ok());
    }
    files_node node(data(), {counting_pipeline(dir.path(), cache)});
    ASSERT_TRUE(node.ok());
    ASSERT_TRUE(eventually([&] { return checkpoint(*store, cp) >= last; }, 30s));
    for (int i = 0; i < k_instances; ++i) {
      const auto rec = saga_record(*store, "acme", "Count", "o-" + std::to_string(i));
      ASSERT_FALSE(rec.is_null()) << "o-" << i;
      EXPECT_EQ(rec["state"]["n"], k_rounds) << "o-" << i << ": " << rec.dump();
      EXPECT_EQ(rec["inputs"], k_rounds) << "o-" << i << ": " << rec.dump();
    }
  }
}

// The service's part of saga.load, saga.run and saga.commit for one message
// of instance o-x, driven directly: which look reads the store is the point.
class one_instance {
 public:
  explicit one_instance(files_node& node, const std::string& data_dir)
      : _svc(node.services().find<runner::runner_service>("runner:" + storage::normalise_data_dir(data_dir) +
                                                          ":count")) {}
  bool ok() const { return _svc != nullptr; }
  runner::runner_service& svc() { return *_svc; }

  static runner::saga_input input(const std::string& instance, int n) {
    runner::saga_input in;
    in.tenant = "acme";
    in.saga = "Count";
    in.correlation_id = instance;
    in.input_id = instance + "-" + std::to_string(n);
    in.kind = "event";
    in.input_json =
        R"({"kind":"event","event_id":")" + in.input_id + R"(","event_type":"noted","payload":{}})";
    return in;
  }
  // One message through load, run and a stored commit.
  ::testing::AssertionResult transition(const std::string& instance, int n) {
    runner::runner_context ctx;
    ctx.source = "test";
    ctx.tenant = "acme";
    ctx.inputs = {input(instance, n)};
    auto loaded = _svc->load(ctx.inputs.front());
    if (!loaded.ok()) return ::testing::AssertionFailure() << loaded.err().to_string();
    ctx.record = loaded->record;
    ctx.record_pending = loaded->pending;
    if (auto st = _svc->run(_lanes, ctx); !st.ok())
      return ::testing::AssertionFailure() << st.err().to_string();
    std::promise<status> stored;
    _svc->commit(ctx, [&](status st) { stored.set_value(std::move(st)); });
    if (auto st = stored.get_future().get(); !st.ok())
      return ::testing::AssertionFailure() << st.err().to_string();
    return ::testing::AssertionSuccess();
  }

 private:
  std::shared_ptr<runner::runner_service> _svc;
  runner::lane_sandboxes _lanes;
};

int count_of(const std::optional<std::string>& record) {
  return record ? json::parse(*record)["state"]["n"].get<int>() : 0;
}

TEST_F(runner_memory, a_record_read_at_load_is_read_again_at_run_only_when_memory_forgot_one_in_between) {
  files_node node(data(), {counting_pipeline(dir.path(), 0)});
  ASSERT_TRUE(node.ok());
  one_instance o(node, data());
  ASSERT_TRUE(o.ok());
  // saga.load: a new instance, read from the store.
  auto loaded = o.svc().load(one_instance::input("o-x", 1));
  ASSERT_TRUE(loaded.ok());
  EXPECT_FALSE(loaded->record);
  ASSERT_NE(loaded->mark, 0U) << "read from the store";
  // saga.run's look with nothing in between: nothing read, saga.load's record stands.
  auto again = o.svc().load(one_instance::input("o-x", 1), loaded->mark);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->unchanged);
  // The instance's previous message makes its transition and is stored in between; with no
  // records kept (cache 0) memory forgets it at once: saga.run must read the store again.
  ASSERT_TRUE(o.transition("o-x", 0));
  auto after = o.svc().load(one_instance::input("o-x", 1), loaded->mark);
  ASSERT_TRUE(after.ok());
  EXPECT_FALSE(after->unchanged) << "a transition happened between the two looks";
  EXPECT_EQ(count_of(after->record), 1);
  EXPECT_FALSE(after->pending);
}

TEST_F(runner_memory, memory_answers_for_the_last_cache_records_and_the_store_for_older_ones) {
  files_node node(data(), {counting_pipeline(dir.path(), 2)});
  ASSERT_TRUE(node.ok());
  one_instance o(node, data());
  ASSERT_TRUE(o.ok());
  ASSERT_TRUE(o.transition("o-a", 0));
  ASSERT_TRUE(o.transition("o-a", 1));
  auto kept = o.svc().load(one_instance::input("o-a", 2));
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(kept->mark, 0U) << "from memory";
  EXPECT_FALSE(kept->pending) << "stored";
  EXPECT_EQ(count_of(kept->record), 2);
  // Two more instances push o-a out of a memory of two.
  ASSERT_TRUE(o.transition("o-b", 0));
  ASSERT_TRUE(o.transition("o-c", 0));
  auto evicted = o.svc().load(one_instance::input("o-a", 2));
  ASSERT_TRUE(evicted.ok());
  EXPECT_NE(evicted->mark, 0U) << "read from the store";
  EXPECT_EQ(count_of(evicted->record), 2);
  // And the next transition of o-a builds on the stored record.
  ASSERT_TRUE(o.transition("o-a", 2));
  auto store = shared_store(data());
  ASSERT_TRUE(store);
  EXPECT_EQ(saga_record(*store, "acme", "Count", "o-a")["state"]["n"], 3);
  EXPECT_EQ(saga_record(*store, "acme", "Count", "o-c")["state"]["n"], 1);
}

TEST_F(runner_memory, hints_racing_a_pass_every_millisecond_send_each_command_once) {
  const auto file = saga_pipeline_with_scan(dir.path(), "runner-pass-every-ms.yaml", "poll: 1ms");
  files_node node(data(), {pipeline("aggregate.yaml"), file});
  ASSERT_TRUE(node.ok());
  constexpr int k_accounts = 6, k_transfers = 40;
  auto account = [](int i) { return "acc-" + std::to_string(i % k_accounts); };
  for (int i = 0; i < k_accounts; ++i)
    ASSERT_EQ(node.command("acme", "Account", account(i), open_account(100)).value("status", ""), "accepted");
  // Every fourth transfer asks more than any account holds: its withdraw is rejected.
  auto amount = [](int i) { return i % 4 == 3 ? 5000 : 5; };
  for (int i = 0; i < k_transfers; ++i)
    ASSERT_EQ(node.command("acme", "Transfer", "t-" + std::to_string(i),
                           request_transfer(account(i), account(i + 1), amount(i)))
                  .value("status", ""),
              "accepted");
  for (int i = 0; i < k_transfers; ++i)
    ASSERT_TRUE(eventually([&] {
      const auto s = node.transfer_status("acme", "t-" + std::to_string(i));
      return s == "completed" || s == "failed";
    })) << "t-"
        << i << ": " << node.transfer_status("acme", "t-" + std::to_string(i));
  for (int i = 0; i < k_transfers; ++i)
    EXPECT_EQ(node.transfer_status("acme", "t-" + std::to_string(i)), amount(i) == 5 ? "completed" : "failed")
        << "t-" << i;
  // Now every account could pay the rejected withdraws: a stale copy sent again would be accepted.
  for (int i = 0; i < k_accounts; ++i)
    ASSERT_EQ(node.command("acme", "Account", account(i), json{{"type", "deposit"}, {"amount", 10000}})
                  .value("status", ""),
              "accepted");
  std::this_thread::sleep_for(300ms);  // hundreds of passes
  ASSERT_TRUE(eventually([&] { return node.outbox_depth() == 0; }));
  std::int64_t sum = 0;
  for (int i = 0; i < k_accounts; ++i) sum += node.balance("acme", account(i));
  EXPECT_EQ(sum, 10100 * k_accounts);
  auto store = shared_store(data());
  ASSERT_TRUE(store);
  for (const auto& [id, n] : commits_per_command(*store)) EXPECT_EQ(n, 1) << id;
}

}  // namespace
}  // namespace esflow::runner_test
