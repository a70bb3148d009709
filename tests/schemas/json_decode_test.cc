#include "schemas/json_decode.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace esflow::schemas {
namespace {

constexpr std::string_view k_typical =
    R"({"tenant_id":"tenant-2","command_id":"58bbe5b7-6f0e-4c1a-9d6b-0f8f1d2a3b4c","aggregate_type":"Account",)"
    R"("aggregate_id":"acc-03290","payload":{"type":"deposit","amount":6}})";

TEST(decode_command, decodes_a_typical_command) {
  auto r = decode_command(k_typical);
  ASSERT_TRUE(r.ok()) << r.err().to_string();
  EXPECT_TRUE(r->has_tenant_id);
  EXPECT_TRUE(r->has_command_id);
  EXPECT_TRUE(r->has_aggregate_id);
  EXPECT_FALSE(r->has_metadata);
  EXPECT_EQ(r->cmd.tenant_id, "tenant-2");
  EXPECT_EQ(r->cmd.command_id, "58bbe5b7-6f0e-4c1a-9d6b-0f8f1d2a3b4c");
  EXPECT_EQ(r->cmd.aggregate_type, "Account");
  EXPECT_EQ(r->cmd.aggregate_id, "acc-03290");
  EXPECT_EQ(r->cmd.payload_type, "deposit");
  EXPECT_EQ(r->cmd.payload_json, R"({"type":"deposit","amount":6})");
  EXPECT_EQ(r->cmd.metadata_json, "{}");
}

TEST(decode_command, records_missing_optional_fields) {
  auto r = decode_command(R"({"aggregate_type":"Account","payload":{"type":"close_account"}})");
  ASSERT_TRUE(r.ok()) << r.err().to_string();
  EXPECT_FALSE(r->has_tenant_id);
  EXPECT_FALSE(r->has_command_id);
  EXPECT_FALSE(r->has_aggregate_id);
  EXPECT_FALSE(r->has_metadata);
  EXPECT_TRUE(r->cmd.tenant_id.empty());
  EXPECT_TRUE(r->cmd.command_id.empty());
  EXPECT_TRUE(r->cmd.aggregate_id.empty());
  EXPECT_EQ(r->cmd.payload_json, R"({"type":"close_account"})");
}

TEST(decode_command, treats_null_optional_fields_as_missing) {
  auto r = decode_command(
      R"({"tenant_id":null,"command_id":null,"aggregate_id":null,"metadata":null,"aggregate_type":"Account","payload":{"type":"x"}})");
  ASSERT_TRUE(r.ok()) << r.err().to_string();
  EXPECT_FALSE(r->has_tenant_id);
  EXPECT_FALSE(r->has_command_id);
  EXPECT_FALSE(r->has_aggregate_id);
  EXPECT_FALSE(r->has_metadata);
  EXPECT_EQ(r->cmd.metadata_json, "{}");
}

TEST(decode_command, accepts_empty_tenant_for_single_tenant_mode) {
  auto r = decode_command(R"({"tenant_id":"","aggregate_type":"Account","payload":{"type":"x"}})");
  ASSERT_TRUE(r.ok()) << r.err().to_string();
  EXPECT_TRUE(r->has_tenant_id);
  EXPECT_EQ(r->cmd.tenant_id, "");
}

TEST(decode_command, ignores_unknown_fields_in_any_order_and_keeps_metadata) {
  auto r = decode_command(
      R"({"extra":[1,{"a":"}"}],"payload":{"amount":6,"nested":{"type":"not this"},"type":"deposit"},)"
      R"("metadata":{"source":"web","tags":["a","b"]},"aggregate_type":"Account","zzz":null})");
  ASSERT_TRUE(r.ok()) << r.err().to_string();
  EXPECT_EQ(r->cmd.payload_type, "deposit");
  EXPECT_EQ(r->cmd.payload_json, R"({"amount":6,"nested":{"type":"not this"},"type":"deposit"})");
  EXPECT_TRUE(r->has_metadata);
  EXPECT_EQ(r->cmd.metadata_json, R"({"source":"web","tags":["a","b"]})");
}

