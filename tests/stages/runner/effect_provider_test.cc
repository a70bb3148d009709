// Effects of the runner node: the `effects:` section, the http and log
// providers against a real local HTTP receiver, the circuit breaker, the retry
// policy and the executor (bounded queue, backoff, stop).
#include "stages/runner/effect_provider.h"

#include "stages/runner/circuit_breaker.h"
#include "stages/runner/effect_executor.h"
#include "stages/runner/effect_spec.h"
#include "stages/runner/http_provider.h"
#include "stages/runner/log_provider.h"
#include "stages/runner/retry_policy.h"
#include "tests/stages/runner/hook_receiver.h"
#include "tests/storage/temp_dir.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

namespace esflow::runner {
namespace {

using namespace std::chrono_literals;
using temp_dir = storage::testing::temp_dir;
using runner_hooks::answer;
using runner_hooks::receiver;

// ---------------------------------------------------------------- helpers

effect_config http_effect(const std::string& url, int retries = 3) {
  effect_config c;
  c.name = "notify";
  c.provider = provider_kind::http;
  c.url = url;
  c.timeout = 2s;
  c.retries = retries;
  c.backoff = {10ms, 40ms};
  c.breaker = {100, 10s};
  return c;
}

effect_config log_effect(const std::string& name) {
  effect_config c;
  c.name = name;
  c.provider = provider_kind::log;
  return c;
}

effect_call call_of(const std::string& command_id, const std::string& effect = "notify") {
  effect_call c;
  c.tenant = "acme";
  c.command_id = command_id;
  c.effect = effect;
  c.payload_json = R"({"to":"alice","amount":5})";
  c.correlation_id = "corr-1";
  c.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  return c;
}

// One attempt on a thread of its own, as an executor thread makes it: the
// thread's curl handle (and its keep-alive connection) goes away with it, so a
// receiver can stop without waiting out the keep-alive.
effect_outcome attempt_once(effect_provider& provider, const effect_call& call) {
  effect_outcome o;
  std::thread t([&] { o = provider.attempt(call); });
  t.join();
  return o;
}

struct completion {
  effect_outcome outcome;
  int attempts = -1;
  std::thread::id thread;
};

// Starts one call; the future is its completion (done must run once).
std::future<completion> submit(effect_executor& ex, effect_call call) {
  auto p = std::make_shared<std::promise<completion>>();
  auto f = p->get_future();
  auto calls = std::make_shared<std::atomic<int>>(0);
  ex.execute(std::move(call), [p, calls](effect_outcome o, int attempts) {
    if (calls->fetch_add(1) != 0) {
      ADD_FAILURE() << "done ran more than once";
      return;
    }
    p->set_value(completion{std::move(o), attempts, std::this_thread::get_id()});
  });
  return f;
}

// Runs one call and waits for its completion (at most 20 s).
completion run(effect_executor& ex, effect_call call) {
  auto f = submit(ex, std::move(call));
  if (f.wait_for(20s) != std::future_status::ready) {
    ADD_FAILURE() << "the call did not complete within 20 s";
    return {};
  }
  return f.get();
}

// A provider driven by the test.
class scripted_provider final : public effect_provider {
 public:
  explicit scripted_provider(std::function<effect_outcome(const effect_call&)> fn) : _fn(std::move(fn)) {}
  using effect_provider::attempt;
  effect_outcome attempt(const effect_call& call, std::stop_token /*stop*/) override { return _fn(call); }

