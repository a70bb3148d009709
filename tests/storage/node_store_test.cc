// The node store: one per data directory, typed stores over its families, and
// write sets that are all-or-none across families.
#include "storage/node_store.h"

#include "storage/commit_pool.h"
#include "storage/event_log.h"
#include "storage/keys.h"
#include "tests/storage/temp_dir.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <poll.h>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace esflow::storage {
namespace {

using testing::temp_dir;

std::shared_ptr<node_store> open_store(const temp_dir& dir, durability mode = durability::relaxed) {
  auto s = node_store::open({.data_dir = dir.str(), .mode = mode});
  EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.err().to_string());
  return s.ok() ? s.value() : nullptr;
}

// One saga-commit-shaped write: state, an outbox item, a schedule, a
// checkpoint and a dedupe marker, all keyed by `i`.
void stage_saga_commit(node_store& s, write_set& ws, int i) {
  const auto id = "c-" + std::to_string(i);
  s.sagas().put(ws, "acme", "Transfer", id, "state-" + std::to_string(i));
  s.outbox().put(ws, "acme", "command", id, "item-" + std::to_string(i));
  s.schedules().put(ws, {1000 + static_cast<std::uint64_t>(i), "acme", "Transfer", id, "timeout"}, "p");
  s.checkpoints().put(ws, "acme", "Transfer", static_cast<schemas::position_t>(i));
  s.dedupe().put(ws, "acme", "Transfer:" + id, dedupe_origin::embedded,
                 {UINT64_MAX, request_hash("Transfer", id, "p"), static_cast<schemas::position_t>(i), 1, 1});
}

// How many of the five families hold commit i's entries.
int parts_present(node_store& s, int i) {
  const auto id = "c-" + std::to_string(i);
  int n = 0;
  auto saga = s.sagas().get("acme", "Transfer", id);
  n += saga.ok() && saga.value().has_value();
  auto outbox = s.outbox().list({}, 100000);
  if (outbox.ok())
    for (const auto& item : outbox.value()) n += item.work_id == id;
  auto due = s.schedules().due(UINT64_MAX, 100000);
  if (due.ok())
    for (const auto& item : due.value()) n += item.key.correlation_id == id;
  auto dd = s.dedupe().get("acme", "Transfer:" + id, dedupe_origin::embedded, 0);
  n += dd.ok() && dd.value().has_value();
  auto cp = s.checkpoints().get("acme", "Transfer");
  n += cp.ok() && cp.value().has_value() && *cp.value() >= static_cast<schemas::position_t>(i);
  return n;
}

TEST(write_set, multi_family_write_is_visible_whole) {
  temp_dir dir;
  auto s = open_store(dir);
  ASSERT_TRUE(s);
  auto ws = s->begin();
  stage_saga_commit(*s, ws, 1);
  EXPECT_EQ(ws.size(), 5U);
  ASSERT_TRUE(s->commit(ws).ok());
  EXPECT_EQ(parts_present(*s, 1), 5);
}

TEST(write_set, injected_failure_leaves_nothing_of_the_set_visible) {
  temp_dir dir;
  std::atomic<bool> fail{false};
  auto opened =
      node_store::open({.data_dir = dir.str(), .mode = durability::fsync, .inject_write_failure = [&] {
                          return fail.load();
                        }});
  ASSERT_TRUE(opened.ok());
  auto& s = *opened.value();
  auto first = s.begin();
  stage_saga_commit(s, first, 1);
  ASSERT_TRUE(s.commit(first).ok());

  fail = true;
  auto second = s.begin();
  stage_saga_commit(s, second, 2);
  auto r = s.commit(second);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::unavailable);
  EXPECT_NE(r.err().message.find("injected"), std::string::npos) << r.err().message;
  EXPECT_EQ(parts_present(s, 2), 0) << "a failed write set must leave no part behind";
  EXPECT_EQ(parts_present(s, 1), 5) << "what was committed before stays";

  fail = false;
  ASSERT_TRUE(s.commit(second).ok()) << "the same set commits once the fault is gone";
  EXPECT_EQ(parts_present(s, 2), 5);
}

// A child process commits write sets in a loop and is killed at a random
// moment; after reopening, every commit is either whole or absent.
TEST(write_set, absorbed_sets_are_written_as_one_batch) {
  temp_dir dir;
  auto s = open_store(dir);
  ASSERT_TRUE(s);
  auto group = s->begin();
  for (int i = 1; i <= 3; ++i) {
    auto ws = s->begin();
    stage_saga_commit(*s, ws, i);
    ASSERT_TRUE(group.absorb(ws));
  }
  EXPECT_EQ(group.size(), 15U);
  for (int i = 1; i <= 3; ++i) EXPECT_EQ(parts_present(*s, i), 0) << "nothing before the commit";
  ASSERT_TRUE(s->commit(group).ok());
  for (int i = 1; i <= 3; ++i) EXPECT_EQ(parts_present(*s, i), 5) << i;
}