TEST(decode_command, keeps_exact_payload_text_with_inner_whitespace) {
  const std::string body =
      "  {\n  \"aggregate_type\" : \"Account\" ,\n  \"payload\" :  { \"type\" : \"deposit\" ,\n"
      "   \"amount\" : 6 }  ,\n  \"metadata\" : { }  \n}\n  ";
  auto r = decode_command(body);
  ASSERT_TRUE(r.ok()) << r.err().to_string();
  EXPECT_EQ(r->cmd.payload_json, "{ \"type\" : \"deposit\" ,\n   \"amount\" : 6 }");
  EXPECT_EQ(r->cmd.metadata_json, "{ }");
}

TEST(decode_command, payload_as_last_field_is_exact) {
  auto r = decode_command(R"({"aggregate_type":"Account","payload":{"type":"deposit","amount":6}   })");
  ASSERT_TRUE(r.ok()) << r.err().to_string();
  EXPECT_EQ(r->cmd.payload_json, R"({"type":"deposit","amount":6})");
}

TEST(decode_command, preserves_large_integers_in_payload_text) {
  // 2^53 and 2^53+1 (not representable as a double), 2^64-1, a negative and a big decimal.
  const std::string payload =
      R"({"type":"deposit","a":9007199254740992,"b":9007199254740993,"c":18446744073709551615,"d":-9007199254740993,"e":1.0000000000000000001e400})";
  auto r = decode_command(R"({"aggregate_type":"Account","payload":)" + payload + "}");
  ASSERT_TRUE(r.ok()) << r.err().to_string();
  EXPECT_EQ(r->cmd.payload_json, payload);
}

TEST(decode_command, unescapes_strings_and_keeps_payload_escapes_raw) {
  const std::string payload = R"({"type":"note","text":"a\"b\\c\n\u00e9\ud83d\ude00\u0001"})";
  auto r = decode_command(R"({"aggregate_type":"Account","payload":)" + payload + "}");
  ASSERT_TRUE(r.ok()) << r.err().to_string();
  EXPECT_EQ(r->cmd.payload_json, payload);
  EXPECT_EQ(r->cmd.payload_type, "note");
  auto t = decode_command(R"({"aggregate_type":"Account","payload":{"type":"d\u0065posit"}})");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->cmd.payload_type, "deposit");
}

TEST(decode_command, recognises_keys_written_with_escapes) {
  auto r = decode_command(R"({"aggregate\u005ftype":"Account","p\u0061yload":{"\u0074ype":"deposit"}})");
  ASSERT_TRUE(r.ok()) << r.err().to_string();
  EXPECT_EQ(r->cmd.aggregate_type, "Account");
  EXPECT_EQ(r->cmd.payload_type, "deposit");
  EXPECT_EQ(r->cmd.payload_json, R"({"\u0074ype":"deposit"})");
}

TEST(decode_command, uses_readable_bytes_without_copy) {
  std::string body(k_typical);
  body.reserve(body.size() + 128);
  auto r = decode_command(body, body.capacity() + 1);
  ASSERT_TRUE(r.ok()) << r.err().to_string();
  EXPECT_EQ(r->cmd.aggregate_id, "acc-03290");
  // Too little padding: falls back to the copy.
  auto small = decode_command(std::string_view(body), body.size());
  ASSERT_TRUE(small.ok());
  EXPECT_EQ(small->cmd.payload_json, R"({"type":"deposit","amount":6})");
}

TEST(decode_command, handles_a_2_mib_payload) {
  std::string payload = R"({"type":"bulk","data":")";
  payload.append(2 * 1024 * 1024, 'x');
  payload += R"(","items":[)";
  for (int i = 0; i < 1000; ++i) payload += std::to_string(i) + (i + 1 < 1000 ? "," : "");
  payload += "]}";
  const std::string body = R"({"aggregate_type":"Account","payload":)" + payload + "}";
  auto r = decode_command(body);
  ASSERT_TRUE(r.ok()) << r.err().to_string();
  EXPECT_EQ(r->cmd.payload_json.size(), payload.size());
  EXPECT_EQ(r->cmd.payload_json, payload);
  // The buffer is reused afterwards for a small body.
  auto small = decode_command(k_typical);
  ASSERT_TRUE(small.ok());
  EXPECT_EQ(small->cmd.payload_type, "deposit");
}