 private:
  std::function<effect_outcome(const effect_call&)> _fn;
};

std::vector<effect_upstream> scripted(effect_config config,
                                      std::function<effect_outcome(const effect_call&)> fn) {
  std::vector<effect_upstream> ups;
  ups.push_back({std::move(config), std::make_unique<scripted_provider>(std::move(fn))});
  return ups;
}

effect_config fake_effect(int retries, backoff_config backoff) {
  effect_config c;
  c.name = "notify";
  c.provider = provider_kind::http;
  c.url = "http://127.0.0.1:1/unused";
  c.retries = retries;
  c.backoff = backoff;
  return c;
}

// ---------------------------------------------------------------- effect_spec

result<std::vector<effect_config>> parse(const std::string& yaml, const temp_dir& dir) {
  return parse_effects(YAML::Load(yaml)["effects"], "p.yaml", dir.str());
}

struct settings {
  std::chrono::milliseconds timeout;
  int retries;
  std::chrono::milliseconds backoff_min, backoff_max;
  int failures;
  std::chrono::milliseconds open_for;
};

void expect_settings(const effect_config& e, const settings& want) {
  EXPECT_EQ(e.timeout, want.timeout) << e.name;
  EXPECT_EQ(e.retries, want.retries) << e.name;
  EXPECT_EQ(e.backoff.min, want.backoff_min) << e.name;
  EXPECT_EQ(e.backoff.max, want.backoff_max) << e.name;
  EXPECT_EQ(e.breaker.failures, want.failures) << e.name;
  EXPECT_EQ(e.breaker.open_for, want.open_for) << e.name;
}

TEST(effect_spec, parses_an_http_effect_with_its_settings_and_reads_the_secret) {
  temp_dir dir;
  dir.write("token", "  s3cret-token \n");
  auto r = parse(
      "effects:\n"
      "  notify: { provider: http, url: \"http://127.0.0.1:9999/hook\", timeout: 2s, retries: 5,\n"
      "            backoff: { min: 50ms, max: 3s }, breaker: { failures: 7, open_for: 20s },\n"
      "            secret_file: token }\n"
      "  audit: { provider: log }\n",
      dir);
  ASSERT_TRUE(r.ok()) << r.err().message;
  ASSERT_EQ(r->size(), 2U);
  const auto& n = r->at(0);
  EXPECT_EQ(n.name, "notify");
  EXPECT_EQ(n.provider, provider_kind::http);
  EXPECT_EQ(n.url, "http://127.0.0.1:9999/hook");
  expect_settings(n, {2s, 5, 50ms, 3s, 7, 20s});
  EXPECT_EQ(n.secret_file, (dir.path() / "token").string());
  EXPECT_EQ(n.secret.reveal(), "s3cret-token");
  const auto& a = r->at(1);
  EXPECT_EQ(a.name, "audit");
  EXPECT_EQ(a.provider, provider_kind::log);
  expect_settings(a, {5s, 3, 100ms, 5s, 5, 10s});  // the defaults
  EXPECT_TRUE(a.secret.empty());
}

TEST(effect_spec, an_absent_section_is_no_effects) {
  temp_dir dir;
  auto r = parse("sagas: {}\n", dir);
  ASSERT_TRUE(r.ok()) << r.err().message;
  EXPECT_TRUE(r->empty());
}

struct spec_error_case {
  const char* what;
  std::string yaml;
  std::string expected;  // substring of the message, after "p.yaml:<line>: "
  int line;
};

TEST(effect_spec, rejects_bad_sections_with_file_line_and_the_effect_name) {
  temp_dir dir;
  const std::vector<spec_error_case> cases = {
      {"unknown provider", "effects:\n  notify:\n    provider: smtp\n",
       "effects: 'notify': unknown provider 'smtp'", 3},
      {"bad url", "effects:\n  notify:\n    provider: http\n    url: ftp://x/y\n",
       "effects: 'notify': 'url' must be an http:// or https:// URL", 4},
      {"http without url", "effects:\n  notify:\n    provider: http\n",
       "effects: 'notify': an http effect needs 'url'", 3},
      {"bad duration", "effects:\n  notify:\n    provider: log\n    timeout: soon\n",
       "effects: 'notify': 'timeout' must be a duration", 4},
      {"bad nested duration", "effects:\n  notify:\n    provider: log\n    backoff: { min: 1s, max: x }\n",
       "effects: 'notify': 'backoff.max' must be a duration", 4},
      {"backoff min over max", "effects:\n  notify:\n    provider: log\n    backoff: { min: 2s, max: 1s }\n",
       "effects: 'notify': 'backoff.min' (2000ms) is larger than 'backoff.max' (1000ms)", 4},
      {"too many retries", "effects:\n  notify:\n    provider: log\n    retries: 21\n",
       "effects: 'notify': 'retries' must be an integer from 0 to 20", 4},
      {"unknown key", "effects:\n  notify:\n    provider: log\n    timout: 2s\n",
       "effects: 'notify': unknown key 'timout'", 4},
      {"unknown nested key",
       "effects:\n  notify:\n    provider: log\n    breaker: { failures: 2, open: 1s }\n",
       "effects: 'notify': unknown key 'breaker.open'", 4},
      {"missing secret file",
       "effects:\n  notify:\n    provider: http\n    url: http://h/x\n    secret_file: nope\n",
       "effects: 'notify': secret_file '" + (dir.path() / "nope").string() + "' does not exist", 5},
      {"bad name", "effects:\n  9lives:\n    provider: log\n",
       "effects: '9lives': an effect name must match [A-Za-z][A-Za-z0-9_]{0,63}", 2},
      {"missing provider", "effects:\n  notify:\n    timeout: 1s\n", "effects: 'notify': missing 'provider'",
       3},
      {"not a mapping", "effects:\n  - notify\n", "'effects' must be a mapping", 2},
  };
  for (const auto& c : cases) {
    auto r = parse(c.yaml, dir);
    ASSERT_FALSE(r.ok()) << c.what;
    EXPECT_EQ(r.err().code, errc::invalid_config) << c.what;
    const auto prefix = "p.yaml:" + std::to_string(c.line) + ": ";
    EXPECT_EQ(r.err().message.rfind(prefix, 0), 0U) << c.what << ": " << r.err().message;
    EXPECT_NE(r.err().message.find(c.expected), std::string::npos) << c.what << ": " << r.err().message;
  }
}

TEST(effect_spec, suggests_the_key_meant) {
  temp_dir dir;
  auto r = parse("effects:\n  notify:\n    provider: log\n    retires: 2\n", dir);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.err().message.find("retries"), std::string::npos) << r.err().message;
}

TEST(effect_spec, an_empty_secret_file_is_an_error_and_the_message_never_holds_a_secret) {
  temp_dir dir;
  dir.write("empty", " \n");
  auto r = parse("effects:\n  notify: { provider: http, url: \"http://h/x\", secret_file: empty }\n", dir);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.err().message.find("p.yaml:2: effects: 'notify': secret_file"), std::string::npos)
      << r.err().message;
  EXPECT_NE(r.err().message.find("is empty"), std::string::npos) << r.err().message;
}

