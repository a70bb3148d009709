// encode -> decode -> equal, for every envelope.
#include "schemas/ids.h"
#include "schemas/json_decode.h"
#include "schemas/json_encode.h"

#include <gtest/gtest.h>

#include <string>

namespace esflow::schemas {

bool operator==(const event& a, const event& b) {
  return a.tenant_id == b.tenant_id && a.event_id == b.event_id && a.aggregate_type == b.aggregate_type &&
         a.aggregate_id == b.aggregate_id && a.version == b.version && a.event_type == b.event_type &&
         a.payload_json == b.payload_json && a.command_id == b.command_id &&
         a.correlation_id == b.correlation_id && a.trace_id == b.trace_id && a.timestamp == b.timestamp;
}

namespace {

// Every byte 0x01..0x7f plus valid multi-byte UTF-8 and a NUL.
std::string tricky_text() {
  std::string s;
  for (int c = 1; c < 0x80; ++c) s.push_back(static_cast<char>(c));
  s += "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xE2\x80\xA8";
  s.push_back('\0');
  s += "end";
  return s;
}

event make_event(version_t v, std::string payload) {
  event e;
  e.tenant_id = "acme";
  e.event_id = new_uuid_v7();
  e.aggregate_type = "Account";
  e.aggregate_id = "acc-00042";
  e.version = v;
  e.event_type = "deposited";
  e.payload_json = std::move(payload);
  e.command_id = new_uuid_v7();
  e.correlation_id = "corr.1:a";
  e.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  e.timestamp = now_timestamp();
  return e;
}

TEST(round_trip, command) {
  command c;
  c.tenant_id = "tenant-2";
  c.command_id = new_uuid_v7();
  c.aggregate_type = "Account";
  c.aggregate_id = "acc-03290";
  c.payload_type = "deposit";
  c.payload_json = R"({"type":"deposit","amount":9007199254740993,"note":"a\"b\\c\n\u0001"})";
  c.metadata_json = R"({"source":"test","n":[1,2,3]})";
  auto r = decode_command(encode_command(c));
  ASSERT_TRUE(r.ok()) << r.err().to_string();
  EXPECT_EQ(r->cmd.tenant_id, c.tenant_id);
  EXPECT_EQ(r->cmd.command_id, c.command_id);
  EXPECT_EQ(r->cmd.aggregate_type, c.aggregate_type);
  EXPECT_EQ(r->cmd.aggregate_id, c.aggregate_id);
  EXPECT_EQ(r->cmd.payload_type, c.payload_type);
  EXPECT_EQ(r->cmd.payload_json, c.payload_json);
  EXPECT_EQ(r->cmd.metadata_json, c.metadata_json);
  EXPECT_TRUE(r->has_tenant_id && r->has_command_id && r->has_aggregate_id && r->has_metadata);
}

TEST(round_trip, command_without_optional_ids) {
  command c;
  c.aggregate_type = "Account";
  c.payload_type = "open_account";
  c.payload_json = R"({"type":"open_account","initial_balance":0})";
  auto r = decode_command(encode_command(c));
  ASSERT_TRUE(r.ok()) << r.err().to_string();
  EXPECT_FALSE(r->has_command_id);
  EXPECT_FALSE(r->has_aggregate_id);
  EXPECT_TRUE(r->has_tenant_id);  // "" is written: single-tenant mode
  EXPECT_EQ(r->cmd.payload_json, c.payload_json);
}

TEST(round_trip, event_with_tricky_strings) {
  event e = make_event(6, R"({"type":"deposited","amount":50,"big":18446744073709551615})");
  e.correlation_id = tricky_text();
  e.timestamp = tricky_text() + "ts";
  auto r = decode_event(encode_event(e));
  ASSERT_TRUE(r.ok()) << r.err().to_string();
  EXPECT_EQ(r.value(), e);
}

