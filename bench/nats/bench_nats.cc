// JetStream ceilings and the JetStream event log, against one nats-server
// started by the fixture for the whole run (127.0.0.1, temp store dir).
//
//   raw_chained_publish/subjects:N  async JetStream publish of a ~400-byte
//       Commit body with Nats-Msg-Id and Nats-Expected-Last-Subject-Sequence
//       chained per subject (one in flight per subject, N subjects): the
//       ceiling, no encoding, no decoding, no dedupe CF.
//   event_log_append/in_flight:N    jetstream_event_log::append with N
//       aggregates, one append each in flight (callback-driven).
//
// Goal: event_log_append >= 70% of raw_chained_publish at the same N.
#include "schemas/json_encode.h"
#include "storage/db.h"
#include "tests/nats/nats_server_fixture.h"
#include "tests/storage/temp_dir.h"
#include "transport/nats/jetstream_event_log.h"
#include "transport/nats/nats_connection.h"

#include <benchmark/benchmark.h>

#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

namespace esflow::nats {
namespace {

testing::nats_server_fixture& server() {
  static testing::nats_server_fixture* s = [] {
    auto* f = new testing::nats_server_fixture();
    f->start();
    std::atexit([] { delete s; });  // stops the server by PID, removes its store
    return f;
  }();
  return *s;
}

std::unique_ptr<nats_connection> connect_or_skip(benchmark::State& state) {
  if (!server().running()) {
    state.SkipWithError("nats-server did not start");
    return nullptr;
  }
  connection_options o;
  o.url = server().url();
  o.name = "esflow-bench";
  auto c = nats_connection::connect(o);
  if (!c.ok()) {
    state.SkipWithError(c.err().to_string().c_str());
    return nullptr;
  }
  return std::move(c).value();
}

// A fresh AGGREGATE_EVENTS for each benchmark.
bool reset_stream(nats_connection& c, benchmark::State& state) {
  jsOptions jo;
  jsOptions_Init(&jo);
  auto js = c.jetstream(jo);
  if (!js.ok()) return false;
  js_DeleteStream(*js, "AGGREGATE_EVENTS", nullptr, nullptr);
  auto r = ensure_stream(*js, aggregate_events_spec());
  jsCtx_Destroy(*js);
  if (!r.ok()) state.SkipWithError(r.err().to_string().c_str());
  return r.ok();
}

std::string sample_body(const std::string& id, std::uint64_t version) {
  schemas::commit c;
  c.tenant_id = "bench";
  c.aggregate_type = "Account";
  c.aggregate_id = id;
  c.command_id = id + "-" + std::to_string(version);
  c.first_version = version;
  schemas::event e;
  e.tenant_id = "bench";
  e.event_id = "0192f0c4-7d2a-7cc1-9c6f-000000000000";
  e.aggregate_type = "Account";
  e.aggregate_id = id;
  e.version = version;
  e.event_type = "deposited";
  e.payload_json = R"({"type":"deposited","amount":50})";
  e.command_id = c.command_id;
  e.correlation_id = c.command_id;
  e.trace_id = "0af7651916cd43dd8448eb211c80319c";
  e.timestamp = "2026-11-22T16:00:00.123Z";
  c.events.push_back(std::move(e));
  return schemas::encode_commit(c);
}

// Completed subjects (or aggregates) handed back to the issuing thread.
struct ready_queue {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::size_t> done;
  bool failed = false;
  std::string why;

  void push(std::size_t i) {
    std::unique_lock lock(mu);
    bool wake = done.empty();
    done.push_back(i);
    lock.unlock();
    if (wake) cv.notify_one();
  }
  void fail(std::string w) {
    std::lock_guard lock(mu);
    failed = true;
    why = std::move(w);
    cv.notify_one();
  }
  // Waits (bounded) for completions; false on failure or timeout.
  bool take(std::vector<std::size_t>& out) {
    std::unique_lock lock(mu);
    if (!cv.wait_for(lock, std::chrono::seconds(30), [&] { return !done.empty() || failed; })) return false;
    if (failed) return false;
    out.swap(done);
    return true;
  }
};

struct raw_driver {
  std::vector<std::string> subjects;
  std::vector<std::uint64_t> last_seq;  // per subject; written by the ack handler of its one in-flight msg
  std::vector<std::uint64_t> count;
  ready_queue q;