TEST(effect_spec, names_follow_the_contract) {
  EXPECT_TRUE(is_valid_effect_name("notify"));
  EXPECT_TRUE(is_valid_effect_name("Send_Mail2"));
  EXPECT_TRUE(is_valid_effect_name(std::string(64, 'a')));
  EXPECT_FALSE(is_valid_effect_name(std::string(65, 'a')));
  EXPECT_FALSE(is_valid_effect_name(""));
  EXPECT_FALSE(is_valid_effect_name("_x"));
  EXPECT_FALSE(is_valid_effect_name("a-b"));
  EXPECT_FALSE(is_valid_effect_name("a.b"));
}

// ---------------------------------------------------------------- retry_policy

TEST(retry_policy, attempts_are_one_plus_retries_and_only_retryable_failures_retry) {
  retry_policy p(2, backoff_config{100ms, 5s});
  EXPECT_EQ(p.max_attempts(), 3);
  const auto retryable = effect_outcome::failure("x", true);
  EXPECT_TRUE(p.should_retry(retryable, 1));
  EXPECT_TRUE(p.should_retry(retryable, 2));
  EXPECT_FALSE(p.should_retry(retryable, 3));
  EXPECT_FALSE(p.should_retry(effect_outcome::failure("x", false), 1));
  EXPECT_FALSE(p.should_retry(effect_outcome::success("{}"), 1));
}

TEST(retry_policy, backoff_doubles_its_window_up_to_max_with_jitter_between_min_and_the_window) {
  retry_policy p(20, backoff_config{100ms, 1s});
  EXPECT_EQ(p.window(1), 100ms);
  EXPECT_EQ(p.window(2), 200ms);
  EXPECT_EQ(p.window(3), 400ms);
  EXPECT_EQ(p.window(4), 800ms);
  EXPECT_EQ(p.window(5), 1s);
  EXPECT_EQ(p.window(20), 1s);
  std::mt19937_64 rng(7);
  for (int retry = 1; retry <= 20; ++retry) {
    for (int i = 0; i < 100; ++i) {
      const auto d = p.delay(retry, rng);
      ASSERT_GE(d, 100ms);
      ASSERT_LE(d, p.window(retry));
    }
  }
  EXPECT_EQ(p.delay(3, 0), 100ms);
  EXPECT_EQ(p.delay(3, 300), 400ms);
}

TEST(retry_policy, the_same_seed_gives_the_same_delays) {
  retry_policy p(5, backoff_config{10ms, 5s});
  std::mt19937_64 a(42);
  std::mt19937_64 b(42);
  for (int retry = 1; retry <= 5; ++retry) EXPECT_EQ(p.delay(retry, a), p.delay(retry, b));
}

// ---------------------------------------------------------------- circuit_breaker

