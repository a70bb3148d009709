#pragma once
// The event log contract: one typed test suite every backend must pass.
//
// A backend instantiates it with a factory type:
//
//   struct my_factory {
//     my_factory();                 // fresh, empty storage for one test
//     storage::event_log& log();    // the open log
//     void reopen();                // close everything and open again on the
//                                   // same storage (a process restart)
//   };                              // the destructor removes the storage
//   using my_factories = ::testing::Types<my_factory>;
//   INSTANTIATE_TYPED_TEST_SUITE_P(my_backend, event_log_contract, my_factories);
#include "storage/event_log.h"
#include "tests/storage/requests.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace esflow::storage::testing {

template <class factory>
class event_log_contract : public ::testing::Test {
 protected:
  event_log& log() { return _factory.log(); }
  void reopen() { _factory.reopen(); }

  append_result append_ok(append_request r) {
    auto res = append_and_wait(log(), std::move(r));
    EXPECT_TRUE(res.ok()) << (res.ok() ? "" : res.err().to_string());
    return res.ok() ? std::move(res).value() : append_result{};
  }
  std::vector<schemas::event> read_all(const std::string& tenant, const std::string& type,
                                       const std::string& id) {
    auto res = log().read(tenant, type, id, 0, 100000);
    EXPECT_TRUE(res.ok()) << (res.ok() ? "" : res.err().to_string());
    return res.ok() ? std::move(res).value() : std::vector<schemas::event>{};
  }
  version_t version_of(const std::string& tenant, const std::string& type, const std::string& id) {
    auto res = log().current_version(tenant, type, id);
    EXPECT_TRUE(res.ok());
    return res.ok() ? *res : ~version_t{0};
  }
  // Appends one event for `command_id`, re-reading the version on conflict.
  // Returns false if it never got through within max_attempts.
  bool append_with_retry(const std::string& tenant, const std::string& type, const std::string& id,
                         const std::string& command_id, int max_attempts) {
    version_t expected = 0;
    for (int attempt = 0; attempt < max_attempts; ++attempt) {
      auto res = append_and_wait(log(), make_request(tenant, type, id, command_id, expected, 1));
      if (res.ok()) return true;
      if (res.err().code != errc::version_conflict) {
        ADD_FAILURE() << res.err().to_string();
        return false;
      }
      auto v = log().current_version(tenant, type, id);
      if (!v.ok()) return false;
      expected = *v;
    }
    return false;
  }

  factory _factory;
};

TYPED_TEST_SUITE_P(event_log_contract);

TYPED_TEST_P(event_log_contract, appends_and_reads_back_in_order) {
  auto r = this->append_ok(make_request("acme", "Account", "acc-1", "c1", 0, 3));
  EXPECT_EQ(r.first_version, 1u);
  EXPECT_EQ(r.last_version, 3u);
  EXPECT_FALSE(r.duplicate);
  EXPECT_GT(r.position, 0u);
  ASSERT_EQ(r.events.size(), 3u);

  auto events = this->read_all("acme", "Account", "acc-1");
  ASSERT_EQ(events.size(), 3u);
  for (std::size_t i = 0; i < events.size(); ++i) {
    const auto& e = events[i];
    EXPECT_EQ(e.version, i + 1);
    EXPECT_EQ(e.tenant_id, "acme");
    EXPECT_EQ(e.aggregate_type, "Account");
    EXPECT_EQ(e.aggregate_id, "acc-1");
    EXPECT_EQ(e.command_id, "c1");
    EXPECT_EQ(e.event_id, "c1-e" + std::to_string(i));
    EXPECT_EQ(e.event_type, "noted");
    EXPECT_EQ(e.payload_json, R"({"type":"noted","tag":"x","i":)" + std::to_string(i) + "}");
    EXPECT_EQ(e.correlation_id, "corr-c1");
    EXPECT_EQ(e.trace_id, "0af7651916cd43dd8448eb211c80319c");
    EXPECT_EQ(e.timestamp, "2026-11-22T16:00:00.123Z");
  }
  EXPECT_EQ(this->version_of("acme", "Account", "acc-1"), 3u);
}