TEST(decode_command, deep_nesting_does_not_crash) {
  // Inside the payload, On-Demand skips the nested value without recursion:
  // it decodes and keeps the text exactly.
  std::string deep(100000, '[');
  deep += std::string(100000, ']');
  const std::string payload = R"({"type":"x","d":)" + deep + "}";
  auto r = decode_command(R"({"aggregate_type":"Account","payload":)" + payload + "}");
  ASSERT_TRUE(r.ok()) << r.err().to_string();
  EXPECT_EQ(r->cmd.payload_json, payload);
  // Unbalanced: an error, not a crash.
  auto bad = decode_command(R"({"aggregate_type":"Account","payload":{"type":"x","d":)" +
                            deep.substr(0, 150000) + "}}");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.err().code, errc::invalid_command);
  EXPECT_EQ(bad.err().message.rfind("body is not valid JSON: ", 0), 0u) << bad.err().message;
}

struct malformed_case {
  std::string name;
  std::string body;
  errc code;
  std::string message;
  bool prefix = false;  // message is a prefix (the rest is simdjson's wording)
};

std::vector<malformed_case> malformed_cases() {
  const std::string ok_payload = R"("payload":{"type":"deposit"})";
  const std::string ok_type = R"("aggregate_type":"Account")";
  return {
      {"empty", "", errc::invalid_command, "body is empty"},
      {"whitespace_only", "   \n", errc::invalid_command, "body is empty"},
      {"not_json", "hello", errc::invalid_command, "body is not valid JSON: ", true},
      {"root_array", "[1,2]", errc::invalid_command, "body must be a JSON object"},
      {"root_string", R"("x")", errc::invalid_command, "body must be a JSON object"},
      {"root_number", "42", errc::invalid_command, "body must be a JSON object"},
      {"root_null", "null", errc::invalid_command, "body must be a JSON object"},
      // simdjson checks that a root object's last token closes it before iterating.
      {"trailing_garbage", "{" + ok_type + "," + ok_payload + "} x", errc::invalid_command,
       "body is not valid JSON: ", true},
      {"trailing_bracket", "{" + ok_type + "," + ok_payload + "}]", errc::invalid_command,
       "body is not valid JSON: ", true},
      {"two_objects", "{" + ok_type + "," + ok_payload + "}{}", errc::invalid_command,
       "body has trailing content after the JSON value"},
      {"unclosed_object", "{" + ok_type + "," + ok_payload, errc::invalid_command,
       "body is not valid JSON: ", true},
      {"unclosed_string", R"({"aggregate_type":"Acc)", errc::invalid_command,
       "body is not valid JSON: ", true},
      {"invalid_utf8", "{\"aggregate_type\":\"Acc\xff\"," + ok_payload + "}", errc::invalid_command,
       "body is not valid JSON: ", true},
      {"missing_aggregate_type", "{" + ok_payload + "}", errc::invalid_command,
       "field 'aggregate_type' is required"},
      {"missing_payload", "{" + ok_type + "}", errc::invalid_command, "field 'payload' is required"},
      {"empty_object", "{}", errc::invalid_command, "field 'aggregate_type' is required"},
      {"aggregate_type_number", R"({"aggregate_type":1,)" + ok_payload + "}", errc::invalid_command,
       "field 'aggregate_type' must be a string"},
      {"aggregate_type_null", R"({"aggregate_type":null,)" + ok_payload + "}", errc::invalid_command,
       "field 'aggregate_type' must be a string"},
      {"aggregate_type_empty", R"({"aggregate_type":"",)" + ok_payload + "}", errc::invalid_command,
       "field 'aggregate_type' must not be empty"},
      {"aggregate_type_bad_format", R"({"aggregate_type":"1Account",)" + ok_payload + "}",
       errc::invalid_command, "field 'aggregate_type' must match [A-Za-z][A-Za-z0-9_]{0,63}"},
      {"aggregate_type_dotted", R"({"aggregate_type":"Acc.ount",)" + ok_payload + "}", errc::invalid_command,
       "field 'aggregate_type' must match [A-Za-z][A-Za-z0-9_]{0,63}"},
      {"payload_string", "{" + ok_type + R"(,"payload":"{\"type\":\"x\"}"})", errc::invalid_command,
       "field 'payload' must be an object"},
      {"payload_array", "{" + ok_type + R"(,"payload":[{"type":"x"}]})", errc::invalid_command,
       "field 'payload' must be an object"},
      {"payload_null", "{" + ok_type + R"(,"payload":null})", errc::invalid_command,
       "field 'payload' must be an object"},
      {"payload_without_type", "{" + ok_type + R"(,"payload":{"amount":5}})", errc::invalid_command,
       "field 'payload.type' is required"},
      {"payload_type_number", "{" + ok_type + R"(,"payload":{"type":5}})", errc::invalid_command,
       "field 'payload.type' must be a string"},
      {"payload_type_object", "{" + ok_type + R"(,"payload":{"type":{"a":1}}})", errc::invalid_command,
       "field 'payload.type' must be a string"},
      {"payload_type_empty", "{" + ok_type + R"(,"payload":{"type":""}})", errc::invalid_command,
       "field 'payload.type' must not be empty"},
      {"metadata_array", "{" + ok_type + "," + ok_payload + R"(,"metadata":[]})", errc::invalid_command,
       "field 'metadata' must be an object"},
      {"metadata_string", "{" + ok_type + "," + ok_payload + R"(,"metadata":"{}"})", errc::invalid_command,
       "field 'metadata' must be an object"},
      {"tenant_number", R"({"tenant_id":7,)" + ok_type + "," + ok_payload + "}", errc::invalid_command,
       "field 'tenant_id' must be a string"},
      {"tenant_dotted", R"({"tenant_id":"a.b",)" + ok_type + "," + ok_payload + "}", errc::invalid_tenant,
       "field 'tenant_id' must match [A-Za-z0-9_-]{1,64}"},
      {"tenant_wildcard", R"({"tenant_id":"*",)" + ok_type + "," + ok_payload + "}", errc::invalid_tenant,
       "field 'tenant_id' must match [A-Za-z0-9_-]{1,64}"},
      {"tenant_underscore", R"({"tenant_id":"_",)" + ok_type + "," + ok_payload + "}", errc::invalid_tenant,
       "field 'tenant_id' must not be '_' (reserved)"},
      {"tenant_too_long",
       R"({"tenant_id":")" + std::string(65, 't') + "\"," + ok_type + "," + ok_payload + "}",
       errc::invalid_tenant, "field 'tenant_id' must match [A-Za-z0-9_-]{1,64}"},
      {"command_id_empty", R"({"command_id":"",)" + ok_type + "," + ok_payload + "}", errc::invalid_command,
       "field 'command_id' must not be empty"},
      {"command_id_number", R"({"command_id":123,)" + ok_type + "," + ok_payload + "}", errc::invalid_command,
       "field 'command_id' must be a string"},
      {"command_id_space", R"({"command_id":"a b",)" + ok_type + "," + ok_payload + "}",
       errc::invalid_command, "field 'command_id' must match [A-Za-z0-9_-]{1,128}"},
      {"command_id_too_long",
       R"({"command_id":")" + std::string(129, 'c') + "\"," + ok_type + "," + ok_payload + "}",
       errc::invalid_command, "field 'command_id' must match [A-Za-z0-9_-]{1,128}"},
      {"aggregate_id_empty", R"({"aggregate_id":"",)" + ok_type + "," + ok_payload + "}",
       errc::invalid_command, "field 'aggregate_id' must not be empty"},
      {"aggregate_id_subject_chars", R"({"aggregate_id":"acc.>",)" + ok_type + "," + ok_payload + "}",
       errc::invalid_command, "field 'aggregate_id' must match [A-Za-z0-9_-]{1,128}"},
      {"aggregate_id_unicode", "{\"aggregate_id\":\"acc-\xC3\xA9\"," + ok_type + "," + ok_payload + "}",
       errc::invalid_command, "field 'aggregate_id' must match [A-Za-z0-9_-]{1,128}"},
      {"aggregate_id_bool", R"({"aggregate_id":true,)" + ok_type + "," + ok_payload + "}",
       errc::invalid_command, "field 'aggregate_id' must be a string"},
  };
}

