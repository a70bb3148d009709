#include "schemas/ids.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

namespace esflow::schemas {
namespace {

struct id_case {
  std::string id;
  bool valid;
};

TEST(tenant_id, follows_the_contract_table) {
  const std::vector<id_case> cases = {
      {"acme", true},
      {"tenant-2", true},
      {"a_b-C9", true},
      {"A", true},
      {"__", true},
      {"-", true},
      {std::string(64, 'x'), true},
      {std::string(65, 'x'), false},
      {"", false},
      {"_", false},
      {"acme.eu", false},
      {"acme*", false},
      {"acme>", false},
      {">", false},
      {"*", false},
      {"ac me", false},
      {"acme\t", false},
      {"acme\n", false},
      {"caf\xC3\xA9", false},  // é
      {"acme/1", false},
      {std::string("ac\0me", 5), false},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(is_valid_tenant_id(c.id), c.valid) << "'" << c.id << "'";
  }
}

TEST(tenant_id, validate_tenant_applies_tenancy_mode) {
  EXPECT_TRUE(validate_tenant("acme", false).ok());
  EXPECT_TRUE(validate_tenant("", true).ok());

  auto empty_multi = validate_tenant("", false);
  ASSERT_FALSE(empty_multi.ok());
  EXPECT_EQ(empty_multi.err().code, errc::invalid_tenant);
  EXPECT_EQ(empty_multi.err().message, "tenant id is required");

  auto named_single = validate_tenant("acme", true);
  ASSERT_FALSE(named_single.ok());
  EXPECT_EQ(named_single.err().code, errc::invalid_tenant);
  EXPECT_EQ(named_single.err().message, "tenant id must be empty in single-tenant mode");

  auto underscore = validate_tenant("_", false);
  ASSERT_FALSE(underscore.ok());
  EXPECT_EQ(underscore.err().code, errc::invalid_tenant);
  EXPECT_EQ(underscore.err().message, "tenant id '_' is reserved");

  auto dotted = validate_tenant("a.b", false);
  ASSERT_FALSE(dotted.ok());
  EXPECT_EQ(dotted.err().code, errc::invalid_tenant);
  EXPECT_EQ(dotted.err().message, "tenant id must match [A-Za-z0-9_-]{1,64}");
}

TEST(aggregate_type, follows_the_contract_table) {
  const std::vector<id_case> cases = {
      {"Account", true},
      {"a", true},
      {"Bank_Account2", true},
      {"x" + std::string(63, '1'), true},
      {"x" + std::string(64, '1'), false},
      {"", false},
      {"1Account", false},
      {"_Account", false},
      {"Acc-ount", false},
      {"Acc.ount", false},
      {"Acc*", false},
      {"Acc>", false},
      {"Acc ount", false},
      {"Konto\xC3\xA4", false},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(is_valid_aggregate_type(c.id), c.valid) << "'" << c.id << "'";
  }
}

TEST(aggregate_and_command_id, follow_the_contract_table) {
  const std::vector<id_case> cases = {
      {"acc-00042", true},
      {"0192f1c4-7b2e-7cc3-8f00-1a2b3c4d5e6f", true},
      {"_", true},  // only the tenant reserves "_"
      {std::string(128, 'a'), true},
      {std::string(129, 'a'), false},
      {"", false},
      {"acc.1", false},
      {"acc*", false},
      {"acc>", false},
      {"acc 1", false},
      {"acc:1", false},
      {"\xE2\x82\xAC", false},  // €
  };
  for (const auto& c : cases) {
    EXPECT_EQ(is_valid_aggregate_id(c.id), c.valid) << "'" << c.id << "'";
    EXPECT_EQ(is_valid_command_id(c.id), c.valid) << "'" << c.id << "'";
  }
}

TEST(correlation_id, allows_dots_and_colons) {
  const std::vector<id_case> cases = {
      {"req-1", true},
      {"svc.a:42", true},
      {"0192f1c4-7b2e-7cc3-8f00-1a2b3c4d5e6f", true},
      {std::string(128, '.'), true},
      {std::string(129, 'a'), false},
      {"", false},
      {"a b", false},
      {"a*", false},
      {"a>", false},
      {"a/b", false},
      {"\xC3\xA9", false},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(is_valid_correlation_id(c.id), c.valid) << "'" << c.id << "'";
  }
}

TEST(validate_ids, name_the_field_in_the_message) {
  auto empty = validate_command_id("");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.err().code, errc::invalid_command);
  EXPECT_EQ(empty.err().message, "field 'command_id' must not be empty");

