// The relay's view of an outbox item (stages/runner/outbox_work.h): the
// stored JSON parsed once, the messages written from it. Each message must
// carry what the nlohmann-built ones did, escape what it copies, and keep the
// payload's bytes (the aggregate's request hash is over them: a re-sent
// command must hash as the first one did).
#include "stages/runner/outbox_work.h"

#include "schemas/json_decode.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace esflow::runner {
namespace {

using nlohmann::json;

json command_item() {
  return {{"kind", "command"},
          {"tenant_id", "acme"},
          {"saga", "Transfer"},
          {"correlation_id", "t-1"},
          {"command_id", "w0123"},
          {"trace_id", "0af7651916cd43dd8448eb211c80319c"},
          {"created_ms", 1765000000123ULL},
          {"aggregate_type", "Account"},
          {"aggregate_id", "acc-a"},
          {"payload",
           {{"type", "withdraw"},
            {"amount", 30},
            {"note", "a \"quoted\" \\ line\n\x01 caf\xc3\xa9 \xe2\x82\xac"},
            {"rate", 0.1},
            {"big", 1e100},
            {"neg", -2.5e-7},
            {"list", {1, -2, 3.25, true, nullptr}}}}};
}

TEST(outbox_work, a_stored_item_is_read_field_by_field_with_its_payload_bytes_kept) {
  const auto stored = command_item().dump();
  auto w = parse_outbox_work(stored);
  ASSERT_TRUE(w.ok()) << w.err().to_string();
  EXPECT_EQ(w->kind, "command");
  EXPECT_EQ(w->saga, "Transfer");
  EXPECT_EQ(w->correlation_id, "t-1");
  EXPECT_EQ(w->command_id, "w0123");
  EXPECT_EQ(w->trace_id, "0af7651916cd43dd8448eb211c80319c");
  EXPECT_EQ(w->created_ms, 1765000000123ULL);
  EXPECT_EQ(w->aggregate_type, "Account");
  EXPECT_EQ(w->aggregate_id, "acc-a");
  EXPECT_EQ(w->command_type, "withdraw");
  EXPECT_EQ(w->payload, command_item()["payload"].dump()) << "the bytes as stored";
  EXPECT_FALSE(w->answer.has_value());
}

TEST(outbox_work, a_corrupt_or_mistyped_item_is_an_internal_error_naming_the_field) {
  for (const std::string bad : {"", "not json", "[1,2]", R"({"command_id": 7})", R"({"payload": "x"})",
                                R"({"created_ms": -1})", R"({"command_id":"w1","payload":{"a":tru}})"}) {
    auto w = parse_outbox_work(bad);
    ASSERT_FALSE(w.ok()) << bad;
    EXPECT_EQ(w.err().code, errc::internal) << bad;
    EXPECT_NE(w.err().message.find("corrupt outbox item"), std::string::npos) << w.err().message;
  }
  auto typed = parse_outbox_work(R"({"command_id": 7})");
  EXPECT_NE(typed.err().message.find("'command_id'"), std::string::npos) << typed.err().message;
  // A stored answer that is not a string is no answer (as before): the command is sent.
  auto odd = parse_outbox_work(R"({"command_id":"w1","answer":{}})");
  ASSERT_TRUE(odd.ok());
  EXPECT_FALSE(odd->answer.has_value());
  // Missing fields are empty (the aggregate then rejects the command), unknown ones ignored.
  auto sparse = parse_outbox_work(R"({"kind":"command","extra":[1,{"a":2}]})");
  ASSERT_TRUE(sparse.ok());
  EXPECT_EQ(sparse->payload, "{}");
  EXPECT_EQ(sparse->command_type, "");
}

TEST(outbox_work, the_command_envelope_decodes_as_the_contract_command) {
  auto w = parse_outbox_work(command_item().dump());
  ASSERT_TRUE(w.ok());
  auto c = schemas::decode_command(command_envelope(*w, "acme"));
  ASSERT_TRUE(c.ok()) << c.err().to_string();
  EXPECT_EQ(c->cmd.tenant_id, "acme");
  EXPECT_EQ(c->cmd.command_id, "w0123");
  EXPECT_EQ(c->cmd.aggregate_type, "Account");
  EXPECT_EQ(c->cmd.aggregate_id, "acc-a");
  EXPECT_EQ(c->cmd.payload_type, "withdraw");
  EXPECT_EQ(c->cmd.payload_json, command_item()["payload"].dump());
  EXPECT_EQ(json::parse(c->cmd.metadata_json), json({{"saga", "Transfer"}, {"correlation_id", "t-1"}}));
  // Single-tenant: no tenant_id at all.
  auto single = schemas::decode_command(command_envelope(*w, ""));
  ASSERT_TRUE(single.ok());
  EXPECT_FALSE(single->has_tenant_id);
}

TEST(outbox_work, a_command_result_carries_the_contract_fields_and_which_command_it_answers) {
  auto w = parse_outbox_work(command_item().dump());
  ASSERT_TRUE(w.ok());
  const std::string answer =
      R"({"status":"accepted","aggregate_id":"acc-a","version":3,"position":9,"duplicate":false,)"
      R"("events":[{"event_type":"withdrawn","payload":{"amount":30}}]})";
  const auto events = events_of_command_result(answer);
  EXPECT_EQ(json::parse(events), json::parse(answer)["events"]);
  EXPECT_EQ(events_of_command_result("{\"status\":\"rejected\"}"), "[]");
  EXPECT_EQ(events_of_command_result("garbage"), "[]");
  const auto accepted = json::parse(command_result_body(*w, "acme", true, "", "", events));
  EXPECT_EQ(accepted, json({{"tenant_id", "acme"},
                            {"saga", "Transfer"},
                            {"correlation_id", "t-1"},
                            {"command_id", "w0123"},
                            {"aggregate_type", "Account"},
                            {"aggregate_id", "acc-a"},
                            {"command_type", "withdraw"},
                            {"trace_id", "0af7651916cd43dd8448eb211c80319c"},
                            {"status", "accepted"},
                            {"code", ""},
                            {"message", ""},
                            {"events", json::parse(events)}}));
  const auto rejected =
      json::parse(command_result_body(*w, "acme", false, "insufficient_funds", "balance 10 \"low\"\n", "[]"));
  EXPECT_EQ(rejected["status"], "rejected");
  EXPECT_EQ(rejected["code"], "insufficient_funds");
  EXPECT_EQ(rejected["message"], "balance 10 \"low\"\n");
  EXPECT_EQ(rejected["events"], json::array());
}

TEST(outbox_work, an_answer_is_kept_in_the_item_and_read_back) {
  const auto stored = command_item().dump();
  const std::string answer = R"({"status":"rejected","code":"x","message":"a \"b\""})";
  const auto answered = item_with_answer(stored, answer);
  auto j = json::parse(answered);
  EXPECT_EQ(j["answer"], answer);
  j.erase("answer");
  EXPECT_EQ(j, command_item()) << "the rest as it was";
  auto w = parse_outbox_work(answered);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE(w->answer.has_value());
  EXPECT_EQ(*w->answer, answer);
  EXPECT_EQ(json::parse(item_with_answer("{}", "a")), json({{"answer", "a"}}));
}

TEST(outbox_work, the_effect_command_has_the_contract_envelope) {
  json item = {{"kind", "effect"},
               {"saga", "Transfer"},
               {"correlation_id", "t-1"},
               {"command_id", "w9"},
               {"effect", "notify"},
               {"trace_id", ""},
               {"payload", {{"big", std::string(200000, 'x')}}}};
  auto w = parse_outbox_work(item.dump());
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(json::parse(effect_command_body(*w, "acme")), json({{"tenant_id", "acme"},
                                                                {"command_id", "w9"},
                                                                {"effect", "notify"},
                                                                {"payload", item["payload"]},
                                                                {"metadata", {{"saga", "Transfer"}}},
                                                                {"correlation_id", "t-1"},
                                                                {"trace_id", ""}}));
}

}  // namespace
}  // namespace esflow::runner
