#pragma once
// The workflow stream contract (storage/workflow_stream.h): one typed test
// suite every backend must pass.
//
//   struct my_factory {
//     my_factory();                                  // fresh, empty streams for one test
//     workflow_stream& stream(std::string_view name); // WORKFLOW_COMMANDS / WORKFLOW_EVENTS, open
//     void reopen();                                 // close everything, open again (a restart)
//   };                                               // the destructor removes the storage
//   INSTANTIATE_TYPED_TEST_SUITE_P(my_backend, workflow_stream_contract, my_factories);
#include "storage/workflow_stream.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace esflow::storage::testing {

inline publish_request make_publish(std::string subject, std::string msg_id, std::string body = "{}") {
  publish_request r;
  r.subject = std::move(subject);
  r.msg_id = std::move(msg_id);
  r.headers = {{"tenant-id", "acme"}, {"x-correlation-id", "corr-1"}};
  r.body = std::move(body);
  return r;
}

inline message_headers sorted(message_headers h) {
  std::sort(h.begin(), h.end());
  return h;
}

template <class factory>
class workflow_stream_contract : public ::testing::Test {
 protected:
  static constexpr std::string_view events = workflow_events_stream;
  static constexpr std::string_view commands = workflow_commands_stream;

  workflow_stream& stream(std::string_view name = events) { return _factory.stream(name); }
  void reopen() { _factory.reopen(); }

  publish_ack publish_ok(publish_request r, std::string_view name = events) {
    auto res = publish_and_wait(stream(name), std::move(r));
    EXPECT_TRUE(res.ok()) << (res.ok() ? "" : res.err().to_string());
    return res.ok() ? res.value() : publish_ack{};
  }
  std::vector<stream_message> read_all(std::string_view name = events) {
    auto res = stream(name).read_from(0, 100000);
    EXPECT_TRUE(res.ok()) << (res.ok() ? "" : res.err().to_string());
    return res.ok() ? std::move(res).value() : std::vector<stream_message>{};
  }
  position_t last(std::string_view name = events) {
    auto res = stream(name).last_position();
    EXPECT_TRUE(res.ok()) << (res.ok() ? "" : res.err().to_string());
    return res.ok() ? res.value() : ~position_t{0};
  }

  factory _factory;
};

TYPED_TEST_SUITE_P(workflow_stream_contract);

TYPED_TEST_P(workflow_stream_contract, publish_then_read_back) {
  EXPECT_EQ(this->last(), 0u);
  auto r = make_publish("tenant.acme.reminder.Transfer", "acme:r-1", R"({"due":1})");
  r.headers.emplace_back("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  auto ack = this->publish_ok(r);
  EXPECT_GT(ack.position, 0u);
  EXPECT_FALSE(ack.duplicate);
  auto all = this->read_all();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].position, ack.position);
  EXPECT_EQ(all[0].subject, r.subject);
  EXPECT_EQ(all[0].msg_id, r.msg_id);
  EXPECT_EQ(sorted(all[0].headers), sorted(r.headers));
  EXPECT_EQ(all[0].body, r.body);
  EXPECT_EQ(this->last(), ack.position);
}

TYPED_TEST_P(workflow_stream_contract, positions_grow) {
  position_t prev = 0;
  for (int i = 0; i < 5; ++i) {
    auto ack =
        this->publish_ok(make_publish("tenant.acme.effect_result.http", "acme:result:" + std::to_string(i)));
    EXPECT_GT(ack.position, prev);
    prev = ack.position;
  }
  auto all = this->read_all();
  ASSERT_EQ(all.size(), 5u);
  for (std::size_t i = 1; i < all.size(); ++i) EXPECT_GT(all[i].position, all[i - 1].position);
  EXPECT_EQ(this->last(), prev);
}