  static void on_ack(jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* closure) {
    auto* self = static_cast<raw_driver*>(closure);
    // The subject index travels in the reply-less message's subject suffix.
    std::string_view subj = natsMsg_GetSubject(msg);
    std::size_t i = std::stoul(std::string(subj.substr(subj.rfind('-') + 1)));
    natsMsg_Destroy(msg);
    if (pae != nullptr || pa == nullptr) {
      self->q.fail(pae != nullptr && pae->ErrText != nullptr ? pae->ErrText : "publish failed");
      return;
    }
    self->last_seq[i] = pa->Sequence;
    self->q.push(i);
  }
};

void raw_chained_publish(benchmark::State& state) {
  auto conn = connect_or_skip(state);
  if (!conn || !reset_stream(*conn, state)) return;
  const auto n = static_cast<std::size_t>(state.range(0));
  raw_driver d;
  for (std::size_t i = 0; i < n; ++i)
    d.subjects.push_back("tenant.bench.aggregate.Account.acc-" + std::to_string(i));
  d.last_seq.assign(n, 0);
  d.count.assign(n, 0);
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.PublishAsync.MaxPending = 1 << 16;
  jo.PublishAsync.AckHandler = &raw_driver::on_ack;
  jo.PublishAsync.AckHandlerClosure = &d;
  auto js = conn->jetstream(jo);
  if (!js.ok()) {
    state.SkipWithError(js.err().to_string().c_str());
    return;
  }
  auto issue = [&](std::size_t i) {
    auto body = sample_body("acc-" + std::to_string(i), ++d.count[i]);
    auto msg_id = "bench:" + d.subjects[i] + "-" + std::to_string(d.count[i]);
    natsMsg* m = nullptr;
    natsMsg_Create(&m, d.subjects[i].c_str(), nullptr, body.data(), static_cast<int>(body.size()));
    jsPubOptions o;
    jsPubOptions_Init(&o);
    o.MsgId = msg_id.c_str();
    o.MaxWait = 10000;
    if (d.last_seq[i] == 0) {
      o.ExpectNoMessage = true;
    } else {
      o.ExpectLastSubjectSeq = d.last_seq[i];
    }
    auto s = js_PublishMsgAsync(*js, &m, &o);
    natsMsg_Destroy(m);
    return s == NATS_OK;
  };
  std::vector<std::size_t> ready;
  for (std::size_t i = 0; i < n; ++i) ready.push_back(i);
  std::uint64_t published = 0;
  std::size_t in_flight = 0;
  for (auto _ : state) {
    // One iteration = one acknowledged publish (the issuing is pipelined).
    while (ready.empty()) {
      if (!d.q.take(ready)) {
        state.SkipWithError(("raw publish failed: " + d.q.why).c_str());
        break;
      }
      in_flight -= ready.size();
    }
    if (ready.empty()) break;
    auto i = ready.back();
    ready.pop_back();
    if (!issue(i)) {
      state.SkipWithError("js_PublishMsgAsync failed");
      break;
    }
    ++in_flight;
    ++published;
  }
  jsPubOptions wait;
  jsPubOptions_Init(&wait);
  wait.MaxWait = 30000;
  js_PublishAsyncComplete(*js, &wait);
  state.counters["publishes_per_s"] =
      benchmark::Counter(static_cast<double>(published), benchmark::Counter::kIsRate);
  jsCtx_Destroy(*js);
}
BENCHMARK(raw_chained_publish)->ArgName("subjects")->Arg(1)->Arg(64)->Arg(256)->UseRealTime()->MinTime(2.0);

void event_log_append(benchmark::State& state) {
  auto conn = connect_or_skip(state);
  if (!conn || !reset_stream(*conn, state)) return;
  storage::testing::temp_dir dir;
  auto db = storage::db::open({.path = dir.str(), .mode = storage::durability::relaxed});
  if (!db.ok()) {
    state.SkipWithError(db.err().to_string().c_str());
    return;
  }
  auto log = jetstream_event_log::open(*conn, **db, {});
  if (!log.ok()) {
    state.SkipWithError(log.err().to_string().c_str());
    return;
  }
  const auto n = static_cast<std::size_t>(state.range(0));
  std::vector<storage::version_t> versions(n, 0);
  ready_queue q;
  auto issue = [&](std::size_t a) {
    storage::append_request r;
    r.tenant_id = "bench";
    r.aggregate_type = "Account";
    r.aggregate_id = "acc-" + std::to_string(a);
    r.command_id = r.aggregate_id + "-" + std::to_string(versions[a] + 1);
    r.expected_version = versions[a];
    schemas::event e;
    e.event_id = "0192f0c4-7d2a-7cc1-9c6f-000000000000";
    e.event_type = "deposited";
    e.payload_json = R"({"type":"deposited","amount":50})";
    e.correlation_id = r.command_id;
    e.trace_id = "0af7651916cd43dd8448eb211c80319c";
    e.timestamp = "2026-11-22T16:00:00.123Z";
    r.request_hash = storage::request_hash(r.aggregate_type, r.aggregate_id, e.payload_json + r.command_id);
    r.events.push_back(std::move(e));
    (*log)->append(std::move(r), [&, a](result<storage::append_result> res) {
      if (!res.ok()) return q.fail(res.err().to_string());
      versions[a] = res->last_version;  // one append per aggregate in flight
      q.push(a);
    });
  };
  std::vector<std::size_t> ready;
  for (std::size_t i = 0; i < n; ++i) ready.push_back(i);
  std::uint64_t appended = 0;
  for (auto _ : state) {
    while (ready.empty()) {
      if (!q.take(ready)) {
        state.SkipWithError(("append failed: " + q.why).c_str());
        break;
      }
    }
    if (ready.empty()) break;
    auto a = ready.back();
    ready.pop_back();
    issue(a);
    ++appended;
  }
  esflow::ignore((*log)->close());
  auto st = (*log)->stats();
  state.counters["appends_per_s"] =
      benchmark::Counter(static_cast<double>(appended), benchmark::Counter::kIsRate);
  state.counters["acks_per_dedupe_batch"] =
      st.ack_batches == 0 ? 0.0 : static_cast<double>(st.commits) / static_cast<double>(st.ack_batches);
  log->reset();
  esflow::ignore((*db)->close());
}
BENCHMARK(event_log_append)->ArgName("in_flight")->Arg(1)->Arg(64)->Arg(256)->UseRealTime()->MinTime(2.0);

}  // namespace
}  // namespace esflow::nats

BENCHMARK_MAIN();
