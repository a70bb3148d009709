// The workflow stream contract against the embedded backend: opened
// directly on a db (both durabilities) and built through the event-log
// factory on a node store (the way nodes get it); then what only the
// embedded backend promises (the msg-id window, its expiry, the queue bound).
#include "storage/embedded_workflow_stream.h"
#include "storage/event_log_factory.h"
#include "storage/keys.h"
#include "tests/storage/temp_dir.h"
#include "tests/storage/workflow_stream_contract.h"

#include <rocksdb/db.h>
#include <rocksdb/options.h>

namespace esflow::storage::testing {
namespace {

// Both streams opened directly on one db.
template <durability mode>
class embedded_streams {
 public:
  explicit embedded_streams(embedded_stream_options options = {}) : _options(std::move(options)) { open(); }
  ~embedded_streams() { close(); }

  workflow_stream& stream(std::string_view name) {
    return name == workflow_commands_stream ? *_commands : *_events;
  }
  embedded_workflow_stream& events() { return *_events; }
  db& database() { return *_db; }
  void reopen() {
    close();
    open();
  }

 private:
  void open() {
    auto d = db::open({.path = _dir.str(), .mode = mode});
    ASSERT_TRUE(d.ok()) << d.err().to_string();
    _db = std::move(d).value();
    auto c = embedded_workflow_stream::open(*_db, std::string(workflow_commands_stream), _options);
    ASSERT_TRUE(c.ok()) << c.err().to_string();
    _commands = std::move(c).value();
    auto e = embedded_workflow_stream::open(*_db, std::string(workflow_events_stream), _options);
    ASSERT_TRUE(e.ok()) << e.err().to_string();
    _events = std::move(e).value();
  }
  void close() {
    if (_commands) {
      EXPECT_TRUE(_commands->close().ok());
    }
    if (_events) {
      EXPECT_TRUE(_events->close().ok());
    }
    _commands.reset();
    _events.reset();
    if (_db) {
      EXPECT_TRUE(_db->close().ok());
    }
    _db.reset();
  }

  temp_dir _dir;
  embedded_stream_options _options;
  std::unique_ptr<db> _db;
  std::unique_ptr<embedded_workflow_stream> _commands, _events;
};

// Both streams through the factory's "embedded" backend on one node store.
class embedded_via_factory {
 public:
  embedded_via_factory() {
    esflow::ignore(_factory.add(embedded_backend()));
    open();
  }
  workflow_stream& stream(std::string_view name) {
    return name == workflow_commands_stream ? *_commands : *_events;
  }
  void reopen() {
    _commands.reset();  // closes the stream; the last one lets go of the store
    _events.reset();
    open();
  }

 private:
  void open() {
    auto store = node_store::open({.data_dir = _dir.str(), .mode = durability::relaxed});
    ASSERT_TRUE(store.ok()) << store.err().to_string();
    event_log_env env;
    env.store = store.value();
    auto c = _factory.make_stream({}, env, std::string(workflow_commands_stream));
    ASSERT_TRUE(c.ok()) << c.err().to_string();
    _commands = c.value();
    auto e = _factory.make_stream({}, env, std::string(workflow_events_stream));
    ASSERT_TRUE(e.ok()) << e.err().to_string();
    _events = e.value();
  }