TYPED_TEST_P(event_log_contract, versions_are_contiguous_across_commits) {
  version_t v = 0;
  position_t last_position = 0;
  for (int i = 0; i < 20; ++i) {
    std::size_t n = 1 + static_cast<std::size_t>(i % 3);
    auto r = this->append_ok(make_request("acme", "Account", "acc-1", "c" + std::to_string(i), v, n));
    EXPECT_EQ(r.first_version, v + 1);
    EXPECT_EQ(r.last_version, v + n);
    EXPECT_GT(r.position, last_position);
    last_position = r.position;
    v = r.last_version;
  }
  auto events = this->read_all("acme", "Account", "acc-1");
  ASSERT_EQ(events.size(), v);
  for (std::size_t i = 0; i < events.size(); ++i) EXPECT_EQ(events[i].version, i + 1);
}

TYPED_TEST_P(event_log_contract, version_conflict_reports_expected_and_actual) {
  this->append_ok(make_request("acme", "Account", "acc-1", "c1", 0, 2));
  auto res = append_and_wait(this->log(), make_request("acme", "Account", "acc-1", "c2", 1, 1));
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.err().code, errc::version_conflict);
  EXPECT_EQ(res.err().message, "expected version 1, actual 2");
  EXPECT_NE(res.err().context.find("acc-1"), std::string::npos) << res.err().context;

  auto ahead = append_and_wait(this->log(), make_request("acme", "Account", "acc-1", "c3", 5, 1));
  ASSERT_FALSE(ahead.ok());
  EXPECT_EQ(ahead.err().message, "expected version 5, actual 2");
  EXPECT_EQ(this->read_all("acme", "Account", "acc-1").size(), 2u);
}

TYPED_TEST_P(event_log_contract, duplicate_command_id_returns_original_result_and_appends_nothing) {
  auto first = this->append_ok(make_request("acme", "Account", "acc-1", "c1", 0, 2));
  auto before = this->log().last_position();
  ASSERT_TRUE(before.ok());

  // Resent with a stale expected version, as a client retrying a lost answer does.
  auto again = this->append_ok(make_request("acme", "Account", "acc-1", "c1", 0, 2));
  EXPECT_TRUE(again.duplicate);
  EXPECT_EQ(again.first_version, first.first_version);
  EXPECT_EQ(again.last_version, first.last_version);
  EXPECT_EQ(again.position, first.position);
  ASSERT_EQ(again.events.size(), 2u);
  EXPECT_EQ(again.events[0].event_id, first.events[0].event_id);
  EXPECT_EQ(again.events[1].version, 2u);

  EXPECT_EQ(*this->log().last_position(), *before);
  EXPECT_EQ(this->read_all("acme", "Account", "acc-1").size(), 2u);

  auto found = this->log().find_command("acme", "c1");
  ASSERT_TRUE(found.ok());
  ASSERT_TRUE(found->has_value());
  EXPECT_TRUE((*found)->duplicate);
  EXPECT_EQ((*found)->last_version, 2u);
  EXPECT_EQ((*found)->events.size(), 2u);
  auto unknown = this->log().find_command("acme", "never-sent");
  ASSERT_TRUE(unknown.ok());
  EXPECT_FALSE(unknown->has_value());
}