TEST(round_trip, commit_with_several_events) {
  commit c;
  c.tenant_id = "acme";
  c.aggregate_type = "Account";
  c.aggregate_id = "acc-00042";
  c.command_id = new_uuid_v7();
  c.first_version = 7;
  for (version_t v = 7; v < 10; ++v)
    c.events.push_back(make_event(v, R"({"type":"deposited","amount":)" + std::to_string(v) + "}"));
  auto r = decode_commit(encode_commit(c));
  ASSERT_TRUE(r.ok()) << r.err().to_string();
  EXPECT_EQ(r->tenant_id, c.tenant_id);
  EXPECT_EQ(r->aggregate_type, c.aggregate_type);
  EXPECT_EQ(r->aggregate_id, c.aggregate_id);
  EXPECT_EQ(r->command_id, c.command_id);
  EXPECT_EQ(r->first_version, c.first_version);
  ASSERT_EQ(r->events.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(r->events[i], c.events[i]) << i;
}

TEST(round_trip, empty_commit) {
  commit c;
  c.aggregate_type = "Account";
  c.aggregate_id = "a";
  auto r = decode_commit(encode_commit(c));
  ASSERT_TRUE(r.ok()) << r.err().to_string();
  EXPECT_TRUE(r->events.empty());
  EXPECT_EQ(r->tenant_id, "");
}

TEST(round_trip, accepted_command_result) {
  command_result a;
  a.accepted = true;
  a.aggregate_id = "acc-1";
  a.version = 12;
  a.duplicate = true;
  a.events.push_back(make_event(12, R"({"type":"withdrawn","amount":3})"));
  auto r = decode_command_result(encode_command_result(a));
  ASSERT_TRUE(r.ok()) << r.err().to_string();
  EXPECT_TRUE(r->accepted);
  EXPECT_EQ(r->aggregate_id, a.aggregate_id);
  EXPECT_EQ(r->version, a.version);
  EXPECT_TRUE(r->duplicate);
  ASSERT_EQ(r->events.size(), 1u);
  EXPECT_EQ(r->events[0], a.events[0]);
}

TEST(round_trip, rejected_command_result) {
  command_result a;
  a.accepted = false;
  a.code = "insufficient_funds";
  a.message = "balance 10 < 100 \"quoted\"\n" + tricky_text();
  a.retryable = true;
  auto r = decode_command_result(encode_command_result(a));
  ASSERT_TRUE(r.ok()) << r.err().to_string();
  EXPECT_FALSE(r->accepted);
  EXPECT_EQ(r->code, a.code);
  EXPECT_EQ(r->message, a.message);
  EXPECT_TRUE(r->retryable);
}

TEST(round_trip, snapshot) {
  snapshot s;
  s.tenant_id = "acme";
  s.aggregate_type = "Account";
  s.aggregate_id = "acc-1";
  s.version = 100;
  s.log_position = 18446744073709551615ULL;
  s.state_json = R"({"open":true,"balance":9007199254740993,"list":[{"a":null}]})";
  s.created_at = now_timestamp();
  auto r = decode_snapshot(encode_snapshot(s));
  ASSERT_TRUE(r.ok()) << r.err().to_string();
  EXPECT_EQ(r->tenant_id, s.tenant_id);
  EXPECT_EQ(r->aggregate_type, s.aggregate_type);
  EXPECT_EQ(r->aggregate_id, s.aggregate_id);
  EXPECT_EQ(r->version, s.version);
  EXPECT_EQ(r->log_position, s.log_position);
  EXPECT_EQ(r->state_json, s.state_json);
  EXPECT_EQ(r->created_at, s.created_at);
}

TEST(round_trip, invalid_utf8_is_replaced_and_stays_decodable) {
  command_result a;
  a.accepted = false;
  a.code = "program_error";
  a.message = "bad \xFF\xC3 bytes";
  auto json = encode_command_result(a);
  auto r = decode_command_result(json);
  ASSERT_TRUE(r.ok()) << r.err().to_string();
  EXPECT_EQ(r->message, "bad \xEF\xBF\xBD\xEF\xBF\xBD bytes");
}

}  // namespace
}  // namespace esflow::schemas
