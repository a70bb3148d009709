// pipelines/programs/account.lua against docs/contract.md "Example domain: `Account`".
#include "tests/runtime/test_util.h"

#include <gtest/gtest.h>

#include <initializer_list>

namespace esflow::runtime {
namespace {

class account : public ::testing::Test {
 protected:
  void SetUp() override {
    auto p = load_program(testing::programs_dir() + "/account.lua", "Account");
    ASSERT_TRUE(p.ok()) << p.err().to_string();
    _program = *p;
    auto st = _sb.initial_state(*_program);
    ASSERT_TRUE(st.ok()) << st.err().to_string();
    _state = std::move(*st);
  }

  // decide, then apply the events through their JSON (the storage path).
  result<decision> run(std::string_view command) {
    auto d = _sb.decide(*_program, _state, command);
    if (!d) return d;
    for (const auto& e : *d) {
      if (auto ok = _sb.apply(*_program, _state, e.payload_json); !ok) return std::move(ok).err();
    }
    return d;
  }

  void given(std::initializer_list<std::string_view> commands) {
    for (auto c : commands) {
      auto d = run(c);
      ASSERT_TRUE(d.ok()) << c << ": " << d.err().to_string();
    }
  }

  void expect_rejected(std::string_view command, const std::string& code, const std::string& message) {
    auto d = run(command);
    ASSERT_FALSE(d.ok()) << command;
    EXPECT_EQ(d.err().code, errc::domain_rejection) << command;
    EXPECT_EQ(d.err().code_text, code) << command;
    EXPECT_EQ(d.err().message, message) << command;
  }

  std::string state() { return *_sb.state_to_json(_state); }

