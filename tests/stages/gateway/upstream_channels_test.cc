// The gateway's upstream gRPC channel pool (stages/gateway/upstream_channels.h):
// one channel per target, the LRU bound, idle expiry on an injected clock.
// Real grpc::Channels: CreateChannel connects lazily, so no server is needed.
#include "stages/gateway/upstream_channels.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace esflow::gateway {
namespace {

using namespace std::chrono_literals;

struct fake_clock {
  upstream_channels::clock::time_point t{std::chrono::hours(1)};
  std::function<upstream_channels::clock::time_point()> fn() {
    return [this] { return t; };
  }
};

TEST(gateway_upstream_channels_test, the_same_target_returns_the_same_channel) {
  upstream_channels pool;
  auto a = pool.get("127.0.0.1:9090");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(pool.get("127.0.0.1:9090"), a);
  auto b = pool.get("127.0.0.1:9091");
  EXPECT_NE(b, a);
  EXPECT_EQ(pool.size(), 2U);
  const auto s = pool.stats();
  EXPECT_EQ(s.created, 2U);
  EXPECT_EQ(s.hits, 1U);
  EXPECT_EQ(s.evicted, 0U);
}

TEST(gateway_upstream_channels_test, beyond_max_channels_the_least_recently_used_is_evicted) {
  upstream_channels pool({.max_channels = 3});
  auto a = pool.get("a:1");
  auto b = pool.get("b:1");
  auto c = pool.get("c:1");
  EXPECT_EQ(pool.get("a:1"), a);  // a is now the most recent; b the least
  auto d = pool.get("d:1");
  EXPECT_EQ(pool.size(), 3U);
  EXPECT_EQ(pool.stats().evicted, 1U);
  EXPECT_EQ(pool.get("a:1"), a);
  EXPECT_EQ(pool.get("c:1"), c);
  EXPECT_EQ(pool.get("d:1"), d);
  EXPECT_EQ(pool.stats().created, 4U);
  // b was dropped: a new channel (the old one lives on for its holder).
  auto b2 = pool.get("b:1");
  EXPECT_NE(b2, b);
  EXPECT_NE(b, nullptr);
  EXPECT_EQ(pool.size(), 3U);
  const auto s = pool.stats();
  EXPECT_EQ(s.created, 5U);
  EXPECT_EQ(s.evicted, 2U);
  EXPECT_EQ(s.hits, 4U);
}

TEST(gateway_upstream_channels_test, a_channel_idle_past_its_ttl_is_dropped_on_the_next_get_or_sweep) {
  fake_clock clock;
  upstream_channels pool({.max_channels = 8, .idle_ttl = 100ms, .now = clock.fn()});
  auto a = pool.get("a:1");
  auto b = pool.get("b:1");
  clock.t += 60ms;
  EXPECT_EQ(pool.get("a:1"), a);  // a used again: its idle time restarts
  clock.t += 60ms;                // b idle 120 ms, a 60 ms
  EXPECT_EQ(pool.sweep(), 1U);
  EXPECT_EQ(pool.size(), 1U);
  EXPECT_EQ(pool.stats().expired, 1U);
  EXPECT_EQ(pool.get("a:1"), a);

  clock.t += 101ms;  // a idle past the TTL: the next get drops it and makes a new one
  auto a2 = pool.get("a:1");
  EXPECT_NE(a2, a);
  EXPECT_EQ(pool.size(), 1U);
  const auto s = pool.stats();
  EXPECT_EQ(s.expired, 2U);
  EXPECT_EQ(s.created, 3U);
  EXPECT_EQ(s.evicted, 0U);
  clock.t += 100ms;  // exactly the TTL is not past it
  EXPECT_EQ(pool.sweep(), 0U);
}

TEST(gateway_upstream_channels_test, concurrent_gets_share_one_channel_per_target_within_the_bound) {
  upstream_channels pool({.max_channels = 4});
  std::vector<std::thread> threads;
  threads.reserve(4);
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&pool, t] {
      for (int i = 0; i < 500; ++i) {
        auto ch = pool.get("host" + std::to_string((i + t) % 6) + ":1");
        ASSERT_NE(ch, nullptr);
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_LE(pool.size(), 4U);
  const auto s = pool.stats();
  EXPECT_EQ(s.created + s.hits, 2000U);
  EXPECT_EQ(s.created - s.evicted, pool.size());
}

}  // namespace
}  // namespace esflow::gateway
