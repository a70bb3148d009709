// Cold reads of an aggregate node whose log is remote: they start at the
// snapshot's position and never run on a TBB worker (stages/aggregate/README.md,
// "Cold reads"). The remote log is the embedded one behind a spy that hides
// its type (so the service treats it as remote) and records every read.
#include "tests/stages/aggregate/forwarding_log.h"
#include "tests/stages/aggregate/harness.h"

#include <oneapi/tbb/task_arena.h>

#include <thread>

namespace esflow::aggregate::testing {
namespace {

struct read_call {
  bool on_tbb_worker = false;
  schemas::version_t after = 0;
  schemas::position_t after_position = 0;
};

class spy_log final : public forwarding_log {
 public:
  using forwarding_log::forwarding_log;

  result<std::vector<schemas::event>> read(std::string_view t, std::string_view ty, std::string_view id,
                                           schemas::version_t after, std::size_t limit) override {
    record(after, 0);
    return forwarding_log::read(t, ty, id, after, limit);
  }
  result<storage::aggregate_page> read_page(std::string_view t, std::string_view ty, std::string_view id,
                                            schemas::version_t after, schemas::position_t pos,
                                            std::size_t limit) override {
    record(after, pos);
    return forwarding_log::read_page(t, ty, id, after, pos, limit);
  }

  std::vector<read_call> calls() {
    std::lock_guard lock(_mu);
    return _calls;
  }

 private:
  void record(schemas::version_t after, schemas::position_t pos) {
    std::lock_guard lock(_mu);
    _calls.push_back(
        {tbb::this_task_arena::current_thread_index() != tbb::task_arena::not_initialized, after, pos});
  }