TYPED_TEST_P(event_log_contract, duplicates_inside_one_burst_append_once) {
  std::atomic<int> done{0}, duplicates{0}, failures{0};
  for (int i = 0; i < 50; ++i) {
    this->log().append(make_request("acme", "Account", "acc-1", "same", 0, 1), [&](result<append_result> r) {
      if (!r.ok()) {
        ++failures;
      } else if (r->duplicate) {
        ++duplicates;
      }
      ++done;
    });
  }
  for (int i = 0; i < 10000 && done.load() < 50; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ASSERT_EQ(done.load(), 50);
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(duplicates.load(), 49);
  EXPECT_EQ(this->read_all("acme", "Account", "acc-1").size(), 1u);
}

TYPED_TEST_P(event_log_contract, reused_command_id_is_rejected) {
  this->append_ok(make_request("acme", "Account", "acc-1", "c1", 0, 1, "a"));
  auto other_payload =
      append_and_wait(this->log(), make_request("acme", "Account", "acc-1", "c1", 1, 1, "b"));
  ASSERT_FALSE(other_payload.ok());
  EXPECT_EQ(other_payload.err().code, errc::command_id_reused);
  EXPECT_NE(other_payload.err().message.find("c1"), std::string::npos) << other_payload.err().message;

  auto other_aggregate =
      append_and_wait(this->log(), make_request("acme", "Account", "acc-2", "c1", 0, 1, "a"));
  ASSERT_FALSE(other_aggregate.ok());
  EXPECT_EQ(other_aggregate.err().code, errc::command_id_reused);
  EXPECT_EQ(this->version_of("acme", "Account", "acc-2"), 0u);
  EXPECT_EQ(this->version_of("acme", "Account", "acc-1"), 1u);
}

TYPED_TEST_P(event_log_contract, empty_command_id_is_invalid) {
  auto res = append_and_wait(this->log(), make_request("acme", "Account", "acc-1", "", 0, 1));
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.err().code, errc::invalid_command);
  EXPECT_EQ(res.err().message, "command id is empty");
}

TYPED_TEST_P(event_log_contract, empty_events_store_nothing) {
  this->append_ok(make_request("acme", "Account", "acc-1", "c1", 0, 2));
  auto before = *this->log().last_position();

  auto r = this->append_ok(make_request("acme", "Account", "acc-1", "noop", 2, 0));
  EXPECT_FALSE(r.duplicate);
  EXPECT_EQ(r.first_version, 2u);
  EXPECT_EQ(r.last_version, 2u);
  EXPECT_EQ(r.position, 0u);
  EXPECT_TRUE(r.events.empty());
  EXPECT_EQ(*this->log().last_position(), before);
  EXPECT_EQ(this->version_of("acme", "Account", "acc-1"), 2u);
  auto found = this->log().find_command("acme", "noop");
  ASSERT_TRUE(found.ok());
  EXPECT_FALSE(found->has_value());

  auto stale = append_and_wait(this->log(), make_request("acme", "Account", "acc-1", "noop2", 1, 0));
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.err().code, errc::version_conflict);
}

TYPED_TEST_P(event_log_contract, same_id_under_two_tenants_is_two_aggregates) {
  this->append_ok(make_request("acme", "Account", "acc-1", "c1", 0, 2));
  // Same command id, other tenant: a different command, not a duplicate.
  auto other = this->append_ok(make_request("globex", "Account", "acc-1", "c1", 0, 1));
  EXPECT_FALSE(other.duplicate);
  EXPECT_EQ(other.last_version, 1u);

  auto acme = this->read_all("acme", "Account", "acc-1");
  auto globex = this->read_all("globex", "Account", "acc-1");
  ASSERT_EQ(acme.size(), 2u);
  ASSERT_EQ(globex.size(), 1u);
  for (const auto& e : acme) EXPECT_EQ(e.tenant_id, "acme");
  EXPECT_EQ(globex[0].tenant_id, "globex");
  EXPECT_TRUE(this->read_all("initech", "Account", "acc-1").empty());
  EXPECT_EQ(this->version_of("initech", "Account", "acc-1"), 0u);
  auto cross = this->log().find_command("initech", "c1");
  ASSERT_TRUE(cross.ok());
  EXPECT_FALSE(cross->has_value());
}