TEST(circuit_breaker, opens_after_consecutive_failures_and_closes_through_one_half_open_trial) {
  auto now = std::chrono::steady_clock::now();
  circuit_breaker b(breaker_config{3, 10s}, [&] { return now; });
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(b.allow());
    b.on_failure();
  }
  ASSERT_TRUE(b.allow());
  b.on_success();  // resets the count
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(b.allow());
    b.on_failure();
  }
  EXPECT_EQ(b.current(), circuit_breaker::state::open);
  EXPECT_EQ(b.opened_count(), 1U);
  EXPECT_FALSE(b.allow());
  now += 9999ms;
  EXPECT_FALSE(b.allow());
  now += 1ms;
  EXPECT_TRUE(b.allow());  // the trial
  EXPECT_EQ(b.current(), circuit_breaker::state::half_open);
  EXPECT_FALSE(b.allow());  // one trial at a time
  b.on_failure();           // re-opens
  EXPECT_EQ(b.current(), circuit_breaker::state::open);
  EXPECT_EQ(b.opened_count(), 2U);
  EXPECT_FALSE(b.allow());
  now += 10s;
  EXPECT_TRUE(b.allow());
  b.on_success();
  EXPECT_EQ(b.current(), circuit_breaker::state::closed);
  EXPECT_TRUE(b.allow());
  EXPECT_TRUE(b.allow());
}

TEST(circuit_breaker, is_safe_under_concurrent_callers) {
  circuit_breaker b(breaker_config{1000000, 10s});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        if (b.allow()) (i % 2 == 0) ? b.on_failure() : b.on_success();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(b.current(), circuit_breaker::state::closed);
}

// ---------------------------------------------------------------- http provider via the executor

TEST(http_effect, a_2xx_succeeds_once_with_idempotency_key_bearer_token_and_trace_headers) {
  temp_dir dir;
  const auto secret = dir.write("token", "tok-123\n");
  receiver rx(answer(201, R"({"id":"m-1"})"));
  auto spec = parse(
      "effects:\n  notify: { provider: http, url: \"" + rx.url() + "\", secret_file: \"" + secret + "\" }\n",
      dir);
  ASSERT_TRUE(spec.ok()) << spec.err().message;
  effect_executor ex(spec.value());
  const auto done = run(ex, call_of("cmd-1"));
  EXPECT_TRUE(done.outcome.succeeded()) << done.outcome.error;
  EXPECT_EQ(done.attempts, 1);
  EXPECT_EQ(done.outcome.http_status, 201);
  EXPECT_EQ(nlohmann::json::parse(done.outcome.payload_json), nlohmann::json({{"id", "m-1"}}));
  EXPECT_NE(done.thread, std::this_thread::get_id());  // done runs on an executor thread
  const auto reqs = rx.requests();
  ASSERT_EQ(reqs.size(), 1U);
  EXPECT_EQ(reqs[0].idempotency_key, "cmd-1");
  EXPECT_EQ(reqs[0].authorization, "Bearer tok-123");
  EXPECT_EQ(reqs[0].content_type, "application/json");
  EXPECT_EQ(reqs[0].correlation_id, "corr-1");
  EXPECT_EQ(reqs[0].traceparent.rfind("00-4bf92f3577b34da6a3ce929d0e0e4736-", 0), 0U) << reqs[0].traceparent;
  EXPECT_EQ(reqs[0].traceparent.size(), 55U);
  EXPECT_EQ(nlohmann::json::parse(reqs[0].body), nlohmann::json({{"to", "alice"}, {"amount", 5}}));
  EXPECT_EQ(ex.metrics().succeeded.load(), 1U);
}

TEST(http_effect, a_2xx_without_a_json_object_answers_its_status) {
  receiver rx(answer(200, "fine"));
  auto cfg = http_effect(rx.url());
  http_provider p(cfg);
  const auto o = attempt_once(p, call_of("cmd-2"));
  EXPECT_TRUE(o.succeeded()) << o.error;
  EXPECT_EQ(o.payload_json, R"({"status":200})");
  const auto reqs = rx.requests();
  ASSERT_EQ(reqs.size(), 1U);
  EXPECT_TRUE(reqs[0].authorization.empty());  // no secret_file: no Authorization header
}

TEST(http_effect, a_4xx_fails_after_exactly_one_attempt_without_retry) {
  receiver rx(answer(422, R"({"error":"bad address"})"));
  effect_executor ex({http_effect(rx.url(), 3)});
  const auto done = run(ex, call_of("cmd-3"));
  EXPECT_FALSE(done.outcome.succeeded());
  EXPECT_FALSE(done.outcome.retryable);
  EXPECT_EQ(done.outcome.http_status, 422);
  EXPECT_NE(done.outcome.error.find("status 422"), std::string::npos) << done.outcome.error;
  EXPECT_EQ(done.attempts, 1);
  EXPECT_EQ(rx.calls(), 1);
}

