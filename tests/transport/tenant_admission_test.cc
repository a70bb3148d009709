// Per-tenant admission (transport/tenant_admission.h): placement's hook,
// a drain that waits for the tenant's in-flight commands only, resume.
#include "transport/tenant_admission.h"

#include <gtest/gtest.h>

#include <future>
#include <thread>

namespace esflow::transport {
namespace {

using namespace std::chrono_literals;

TEST(tenant_admission, a_tenant_placed_elsewhere_is_not_hosted_and_names_the_owner) {
  tenant_admission a;
  a.set_placement([](const std::string& t) -> std::optional<std::string> {
    if (t == "globex") return std::string("agg-2");
    return std::nullopt;
  });
  EXPECT_TRUE(a.admit("acme").ok());
  auto r = a.admit("globex");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::tenant_not_hosted);
  EXPECT_EQ(r.err().node, "agg-2");
  a.set_placement(nullptr);
  EXPECT_TRUE(a.admit("globex").ok());
}

TEST(tenant_admission, a_drain_waits_for_the_tenants_in_flight_commands_and_refuses_new_ones) {
  tenant_admission a;
  auto lease = a.admit("acme");
  ASSERT_TRUE(lease.ok());
  auto other = a.admit("globex");  // another tenant's command does not hold the drain
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(a.in_flight("acme"), 1);
  // Not drained while a command is in flight.
  EXPECT_FALSE(a.drain("acme", 50ms));
  auto refused = a.admit("acme");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.err().code, errc::unavailable);
  EXPECT_TRUE(a.admit("globex").ok()) << "the rest of the node keeps serving";
  auto drained = std::async(std::launch::async, [&] { return a.drain("acme", 5s); });
  std::this_thread::sleep_for(20ms);
  lease = std::shared_ptr<void>();  // the in-flight command finishes
  EXPECT_TRUE(drained.get());
  EXPECT_EQ(a.in_flight("acme"), 0);
  EXPECT_TRUE(a.draining("acme"));
  EXPECT_EQ(a.draining_tenants(), std::set<std::string>{"acme"});
  a.resume("acme");
  EXPECT_FALSE(a.draining("acme"));
  EXPECT_TRUE(a.admit("acme").ok());
}

TEST(tenant_admission, no_command_slips_past_a_finished_drain_under_concurrent_admits) {
  tenant_admission a;
  std::atomic<bool> stop{false};
  std::atomic<int> admitted_after{0};
  std::atomic<bool> drained{false};
  std::vector<std::thread> ts;
  for (int i = 0; i < 4; ++i)
    ts.emplace_back([&] {
      for (int n = 0; n < 200000 && !stop.load(); ++n) {
        const bool was_drained = drained.load();
        auto l = a.admit("acme");
        if (l.ok() && was_drained) admitted_after.fetch_add(1);
      }
    });
  std::this_thread::sleep_for(5ms);
  ASSERT_TRUE(a.drain("acme", 5s));
  drained = true;
  std::this_thread::sleep_for(20ms);
  stop = true;
  for (auto& t : ts) t.join();
  EXPECT_EQ(admitted_after.load(), 0);
}

TEST(tenant_admission, idle_tenants_are_forgotten_beyond_the_bound_and_busy_ones_are_kept) {
  tenant_admission a(64);
  auto held = a.admit("busy");
  ASSERT_TRUE(held.ok());
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(a.admit("t-" + std::to_string(i)).ok());
  EXPECT_LE(a.tracked(), 64U);
  EXPECT_EQ(a.in_flight("busy"), 1) << "a tenant with a command in flight is never forgotten";
  auto drained = std::async(std::launch::async, [&] { return a.drain("busy", 5s); });
  std::this_thread::sleep_for(20ms);
  for (int i = 0; i < 200; ++i) EXPECT_TRUE(a.admit("u-" + std::to_string(i)).ok());
  held = std::shared_ptr<void>();
  EXPECT_TRUE(drained.get());
  EXPECT_TRUE(a.draining("busy"));
}

}  // namespace
}  // namespace esflow::transport