TYPED_TEST_P(workflow_stream_contract, duplicate_msg_id_answers_the_first_position) {
  auto first =
      this->publish_ok(make_publish("tenant.acme.command_result.Transfer", "acme:cmdresult:c1", "1"));
  auto again =
      this->publish_ok(make_publish("tenant.acme.command_result.Transfer", "acme:cmdresult:c1", "2"));
  EXPECT_TRUE(again.duplicate);
  EXPECT_EQ(again.position, first.position);
  auto all = this->read_all();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].body, "1");
  EXPECT_EQ(this->last(), first.position);
}

TYPED_TEST_P(workflow_stream_contract, empty_msg_id_and_foreign_subjects_are_invalid) {
  auto check = [&](std::string_view name, publish_request r) {
    const bool no_id = r.msg_id.empty();
    auto res = publish_and_wait(this->stream(name), std::move(r));
    ASSERT_FALSE(res.ok());
    EXPECT_EQ(res.err().code, errc::invalid_command) << res.err().to_string();
    EXPECT_EQ(res.err().message, no_id ? std::string("msg_id is empty")
                                       : "subject is not carried by stream " + std::string(name));
  };
  check(this->events, make_publish("tenant.acme.reminder.Transfer", ""));
  check(this->events, make_publish("tenant.acme.effect.http", "acme:e1"));  // WORKFLOW_COMMANDS's
  check(this->events, make_publish("tenant.acme.aggregate.Account.a1", "acme:a1"));
  check(this->events, make_publish("tenant.acme.reminder", "acme:r0"));  // no saga token
  check(this->commands, make_publish("tenant.acme.effect_result.http", "acme:result:e1"));
  check(this->commands, make_publish("", "acme:x"));
  EXPECT_TRUE(this->read_all().empty());
  EXPECT_TRUE(this->read_all(this->commands).empty());
}

TYPED_TEST_P(workflow_stream_contract, read_from_pages) {
  std::vector<position_t> positions;
  for (int i = 0; i < 7; ++i)
    positions.push_back(
        this->publish_ok(make_publish("tenant.t1.reminder.S", "t1:r" + std::to_string(i))).position);
  auto empty = this->stream().read_from(positions[2], 0);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
  std::vector<position_t> seen;
  position_t after = 0;
  for (int page = 0; page < 10; ++page) {  // bounded: 7 messages, pages of 3
    auto res = this->stream().read_from(after, 3);
    ASSERT_TRUE(res.ok()) << res.err().to_string();
    if (res->empty()) break;
    EXPECT_LE(res->size(), 3u);
    for (const auto& m : *res) seen.push_back(m.position);
    after = res->back().position;
  }
  EXPECT_EQ(seen, positions);
  auto tail = this->stream().read_from(positions[4], 100);
  ASSERT_TRUE(tail.ok());
  ASSERT_EQ(tail->size(), 2u);
  EXPECT_EQ((*tail)[0].msg_id, "t1:r5");
  auto past = this->stream().read_from(positions.back(), 100);
  ASSERT_TRUE(past.ok());
  EXPECT_TRUE(past->empty());
}

TYPED_TEST_P(workflow_stream_contract, concurrent_publishes_land_exactly_once) {
  constexpr int threads = 4;
  constexpr int per_thread = 50;
  // Shared with the completions: a completion that comes after a failed wait
  // must not touch the test's stack.
  struct state {
    std::mutex mu;
    std::condition_variable cv;
    int completed = 0;
    int failures = 0;
    std::map<std::string, std::set<position_t>> answers;  // msg id -> positions answered
  };
  auto st = std::make_shared<state>();
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([this, st, t] {
      for (int i = 0; i < per_thread; ++i) {
        // Two threads publish each id: threads 2k and 2k+1 share theirs.
        auto id = "acme:e" + std::to_string(t / 2) + "-" + std::to_string(i);
        this->stream(this->commands)
            .publish(make_publish("tenant.acme.effect.http", id), [st, id](result<publish_ack> r) {
              std::lock_guard lock(st->mu);
              if (r.ok())
                st->answers[id].insert(r->position);
              else
                ++st->failures;
              ++st->completed;
              st->cv.notify_all();
            });
      }
    });
  }
  for (auto& w : workers) w.join();
  std::unique_lock lock(st->mu);
  ASSERT_TRUE(
      st->cv.wait_for(lock, std::chrono::seconds(30), [&] { return st->completed == threads * per_thread; }))
      << st->completed << " of " << threads * per_thread << " completed";
  EXPECT_EQ(st->failures, 0);
  ASSERT_EQ(st->answers.size(), static_cast<std::size_t>(threads / 2 * per_thread));
  for (const auto& [id, positions] : st->answers) EXPECT_EQ(positions.size(), 1u) << id;
  auto answers = st->answers;
  lock.unlock();
  auto all = this->read_all(this->commands);
  ASSERT_EQ(all.size(), answers.size());
  std::set<std::string> ids;
  for (const auto& m : all) {
    EXPECT_TRUE(ids.insert(m.msg_id).second) << m.msg_id;
    EXPECT_EQ(*answers[m.msg_id].begin(), m.position);
  }
}