TYPED_TEST_P(event_log_contract, ids_with_odd_characters_never_collide) {
  // Each row would collide with another under naive "tenant:type:id" keys or
  // unprefixed concatenation; the empty tenant (single-tenant mode) is one more.
  struct agg {
    std::string tenant, type, id;
  };
  const std::vector<agg> aggs = {
      {"a", "b:c", "d"},
      {"a:b", "c", "d"},
      {"a", "b", "c:d"},
      {"", "a", "b"},
      {"a", "", "b"},
      {"ab", "T", "x"},
      {"a", "bT", "x"},
      {"a", "T", "x"},
      {"a", "T", "xy"},
      {"a", "T", std::string("x\0y", 3)},
      {"a", "T", "x\xff"},
      {"a", "T", std::string(300, 'z')},
      {"a", "T", std::string(301, 'z')},
      {"", "", ""},
  };
  for (std::size_t i = 0; i < aggs.size(); ++i) {
    this->append_ok(
        make_request(aggs[i].tenant, aggs[i].type, aggs[i].id, "cmd-" + std::to_string(i), 0, i + 1));
  }
  for (std::size_t i = 0; i < aggs.size(); ++i) {
    const auto& a = aggs[i];
    auto events = this->read_all(a.tenant, a.type, a.id);
    ASSERT_EQ(events.size(), i + 1) << "aggregate #" << i;
    for (const auto& e : events) {
      EXPECT_EQ(e.tenant_id, a.tenant);
      EXPECT_EQ(e.aggregate_type, a.type);
      EXPECT_EQ(e.aggregate_id, a.id);
    }
    EXPECT_EQ(this->version_of(a.tenant, a.type, a.id), i + 1);
  }
}

TYPED_TEST_P(event_log_contract, read_pages_with_after_and_limit) {
  version_t v = 0;
  for (int i = 0; i < 10; ++i) {
    v = this->append_ok(make_request("acme", "Account", "acc-1", "c" + std::to_string(i), v, 3)).last_version;
  }
  ASSERT_EQ(v, 30u);
  // Pages of 4 starting inside multi-event commits.
  std::vector<version_t> seen;
  version_t after = 0;
  for (int page = 0; page < 20; ++page) {
    auto res = this->log().read("acme", "Account", "acc-1", after, 4);
    ASSERT_TRUE(res.ok());
    if (res->empty()) break;
    EXPECT_LE(res->size(), 4u);
    for (const auto& e : *res) seen.push_back(e.version);
    after = res->back().version;
  }
  ASSERT_EQ(seen.size(), 30u);
  for (std::size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], i + 1);

  auto mid = this->log().read("acme", "Account", "acc-1", 4, 2);
  ASSERT_TRUE(mid.ok());
  ASSERT_EQ(mid->size(), 2u);
  EXPECT_EQ((*mid)[0].version, 5u);
  EXPECT_EQ((*mid)[1].version, 6u);
  EXPECT_TRUE(this->log().read("acme", "Account", "acc-1", 30, 10)->empty());
  EXPECT_TRUE(this->log().read("acme", "Account", "acc-1", 0, 0)->empty());
}

TYPED_TEST_P(event_log_contract, read_from_returns_commits_in_global_order) {
  const std::vector<std::string> ids = {"a", "b", "c"};
  std::vector<position_t> positions;
  std::vector<std::string> order;
  std::vector<version_t> versions(3, 0);
  for (int i = 0; i < 12; ++i) {
    auto k = static_cast<std::size_t>((i * 7) % 3);
    auto r =
        this->append_ok(make_request("acme", "Account", ids[k], "c" + std::to_string(i), versions[k], 1));
    versions[k] = r.last_version;
    positions.push_back(r.position);
    order.push_back(ids[k]);
  }
  auto all = this->log().read_from(0, 1000);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 12u);
  for (std::size_t i = 0; i < all->size(); ++i) {
    const auto& pc = (*all)[i];
    EXPECT_EQ(pc.position, positions[i]);
    EXPECT_EQ(pc.commit.aggregate_id, order[i]);
    EXPECT_EQ(pc.commit.command_id, "c" + std::to_string(i));
    EXPECT_EQ(pc.commit.tenant_id, "acme");
    ASSERT_EQ(pc.commit.events.size(), 1u);
    EXPECT_EQ(pc.commit.events[0].version, pc.commit.first_version);
  }
  EXPECT_EQ(*this->log().last_position(), positions.back());

  auto tail = this->log().read_from(positions[4], 3);
  ASSERT_TRUE(tail.ok());
  ASSERT_EQ(tail->size(), 3u);
  EXPECT_EQ((*tail)[0].position, positions[5]);
  EXPECT_EQ((*tail)[2].position, positions[7]);
  EXPECT_TRUE(this->log().read_from(positions.back(), 10)->empty());
}