TEST(http_effect, a_5xx_is_retried_then_fails_with_retries_plus_one_attempts_and_the_same_key) {
  receiver rx(answer(503, "down"));
  effect_executor ex({http_effect(rx.url(), 3)});
  const auto done = run(ex, call_of("cmd-4"));
  EXPECT_FALSE(done.outcome.succeeded());
  EXPECT_TRUE(done.outcome.retryable);
  EXPECT_EQ(done.outcome.http_status, 503);
  EXPECT_EQ(done.attempts, 4);
  const auto reqs = rx.requests();
  ASSERT_EQ(reqs.size(), 4U);
  for (const auto& r : reqs) EXPECT_EQ(r.idempotency_key, "cmd-4");
  EXPECT_EQ(ex.metrics().retries.load(), 3U);
  EXPECT_EQ(ex.metrics().attempts.load(), 4U);
  EXPECT_EQ(ex.metrics().failed.load(), 1U);
}

TEST(http_effect, a_5xx_then_a_2xx_succeeds_on_the_retry) {
  receiver rx([](int n, httplib::Response& res) {
    res.status = n < 3 ? 500 : 200;
    res.set_content(R"({"n":)" + std::to_string(n) + "}", "application/json");
  });
  effect_executor ex({http_effect(rx.url(), 5)});
  const auto done = run(ex, call_of("cmd-5"));
  EXPECT_TRUE(done.outcome.succeeded()) << done.outcome.error;
  EXPECT_EQ(done.attempts, 3);
  EXPECT_EQ(done.outcome.payload_json, R"({"n":3})");
}

TEST(http_effect, a_slow_receiver_hits_the_timeout_and_is_retried) {
  receiver rx([](int n, httplib::Response& res) {
    if (n == 1) std::this_thread::sleep_for(1500ms);
    res.status = 200;
    res.set_content(R"({"ok":true})", "application/json");
  });
  auto cfg = http_effect(rx.url(), 2);
  cfg.timeout = 300ms;
  effect_executor ex({cfg});
  const auto start = std::chrono::steady_clock::now();
  const auto done = run(ex, call_of("cmd-6"));
  EXPECT_TRUE(done.outcome.succeeded()) << done.outcome.error;
  EXPECT_EQ(done.attempts, 2);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1400ms);  // did not wait for the slow answer
  const auto reqs = rx.requests();
  ASSERT_EQ(reqs.size(), 2U);
  EXPECT_EQ(reqs[0].idempotency_key, "cmd-6");
  EXPECT_EQ(reqs[1].idempotency_key, "cmd-6");
}

TEST(http_effect, a_timeout_alone_is_a_retryable_failure_naming_the_timeout) {
  receiver rx([](int, httplib::Response& res) {
    std::this_thread::sleep_for(800ms);
    res.status = 200;
  });
  auto cfg = http_effect(rx.url(), 0);
  cfg.timeout = 200ms;
  http_provider p(cfg);
  const auto o = attempt_once(p, call_of("cmd-7"));
  EXPECT_FALSE(o.succeeded());
  EXPECT_TRUE(o.retryable);
  EXPECT_NE(o.error.find("timeout after 200ms"), std::string::npos) << o.error;
}

TEST(http_effect, a_refused_connection_is_retryable) {
  std::string url;
  {
    receiver gone(answer(200));
    url = gone.url();
  }  // its port is closed now
  http_provider p(http_effect(url));
  const auto o = attempt_once(p, call_of("cmd-8"));
  EXPECT_FALSE(o.succeeded());
  EXPECT_TRUE(o.retryable) << o.error;
  EXPECT_EQ(o.http_status, 0);
}

TEST(http_effect, an_oversize_answer_is_a_failure) {
  receiver rx(answer(200, std::string(http_provider::k_max_response_bytes + 10, 'x')));
  http_provider p(http_effect(rx.url()));
  const auto o = attempt_once(p, call_of("cmd-9"));
  EXPECT_FALSE(o.succeeded());
  EXPECT_FALSE(o.retryable);
  EXPECT_NE(o.error.find("larger than 1MiB"), std::string::npos) << o.error;
}

