// Shutdown and failure containment of an aggregate node (issue: hardening):
// a drain whose deadline passes with commits in flight, then destruction,
// must not let the log's late completions run into destroyed stages (ASan
// in CI tells); a stage that throws anything answers `internal`, never
// cancels the graph or loses the message.
#include "tests/stages/aggregate/forwarding_log.h"
#include "tests/stages/aggregate/harness.h"

#include <condition_variable>
#include <deque>
#include <thread>

namespace esflow::aggregate::testing {
namespace {

using namespace std::chrono_literals;

// The embedded log, but every append completes 300 ms late, on its own thread.
class slow_log final : public forwarding_log {
 public:
  explicit slow_log(std::shared_ptr<storage::event_log> inner) : forwarding_log(std::move(inner)) {
    _thread = std::thread([this] { run(); });
  }
  ~slow_log() override { ignore(close()); }

  void append(storage::append_request r, append_callback done) override {
    inner().append(std::move(r), [this, done = std::move(done)](result<storage::append_result> out) mutable {
      std::lock_guard lock(_mu);
      _late.push_back({std::chrono::steady_clock::now() + 300ms, std::move(done), std::move(out)});
      _cv.notify_one();
    });
  }
  // Completes every late append (on its thread), then closes the inner log.
  status close() override {
    {
      std::lock_guard lock(_mu);
      if (_closing) return {};
      _closing = true;
    }
    _cv.notify_one();
    if (_thread.joinable()) _thread.join();
    return inner().close();
  }

 private:
  struct late {
    std::chrono::steady_clock::time_point at;
    append_callback done;
    result<storage::append_result> out;
  };
  void run() {
    std::unique_lock lock(_mu);
    for (;;) {
      if (_late.empty()) {
        if (_closing) return;
        _cv.wait_for(lock, 20ms);
        continue;
      }
      if (!_closing && std::chrono::steady_clock::now() < _late.front().at) {
        _cv.wait_until(lock, _late.front().at);
        continue;
      }
      auto item = std::move(_late.front());
      _late.pop_front();
      lock.unlock();
      item.done(std::move(item.out));
      lock.lock();
    }
  }

  std::mutex _mu;
  std::condition_variable _cv;
  std::deque<late> _late;
  bool _closing = false;
  std::thread _thread;
};

TEST(aggregate_shutdown, a_drain_that_times_out_with_commits_in_flight_then_destruction_is_safe) {
  harness h;
  std::atomic<int> logs{0};
  h.prepare_hook = [&logs](esflow::service_registry& services) {
    auto factory = std::make_shared<storage::event_log_factory>();
    auto b = storage::embedded_backend();
    auto real = b.make;
    b.make = [real, &logs](const storage::event_log_settings& s,
                           const storage::event_log_env& env) -> result<std::shared_ptr<storage::event_log>> {
      auto inner = real(s, env);
      if (!inner.ok()) return inner;
      ++logs;
      return std::shared_ptr<storage::event_log>(std::make_shared<slow_log>(std::move(inner).value()));
    };
    EXPECT_TRUE(factory->add(b).ok());
    services.put<storage::event_log_factory>("", factory);
  };
  auto s = h.spec({});
  ASSERT_TRUE(s.ok());
  auto f = std::make_shared<feed>();
  for (int i = 0; i < 40; ++i)
    f->in.emplace_back(
        account_cmd("acc-" + std::to_string(i), R"({"type":"open_account","initial_balance":1})"));
  f->out.resize(f->in.size());
  auto served = h.serve(std::move(s).value(), f);
  ASSERT_TRUE(served);
  ASSERT_EQ(logs.load(), 1);
  cli::start_served(*served);
  auto& n = *cli::served_host(*served).nodes().front();
  // Commits take 300 ms: a 20 ms drain leaves them in flight.
  std::this_thread::sleep_for(50ms);
  auto drained = n.drain(20ms);
  EXPECT_FALSE(drained.ok()) << "the drain was expected to time out with commits in flight";
  // Destruction with the log's completions still to come: they must find
  // their stages (ASan reports a use-after-free otherwise), and every
  // admitted command is still answered.
  served.reset();
  std::lock_guard lock(f->mu);
  std::size_t answered = 0;
  for (const auto& o : f->out) answered += o.done ? 1 : 0;
  // Teardown waited for the late completions: every admitted command got its real answer.
  EXPECT_EQ(answered, f->out.size());
  for (std::size_t i = 0; i < f->out.size(); ++i) {
    if (f->out[i].done) {
      EXPECT_TRUE(f->out[i].accepted) << i << ": " << f->out[i].code << " " << f->out[i].message;
    }
  }
}

// The aggregate pipeline with the test stage `d` added as `name`; `chain` is
// the flow's main line from feed to ack (errors go to answer).
result<graph::pipeline_spec> spec_with_stage(harness& h, const graph::stage_descriptor& d,
                                             const std::string& name, const std::string& chain) {
  h.add_kind(d);
  const auto text = h.pipeline_text({}, "  feed: { kind: test.feed }\n") + "  " + name +
                    ": { kind: " + d.kind + " }\n  ack: { kind: ack }\nflow:\n  - " + chain +
                    "\n  - \"*.error -> answer\"\n";
  return graph::load_pipeline_text(text, name + ".yaml", h.dir(), h.registry());
}

// Hands its message on, then stays on the calling thread — the log's commit
// thread, since the stage runs inline behind the commit — after the message
// is done downstream, until the test lets it go. Its destructor tells whether
// teardown waited for it.
struct linger_state {
  std::atomic<int> inside{0};
  std::atomic<bool> go{false};
};

class linger final : public graph::stage {
 public:
  explicit linger(std::shared_ptr<linger_state> st) : _st(std::move(st)) {}
  ~linger() override { EXPECT_EQ(_st->inside.load(), 0) << "destroyed while a thread was still inside"; }
  void process(graph::message_ptr m, const graph::emitter& out) override {
    ++_st->inside;
    out.emit(std::move(m));
    for (int i = 0; i < 1000 && !_st->go.load(); ++i) std::this_thread::sleep_for(5ms);
    --_st->inside;
  }

