// The JSON log line (common/log.h) and the thread's log context
// (common/log_context.h): exact keys, valid JSON for any bytes, scope ids.
#include "common/log.h"

#include "common/log_context.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/ostream_sink.h>

#include <regex>
#include <set>
#include <sstream>
#include <thread>

namespace esflow {
namespace {

// One line logged through a logger with the JSON formatter, parsed.
class json_log : public ::testing::Test {
 protected:
  std::ostringstream out;
  std::shared_ptr<spdlog::logger> logger;
  void SetUp() override {
    logger =
        std::make_shared<spdlog::logger>("orders", std::make_shared<spdlog::sinks::ostream_sink_st>(out));
    logger->set_formatter(make_json_formatter());
    logger->set_level(spdlog::level::trace);
  }
  nlohmann::json line(std::string_view message, spdlog::level::level_enum level = spdlog::level::err) {
    out.str("");
    logger->log(spdlog::source_loc{"/some/dir/stage.cc", 42, "f"}, level, "{}", message);
    const auto text = out.str();
    EXPECT_EQ(text.find('\n'), text.size() - 1) << "one line: " << text;
    auto j = nlohmann::json::parse(text, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << text;
    return j;
  }
  static std::set<std::string> keys(const nlohmann::json& j) {
    std::set<std::string> k;
    for (const auto& [key, _] : j.items()) k.insert(key);
    return k;
  }
};

TEST_F(json_log, a_line_outside_every_scope_has_exactly_the_base_keys) {
  const auto j = line("hello", spdlog::level::warn);
  EXPECT_EQ(keys(j), (std::set<std::string>{"time", "level", "module", "message", "source"}));
  EXPECT_EQ(j["level"], "warn");
  EXPECT_EQ(j["module"], "orders");
  EXPECT_EQ(j["message"], "hello");
  EXPECT_EQ(j["source"], "stage.cc:42");
  EXPECT_TRUE(
      std::regex_match(j["time"].get<std::string>(), std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")))
      << j["time"];
  EXPECT_EQ(line("x", spdlog::level::err)["level"], "error");
}

TEST_F(json_log, a_line_without_a_source_has_no_source_key) {
  out.str("");
  logger->error("plain");
  EXPECT_EQ(keys(nlohmann::json::parse(out.str())),
            (std::set<std::string>{"time", "level", "module", "message"}));
}

TEST_F(json_log, quotes_backslashes_newlines_and_control_bytes_are_escaped) {
  const std::string nasty = std::string("say \"hi\"\\ \n\r\t\b\f end") + '\x01' + '\x1f' + '\0' + "z";
  const auto j = line(nasty);
  EXPECT_EQ(j["message"], nasty);  // round-trips byte for byte
  EXPECT_NE(out.str().find("\\u0001\\u001f\\u0000z"), std::string::npos) << out.str();
}

TEST_F(json_log, invalid_utf8_is_replaced_and_valid_utf8_kept) {
  // A lone continuation byte, a truncated 3-byte sequence, an overlong '/',
  // a surrogate (ED A0 80), then valid 2-, 3- and 4-byte characters.
  const std::string bytes = "a\x80 b\xe2\x82 c\xc0\xaf d\xed\xa0\x80 \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
  const auto j = line(bytes);
  const std::string r = "\xef\xbf\xbd";  // U+FFFD, once per bad byte
  EXPECT_EQ(j["message"], "a" + r + " b" + r + r + " c" + r + r + " d" + r + r + r +
                              " \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
}

TEST_F(json_log, a_scope_adds_its_ids_and_they_are_gone_after_it) {
  {
    log_fields f;
    f.tenant_id = "acme";
    f.correlation_id = "corr-1";
    f.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    f.aggregate_type = "account";
    f.aggregate_id = "a-1";
    f.saga = "transfer";
    f.view = "balances";
    const log_scope scope(f);
    const auto j = line("in");
    EXPECT_EQ(keys(j), (std::set<std::string>{"time", "level", "module", "message", "source", "tenant_id",
                                              "correlation_id", "trace_id", "aggregate", "saga", "view"}));
    EXPECT_EQ(j["tenant_id"], "acme");
    EXPECT_EQ(j["correlation_id"], "corr-1");
    EXPECT_EQ(j["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    EXPECT_EQ(j["aggregate"], "account/a-1");
    EXPECT_EQ(j["saga"], "transfer");
    EXPECT_EQ(j["view"], "balances");
  }
  EXPECT_EQ(current_log_fields(), nullptr);
  EXPECT_EQ(keys(line("out")), (std::set<std::string>{"time", "level", "module", "message", "source"}));
}

TEST_F(json_log, nested_scopes_inherit_unset_ids_and_restore_the_outer_on_exit) {
  log_fields outer;
  outer.tenant_id = "acme";
  outer.correlation_id = "c-outer";
  const log_scope a(outer);
  {
    log_fields inner;
    inner.correlation_id = "c-inner";
    inner.aggregate_type = "account";
    inner.aggregate_id = "a-9";
    const log_scope b(inner);
    const auto j = line("inner");
    EXPECT_EQ(j["tenant_id"], "acme");  // inherited
    EXPECT_EQ(j["correlation_id"], "c-inner");
    EXPECT_EQ(j["aggregate"], "account/a-9");
  }
  const auto j = line("outer again");
  EXPECT_EQ(j["correlation_id"], "c-outer");
  EXPECT_FALSE(j.contains("aggregate"));
}

TEST_F(json_log, a_replacing_scope_borrows_nothing_from_the_outer) {
  log_fields outer;
  outer.tenant_id = "acme";
  const log_scope a(outer);
  {
    const log_scope b(log_fields{}, log_scope::replace);
    EXPECT_FALSE(line("no ids").contains("tenant_id"));
  }
  EXPECT_EQ(line("outer")["tenant_id"], "acme");
}

TEST_F(json_log, a_scope_is_per_thread) {
  log_fields f;
  f.correlation_id = "mine";
  const log_scope scope(f);
  const log_fields* seen = &f;
  std::thread([&] { seen = current_log_fields(); }).join();
  EXPECT_EQ(seen, nullptr);
}

TEST(log_fields_copy_test, owns_its_bytes_and_cuts_overlong_ids) {
  std::string corr = "c-1", tenant(300, 't');
  log_fields f;
  f.correlation_id = corr;
  f.tenant_id = tenant;
  const log_fields_copy copy(f);
  corr = "changed";
  EXPECT_EQ(copy.fields().correlation_id, "c-1");
  EXPECT_EQ(copy.fields().tenant_id, std::string(log_fields_copy::k_capacity, 't'));
}

TEST(log_format_test, parses_text_and_json_only) {
  EXPECT_EQ(parse_log_format("text"), log_format::text);
  EXPECT_EQ(parse_log_format("json"), log_format::json);
  EXPECT_EQ(parse_log_format("JSON"), std::nullopt);
  EXPECT_EQ(parse_log_format(""), std::nullopt);
}

}  // namespace
}  // namespace esflow
