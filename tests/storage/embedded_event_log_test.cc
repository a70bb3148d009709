// Behaviour of the embedded backend beyond the shared contract: group commit,
// the bounded queue, dedupe expiry, the version cache.
#include "storage/embedded_event_log.h"

#include "tests/storage/embedded_fixture.h"
#include "tests/storage/requests.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>

namespace esflow::storage::testing {
namespace {

using namespace std::chrono_literals;

// Holds the commit thread inside a completion until release() (bounded wait).
class commit_gate {
 public:
  explicit commit_gate(event_log& log) {
    auto entered = std::make_shared<std::promise<void>>();
    auto entered_future = entered->get_future();
    auto released = _release.get_future().share();
    log.append(make_request("gate", "Gate", "gate", "gate-" + std::to_string(counter()++), 0, 0),
               [entered, released](result<append_result>) {
                 entered->set_value();
                 released.wait_for(10s);
               });
    entered_future.wait_for(10s);
  }
  ~commit_gate() { release(); }
  void release() {
    if (!_released) _release.set_value();
    _released = true;
  }

 private:
  static std::atomic<int>& counter() {
    static std::atomic<int> c{0};
    return c;
  }
  std::promise<void> _release;
  bool _released = false;
};

// Waits (bounded) until n completions have run.
void wait_for_count(const std::atomic<int>& n, int expected) {
  for (int i = 0; i < 10000 && n.load() < expected; ++i) std::this_thread::sleep_for(1ms);
}

TEST(embedded_event_log, groups_appends_that_arrive_during_a_write) {
  embedded_env env(durability::fsync);
  std::atomic<int> done{0}, failed{0};
  {
    commit_gate gate(env.log());
    for (int i = 0; i < 256; ++i) {
      env.log().append(
          make_request("acme", "Account", "agg-" + std::to_string(i), "c" + std::to_string(i), 0, 1),
          [&](result<append_result> r) {
            if (!r.ok()) ++failed;
            ++done;
          });
    }
  }
  wait_for_count(done, 256);
  ASSERT_EQ(done.load(), 256);
  EXPECT_EQ(failed.load(), 0);
  auto s = env.embedded().stats();
  EXPECT_EQ(s.commits, 256u);
  EXPECT_LE(s.batches, 2u);  // everything queued behind the gate goes in one or two WriteBatches
  EXPECT_GE(s.avg_batch_size(), 128.0);
  auto all = env.log().read_from(0, 1000);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 256u);
}

TEST(embedded_event_log, second_append_at_the_same_version_in_one_batch_conflicts) {
  embedded_env env(durability::relaxed);
  std::promise<result<append_result>> first, second;
  {
    commit_gate gate(env.log());
    env.log().append(make_request("acme", "Account", "acc-1", "c1", 0, 1),
                     [&](result<append_result> r) { first.set_value(std::move(r)); });
    env.log().append(make_request("acme", "Account", "acc-1", "c2", 0, 1),
                     [&](result<append_result> r) { second.set_value(std::move(r)); });
  }
  auto a = first.get_future().get();
  auto b = second.get_future().get();
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->last_version, 1u);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.err().code, errc::version_conflict);
  EXPECT_EQ(b.err().message, "expected version 0, actual 1");
}

TEST(embedded_event_log, full_queue_fails_fast_with_unavailable) {
  embedded_options o;
  o.max_pending = 4;
  embedded_env env(durability::relaxed, o);
  std::atomic<int> done{0}, full{0};
  {
    commit_gate gate(env.log());
    for (int i = 0; i < 10; ++i) {
      env.log().append(
          make_request("acme", "Account", "acc-" + std::to_string(i), "c" + std::to_string(i), 0, 1),
          [&](result<append_result> r) {
            if (!r.ok() && r.err().code == errc::unavailable && r.err().message == "commit queue full") {
              ++full;
            }
            ++done;
          });
    }
    EXPECT_EQ(full.load(), 6);  // refused at once, while the commit thread is held
  }
  wait_for_count(done, 10);
  EXPECT_EQ(done.load(), 10);
  EXPECT_EQ(env.embedded().stats().rejected_full, 6u);
  EXPECT_EQ(env.embedded().stats().commits, 4u);
}