TEST(http_effect, the_breaker_opens_after_n_failures_fails_fast_and_closes_after_open_for_via_half_open) {
  receiver rx(answer(500, "down"));
  auto cfg = http_effect(rx.url(), 0);
  cfg.breaker = {2, 1s};
  effect_executor ex({cfg});
  for (int i = 0; i < 2; ++i) {
    const auto done = run(ex, call_of("cmd-b" + std::to_string(i)));
    EXPECT_EQ(done.attempts, 1);
    EXPECT_EQ(done.outcome.http_status, 500);
  }
  ASSERT_EQ(ex.breaker("notify")->current(), circuit_breaker::state::open);
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 5; ++i) {
    const auto fast = run(ex, call_of("cmd-f" + std::to_string(i)));
    EXPECT_FALSE(fast.outcome.succeeded());
    EXPECT_TRUE(fast.outcome.retryable);
    EXPECT_EQ(fast.attempts, 0);
    EXPECT_NE(fast.outcome.error.find("circuit open"), std::string::npos) << fast.outcome.error;
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 800ms);
  EXPECT_EQ(rx.calls(), 2);  // fail fast: the receiver saw none of them
  EXPECT_EQ(ex.metrics().breaker_open.load(), 5U);

  rx.set_respond(answer(200));
  std::this_thread::sleep_for(1100ms);
  const auto trial = run(ex, call_of("cmd-t"));
  EXPECT_TRUE(trial.outcome.succeeded()) << trial.outcome.error;
  EXPECT_EQ(trial.attempts, 1);
  EXPECT_EQ(ex.breaker("notify")->current(), circuit_breaker::state::closed);
  EXPECT_EQ(rx.calls(), 3);
}

TEST(http_effect, a_failed_half_open_trial_reopens_the_breaker) {
  receiver rx(answer(502, "down"));
  auto cfg = http_effect(rx.url(), 0);
  cfg.breaker = {1, 1s};
  effect_executor ex({cfg});
  EXPECT_EQ(run(ex, call_of("a")).attempts, 1);
  EXPECT_EQ(run(ex, call_of("b")).attempts, 0);
  std::this_thread::sleep_for(1100ms);
  EXPECT_EQ(run(ex, call_of("c")).attempts, 1);  // the trial, failed
  EXPECT_EQ(ex.breaker("notify")->current(), circuit_breaker::state::open);
  EXPECT_EQ(run(ex, call_of("d")).attempts, 0);
  EXPECT_EQ(rx.calls(), 2);
  EXPECT_EQ(ex.breaker("notify")->opened_count(), 2U);
}

// ---------------------------------------------------------------- the provider contract
// Every provider: one attempt succeeds against a healthy upstream with a JSON
// object payload, and attempt() is safe from several threads at once.

template <typename Provider>
struct provider_fixture;

template <>
struct provider_fixture<http_provider> {
  receiver rx{answer(200, R"({"ok":true})")};
  std::unique_ptr<effect_provider> make() { return std::make_unique<http_provider>(http_effect(rx.url())); }
};

template <>
struct provider_fixture<log_provider> {
  std::unique_ptr<effect_provider> make() { return std::make_unique<log_provider>(log_effect("notify")); }
};

template <typename Provider>
class effect_provider_contract : public ::testing::Test {
 protected:
  provider_fixture<Provider> fixture;
};

using provider_types = ::testing::Types<http_provider, log_provider>;
TYPED_TEST_SUITE(effect_provider_contract, provider_types);

TYPED_TEST(effect_provider_contract, one_attempt_succeeds_with_a_json_object_payload) {
  auto provider = this->fixture.make();
  const auto o = attempt_once(*provider, call_of("cmd-c"));
  EXPECT_TRUE(o.succeeded()) << o.error;
  EXPECT_TRUE(o.error.empty());
  EXPECT_TRUE(nlohmann::json::parse(o.payload_json, nullptr, false).is_object()) << o.payload_json;
}

TYPED_TEST(effect_provider_contract, attempts_from_several_threads_at_once_all_succeed) {
  auto provider = this->fixture.make();
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) {
        if (provider->attempt(call_of("cmd-" + std::to_string(t) + "-" + std::to_string(i))).succeeded())
          ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 40);
}

// ---------------------------------------------------------------- log provider

TEST(log_effect, succeeds_with_logged_true) {
  effect_executor ex({log_effect("audit")});
  const auto done = run(ex, call_of("cmd-l", "audit"));
  EXPECT_TRUE(done.outcome.succeeded());
  EXPECT_EQ(done.outcome.payload_json, R"({"logged":true})");
  EXPECT_EQ(done.attempts, 1);
}

// ---------------------------------------------------------------- executor

TEST(effect_executor, an_unknown_effect_fails_at_once_without_retry) {
  effect_executor ex({log_effect("audit")});
  const auto done = run(ex, call_of("cmd-u", "nope"));
  EXPECT_FALSE(done.outcome.succeeded());
  EXPECT_FALSE(done.outcome.retryable);
  EXPECT_EQ(done.attempts, 0);
  EXPECT_NE(done.outcome.error.find("unknown effect 'nope'"), std::string::npos);
}