  temp_dir _dir;
  event_log_factory _factory;
  std::shared_ptr<workflow_stream> _commands, _events;
};

using embedded_factories = ::testing::Types<embedded_streams<durability::fsync>,
                                            embedded_streams<durability::relaxed>, embedded_via_factory>;
INSTANTIATE_TYPED_TEST_SUITE_P(embedded, workflow_stream_contract, embedded_factories);

TEST(embedded_workflow_stream, unknown_stream_name_is_invalid_config) {
  temp_dir dir;
  auto d = db::open({.path = dir.str()});
  ASSERT_TRUE(d.ok());
  auto s = embedded_workflow_stream::open(**d, "AGGREGATE_EVENTS");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.err().code, errc::invalid_config);
}

// A 2-minute msg-id window on a clock the test moves.
embedded_stream_options two_minute_window_at(std::shared_ptr<std::atomic<std::uint64_t>> now) {
  embedded_stream_options o;
  o.dedupe_window = std::chrono::minutes(2);
  o.now_ms = [now = std::move(now)] { return now->load(); };
  return o;
}

// Publishes msg id `id` (a reminder of tenant a) and returns its position.
std::uint64_t publish_id(workflow_stream& s, const std::string& id) {
  auto r = publish_and_wait(s, make_publish("tenant.a.reminder.S", id));
  EXPECT_TRUE(r.ok()) << r.err().to_string();
  EXPECT_FALSE(r.ok() && r->duplicate) << id << " answered as a duplicate";
  return r.ok() ? r->position : 0;
}

// Publishes `id` again: answered as the duplicate of the message at `position`.
void expect_duplicate(workflow_stream& s, const std::string& id, std::uint64_t position) {
  auto r = publish_and_wait(s, make_publish("tenant.a.reminder.S", id));
  ASSERT_TRUE(r.ok()) << r.err().to_string();
  EXPECT_TRUE(r->duplicate) << id;
  EXPECT_EQ(r->position, position) << id;
}

// Publishes `id` again: forgotten, so stored anew after `after`.
void expect_stored_again(workflow_stream& s, const std::string& id, std::uint64_t after) {
  auto r = publish_and_wait(s, make_publish("tenant.a.reminder.S", id));
  ASSERT_TRUE(r.ok()) << r.err().to_string();
  EXPECT_FALSE(r->duplicate) << id;
  EXPECT_GT(r->position, after) << id;
}

TEST(embedded_workflow_stream, msg_ids_are_forgotten_after_the_window) {
  auto now = std::make_shared<std::atomic<std::uint64_t>>(1'000'000);
  const auto o = two_minute_window_at(now);
  embedded_streams<durability::relaxed> env(o);
  const auto first = publish_id(env.events(), "a:r1");
  now->fetch_add(119'000);  // inside the window
  expect_duplicate(env.events(), "a:r1", first);
  now->fetch_add(2'000);  // past it: a new message
  expect_stored_again(env.events(), "a:r1", first);
}

// The ids are held in memory; their entries bring them back at open, each
// until its own expiry.
TEST(embedded_workflow_stream, a_reopened_stream_remembers_ids_until_their_window_ends) {
  auto now = std::make_shared<std::atomic<std::uint64_t>>(1'000'000);
  const auto o = two_minute_window_at(now);
  embedded_streams<durability::fsync> env(o);
  publish_id(env.events(), "a:early");
  now->fetch_add(60'000);
  const auto late = publish_id(env.events(), "a:late");
  now->fetch_add(61'000);  // 121 s after the first: its window is over, not the second's
  env.reopen();
  expect_duplicate(env.events(), "a:late", late);
  expect_stored_again(env.events(), "a:early", late);
}

// A wall clock stepped back between two publishes: the later message expires
// first. At open its expired entry is skipped, and the earlier id, still in
// its window, is read back behind it.
TEST(embedded_workflow_stream, a_clock_stepped_back_does_not_hide_older_ids_at_open) {
  auto now = std::make_shared<std::atomic<std::uint64_t>>(1'000'000);
  const auto o = two_minute_window_at(now);
  embedded_streams<durability::relaxed> env(o);
  const auto before = publish_id(env.events(), "a:before");
  now->fetch_sub(90'000);  // expires 30 s after the first publish
  publish_id(env.events(), "a:after");
  now->fetch_add(150'000);  // 60 s after the first publish: only its window is still open
  env.reopen();
  expect_duplicate(env.events(), "a:before", before);
}

// Past max_msg_ids the oldest id is forgotten before its window ends: its
// message, published again, is stored again; the newer ones still dedupe,
// also after a reopen.
TEST(embedded_workflow_stream, past_max_msg_ids_the_oldest_id_is_forgotten) {
  embedded_stream_options o;
  o.max_msg_ids = 2;
  embedded_streams<durability::relaxed> env(o);
  publish_id(env.events(), "a:1");
  const auto second = publish_id(env.events(), "a:2");
  const auto third = publish_id(env.events(), "a:3");
  env.reopen();
  expect_duplicate(env.events(), "a:3", third);
  expect_duplicate(env.events(), "a:2", second);
  expect_stored_again(env.events(), "a:1", third);
}

// A data directory of a version that kept (stream, "d", msg id) entries: they
// are read at open and answer duplicates until they expire.
TEST(embedded_workflow_stream, legacy_msg_id_entries_still_answer_duplicates) {
  embedded_streams<durability::relaxed> env;
  const auto old = publish_id(env.events(), "a:old");
  // Rewrite its entry the old way: (stream, "d", msg id) -> expiry, position, publish time.
  auto* raw = env.database().raw();
  auto* cf = env.database().handle(cf::streams);
  std::string current = keys::components({workflow_events_stream, "i"});
  keys::put_u64_be(current, old);
  ASSERT_TRUE(raw->Delete(rocksdb::WriteOptions(), cf, current).ok());
  std::string legacy;
  keys::put_u64_be(legacy, UINT64_MAX / 2);
  keys::put_u64_be(legacy, old);
  keys::put_u64_be(legacy, 1);
  ASSERT_TRUE(
      raw->Put(rocksdb::WriteOptions(), cf, keys::components({workflow_events_stream, "d", "a:old"}), legacy)
          .ok());
  env.reopen();
  expect_duplicate(env.events(), "a:old", old);
}

TEST(embedded_workflow_stream, compaction_drops_expired_msg_ids_and_keeps_messages) {
  // A clock long past: every msg-id entry's expiry is before the real now.
  embedded_stream_options o;
  o.now_ms = [] { return std::uint64_t{1'000'000}; };
  embedded_streams<durability::relaxed> env(o);
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(
        publish_and_wait(env.events(), make_publish("tenant.a.reminder.S", "a:" + std::to_string(i))).ok());
  auto* raw = env.database().raw();
  auto* cf = env.database().handle(cf::streams);
  auto count = [&] {
    std::size_t n = 0;
    std::unique_ptr<rocksdb::Iterator> it(raw->NewIterator(rocksdb::ReadOptions(), cf));
    for (it->SeekToFirst(); it->Valid(); it->Next()) ++n;
    return n;
  };
  EXPECT_EQ(count(), 6u);  // 3 messages + 3 msg ids
  ASSERT_TRUE(raw->CompactRange(rocksdb::CompactRangeOptions(), cf, nullptr, nullptr).ok());
  EXPECT_EQ(count(), 3u);
  auto all = env.events().read_from(0, 10);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 3u);
}

// The relay deletes an outbox item in the write that stores its message
// (publish_request::with): both or neither, also for a duplicate msg id.
TEST(embedded_workflow_stream, with_writes_are_stored_in_the_messages_write_and_with_a_duplicates_answer) {
  temp_dir dir;
  bool fail = false;
  auto d =
      db::open({.path = dir.str(), .mode = durability::fsync, .inject_write_failure = [&] { return fail; }});
  ASSERT_TRUE(d.ok()) << d.err().to_string();
  auto stream = embedded_workflow_stream::open(*d.value(), std::string(workflow_events_stream));
  ASSERT_TRUE(stream.ok()) << stream.err().to_string();
  auto& s = *stream.value();
  auto get = [&](std::string_view key) {
    std::string v;
    return d.value()->raw()->Get({}, d.value()->handle(cf::outbox), key, &v).ok();
  };
  auto with = [&](bool put, std::string_view key) {
    auto ws = std::make_shared<write_set>(*d.value());
    if (put)
      ws->put(cf::outbox, key, "item");
    else
      ws->erase(cf::outbox, key);
    return ws;
  };

  auto first = make_publish("tenant.a.reminder.S", "a:r1");
  first.with = with(true, "k1");
  auto r = publish_and_wait(s, first);
  ASSERT_TRUE(r.ok()) << r.err().to_string();
  EXPECT_FALSE(r->duplicate);
  EXPECT_TRUE(r->wrote_with);
  EXPECT_TRUE(get("k1"));

  auto again = make_publish("tenant.a.reminder.S", "a:r1");
  again.with = with(false, "k1");
  auto dup = publish_and_wait(s, again);
  ASSERT_TRUE(dup.ok()) << dup.err().to_string();
  EXPECT_TRUE(dup->duplicate);
  EXPECT_EQ(dup->position, r->position);
  EXPECT_TRUE(dup->wrote_with);
  EXPECT_FALSE(get("k1")) << "written with the duplicate's answer";

  // A failed write stores neither the message nor its with writes.
  fail = true;
  auto failing = make_publish("tenant.a.reminder.S", "a:r2");
  failing.with = with(true, "k2");
  auto bad = publish_and_wait(s, failing);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.err().code, errc::unavailable);
  EXPECT_FALSE(get("k2"));
  fail = false;
  auto page = s.read_from(0, 10);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->size(), 1U);
  // Nor is its msg id remembered: published again, the message is stored.
  auto retried = publish_and_wait(s, make_publish("tenant.a.reminder.S", "a:r2"));
  ASSERT_TRUE(retried.ok()) << retried.err().to_string();
  EXPECT_FALSE(retried->duplicate);
  EXPECT_GT(retried->position, r->position);

  // Writes of another store are not the stream's to make: the caller writes them after the ack.
  temp_dir other_dir;
  auto other = db::open({.path = other_dir.str(), .mode = durability::relaxed});
  ASSERT_TRUE(other.ok());
  auto foreign = make_publish("tenant.a.reminder.S", "a:r3");
  foreign.with = std::make_shared<write_set>(*other.value());
  foreign.with->put(cf::outbox, "k3", "item");
  auto f = publish_and_wait(s, foreign);
  ASSERT_TRUE(f.ok()) << f.err().to_string();
  EXPECT_FALSE(f->wrote_with);
  EXPECT_TRUE(s.close().ok());
}

TEST(embedded_workflow_stream, a_full_queue_is_unavailable) {
  embedded_stream_options o;
  o.max_pending = 0;
  embedded_streams<durability::relaxed> env(o);
  auto r = publish_and_wait(env.events(), make_publish("tenant.a.reminder.S", "a:r1"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::unavailable);
}

}  // namespace
}  // namespace esflow::storage::testing