TEST(embedded_event_log, command_ids_expire_after_the_ttl) {
  auto now = std::make_shared<std::atomic<std::uint64_t>>(1'000'000);
  embedded_options o;
  o.dedupe_ttl = 24h;
  o.now_ms = [now] { return now->load(); };
  embedded_env env(durability::relaxed, o);

  ASSERT_TRUE(append_and_wait(env.log(), make_request("acme", "Account", "acc-1", "c1", 0, 1)).ok());
  now->fetch_add(std::chrono::milliseconds(23h).count());
  auto dup = append_and_wait(env.log(), make_request("acme", "Account", "acc-1", "c1", 0, 1));
  ASSERT_TRUE(dup.ok());
  EXPECT_TRUE(dup->duplicate);

  now->fetch_add(std::chrono::milliseconds(2h).count());
  auto found = env.log().find_command("acme", "c1");
  ASSERT_TRUE(found.ok());
  EXPECT_FALSE(found->has_value());
  // Expired: the id is new again, so a stale resend is judged on its version.
  auto stale = append_and_wait(env.log(), make_request("acme", "Account", "acc-1", "c1", 0, 1));
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.err().code, errc::version_conflict);
  auto fresh = append_and_wait(env.log(), make_request("acme", "Account", "acc-1", "c1", 1, 1));
  ASSERT_TRUE(fresh.ok());
  EXPECT_FALSE(fresh->duplicate);
  EXPECT_EQ(fresh->last_version, 2u);
}

TEST(embedded_event_log, versions_stay_right_when_the_version_cache_is_dropped) {
  embedded_options o;
  o.version_cache_max = 2;
  embedded_env env(durability::relaxed, o);
  for (int round = 0; round < 5; ++round) {
    for (int a = 0; a < 5; ++a) {
      auto r = append_and_wait(env.log(), make_request("acme", "Account", "agg-" + std::to_string(a),
                                                       "c" + std::to_string(round) + "-" + std::to_string(a),
                                                       static_cast<version_t>(round), 1));
      ASSERT_TRUE(r.ok()) << r.err().to_string();
      EXPECT_EQ(r->last_version, static_cast<version_t>(round + 1));
    }
  }
}

TEST(embedded_event_log, completions_may_append_again) {
  embedded_env env(durability::relaxed);
  std::atomic<int> committed{0};
  std::function<void(version_t)> next = [&](version_t v) {
    if (v == 100) return;
    env.log().append(make_request("acme", "Account", "chain", "c" + std::to_string(v), v, 1),
                     [&](result<append_result> r) {
                       if (!r.ok()) return;
                       ++committed;
                       next(r->last_version);
                     });
  };
  next(0);
  wait_for_count(committed, 100);
  EXPECT_EQ(committed.load(), 100);
  EXPECT_EQ(*env.log().current_version("acme", "Account", "chain"), 100u);
}

TEST(embedded_event_log, closed_log_refuses_appends) {
  embedded_env env(durability::relaxed);
  ASSERT_TRUE(env.log().close().ok());
  auto r = append_and_wait(env.log(), make_request("acme", "Account", "acc-1", "c1", 0, 1));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::unavailable);
  EXPECT_EQ(r.err().message, "event log is closed");
}

TEST(embedded_event_log, reopen_continues_positions_without_holes) {
  embedded_env env(durability::fsync);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(append_and_wait(env.log(), make_request("acme", "Account", "a", "c" + std::to_string(i),
                                                        static_cast<version_t>(i), 1))
                    .ok());
  }
  env.reopen();
  auto r = append_and_wait(env.log(), make_request("acme", "Account", "b", "d", 0, 1));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->position, 6u);
}

}  // namespace
}  // namespace esflow::storage::testing