TYPED_TEST_P(workflow_stream_contract, close_refuses_publishes) {
  this->publish_ok(make_publish("tenant.acme.reminder.S", "acme:r1"));
  EXPECT_TRUE(this->stream().close().ok());
  EXPECT_TRUE(this->stream().close().ok());  // idempotent
  auto res = publish_and_wait(this->stream(), make_publish("tenant.acme.reminder.S", "acme:r2"));
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.err().code, errc::unavailable);
  EXPECT_EQ(res.err().message, "workflow stream is closed");
  // The other stream is still open.
  EXPECT_TRUE(
      publish_and_wait(this->stream(this->commands), make_publish("tenant.acme.effect.x", "acme:e1")).ok());
}

TYPED_TEST_P(workflow_stream_contract, reopen_keeps_messages_position_and_ids) {
  auto a = this->publish_ok(make_publish("tenant.acme.reminder.S", "acme:r1", "a"));
  auto b = this->publish_ok(make_publish("tenant.acme.reminder.S", "acme:r2", "b"));
  this->reopen();
  EXPECT_EQ(this->last(), b.position);
  auto all = this->read_all();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].body, "a");
  EXPECT_EQ(all[1].body, "b");
  auto dup = this->publish_ok(make_publish("tenant.acme.reminder.S", "acme:r1", "again"));
  EXPECT_TRUE(dup.duplicate);
  EXPECT_EQ(dup.position, a.position);
  auto c = this->publish_ok(make_publish("tenant.acme.reminder.S", "acme:r3", "c"));
  EXPECT_FALSE(c.duplicate);
  EXPECT_GT(c.position, b.position);
}

TYPED_TEST_P(workflow_stream_contract, the_two_streams_are_independent) {
  EXPECT_EQ(this->stream(this->commands).name(), this->commands);
  EXPECT_EQ(this->stream(this->events).name(), this->events);
  // The same msg id in both streams is two messages.
  this->publish_ok(make_publish("tenant.acme.effect.http", "acme:same"), this->commands);
  this->publish_ok(make_publish("tenant.acme.effect.http", "acme:c2"), this->commands);
  auto e = this->publish_ok(make_publish("tenant.acme.effect_result.http", "acme:same"), this->events);
  EXPECT_FALSE(e.duplicate);
  auto commands = this->read_all(this->commands);
  auto events = this->read_all(this->events);
  ASSERT_EQ(commands.size(), 2u);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].subject, "tenant.acme.effect_result.http");
  EXPECT_EQ(this->last(this->commands), commands.back().position);
  EXPECT_EQ(this->last(this->events), e.position);
}

REGISTER_TYPED_TEST_SUITE_P(workflow_stream_contract, publish_then_read_back, positions_grow,
                            duplicate_msg_id_answers_the_first_position,
                            empty_msg_id_and_foreign_subjects_are_invalid, read_from_pages,
                            concurrent_publishes_land_exactly_once, close_refuses_publishes,
                            reopen_keeps_messages_position_and_ids, the_two_streams_are_independent);

}  // namespace esflow::storage::testing