  sandbox _sb;
  program_ptr _program;
  state_handle _state;
};

TEST_F(account, starts_closed_with_zero_balance) { EXPECT_EQ(state(), R"({"balance":0,"open":false})"); }

TEST_F(account, bank_scenario_ends_with_balance_75) {
  auto opened = run(R"({"type":"open_account","initial_balance":0})");
  ASSERT_TRUE(opened.ok());
  ASSERT_EQ(opened->size(), 1u);
  EXPECT_EQ((*opened)[0].event_type, "account_opened");
  EXPECT_EQ((*opened)[0].payload_json, R"({"initial_balance":0,"type":"account_opened"})");
  auto dep = run(R"({"type":"deposit","amount":100})");
  ASSERT_TRUE(dep.ok());
  EXPECT_EQ((*dep)[0].event_type, "deposited");
  EXPECT_EQ((*dep)[0].payload_json, R"({"amount":100,"type":"deposited"})");
  given({R"({"type":"deposit","amount":50})"});
  auto wd = run(R"({"type":"withdraw","amount":75})");
  ASSERT_TRUE(wd.ok());
  EXPECT_EQ((*wd)[0].payload_json, R"({"amount":75,"type":"withdrawn"})");
  EXPECT_EQ(state(), R"({"balance":75,"open":true})");
}

TEST_F(account, close_emits_account_closed_and_closed_account_is_not_open) {
  given({R"({"type":"open_account","initial_balance":5})", R"({"type":"withdraw","amount":5})"});
  auto closed = run(R"({"type":"close_account"})");
  ASSERT_TRUE(closed.ok());
  EXPECT_EQ((*closed)[0].event_type, "account_closed");
  EXPECT_EQ((*closed)[0].payload_json, R"({"type":"account_closed"})");
  EXPECT_EQ(state(), R"({"balance":0,"open":false})");
  expect_rejected(R"({"type":"deposit","amount":1})", "account_not_open", "the account is not open");
  expect_rejected(R"({"type":"close_account"})", "account_not_open", "the account is not open");
  // Re-opening a closed account is allowed.
  given({R"({"type":"open_account","initial_balance":7})"});
  EXPECT_EQ(state(), R"({"balance":7,"open":true})");
}

TEST_F(account, rejects_open_twice) {
  given({R"({"type":"open_account","initial_balance":0})"});
  expect_rejected(R"({"type":"open_account","initial_balance":0})", "account_already_open",
                  "the account is already open");
}

TEST_F(account, rejects_invalid_initial_balance) {
  expect_rejected(R"({"type":"open_account","initial_balance":-1})", "invalid_amount",
                  "initial_balance -1 is outside 0..9007199254740991");
  expect_rejected(R"({"type":"open_account"})", "invalid_amount",
                  "initial_balance must be an integer, got nothing");
  expect_rejected(R"({"type":"open_account","initial_balance":1.5})", "invalid_amount",
                  "initial_balance must be an integer, got 1.5");
  expect_rejected(R"({"type":"open_account","initial_balance":9007199254740992})", "invalid_amount",
                  "initial_balance 9007199254740992 is outside 0..9007199254740991");
}

TEST_F(account, rejects_invalid_amounts) {
  given({R"({"type":"open_account","initial_balance":10})"});
  const std::pair<const char*, const char*> rows[] = {
      {R"({"type":"deposit"})", "amount must be an integer, got nothing"},
      {R"({"type":"deposit","amount":1.5})", "amount must be an integer, got 1.5"},
      {R"({"type":"deposit","amount":5.0})", "amount must be an integer, got 5.0"},
      {R"({"type":"deposit","amount":"5"})", "amount must be an integer, got \"5\""},
      {R"({"type":"deposit","amount":true})", "amount must be an integer, got true"},
      {R"({"type":"deposit","amount":null})", "amount must be an integer, got null"},
      {R"({"type":"deposit","amount":[5]})", "amount must be an integer, got a table"},
      {R"({"type":"deposit","amount":0})", "amount 0 is outside 1..9007199254740991"},
      {R"({"type":"deposit","amount":-5})", "amount -5 is outside 1..9007199254740991"},
      {R"({"type":"withdraw","amount":0})", "amount 0 is outside 1..9007199254740991"},
      {R"({"type":"withdraw","amount":9223372036854775807})",
       "amount 9223372036854775807 is outside 1..9007199254740991"},
      {R"({"type":"deposit","amount":9007199254740991})",
       "balance 10 + 9007199254740991 would exceed 9007199254740991"},
  };
  for (const auto& [cmd, msg] : rows) expect_rejected(cmd, "invalid_amount", msg);
  EXPECT_EQ(state(), R"({"balance":10,"open":true})");
}

TEST_F(account, not_open_is_checked_before_the_amount) {
  expect_rejected(R"({"type":"deposit","amount":-1})", "account_not_open", "the account is not open");
  expect_rejected(R"({"type":"withdraw","amount":"x"})", "account_not_open", "the account is not open");
  expect_rejected(R"({"type":"close_account"})", "account_not_open", "the account is not open");
}

TEST_F(account, rejects_insufficient_funds) {
  given({R"({"type":"open_account","initial_balance":10})"});
  expect_rejected(R"({"type":"withdraw","amount":100})", "insufficient_funds", "balance 10 < 100");
}

TEST_F(account, rejects_closing_with_money) {
  given({R"({"type":"open_account","initial_balance":10})"});
  expect_rejected(R"({"type":"close_account"})", "balance_not_zero",
                  "balance 10 must be 0 to close the account");
}

TEST_F(account, rejects_unknown_commands) {
  expect_rejected(R"({"type":"transfer","amount":1})", "unknown_command",
                  "unknown command type \"transfer\"");
  expect_rejected(R"({"amount":1})", "unknown_command", "unknown command type nothing");
}

TEST_F(account, apply_of_unknown_event_is_a_program_error) {
  auto ok = _sb.apply(*_program, _state, R"({"type":"mystery"})");
  ASSERT_FALSE(ok.ok());
  EXPECT_EQ(ok.err().code, errc::program_error);
  EXPECT_NE(ok.err().message.find("account.lua:"), std::string::npos) << ok.err().message;
  EXPECT_NE(ok.err().message.find("unknown event type \"mystery\""), std::string::npos) << ok.err().message;
}

TEST_F(account, state_survives_a_snapshot_round_trip) {
  given({R"({"type":"open_account","initial_balance":3})", R"({"type":"deposit","amount":4})"});
  auto snap = state();
  auto restored = _sb.state_from_json(snap);
  ASSERT_TRUE(restored.ok());
  auto d = _sb.decide(*_program, *restored, R"({"type":"withdraw","amount":8})");
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.err().message, "balance 7 < 8");
}

TEST_F(account, decide_is_deterministic) {
  given({R"({"type":"open_account","initial_balance":3})"});
  auto a = _sb.decide(*_program, _state, R"({"amount":4,"type":"deposit"})");
  auto b = _sb.decide(*_program, _state, R"({"type":"deposit","amount":4})");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ((*a)[0].payload_json, (*b)[0].payload_json);
}

}  // namespace
}  // namespace esflow::runtime