 private:
  std::shared_ptr<linger_state> _st;
};

TEST(aggregate_shutdown, teardown_waits_for_a_log_thread_still_inside_the_stages_after_its_message_is_done) {
  harness h;
  auto st = std::make_shared<linger_state>();
  graph::stage_descriptor d;
  d.kind = "test.linger";
  d.description = "emits, then waits on the calling thread until let go";
  d.runs_inline = true;
  d.make = [st](const graph::stage_init&) -> result<std::unique_ptr<graph::stage>> {
    return std::unique_ptr<graph::stage>(new linger(st));
  };
  auto s = spec_with_stage(
      h, d, "linger", "feed -> tenant -> decode -> rehydrate -> decide -> commit -> linger -> answer -> ack");
  ASSERT_TRUE(s.ok()) << s.err().message;
  auto f = std::make_shared<feed>();
  f->in.emplace_back(account_cmd("acc-1", R"({"type":"open_account","initial_balance":1})"));
  f->out.resize(f->in.size());
  auto served = h.serve(std::move(s).value(), f);
  ASSERT_TRUE(served);
  cli::start_served(*served);
  // Answered (and acked) while the commit thread still waits inside linger.
  for (int i = 0; i < 1000; ++i) {
    {
      std::lock_guard lock(f->mu);
      if (f->out[0].done) break;
    }
    std::this_thread::sleep_for(1ms);
  }
  {
    std::lock_guard lock(f->mu);
    ASSERT_TRUE(f->out[0].done);
    EXPECT_TRUE(f->out[0].accepted) << f->out[0].code;
  }
  EXPECT_EQ(st->inside.load(), 1) << "the commit thread was expected to be still inside linger";
  // Let go while teardown runs: it must wait for the thread to leave.
  std::thread release([st] {
    std::this_thread::sleep_for(150ms);
    st->go = true;
  });
  served.reset();  // ~linger checks that nobody is inside; ASan checks the stage runtimes
  release.join();
  EXPECT_EQ(st->inside.load(), 0);
}

// Throws an int (no std::exception) for aggregate ids starting with "boom".
class thrower final : public graph::stage {
 public:
  void process(graph::message_ptr m, const graph::emitter& out) override {
    if (m->body.find("\"boom") != std::string::npos) throw 42;  // NOLINT: the point of the test
    out.emit(std::move(m));
  }
};

TEST(aggregate_shutdown, a_stage_that_throws_a_non_std_exception_answers_internal_and_the_graph_goes_on) {
  harness h;
  graph::stage_descriptor d;
  d.kind = "test.throw";
  d.description = "throws an int on aggregate ids starting with boom";
  d.make = [](const graph::stage_init&) -> result<std::unique_ptr<graph::stage>> {
    return std::unique_ptr<graph::stage>(new thrower());
  };
  auto s = spec_with_stage(
      h, d, "throw", "feed -> tenant -> decode -> throw -> rehydrate -> decide -> commit -> answer -> ack");
  ASSERT_TRUE(s.ok()) << s.err().message;
  auto f = std::make_shared<feed>();
  f->in.emplace_back(account_cmd("acc-1", R"({"type":"open_account","initial_balance":1})"));
  f->in.emplace_back(account_cmd("boom-1", R"({"type":"open_account","initial_balance":1})"));
  f->in.emplace_back(account_cmd("acc-2", R"({"type":"open_account","initial_balance":1})"));
  f->out.resize(f->in.size());
  auto served = h.serve(std::move(s).value(), f);
  ASSERT_TRUE(served);
  cli::start_served(*served);
  auto& n = *cli::served_host(*served).nodes().front();
  ASSERT_TRUE(n.wait_finished(std::chrono::steady_clock::now() + 30s));
  served.reset();
  std::lock_guard lock(f->mu);
  ASSERT_TRUE(f->out[1].done) << "the message of the throwing stage was lost";
  EXPECT_EQ(f->out[1].code, "internal");
  EXPECT_NE(f->out[1].message.find("throw"), std::string::npos) << f->out[1].message;
  EXPECT_TRUE(f->out[0].accepted) << f->out[0].code;
  EXPECT_TRUE(f->out[2].accepted) << f->out[2].code;
}

}  // namespace
}  // namespace esflow::aggregate::testing