  std::mutex _mu;
  std::vector<read_call> _calls;
};

// Serves "embedded" as the spy around the real embedded backend.
class spied_harness : public harness {
 public:
  spied_harness() {
    prepare_hook = [this](esflow::service_registry& services) {
      auto factory = std::make_shared<storage::event_log_factory>();
      auto real = storage::embedded_backend();
      storage::event_log_backend b = real;
      b.make = [this, real](
                   const storage::event_log_settings& s,
                   const storage::event_log_env& env) -> result<std::shared_ptr<storage::event_log>> {
        auto inner = real.make(s, env);
        if (!inner.ok()) return inner;
        auto spy = std::make_shared<spy_log>(std::move(inner).value());
        last = spy;
        return std::shared_ptr<storage::event_log>(spy);
      };
      EXPECT_TRUE(factory->add(b).ok());
      services.put<storage::event_log_factory>("", factory);
    };
  }
  std::shared_ptr<spy_log> last;
};

std::vector<command_in> deposits(const std::string& id, int n) {
  std::vector<command_in> out;
  out.emplace_back(account_cmd(id, R"({"type":"open_account","initial_balance":0})"));
  for (int i = 1; i < n; ++i) out.emplace_back(account_cmd(id, R"({"type":"deposit","amount":1})"));
  return out;
}

TEST(aggregate_cold_reads, start_at_the_snapshot_and_run_off_the_tbb_workers) {
  spied_harness h;
  node_options o;
  o.snapshot_every = 100;
  auto first = h.run(deposits("acc-1", 250), o);
  ASSERT_EQ(first.size(), 250u);
  EXPECT_TRUE(first.back().accepted) << first.back().code << ": " << first.back().message;

  // A new node on the same directory: the cache is cold, snapshot at 200.
  auto second = h.run({command_in(account_cmd("acc-1", R"({"type":"deposit","amount":1})"))}, o);
  ASSERT_EQ(second.size(), 1u);
  ASSERT_TRUE(second[0].accepted) << second[0].code << ": " << second[0].message;
  EXPECT_EQ(second[0].result.version, 251u);

  auto calls = h.last->calls();
  ASSERT_FALSE(calls.empty()) << "the cold aggregate was not read from the log";
  for (const auto& c : calls) {
    EXPECT_FALSE(c.on_tbb_worker) << "a read of the log ran on a TBB worker";
    EXPECT_EQ(c.after, 200u) << "the read did not start after the snapshot";
    EXPECT_NE(c.after_position, 0u) << "the read did not start at the snapshot's log position";
  }
}

TEST(aggregate_cold_reads, a_rejection_on_a_guessed_new_aggregate_is_redecided_off_the_tbb_workers) {
  spied_harness h;
  node_options o;
  o.snapshot_every = 0;  // no snapshot: the node guesses "new" and must find out
  auto first = h.run(deposits("acc-2", 10), o);
  ASSERT_EQ(first.size(), 10u);
  ASSERT_TRUE(first.back().accepted);

  // On the guess (a closed, empty account) the withdrawal is rejected; the
  // commit re-decides it on the real state (balance 9) and accepts it.
  auto second = h.run({command_in(account_cmd("acc-2", R"({"type":"withdraw","amount":5})"))}, o);
  ASSERT_EQ(second.size(), 1u);
  ASSERT_TRUE(second[0].accepted) << second[0].code << ": " << second[0].message;
  EXPECT_EQ(second[0].result.version, 11u);
  auto calls = h.last->calls();
  ASSERT_FALSE(calls.empty());
  for (const auto& c : calls) EXPECT_FALSE(c.on_tbb_worker) << "a read of the log ran on a TBB worker";
}

TEST(aggregate_cold_reads, a_long_replay_leaves_a_snapshot_for_the_next_start) {
  harness h;
  node_options o;
  o.snapshot_every = 0;
  auto first = h.run(deposits("acc-3", 150), o);
  ASSERT_TRUE(first.back().accepted);
  o.snapshot_every = 100;  // now configured: the replay of 150 events writes one
  auto second = h.run({command_in(account_cmd("acc-3", R"({"type":"withdraw","amount":1})"))}, o);
  ASSERT_TRUE(second[0].accepted) << second[0].code << ": " << second[0].message;
  auto svc = h.open_service(o);
  ASSERT_NE(svc, nullptr);
  auto snap = svc->snapshots().get("acme", "Account", "acc-3");
  ASSERT_TRUE(snap.ok());
  ASSERT_TRUE(snap.value().has_value()) << "no snapshot after a replay of 150 events";
  EXPECT_GE(snap.value()->version, 150u);
}

}  // namespace
}  // namespace esflow::aggregate::testing

namespace esflow::aggregate::testing {
namespace {

// HTTP reads run on many server threads; their Lua VMs come from a small
// shared pool, not one set per thread.
TEST(aggregate_cold_reads, concurrent_reads_share_a_bounded_set_of_sandboxes) {
  harness h;
  std::vector<command_in> opens;
  for (int i = 0; i < 32; ++i)
    opens.emplace_back(
        account_cmd("r-" + std::to_string(i), R"({"type":"open_account","initial_balance":7})"));
  auto out = h.run(std::move(opens));
  ASSERT_EQ(out.size(), 32u);
  auto svc = h.open_service();  // a cold cache: every read rehydrates
  ASSERT_NE(svc, nullptr);
  std::vector<std::thread> readers;
  std::atomic<int> ok{0};
  for (int t = 0; t < 16; ++t) {
    readers.emplace_back([&, t] {
      for (int i = t; i < 32; i += 16) {
        auto s = svc->get_state("acme", "Account", "r-" + std::to_string(i));
        if (s.ok() && s->version == 1) ++ok;
      }
    });
  }
  for (auto& r : readers) r.join();
  EXPECT_EQ(ok.load(), 32);
  EXPECT_GE(svc->read_sandboxes().made(), 1u);
  EXPECT_LE(svc->read_sandboxes().made(), 4u) << "one sandbox set per reading thread";
}

}  // namespace
}  // namespace esflow::aggregate::testing
