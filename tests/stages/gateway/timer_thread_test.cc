// The gateway's timer (stages/gateway/timer_thread.h): callbacks in time
// order, cancel before the run, stop drops what is left.
#include "stages/gateway/timer_thread.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

namespace esflow::gateway {
namespace {

using namespace std::chrono_literals;
using clock = timer_thread::clock;

template <class pred>
bool within(std::chrono::milliseconds limit, pred p) {
  const auto end = clock::now() + limit;
  while (!p() && clock::now() < end) std::this_thread::sleep_for(2ms);
  return p();
}

TEST(timer_thread, runs_callbacks_in_time_order_not_schedule_order) {
  timer_thread t;
  std::mutex mu;
  std::vector<int> order;
  const auto now = clock::now();
  for (int i : {3, 1, 2})
    t.schedule(now + std::chrono::milliseconds(20 * i), [&, i] {
      std::lock_guard lock(mu);
      order.push_back(i);
    });
  ASSERT_TRUE(within(2s, [&] {
    std::lock_guard lock(mu);
    return order.size() == 3;
  }));
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
}

TEST(timer_thread, a_cancelled_callback_never_runs_and_a_past_time_runs_at_once) {
  timer_thread t;
  std::atomic<int> ran{0};
  const auto id = t.schedule(clock::now() + 50ms, [&] { ran += 10; });
  EXPECT_TRUE(t.cancel(id));
  EXPECT_FALSE(t.cancel(id));
  t.schedule(clock::now() - 1s, [&] { ran += 1; });
  ASSERT_TRUE(within(1s, [&] { return ran.load() == 1; }));
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(ran.load(), 1);
}

TEST(timer_thread, stop_drops_what_is_left_and_refuses_more) {
  timer_thread t;
  std::atomic<int> ran{0};
  t.schedule(clock::now() + 10s, [&] { ++ran; });
  t.stop();
  EXPECT_EQ(t.schedule(clock::now(), [&] { ++ran; }), 0U);
  EXPECT_EQ(ran.load(), 0);
}

}  // namespace
}  // namespace esflow::gateway