// Many sets submitted at once are grouped (fewer writes than sets) and every
// set lands whole; a failing write fails every set of its group, and nothing
// of them is visible.
TEST(commit_pool, groups_concurrent_sets_and_fails_a_group_all_or_none) {
  temp_dir dir;
  std::atomic<bool> fail{false};
  std::atomic<int> writes{0};
  auto opened =
      node_store::open({.data_dir = dir.str(), .mode = durability::fsync, .inject_write_failure = [&] {
                          // The first write waits a little: the other sets queue behind it.
                          if (writes++ == 0) std::this_thread::sleep_for(std::chrono::milliseconds(200));
                          return fail.load();
                        }});
  ASSERT_TRUE(opened.ok());
  auto store = std::move(opened).value();
  constexpr int k_sets = 300;
  std::atomic<int> ok{0}, failed{0};
  {
    commit_pool pool(store, 1, 4096, 64);
    for (int i = 1; i <= k_sets; ++i) {
      auto ws = store->begin();
      stage_saga_commit(*store, ws, i);
      pool.submit(std::move(ws), [&](status st) { (st.ok() ? ok : failed)++; });
    }
    pool.stop();  // commits what is queued
  }
  EXPECT_EQ(ok.load(), k_sets);
  EXPECT_LT(writes.load(), k_sets / 10) << "sets waiting together are written together";
  for (int i = 1; i <= k_sets; ++i) ASSERT_EQ(parts_present(*store, i), 5) << i;

  fail = true;
  {
    commit_pool pool(store, 1, 4096, 64);
    for (int i = k_sets + 1; i <= k_sets + 50; ++i) {
      auto ws = store->begin();
      stage_saga_commit(*store, ws, i);
      pool.submit(std::move(ws), [&](status st) { (st.ok() ? ok : failed)++; });
    }
    pool.stop();
  }
  EXPECT_EQ(failed.load(), 50);
  for (int i = k_sets + 1; i <= k_sets + 50; ++i) EXPECT_EQ(parts_present(*store, i), 0) << i;
}

TEST(write_set, process_killed_mid_writes_leaves_every_set_whole_or_absent) {
  temp_dir dir;
  constexpr int k_sets = 20000;  // more than the child writes before the kill
  constexpr int k_signal_after = 200;
  int progress[2];
  ASSERT_EQ(pipe(progress), 0);
  const pid_t child = fork();
  ASSERT_NE(child, -1);
  if (child == 0) {
    close(progress[0]);
    auto s = node_store::open({.data_dir = dir.str(), .mode = durability::relaxed});
    if (!s.ok()) _exit(3);
    for (int i = 1; i <= k_sets; ++i) {
      auto ws = s.value()->begin();
      stage_saga_commit(*s.value(), ws, i);
      if (!s.value()->commit(ws).ok()) _exit(4);
      if (i == k_signal_after && write(progress[1], "x", 1) != 1) _exit(5);
    }
    _exit(0);
  }
  close(progress[1]);
  // Kill once the child is writing (whatever the build's speed), a moment later.
  pollfd pfd{progress[0], POLLIN, 0};
  const int ready = poll(&pfd, 1, 30000);
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  kill(child, SIGKILL);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  close(progress[0]);
  ASSERT_EQ(ready, 1) << "the child never reached " << k_signal_after << " sets";

  auto s = open_store(dir);
  ASSERT_TRUE(s);
  std::vector<int> parts(k_sets + 1, 0);
  const auto index_of = [](std::string_view id) { return std::stoi(std::string(id.substr(2))); };
  auto outbox = s->outbox().list({}, k_sets + 1);
  ASSERT_TRUE(outbox.ok());
  for (const auto& item : outbox.value()) ++parts[index_of(item.work_id)];
  auto due = s->schedules().due(UINT64_MAX, k_sets + 1);
  ASSERT_TRUE(due.ok());
  for (const auto& item : due.value()) ++parts[index_of(item.key.correlation_id)];
  auto cp = s->checkpoints().get("acme", "Transfer");
  ASSERT_TRUE(cp.ok());
  const auto checkpoint = static_cast<int>(cp.value().value_or(0));
  int whole = 0;
  for (int i = 1; i <= k_sets; ++i) {
    const auto id = "c-" + std::to_string(i);
    auto saga = s->sagas().get("acme", "Transfer", id);
    ASSERT_TRUE(saga.ok());
    parts[i] += saga.value().has_value();
    auto dd = s->dedupe().get("acme", "Transfer:" + id, dedupe_origin::embedded, 0);
    ASSERT_TRUE(dd.ok());
    parts[i] += dd.value().has_value();
    parts[i] += checkpoint >= i;
    ASSERT_TRUE(parts[i] == 0 || parts[i] == 5) << "set " << i << " is torn: " << parts[i] << " of 5 parts";
    whole += parts[i] == 5;
  }
  // Sets are written in order: the survivors are a prefix, the checkpoint its end.
  EXPECT_EQ(checkpoint, whole);
  EXPECT_GT(whole, 0) << "the child wrote nothing before the kill";
  EXPECT_LT(whole, k_sets) << "the child finished before the kill: nothing was tested";
}