  auto bad = validate_aggregate_id("a.b");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.err().code, errc::invalid_command);
  EXPECT_EQ(bad.err().message, "field 'aggregate_id' must match [A-Za-z0-9_-]{1,128}");

  auto key = validate_command_id("x y", "Idempotency-Key");
  ASSERT_FALSE(key.ok());
  EXPECT_EQ(key.err().message, "field 'Idempotency-Key' must match [A-Za-z0-9_-]{1,128}");

  auto type = validate_aggregate_type("9x");
  ASSERT_FALSE(type.ok());
  EXPECT_EQ(type.err().message, "field 'aggregate_type' must match [A-Za-z][A-Za-z0-9_]{0,63}");
}

TEST(uuid_v7, has_canonical_form_version_and_variant) {
  for (int i = 0; i < 1000; ++i) {
    const std::string u = new_uuid_v7();
    ASSERT_EQ(u.size(), 36u);
    ASSERT_TRUE(is_uuid_v7(u)) << u;
    EXPECT_EQ(u[8], '-');
    EXPECT_EQ(u[13], '-');
    EXPECT_EQ(u[18], '-');
    EXPECT_EQ(u[23], '-');
    EXPECT_EQ(u[14], '7') << u;
    EXPECT_NE(std::string("89ab").find(u[19]), std::string::npos) << u;
    for (char ch : u) EXPECT_FALSE(ch >= 'A' && ch <= 'F') << u;
    EXPECT_TRUE(is_valid_aggregate_id(u));
    EXPECT_TRUE(is_valid_correlation_id(u));
  }
}

TEST(uuid_v7, embeds_the_current_unix_millisecond) {
  using namespace std::chrono;
  const auto before =
      static_cast<std::uint64_t>(duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count());
  const std::string u = new_uuid_v7();
  const auto after =
      static_cast<std::uint64_t>(duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count());
  const std::uint64_t ms = uuid_v7_millis(u);
  // Monotonic mode may run a little ahead of the clock, never behind.
  EXPECT_GE(ms, before);
  EXPECT_LE(ms, after + 1000);
}

TEST(uuid_v7, unique_and_strictly_increasing_within_a_thread_over_100k) {
  constexpr int n = 100'000;
  std::vector<std::string> ids;
  ids.reserve(n);
  for (int i = 0; i < n; ++i) ids.push_back(new_uuid_v7());
  for (int i = 1; i < n; ++i) {
    ASSERT_LT(ids[i - 1], ids[i]) << "at " << i;
  }
  std::unordered_set<std::string> set(ids.begin(), ids.end());
  EXPECT_EQ(set.size(), static_cast<std::size_t>(n));
}

TEST(uuid_v7, unique_across_threads) {
  constexpr int threads = 4;
  constexpr int per_thread = 25'000;
  std::vector<std::vector<std::string>> out(threads);
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&out, t] {
      out[t].reserve(per_thread);
      for (int i = 0; i < per_thread; ++i) out[t].push_back(new_uuid_v7());
    });
  }
  for (auto& t : ts) t.join();
  std::unordered_set<std::string> set;
  for (const auto& v : out) set.insert(v.begin(), v.end());
  EXPECT_EQ(set.size(), static_cast<std::size_t>(threads * per_thread));
}

TEST(uuid_v7, is_uuid_v7_rejects_other_forms) {
  EXPECT_TRUE(is_uuid_v7("0192f1c4-7b2e-7cc3-8f00-1a2b3c4d5e6f"));
  EXPECT_FALSE(is_uuid_v7("0192F1C4-7B2E-7CC3-8F00-1A2B3C4D5E6F"));  // uppercase
  EXPECT_FALSE(is_uuid_v7("0192f1c4-7b2e-4cc3-8f00-1a2b3c4d5e6f"));  // v4
  EXPECT_FALSE(is_uuid_v7("0192f1c4-7b2e-7cc3-cf00-1a2b3c4d5e6f"));  // variant 110
  EXPECT_FALSE(is_uuid_v7("0192f1c47b2e7cc38f001a2b3c4d5e6f"));      // no dashes
  EXPECT_FALSE(is_uuid_v7(""));
}