TEST(effect_executor, a_full_queue_answers_unavailable_at_once) {
  std::mutex m;
  std::condition_variable cv;
  bool entered = false;
  bool release = false;
  effect_executor_options opts;
  opts.threads = 1;
  opts.queue_capacity = 1;
  effect_executor ex(scripted(fake_effect(0, {1ms, 1ms}),
                              [&](const effect_call&) {
                                std::unique_lock lock(m);
                                entered = true;
                                cv.notify_all();
                                cv.wait_for(lock, 10s, [&] { return release; });
                                return effect_outcome::success("{}");
                              }),
                     opts);
  std::atomic<int> completed{0};
  ex.execute(call_of("busy"), [&](effect_outcome, int) { ++completed; });
  {
    std::unique_lock lock(m);
    ASSERT_TRUE(cv.wait_for(lock, 10s, [&] { return entered; }));
  }
  ex.execute(call_of("queued"), [&](effect_outcome, int) { ++completed; });  // fills the queue
  EXPECT_EQ(ex.queued(), 1U);
  bool inline_done = false;
  effect_outcome refused;
  ex.execute(call_of("refused"), [&](effect_outcome o, int attempts) {
    inline_done = true;
    refused = std::move(o);
    EXPECT_EQ(attempts, 0);
  });
  EXPECT_TRUE(inline_done);  // completed before execute() returned
  EXPECT_FALSE(refused.succeeded());
  EXPECT_TRUE(refused.retryable);
  EXPECT_EQ(refused.error, "unavailable: the effect queue is full");
  EXPECT_EQ(ex.metrics().rejected.load(), 1U);
  {
    std::lock_guard lock(m);
    release = true;
  }
  cv.notify_all();
  for (int i = 0; i < 1000 && completed.load() < 2; ++i) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(completed.load(), 2);
}

TEST(effect_executor, stop_during_a_backoff_returns_promptly_with_unavailable) {
  std::atomic<int> attempts_seen{0};
  effect_executor ex(scripted(fake_effect(5, {10s, 10s}),
                              [&](const effect_call&) {
                                ++attempts_seen;
                                return effect_outcome::failure("http: status 503", true, 503);
                              }),
                     {});
  auto f = submit(ex, call_of("cmd-s"));
  for (int i = 0; i < 1000 && attempts_seen.load() < 1; ++i) std::this_thread::sleep_for(2ms);
  ASSERT_EQ(attempts_seen.load(), 1);
  std::this_thread::sleep_for(20ms);  // now in its 10 s backoff
  const auto start = std::chrono::steady_clock::now();
  ex.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  ASSERT_EQ(f.wait_for(0s), std::future_status::ready);
  const auto done = f.get();
  EXPECT_FALSE(done.outcome.succeeded());
  EXPECT_TRUE(done.outcome.retryable);
  EXPECT_EQ(done.attempts, 1);
  EXPECT_EQ(done.outcome.error.rfind("unavailable: ", 0), 0U) << done.outcome.error;
  EXPECT_EQ(attempts_seen.load(), 1);
}

TEST(effect_executor, stop_during_an_http_attempt_ends_it_promptly) {
  std::atomic<bool> answered{false};
  receiver rx([&](int, httplib::Response& res) {
    for (int i = 0; i < 300 && !answered.load(); ++i) std::this_thread::sleep_for(10ms);  // at most 3 s
    res.status = 200;
  });
  auto cfg = http_effect(rx.url(), 3);
  cfg.timeout = 20s;
  effect_executor ex({cfg});
  auto f = submit(ex, call_of("cmd-x"));
  for (int i = 0; i < 1000 && rx.calls() < 1; ++i) std::this_thread::sleep_for(5ms);
  ASSERT_EQ(rx.calls(), 1);
  const auto start = std::chrono::steady_clock::now();
  ex.stop();
  const auto took = std::chrono::steady_clock::now() - start;
  answered = true;
  EXPECT_LT(took, 2500ms);  // libcurl asks its progress callback about once a second
  ASSERT_EQ(f.wait_for(0s), std::future_status::ready);
  const auto done = f.get();
  EXPECT_FALSE(done.outcome.succeeded());
  EXPECT_TRUE(done.outcome.retryable);
  EXPECT_EQ(done.attempts, 1);
  EXPECT_EQ(done.outcome.error, "unavailable: the effect executor stopped during the attempt");
  EXPECT_EQ(rx.calls(), 1);
}