TEST(write_set, a_set_made_before_close_is_refused_after_it) {
  temp_dir dir;
  auto s = open_store(dir);
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->close().ok());
  auto ws = s->begin();
  stage_saga_commit(*s, ws, 1);
  auto r = s->commit(ws);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::unavailable);
}

TEST(node_store, shared_gives_one_store_per_directory) {
  temp_dir dir;
  auto a = node_store::shared({.data_dir = dir.str()});
  ASSERT_TRUE(a.ok()) << a.err().to_string();
  auto b = node_store::shared({.data_dir = dir.str() + "/./"});
  ASSERT_TRUE(b.ok()) << b.err().to_string();
  EXPECT_EQ(a.value().get(), b.value().get()) << "the same directory, spelled differently";
  auto other = node_store::shared({.data_dir = dir.str(), .mode = durability::relaxed});
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.err().code, errc::invalid_config);
  EXPECT_NE(other.err().message.find("one directory, one durability"), std::string::npos)
      << other.err().message;
  // A store of its own cannot open the directory while the shared one holds it.
  auto own = node_store::open({.data_dir = dir.str()});
  EXPECT_FALSE(own.ok());
  a.value().reset();
  b.value().reset();
  // The last user let go: the directory opens again.
  auto again = node_store::shared({.data_dir = dir.str(), .mode = durability::relaxed});
  EXPECT_TRUE(again.ok()) << again.err().to_string();
}

TEST(node_store, probe_writes_and_reads_back_and_fails_when_closed) {
  temp_dir dir;
  auto s = open_store(dir, durability::fsync);
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->probe(std::chrono::seconds(5)).ok());
  auto cp = s->checkpoints().get({}, "health");
  ASSERT_TRUE(cp.ok());
  EXPECT_FALSE(cp.value().has_value()) << "the probe key is not a consumer's checkpoint";
  ASSERT_TRUE(s->close().ok());
  auto r = s->probe(std::chrono::seconds(5));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::unavailable);
}

TEST(node_store, typed_stores_survive_a_reopen) {
  temp_dir dir;
  {
    auto s = open_store(dir, durability::fsync);
    ASSERT_TRUE(s);
    auto ws = s->begin();
    s->readmodels().put(ws, "acme", "accounts", "acc-1", "{\"balance\":5}");
    s->checkpoints().put(ws, "", "follower", 42);
    ASSERT_TRUE(s->commit(ws).ok());
    ASSERT_TRUE(s->quarantine().put("esflow-agg-ingest", 9, "{\"reason\":\"x\"}").ok());
  }
  auto s = open_store(dir);
  ASSERT_TRUE(s);
  auto row = s->readmodels().get("acme", "accounts", "acc-1");
  ASSERT_TRUE(row.ok());
  ASSERT_TRUE(row.value().has_value());
  EXPECT_EQ(*row.value(), "{\"balance\":5}");
  auto cp = s->checkpoints().get("", "follower");
  ASSERT_TRUE(cp.ok());
  EXPECT_EQ(cp.value(), std::optional<schemas::position_t>(42));
  auto q = s->quarantine().list(10);
  ASSERT_TRUE(q.ok());
  ASSERT_EQ(q->size(), 1U);
  EXPECT_EQ(q->front().source, "esflow-agg-ingest");
  EXPECT_EQ(q->front().position, 9U);
  EXPECT_EQ(q->front().record, "{\"reason\":\"x\"}");
}

TEST(readmodel_store, a_scan_sees_only_its_tenant_and_view_in_key_order_with_a_cursor) {
  temp_dir dir;
  auto s = open_store(dir);
  ASSERT_TRUE(s);
  auto ws = s->begin();
  for (const auto* key : {"b", "a", "c"}) s->readmodels().put(ws, "acme", "accounts", key, key);
  s->readmodels().put(ws, "acme", "accountsX", "a", "other view");
  s->readmodels().put(ws, "acm", "eaccounts", "a", "tenant+view that concatenate alike");
  s->readmodels().put(ws, "other", "accounts", "a", "other tenant");
  ASSERT_TRUE(s->commit(ws).ok());
  auto first = s->readmodels().scan("acme", "accounts", "", 2);
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->size(), 2U);
  EXPECT_EQ((*first)[0].row_key, "a");
  EXPECT_EQ((*first)[1].row_key, "b");
  auto rest = s->readmodels().scan("acme", "accounts", (*first)[1].row_key, 10);
  ASSERT_TRUE(rest.ok());
  ASSERT_EQ(rest->size(), 1U);
  EXPECT_EQ((*rest)[0].row_key, "c");
  EXPECT_EQ((*rest)[0].value, "c");
}

