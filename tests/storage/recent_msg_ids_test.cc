// recent_msg_ids: the embedded stream's bounded memory of msg ids. Hashes are
// given by hand here so that they collide on purpose (same hash, same home
// slot) — the cases a real hash meets rarely.
#include "storage/recent_msg_ids.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <limits>
#include <map>
#include <random>

namespace esflow::storage {
namespace {

std::vector<std::uint64_t> positions_of(const recent_msg_ids& ids, std::uint64_t hash) {
  std::vector<std::uint64_t> out;
  for (const auto& e : ids.candidates(hash)) out.push_back(e.position);
  std::sort(out.begin(), out.end());
  return out;
}

TEST(recent_msg_ids, finds_what_was_added_and_nothing_else) {
  recent_msg_ids ids(16);
  ids.add(recent_msg_ids::hash_of("a:1"), 1, 100);
  ids.add(recent_msg_ids::hash_of("a:2"), 2, 100);
  EXPECT_EQ(positions_of(ids, recent_msg_ids::hash_of("a:1")), std::vector<std::uint64_t>{1});
  EXPECT_EQ(positions_of(ids, recent_msg_ids::hash_of("a:2")), std::vector<std::uint64_t>{2});
  EXPECT_TRUE(ids.candidates(recent_msg_ids::hash_of("a:3")).empty());
  const auto e = ids.candidates(recent_msg_ids::hash_of("a:1")).at(0);
  EXPECT_EQ(e.expires_ms, 100U);
}

TEST(recent_msg_ids, expire_forgets_the_oldest_while_their_expiry_has_passed) {
  recent_msg_ids ids(16);
  ids.add(7, 1, 100);
  ids.add(8, 2, 200);
  ids.add(9, 3, 150);  // out of order (a clock step back): kept until the one before it goes
  ids.expire(100);     // expiry 100 is not before 100
  EXPECT_EQ(ids.size(), 3U);
  ids.expire(160);
  EXPECT_EQ(ids.size(), 2U);
  EXPECT_TRUE(ids.candidates(7).empty());
  EXPECT_EQ(positions_of(ids, 9), std::vector<std::uint64_t>{3});
  ids.expire(201);
  EXPECT_EQ(ids.size(), 0U);
  EXPECT_EQ(ids.forgotten_early(), 0U);
}

TEST(recent_msg_ids, the_bound_forgets_the_oldest_early_and_counts_it) {
  recent_msg_ids ids(3);
  for (std::uint64_t p = 1; p <= 5; ++p) ids.add(p, p, 1000);
  EXPECT_EQ(ids.size(), 3U);
  EXPECT_EQ(ids.forgotten_early(), 2U);
  EXPECT_TRUE(ids.candidates(1).empty());
  EXPECT_TRUE(ids.candidates(2).empty());
  EXPECT_EQ(positions_of(ids, 5), std::vector<std::uint64_t>{5});
}

TEST(recent_msg_ids, ids_sharing_a_hash_are_all_candidates) {
  recent_msg_ids ids(16);
  ids.add(42, 1, 100);
  ids.add(42, 2, 100);
  ids.add(42 + 1024, 3, 100);  // another hash with the same home slot
  EXPECT_EQ(positions_of(ids, 42), (std::vector<std::uint64_t>{1, 2}));
  EXPECT_EQ(positions_of(ids, 42 + 1024), std::vector<std::uint64_t>{3});
  ids.expire(101);
  EXPECT_TRUE(ids.candidates(42).empty());
}

// 64 homes that straddle the end of the table at every size (the low bits
// run from 32 below the top around to 31), 4 hashes per home: probe runs wrap
// around and mix homes, so deletion must both move and keep entries.
std::uint64_t crowded_hash(std::uint64_t home, std::uint64_t variant) {
  return (std::numeric_limits<std::uint64_t>::max() - 31 + home) ^ (variant << 40);
}

// Against a plain multimap: adds with hashes crowded into few home slots,
// expiries and the bound, across several table growths. Removing a slot in
// the middle of a probe run must leave every other entry findable.
TEST(recent_msg_ids, matches_a_reference_under_crowded_hashes) {
  std::mt19937_64 rng(7);
  recent_msg_ids ids(3000);
  std::multimap<std::uint64_t, std::pair<std::uint64_t, std::uint64_t>>
      reference;                                   // hash -> (position, expiry)
  std::deque<std::uint64_t> order;                 // positions, oldest first
  std::map<std::uint64_t, std::uint64_t> hash_of;  // position -> hash
  auto forget = [&](std::uint64_t position) {
    const auto h = hash_of.at(position);
    for (auto it = reference.lower_bound(h); it != reference.upper_bound(h); ++it)
      if (it->second.first == position) {
        reference.erase(it);
        break;
      }
    hash_of.erase(position);
  };
  std::uint64_t now = 0;
  for (std::uint64_t p = 1; p <= 20'000; ++p) {
    now += rng() % 3;
    const std::uint64_t h = crowded_hash(rng() % 64, rng() % 4);
    if (order.size() == 3000) {
      forget(order.front());
      order.pop_front();
    }
    // Phases of short and long windows: expiries and the bound both forget.
    const std::uint64_t expiry = now + ((p / 2000) % 2 == 0 ? 500 : 8000);
    ids.add(h, p, expiry);
    reference.insert({h, {p, expiry}});
    order.push_back(p);
    hash_of[p] = h;
    if (p % 97 == 0) {
      ids.expire(now);
      while (!order.empty() && reference.count(hash_of.at(order.front())) > 0) {
        const auto front = order.front();
        std::uint64_t front_expiry = 0;
        for (auto it = reference.lower_bound(hash_of.at(front));
             it != reference.upper_bound(hash_of.at(front)); ++it)
          if (it->second.first == front) front_expiry = it->second.second;
        if (front_expiry >= now) break;
        forget(front);
        order.pop_front();
      }
    }
    if (p % 1000 == 0) {
      ASSERT_EQ(ids.size(), order.size()) << "after " << p;
      for (std::uint64_t k = 0; k < 64; ++k)
        for (std::uint64_t hi = 0; hi < 4; ++hi) {
          const std::uint64_t hash = crowded_hash(k, hi);
          std::vector<std::uint64_t> want;
          for (auto it = reference.lower_bound(hash); it != reference.upper_bound(hash); ++it)
            want.push_back(it->second.first);
          std::sort(want.begin(), want.end());
          ASSERT_EQ(positions_of(ids, hash), want) << "hash " << hash << " after " << p;
        }
    }
  }
  EXPECT_GT(ids.forgotten_early(), 0U);
  EXPECT_LT(ids.size(), 3000U) << "the short phases expire entries too";
}

}  // namespace
}  // namespace esflow::storage
