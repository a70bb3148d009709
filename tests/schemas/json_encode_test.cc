#include "schemas/json_encode.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

namespace esflow::schemas {
namespace {

std::string json_quoted(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

TEST(json_string, escapes_quotes_backslashes_and_control_chars) {
  EXPECT_EQ(json_quoted("plain"), "\"plain\"");
  EXPECT_EQ(json_quoted(""), "\"\"");
  EXPECT_EQ(json_quoted("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(json_quoted("\b\f\n\r\t"), "\"\\b\\f\\n\\r\\t\"");
  EXPECT_EQ(json_quoted(std::string("\x00\x01\x1f", 3)), "\"\\u0000\\u0001\\u001f\"");
  EXPECT_EQ(json_quoted("\x7f"), "\"\x7f\"");
  EXPECT_EQ(json_quoted("/"), "\"/\"");
}

TEST(json_string, keeps_valid_utf8) {
  EXPECT_EQ(json_quoted("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"),
            "\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\"");
  EXPECT_EQ(json_quoted("\xEF\xBF\xBF"), "\"\xEF\xBF\xBF\"");          // U+FFFF
  EXPECT_EQ(json_quoted("\xF4\x8F\xBF\xBF"), "\"\xF4\x8F\xBF\xBF\"");  // U+10FFFF
}

TEST(json_string, replaces_invalid_utf8_with_replacement_char) {
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(json_quoted("a\x80z"), "\"a" + r + "z\"");                      // stray continuation
  EXPECT_EQ(json_quoted("a\xC3"), "\"a" + r + "\"");                        // truncated at end
  EXPECT_EQ(json_quoted("\xC0\xAF"), "\"" + r + r + "\"");                  // overlong '/'
  EXPECT_EQ(json_quoted("\xED\xA0\x80"), "\"" + r + r + r + "\"");          // surrogate D800
  EXPECT_EQ(json_quoted("\xF4\x90\x80\x80"), "\"" + r + r + r + r + "\"");  // > U+10FFFF
  EXPECT_EQ(json_quoted("\xFF"), "\"" + r + "\"");
}

// A byte-at-a-time reference for ASCII input, to check the word-at-a-time scan.
std::string reference_escape(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out += '"';
  return out;
}

TEST(json_string, matches_reference_for_every_special_byte_at_every_position) {
  const std::string specials = std::string("\"\\\b\f\n\r\t\x01\x1f", 9) + std::string(1, '\0');
  for (std::size_t len = 1; len <= 40; ++len) {
    for (std::size_t pos = 0; pos < len; ++pos) {
      for (char sp : specials) {
        std::string s(len, 'a');
        s[pos] = sp;
        ASSERT_EQ(json_quoted(s), reference_escape(s))
            << "len " << len << " pos " << pos << " byte " << static_cast<int>(sp);
      }
    }
  }
  // Bytes just around the class boundaries never trigger escapes.
  const std::string edge = "\x20\x21\x23\x5b\x5d\x7e\x7f abcdefghijklmnop";
  EXPECT_EQ(json_quoted(edge), "\"" + edge + "\"");
}

TEST(json_string, non_ascii_after_a_long_plain_run) {
  const std::string s = std::string(19, 'x') + "\xC3\xA9" + std::string(9, 'y') + "\x80";
  EXPECT_EQ(json_quoted(s),
            "\"" + std::string(19, 'x') + "\xC3\xA9" + std::string(9, 'y') + "\xEF\xBF\xBD\"");
}

TEST(json_writer, places_commas_in_nested_containers) {
  std::string out;
  json_writer w(out);
  w.begin_object();
  w.key("a").value(std::uint64_t{1});
  w.key("b").begin_array().value(true).value(false).null().begin_object().end_object().end_array();
  w.key("c").begin_object().key("d").value("x").key("e").value(std::int64_t{-5}).end_object();
  w.key("f").raw("{\"g\":[1,2]}");
  w.end_object();
  EXPECT_EQ(out, R"({"a":1,"b":[true,false,null,{}],"c":{"d":"x","e":-5},"f":{"g":[1,2]}})");
}

TEST(json_writer, writes_extreme_integers) {
  std::string out;
  json_writer w(out);
  w.begin_array()
      .value(std::uint64_t{18446744073709551615ULL})
      .value(std::int64_t{-9223372036854775807LL - 1})
      .value(std::uint64_t{0})
      .end_array();
  EXPECT_EQ(out, "[18446744073709551615,-9223372036854775808,0]");
}

event sample_event() {
  event e;
  e.tenant_id = "acme";
  e.event_id = "0192f1c4-7b2e-7cc3-8f00-1a2b3c4d5e6f";
  e.aggregate_type = "Account";
  e.aggregate_id = "acc-1";
  e.version = 6;
  e.event_type = "deposited";
  e.payload_json = R"({"type":"deposited","amount":50})";
  e.command_id = "cmd-1";
  e.correlation_id = "corr-1";
  e.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  e.timestamp = "2026-11-22T16:00:00.123Z";
  return e;
}

TEST(encode, event_matches_contract_shape) {
  EXPECT_EQ(
      encode_event(sample_event()),
      R"({"tenant_id":"acme","event_id":"0192f1c4-7b2e-7cc3-8f00-1a2b3c4d5e6f","aggregate_type":"Account",)"
      R"("aggregate_id":"acc-1","version":6,"event_type":"deposited","payload":{"type":"deposited","amount":50},)"
      R"("command_id":"cmd-1","correlation_id":"corr-1","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736",)"
      R"("timestamp":"2026-11-22T16:00:00.123Z"})");
}

TEST(encode, accepted_result_matches_contract_shape) {
  command_result r;
  r.accepted = true;
  r.aggregate_id = "acc-1";
  r.version = 6;
  r.position = 12345;
  r.duplicate = false;
  r.events.push_back(sample_event());
  const std::string json = encode_command_result(r);
  const std::string prefix =
      R"({"status":"accepted","aggregate_id":"acc-1","version":6,"position":12345,"duplicate":false,"events":[)";
  EXPECT_EQ(json, prefix + encode_event(sample_event()) + "]}");
}

TEST(encode, rejected_result_matches_contract_shape) {
  command_result r;
  r.accepted = false;
  r.code = "insufficient_funds";
  r.message = "balance 10 < 100";
  r.retryable = false;
  EXPECT_EQ(
      encode_command_result(r),
      R"({"status":"rejected","code":"insufficient_funds","message":"balance 10 < 100","retryable":false})");
}

TEST(encode, rejection_from_error_uses_wire_code_and_retryable_rule) {
  auto conflict = make_rejection(error::make(errc::version_conflict, "retries exhausted"));
  EXPECT_EQ(
      encode_command_result(conflict),
      R"({"status":"rejected","code":"version_conflict","message":"retries exhausted","retryable":true})");
  auto domain = make_rejection(error::domain("insufficient_funds", ""));
  EXPECT_EQ(domain.code, "insufficient_funds");
  EXPECT_EQ(domain.message, "insufficient_funds");  // never empty
  EXPECT_FALSE(domain.retryable);
  EXPECT_TRUE(make_rejection(error::make(errc::unavailable, "nats down")).retryable);
  EXPECT_FALSE(make_rejection(error::make(errc::invalid_command, "x")).retryable);
}

TEST(encode, commit_and_snapshot_match_contract_shape) {
  commit c;
  c.tenant_id = "acme";
  c.aggregate_type = "Account";
  c.aggregate_id = "acc-1";
  c.command_id = "cmd-1";
  c.first_version = 6;
  c.events.push_back(sample_event());
  EXPECT_EQ(encode_commit(c),
            R"({"tenant_id":"acme","aggregate_type":"Account","aggregate_id":"acc-1","command_id":"cmd-1",)"
            R"("first_version":6,"events":[)" +
                encode_event(sample_event()) + "]}");

  snapshot s;
  s.tenant_id = "";
  s.aggregate_type = "Account";
  s.aggregate_id = "acc-1";
  s.version = 100;
  s.log_position = 12345;
  s.state_json = R"({"open":true,"balance":40})";
  s.created_at = "2026-11-22T16:00:00.123Z";
  EXPECT_EQ(
      encode_snapshot(s),
      R"({"tenant_id":"","aggregate_type":"Account","aggregate_id":"acc-1","version":100,)"
      R"("log_position":12345,"state":{"open":true,"balance":40},"created_at":"2026-11-22T16:00:00.123Z"})");
}

TEST(encode, command_omits_empty_optional_ids_and_defaults_empty_raw_json) {
  command c;
  c.tenant_id = "acme";
  c.aggregate_type = "Account";
  c.payload_json = R"({"type":"deposit","amount":50})";
  c.metadata_json = "";
  EXPECT_EQ(
      encode_command(c),
      R"({"tenant_id":"acme","aggregate_type":"Account","payload":{"type":"deposit","amount":50},"metadata":{}})");
}

TEST(encode, appends_to_existing_buffer) {
  std::string out = "prefix:";
  append_event(out, sample_event());
  EXPECT_EQ(out, "prefix:" + encode_event(sample_event()));
}

}  // namespace
}  // namespace esflow::schemas