TEST(effect_executor, stop_completes_queued_calls_with_unavailable_and_refuses_new_ones) {
  std::atomic<bool> release{false};
  effect_executor_options opts;
  opts.threads = 1;
  effect_executor ex(scripted(fake_effect(0, {1ms, 1ms}),
                              [&](const effect_call&) {
                                for (int i = 0; i < 2000 && !release.load(); ++i)
                                  std::this_thread::sleep_for(1ms);
                                return effect_outcome::success("{}");
                              }),
                     opts);
  std::mutex m;
  std::vector<effect_outcome> outcomes;
  for (int i = 0; i < 5; ++i) {
    ex.execute(call_of("q" + std::to_string(i)), [&](effect_outcome o, int) {
      std::lock_guard lock(m);
      outcomes.push_back(std::move(o));
    });
  }
  std::thread releaser([&] {
    std::this_thread::sleep_for(50ms);
    release = true;
  });
  ex.stop();
  releaser.join();
  ASSERT_EQ(outcomes.size(), 5U);  // every call completed exactly once
  int unavailable = 0;
  for (const auto& o : outcomes) {
    if (!o.succeeded()) {
      ++unavailable;
      EXPECT_TRUE(o.retryable);
      EXPECT_EQ(o.error.rfind("unavailable: ", 0), 0U) << o.error;
    }
  }
  EXPECT_GE(unavailable, 4);
  bool refused = false;
  ex.execute(call_of("late"), [&](effect_outcome o, int) {
    refused = true;
    EXPECT_EQ(o.error, "unavailable: the effect executor is stopped");
  });
  EXPECT_TRUE(refused);
  ex.stop();  // idempotent
}

TEST(effect_executor, while_the_half_open_trial_runs_other_calls_fail_fast) {
  std::mutex m;
  std::condition_variable cv;
  auto now = std::chrono::steady_clock::now();
  bool in_trial = false;
  bool release = false;
  int attempts_seen = 0;
  effect_executor_options opts;
  opts.threads = 2;
  opts.now = [&] {
    std::lock_guard lock(m);
    return now;
  };
  auto cfg = fake_effect(0, {1ms, 1ms});
  cfg.breaker = {1, 10s};
  effect_executor ex(scripted(cfg,
                              [&](const effect_call& call) {
                                std::unique_lock lock(m);
                                ++attempts_seen;
                                if (call.command_id != "trial")
                                  return effect_outcome::failure("down", true, 503);
                                in_trial = true;
                                cv.notify_all();
                                cv.wait_for(lock, 10s, [&] { return release; });
                                return effect_outcome::success("{}", 200);
                              }),
                     opts);
  EXPECT_EQ(run(ex, call_of("first")).attempts, 1);  // opens the breaker
  EXPECT_EQ(run(ex, call_of("refused")).attempts, 0);
  {
    std::lock_guard lock(m);
    now += 10s;
  }
  auto trial_done = submit(ex, call_of("trial"));
  {
    std::unique_lock lock(m);
    ASSERT_TRUE(cv.wait_for(lock, 10s, [&] { return in_trial; }));
  }
  const auto other = run(ex, call_of("other"));  // on the second thread, during the trial
  EXPECT_EQ(other.attempts, 0);
  EXPECT_NE(other.outcome.error.find("circuit open"), std::string::npos) << other.outcome.error;
  {
    std::lock_guard lock(m);
    release = true;
  }
  cv.notify_all();
  ASSERT_EQ(trial_done.wait_for(10s), std::future_status::ready);
  const auto t = trial_done.get();
  EXPECT_TRUE(t.outcome.succeeded());
  EXPECT_EQ(t.attempts, 1);
  EXPECT_EQ(ex.breaker("notify")->current(), circuit_breaker::state::closed);
  EXPECT_EQ(run(ex, call_of("after")).attempts, 1);
  std::lock_guard lock(m);
  EXPECT_EQ(attempts_seen, 3);
}

TEST(effect_executor, runs_calls_in_parallel_on_its_threads) {
  std::mutex peak_mutex;
  std::atomic<int> running{0};
  int peak = 0;
  effect_executor_options opts;
  opts.threads = 4;
  effect_executor ex(scripted(fake_effect(0, {1ms, 1ms}),
                              [&](const effect_call&) {
                                {
                                  std::lock_guard lock(peak_mutex);
                                  peak = std::max(peak, ++running);
                                }
                                std::this_thread::sleep_for(50ms);
                                --running;
                                return effect_outcome::success("{}");
                              }),
                     opts);
  std::atomic<int> completed{0};
  for (int i = 0; i < 8; ++i)
    ex.execute(call_of("p" + std::to_string(i)), [&](effect_outcome, int) { ++completed; });
  for (int i = 0; i < 2000 && completed.load() < 8; ++i) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(completed.load(), 8);
  std::lock_guard lock(peak_mutex);
  EXPECT_GE(peak, 2);
  EXPECT_LE(peak, 4);
}

}  // namespace
}  // namespace esflow::runner