TYPED_TEST_P(event_log_contract, concurrent_appends_to_one_aggregate_end_contiguous) {
  constexpr int threads = 8, per_thread = 125;
  std::atomic<int> failed{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        auto id = "t" + std::to_string(t) + "-" + std::to_string(i);
        if (!this->append_with_retry("acme", "Account", "hot", id, 10000)) ++failed;
      }
    });
  }
  for (auto& w : workers) w.join();
  EXPECT_EQ(failed.load(), 0);
  auto events = this->read_all("acme", "Account", "hot");
  ASSERT_EQ(events.size(), static_cast<std::size_t>(threads * per_thread));
  std::set<std::string> commands;
  for (std::size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].version, i + 1);
    commands.insert(events[i].command_id);
  }
  EXPECT_EQ(commands.size(), events.size());  // every command exactly once
}

TYPED_TEST_P(event_log_contract, ten_aggregates_with_a_hundred_concurrent_appends_each) {
  constexpr int aggregates = 10, per_aggregate = 100, threads = 10;
  std::atomic<int> failed{0};
  std::vector<std::thread> workers;
  // Every thread writes to every aggregate, so each aggregate sees contention.
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (int i = 0; i < per_aggregate * aggregates / threads; ++i) {
        int a = (t + i) % aggregates;
        auto id = "t" + std::to_string(t) + "-" + std::to_string(i);
        if (!this->append_with_retry("acme", "Account", "agg-" + std::to_string(a), id, 10000)) ++failed;
      }
    });
  }
  for (auto& w : workers) w.join();
  EXPECT_EQ(failed.load(), 0);
  for (int a = 0; a < aggregates; ++a) {
    auto events = this->read_all("acme", "Account", "agg-" + std::to_string(a));
    ASSERT_EQ(events.size(), static_cast<std::size_t>(per_aggregate));
    for (std::size_t i = 0; i < events.size(); ++i) EXPECT_EQ(events[i].version, i + 1);
  }
  auto all = this->log().read_from(0, 10000);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), static_cast<std::size_t>(aggregates * per_aggregate));
  for (std::size_t i = 1; i < all->size(); ++i) EXPECT_LT((*all)[i - 1].position, (*all)[i].position);
}

TYPED_TEST_P(event_log_contract, recovers_versions_and_positions_after_reopen) {
  auto a = this->append_ok(make_request("acme", "Account", "acc-1", "c1", 0, 2));
  auto b = this->append_ok(make_request("acme", "Account", "acc-2", "c2", 0, 1));
  this->reopen();

  EXPECT_EQ(this->version_of("acme", "Account", "acc-1"), 2u);
  EXPECT_EQ(*this->log().last_position(), b.position);
  auto dup = this->append_ok(make_request("acme", "Account", "acc-1", "c1", 0, 2));
  EXPECT_TRUE(dup.duplicate);
  EXPECT_EQ(dup.position, a.position);

  auto stale = append_and_wait(this->log(), make_request("acme", "Account", "acc-1", "c3", 0, 1));
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.err().code, errc::version_conflict);
  auto next = this->append_ok(make_request("acme", "Account", "acc-1", "c4", 2, 1));
  EXPECT_EQ(next.first_version, 3u);
  EXPECT_GT(next.position, b.position);
  EXPECT_EQ(this->read_all("acme", "Account", "acc-1").size(), 3u);
  auto all = this->log().read_from(0, 100);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 3u);
}

REGISTER_TYPED_TEST_SUITE_P(
    event_log_contract, appends_and_reads_back_in_order, versions_are_contiguous_across_commits,
    version_conflict_reports_expected_and_actual,
    duplicate_command_id_returns_original_result_and_appends_nothing, duplicates_inside_one_burst_append_once,
    reused_command_id_is_rejected, empty_command_id_is_invalid, empty_events_store_nothing,
    same_id_under_two_tenants_is_two_aggregates, ids_with_odd_characters_never_collide,
    read_pages_with_after_and_limit, read_from_returns_commits_in_global_order,
    concurrent_appends_to_one_aggregate_end_contiguous, ten_aggregates_with_a_hundred_concurrent_appends_each,
    recovers_versions_and_positions_after_reopen);

}  // namespace esflow::storage::testing