TEST(decode_command, rejects_malformed_bodies_with_code_and_message) {
  const auto cases = malformed_cases();
  ASSERT_GE(cases.size(), 30u);
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto r = decode_command(c.body);
    ASSERT_FALSE(r.ok()) << "decoded: " << c.body;
    EXPECT_EQ(r.err().code, c.code) << r.err().to_string();
    if (c.prefix) {
      EXPECT_EQ(r.err().message.rfind(c.message, 0), 0u) << r.err().message;
      EXPECT_GT(r.err().message.size(), c.message.size()) << "no detail after the prefix";
    } else {
      EXPECT_EQ(r.err().message, c.message);
    }
    EXPECT_EQ(r.err().code_text, std::string(to_string(c.code)));
  }
}

TEST(decode_command, a_failure_does_not_poison_the_next_decode) {
  ASSERT_FALSE(decode_command("{\"aggregate_type\":").ok());
  ASSERT_FALSE(decode_command("[").ok());
  auto r = decode_command(k_typical);
  ASSERT_TRUE(r.ok()) << r.err().to_string();
  EXPECT_EQ(r->cmd.tenant_id, "tenant-2");
}

TEST(decode_event, reports_missing_and_mistyped_fields_as_internal) {
  auto missing = decode_event(
      R"({"event_id":"e","aggregate_type":"A","aggregate_id":"a","event_type":"t","payload":{}})");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.err().code, errc::internal);
  EXPECT_EQ(missing.err().message, "field 'version' is required");

  auto negative = decode_event(
      R"({"event_id":"e","aggregate_type":"A","aggregate_id":"a","version":-1,"event_type":"t","payload":{}})");
  ASSERT_FALSE(negative.ok());
  EXPECT_EQ(negative.err().message, "field 'version' must be a non-negative integer");

  auto fractional = decode_event(
      R"({"event_id":"e","aggregate_type":"A","aggregate_id":"a","version":1.5,"event_type":"t","payload":{}})");
  ASSERT_FALSE(fractional.ok());
  EXPECT_EQ(fractional.err().message, "field 'version' must be a non-negative integer");

  auto not_json = decode_event("{");
  ASSERT_FALSE(not_json.ok());
  EXPECT_EQ(not_json.err().message.rfind("event is not valid JSON: ", 0), 0u) << not_json.err().message;
}

