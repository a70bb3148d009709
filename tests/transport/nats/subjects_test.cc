#include "transport/nats/subjects.h"

#include "transport/nats/headers.h"

#include <gtest/gtest.h>

#include <set>
#include <vector>

namespace esflow::nats {
namespace {

TEST(subjects, contract_ids_give_the_contract_subjects) {
  EXPECT_EQ(aggregate_subject("acme", "Account", "acc-00042"), "tenant.acme.aggregate.Account.acc-00042");
  EXPECT_EQ(command_subject("acme", "Account", "acc-1"), "tenant.acme.command.Account.acc-1");
  EXPECT_EQ(effect_subject("acme", "send_email"), "tenant.acme.effect.send_email");
  EXPECT_EQ(effect_result_subject("acme", "send_email"), "tenant.acme.effect_result.send_email");
  EXPECT_EQ(reminder_subject("acme", "Billing"), "tenant.acme.reminder.Billing");
}

TEST(subjects, empty_tenant_is_underscore_and_underscore_tenant_is_escaped) {
  EXPECT_EQ(aggregate_subject("", "Account", "a"), "tenant._.aggregate.Account.a");
  EXPECT_EQ(tenant_token("_"), "~5f");
  EXPECT_EQ(*decode_tenant_token("_"), "");
  EXPECT_EQ(*decode_tenant_token("~5f"), "_");
}

TEST(subjects, wildcards_separators_and_whitespace_never_reach_a_subject) {
  for (const std::string& bad : std::vector<std::string>{"a.b", "*", ">", "a b", "a\tb", "x\ny", "",
                                                         std::string("x\0y", 3), "x\xff", "a:b"}) {
    auto subject = aggregate_subject("acme", "Account", bad);
    auto token = subject.substr(std::string("tenant.acme.aggregate.Account.").size());
    EXPECT_EQ(token.find_first_of(".*> \t\r\n"), std::string::npos) << subject;
    ASSERT_FALSE(token.empty());
    EXPECT_EQ(token[0], '~');
    auto parsed = parse_aggregate_subject(subject);
    ASSERT_TRUE(parsed.has_value()) << subject;
    EXPECT_EQ(parsed->id, bad);
  }
}

TEST(subjects, tokens_are_injective) {
  std::set<std::string> seen;
  for (std::string s : {"", "_", "~", "~5f", "a", "A", "a-b", "a_b", "61", "~61", "a.b", "a:b"}) {
    EXPECT_TRUE(seen.insert(tenant_token(s)).second) << "tenant " << s;
  }
  seen.clear();
  for (std::string s : {"", "~", "~7e", "a", "61", "~61", "a.b", "a:b", "a b"}) {
    EXPECT_TRUE(seen.insert(id_token(s)).second) << "id " << s;
  }
}

TEST(subjects, parse_rejects_foreign_subjects) {
  EXPECT_FALSE(parse_aggregate_subject("tenant.acme.command.Account.a"));
  EXPECT_FALSE(parse_aggregate_subject("tenant.acme.aggregate.Account"));
  EXPECT_FALSE(parse_aggregate_subject("tenant.acme.aggregate.Account.~6"));
  EXPECT_FALSE(parse_aggregate_subject("tenant.acme.aggregate.Account.a:b"));
  auto ok = parse_aggregate_subject("tenant._.aggregate.Account.acc-1");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->tenant, "");
  EXPECT_EQ(ok->type, "Account");
}

TEST(subjects, validate_token_names_the_field) {
  EXPECT_TRUE(validate_token("acc-1", "aggregate_id").ok());
  for (std::string bad : {"a.b", "a*", "a>", "a b", "", "a\x01"}) {
    auto s = validate_token(bad, "aggregate_id");
    ASSERT_FALSE(s.ok()) << bad;
    EXPECT_EQ(s.err().code, errc::invalid_command);
    EXPECT_NE(s.err().message.find("'aggregate_id'"), std::string::npos) << s.err().message;
  }
}

TEST(subjects, subject_covers_follows_nats_wildcards) {
  EXPECT_TRUE(subject_covers("tenant.*.aggregate.>", "tenant.*.aggregate.>"));
  EXPECT_TRUE(subject_covers("tenant.>", "tenant.*.aggregate.>"));
  EXPECT_TRUE(subject_covers(">", "tenant.*.aggregate.>"));
  EXPECT_TRUE(subject_covers("tenant.*.aggregate.>", "tenant.acme.aggregate.Account.a"));
  EXPECT_FALSE(subject_covers("tenant.acme.aggregate.>", "tenant.*.aggregate.>"));
  EXPECT_FALSE(subject_covers("tenant.*.aggregate.*", "tenant.*.aggregate.>"));
  EXPECT_FALSE(subject_covers("tenant.*.effect.>", "tenant.*.aggregate.>"));
  EXPECT_FALSE(subject_covers("tenant.*.aggregate.>", "tenant.*.aggregate"));
}

TEST(headers, msg_id_is_tenant_token_colon_command_id) {
  EXPECT_EQ(commit_msg_id("acme", "cmd-1"), "acme:cmd-1");
  EXPECT_EQ(commit_msg_id("", "cmd-1"), "_:cmd-1");
  EXPECT_NE(commit_msg_id("a:b", "c"), commit_msg_id("a", "b:c"));
}

TEST(headers, request_hash_travels_as_64_hex_digits) {
  // The library must be open for a message (natsMsg_Destroy uses its GC); connect() opens it elsewhere.
  ASSERT_EQ(nats_Open(-1), NATS_OK);
  natsMsg* msg = nullptr;
  ASSERT_EQ(natsMsg_Create(&msg, "tenant.acme.aggregate.account.a1", nullptr, "x", 1), NATS_OK);
  schemas::commit c;
  c.tenant_id = "acme";
  c.command_id = "cmd-1";
  auto digest = sha256_digest::of("abc");
  ASSERT_TRUE(set_commit_headers(msg, c, commit_trace(c), digest).ok());
  auto text = get_header(msg, header::request_hash);
  ASSERT_TRUE(text.has_value());
  EXPECT_EQ(*text, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");  // FIPS 180-2 "abc"
  auto back = get_request_hash(msg);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, digest);
  // A commit stored before SHA-256 carries 16 hex digits: not a digest.
  ASSERT_EQ(natsMsgHeader_Set(msg, header::request_hash, "0123456789abcdef"), NATS_OK);
  EXPECT_FALSE(get_request_hash(msg).has_value());
  natsMsg_Destroy(msg);
}

}  // namespace
}  // namespace esflow::nats