TEST(runner_stores, outbox_lists_with_a_cursor_and_erase_removes) {
  temp_dir dir;
  auto s = open_store(dir);
  ASSERT_TRUE(s);
  auto ws = s->begin();
  for (int i = 0; i < 5; ++i) s->outbox().put(ws, "acme", "command", "w-" + std::to_string(i), "x");
  ASSERT_TRUE(s->commit(ws).ok());
  auto page = s->outbox().list({}, 3);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->size(), 3U);
  auto next = s->outbox().list(page->back().key, 10);
  ASSERT_TRUE(next.ok());
  ASSERT_EQ(next->size(), 2U);
  EXPECT_EQ(next->front().work_id, "w-3");
  EXPECT_EQ(next->front().tenant, "acme");
  EXPECT_EQ(next->front().kind, "command");
  auto del = s->begin();
  s->outbox().erase(del, "acme", "command", "w-0");
  ASSERT_TRUE(s->commit(del).ok());
  auto all = s->outbox().list({}, 10);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 4U);
}

TEST(runner_stores, schedules_come_due_in_time_order) {
  temp_dir dir;
  auto s = open_store(dir);
  ASSERT_TRUE(s);
  auto ws = s->begin();
  s->schedules().put(ws, {300, "acme", "Transfer", "c-3", "late"}, "3");
  s->schedules().put(ws, {100, "zeta", "Transfer", "c-1", "early"}, "1");
  s->schedules().put(ws, {200, "acme", "Transfer", "c-2", "middle"}, "2");
  ASSERT_TRUE(s->commit(ws).ok());
  auto due = s->schedules().due(200, 10);
  ASSERT_TRUE(due.ok());
  ASSERT_EQ(due->size(), 2U);
  EXPECT_EQ((*due)[0].key.name, "early");
  EXPECT_EQ((*due)[0].key.tenant, "zeta");
  EXPECT_EQ((*due)[1].key.name, "middle");
  EXPECT_EQ((*due)[1].payload, "2");
  auto del = s->begin();
  s->schedules().erase(del, (*due)[0].key);
  ASSERT_TRUE(s->commit(del).ok());
  auto after = s->schedules().due(UINT64_MAX, 10);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->size(), 2U);
  // A lower bound: only what is due at or after it.
  auto from = s->schedules().due(UINT64_MAX, 10, 200);
  ASSERT_TRUE(from.ok());
  ASSERT_EQ(from->size(), 2U);
  EXPECT_EQ((*from)[0].key.name, "middle");
  auto none = s->schedules().due(199, 10, 150);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST(dedupe_store, one_codec_keeps_backends_apart_and_honours_expiry) {
  temp_dir dir;
  auto s = open_store(dir);
  ASSERT_TRUE(s);
  auto ws = s->begin();
  auto hash = request_hash("account", "a-1", R"({"amount":5})");
  s->dedupe().put(ws, "acme", "cmd-1", dedupe_origin::jetstream, {1000, hash, 55, 3, 4});
  ASSERT_TRUE(s->commit(ws).ok());
  auto mine = s->dedupe().get("acme", "cmd-1", dedupe_origin::jetstream, 999);
  ASSERT_TRUE(mine.ok());
  ASSERT_TRUE(mine.value().has_value());
  EXPECT_EQ(mine.value()->request_hash, hash);
  EXPECT_EQ(mine.value()->position, 55U);
  EXPECT_EQ(mine.value()->first_version, 3U);
  EXPECT_EQ(mine.value()->last_version, 4U);
  auto theirs = s->dedupe().get("acme", "cmd-1", dedupe_origin::embedded, 999);
  ASSERT_TRUE(theirs.ok());
  EXPECT_FALSE(theirs.value().has_value()) << "a stream sequence means nothing to the embedded log";
  auto expired = s->dedupe().get("acme", "cmd-1", dedupe_origin::jetstream, 1001);
  ASSERT_TRUE(expired.ok());
  EXPECT_FALSE(expired.value().has_value());
  auto other_tenant = s->dedupe().get("acme2", "cmd-1", dedupe_origin::jetstream, 0);
  ASSERT_TRUE(other_tenant.ok());
  EXPECT_FALSE(other_tenant.value().has_value());
}

}  // namespace
}  // namespace esflow::storage