TEST(decode_commit, names_the_event_index_in_errors) {
  auto r = decode_commit(
      R"({"aggregate_type":"A","aggregate_id":"a","first_version":1,"events":[)"
      R"({"event_id":"e","aggregate_type":"A","aggregate_id":"a","version":1,"event_type":"t","payload":{}},)"
      R"({"event_id":"e","aggregate_type":"A","aggregate_id":"a","version":"2","event_type":"t","payload":{}}]})");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::internal);
  EXPECT_EQ(r.err().message, "field 'events[1].version' must be a non-negative integer");

  auto not_object =
      decode_commit(R"({"aggregate_type":"A","aggregate_id":"a","first_version":1,"events":[1]})");
  ASSERT_FALSE(not_object.ok());
  EXPECT_EQ(not_object.err().message, "field 'events[0]' must be an object");

  auto no_events = decode_commit(R"({"aggregate_type":"A","aggregate_id":"a","first_version":1})");
  ASSERT_FALSE(no_events.ok());
  EXPECT_EQ(no_events.err().message, "field 'events' is required");
}

TEST(decode_command_result, checks_status) {
  auto bad = decode_command_result(R"({"status":"maybe"})");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.err().message, "field 'status' must be \"accepted\" or \"rejected\"");
  auto no_code = decode_command_result(R"({"status":"rejected","message":"m"})");
  ASSERT_FALSE(no_code.ok());
  EXPECT_EQ(no_code.err().message, "field 'code' is required");
  auto no_status = decode_command_result(R"({"code":"x"})");
  ASSERT_FALSE(no_status.ok());
  EXPECT_EQ(no_status.err().message, "field 'status' is required");
  auto dup_type = decode_command_result(R"({"status":"accepted","duplicate":"yes"})");
  ASSERT_FALSE(dup_type.ok());
  EXPECT_EQ(dup_type.err().message, "field 'duplicate' must be a boolean");
  auto with_position = decode_command_result(R"({"status":"accepted","version":3,"position":77})");
  ASSERT_TRUE(with_position.ok());
  EXPECT_EQ(with_position->position, 77u);
  auto bad_position = decode_command_result(R"({"status":"accepted","position":-1})");
  ASSERT_FALSE(bad_position.ok());
  EXPECT_EQ(bad_position.err().message, "field 'position' must be a non-negative integer");
}

TEST(decode_snapshot, requires_state_object) {
  auto r = decode_snapshot(R"({"aggregate_type":"A","aggregate_id":"a","version":3,"state":[1]})");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::internal);
  EXPECT_EQ(r.err().message, "field 'state' must be an object");
}

}  // namespace
}  // namespace esflow::schemas