constexpr std::string_view k_valid_tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

TEST(traceparent, parses_a_valid_header) {
  auto tp = parse_traceparent(k_valid_tp);
  ASSERT_TRUE(tp.has_value());
  EXPECT_EQ(tp->trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(tp->parent_id, "00f067aa0ba902b7");
  EXPECT_EQ(tp->flags, "01");
}

TEST(traceparent, rejects_everything_else) {
  const std::vector<std::string> bad = {
      "",
      "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01",   // uppercase
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067aa0ba902b7-01",   // one uppercase nibble
      "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   // version ff
      "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   // version 01
      "00-00000000000000000000000000000000-00f067aa0ba902b7-01",   // zero trace id
      "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",   // zero parent id
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",  // too long
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",    // too short
      "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   // separator
      "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",   // non-hex
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0G",   // flags non-hex
  };
  for (const auto& s : bad) EXPECT_FALSE(parse_traceparent(s).has_value()) << s;
}

TEST(trace_context, keeps_valid_incoming_values) {
  auto ctx = make_trace_context(k_valid_tp, "req-1.a:b");
  EXPECT_EQ(ctx.traceparent, k_valid_tp);
  EXPECT_EQ(ctx.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(ctx.correlation_id, "req-1.a:b");
}

TEST(trace_context, replaces_invalid_or_missing_values) {
  const std::vector<std::string> bad = {
      "",
      "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01",
      "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
  };
  for (const auto& in : bad) {
    auto ctx = make_trace_context(in, "bad id with spaces");
    EXPECT_NE(ctx.traceparent, in);
    ASSERT_TRUE(parse_traceparent(ctx.traceparent).has_value()) << ctx.traceparent;
    EXPECT_EQ(ctx.trace_id, ctx.traceparent.substr(3, 32));
    EXPECT_TRUE(is_uuid_v7(ctx.correlation_id)) << ctx.correlation_id;
  }
  auto a = make_trace_context("", "");
  auto b = make_trace_context("", "");
  EXPECT_NE(a.trace_id, b.trace_id);
  EXPECT_NE(a.correlation_id, b.correlation_id);
  EXPECT_FALSE(make_trace_context("", std::string(129, 'a')).correlation_id.size() == 129);
}

TEST(timestamp, formats_rfc3339_utc_milliseconds) {
  using namespace std::chrono;
  // 2026-11-22T16:00:00.123Z
  const sys_days day = year{2026} / November / 22;
  const auto tp = system_clock::time_point(day) + hours{16} + milliseconds{123};
  EXPECT_EQ(format_timestamp(tp), "2026-11-22T16:00:00.123Z");
  EXPECT_EQ(format_timestamp(system_clock::time_point{}), "1970-01-01T00:00:00.000Z");
  const sys_days leap = year{2024} / February / 29;
  EXPECT_EQ(format_timestamp(system_clock::time_point(leap) + hours{23} + minutes{59} + seconds{59} +
                             milliseconds{999} + microseconds{999}),
            "2024-02-29T23:59:59.999Z");
}

TEST(timestamp, now_is_valid_and_validator_is_strict) {
  const std::string now = now_timestamp();
  EXPECT_TRUE(is_valid_timestamp(now)) << now;
  EXPECT_TRUE(is_valid_timestamp("2026-11-22T16:00:00.123Z"));
  EXPECT_FALSE(is_valid_timestamp("2026-11-22T16:00:00Z"));
  EXPECT_FALSE(is_valid_timestamp("2026-11-22 16:00:00.123Z"));
  EXPECT_FALSE(is_valid_timestamp("2026-13-22T16:00:00.123Z"));
  EXPECT_FALSE(is_valid_timestamp("2026-02-30T16:00:00.123Z"));
  EXPECT_FALSE(is_valid_timestamp("2026-11-22T24:00:00.123Z"));
  EXPECT_FALSE(is_valid_timestamp("2026-11-22T16:00:00.123+00:00"));
}

}  // namespace
}  // namespace esflow::schemas
