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
//   node_request_reply/clients:N    end to end: N clients send commands
//       (open_account on a fresh aggregate) over NATS request/reply to an
//       aggregate node (pipelines/aggregate-jetstream.yaml, served
//       in-process) on the JetStream backend; p50/p99 of the round trip.
//   node_workload/clients:N         the same node on the bank-account workload's shape:
//       10,000 accounts opened once (setup_per_s), then deposits and
//       withdrawals on them (the figure RESULTS report).
//
// Goal: event_log_append >= 70% of raw_chained_publish at the same N.
#include "cli/app.h"
#include "common/log.h"
#include "schemas/json_encode.h"
#include "storage/jetstream/jetstream_event_log.h"
#include "storage/node_store.h"
#include "tests/storage/temp_dir.h"
#include "tests/transport/nats/nats_server_fixture.h"
#include "transport/nats/nats_connection.h"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
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
  auto db = storage::node_store::open({.data_dir = dir.str(), .mode = storage::durability::relaxed});
  if (!db.ok()) {
    state.SkipWithError(db.err().to_string().c_str());
    return;
  }
  auto log = storage::jetstream::jetstream_event_log::open(*conn, **db, {});
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

// One aggregate node for the whole run (temp data dir, the fixture's server);
// main() stops it before the server goes.
std::shared_ptr<cli::served_nodes> g_node;

cli::served_nodes* node_or_skip(benchmark::State& state) {
  static storage::testing::temp_dir* dir = new storage::testing::temp_dir();
  static bool started = [] {
    if (!server().running()) return false;
    ::setenv("ESFLOW_DATA_DIR", (dir->str() + "/data").c_str(), 1);
    ::setenv("ESFLOW_NATS_URL", server().url().c_str(), 1);
    ::setenv("ESFLOW_DURABILITY", "relaxed", 1);
    ::setenv("ESFLOW_LOG_LEVEL", "warn", 1);
    auto served = cli::serve_nodes({std::string(ESFLOW_SOURCE_DIR) + "/pipelines/aggregate-jetstream.yaml"});
    if (!served.ok()) return false;
    g_node = std::move(served).value();
    return true;
  }();
  if (!started) state.SkipWithError("the aggregate node did not start");
  return g_node.get();
}

void node_request_reply(benchmark::State& state) {
  spdlog::set_level(spdlog::level::warn);
  if (node_or_skip(state) == nullptr) return;
  const auto clients = static_cast<int>(state.range(0));
  constexpr int per_iteration = 2000;
  static std::atomic<std::uint64_t> next_id{0};
  std::vector<double> latencies_us;
  std::mutex lat_mu;
  std::atomic<std::uint64_t> failures{0};
  std::uint64_t commands = 0;
  std::vector<natsConnection*> conns(static_cast<std::size_t>(clients), nullptr);
  for (auto& c : conns) {
    natsOptions* o = nullptr;
    natsOptions_Create(&o);
    natsOptions_SetURL(o, server().url().c_str());
    natsOptions_SetSendAsap(o, true);
    natsConnection_Connect(&c, o);
    natsOptions_Destroy(o);
  }
  for (auto _ : state) {
    std::vector<std::thread> threads;
    for (int t = 0; t < clients; ++t) {
      threads.emplace_back([&, t] {
        std::vector<double> mine;
        for (int i = t; i < per_iteration; i += clients) {
          const auto id = "bench-" + std::to_string(next_id++);
          const auto subject = "tenant.acme.command.Account." + id;
          const auto body =
              R"({"aggregate_type":"Account","payload":{"type":"open_account","initial_balance":1}})";
          natsMsg* reply = nullptr;
          const auto t0 = std::chrono::steady_clock::now();
          const auto s = natsConnection_RequestString(&reply, conns[static_cast<std::size_t>(t)],
                                                      subject.c_str(), body, 5000);
          mine.push_back(
              std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
          if (s != NATS_OK || reply == nullptr ||
              std::string_view(natsMsg_GetData(reply)).find("accepted") == std::string_view::npos)
            ++failures;
          natsMsg_Destroy(reply);
        }
        std::lock_guard lock(lat_mu);
        latencies_us.insert(latencies_us.end(), mine.begin(), mine.end());
      });
    }
    for (auto& th : threads) th.join();
    commands += per_iteration;
  }
  for (auto* c : conns) natsConnection_Destroy(c);
  std::sort(latencies_us.begin(), latencies_us.end());
  const auto pct = [&](double p) {
    return latencies_us.empty() ? 0.0 : latencies_us[static_cast<std::size_t>(p * (latencies_us.size() - 1))];
  };
  state.counters["commands_per_s"] =
      benchmark::Counter(static_cast<double>(commands), benchmark::Counter::kIsRate);
  state.counters["p50_us"] = pct(0.50);
  state.counters["p99_us"] = pct(0.99);
  state.counters["failures"] = static_cast<double>(failures.load());
}
BENCHMARK(node_request_reply)->ArgName("clients")->Arg(1)->Arg(64)->Arg(256)->UseRealTime()->MinTime(2.0);

// The bank-account workload's shape (bench/README.md) over NATS request/reply (what
// RESULTS report; node_request_reply above is the worst case, a new
// aggregate per command): 4 tenants, 10,000 accounts opened once (setup,
// 64 clients, counted apart: setup_per_s), then ~70% deposits / 30%
// withdrawals (amounts 1..100) on random accounts; insufficient_funds is an
// answer, not a failure. Not the generator's exact byte sequence: a
// deterministic PRNG of the same mix.
constexpr int k_accounts = 10000;
std::string workload_subject(int a) {
  return "tenant.tenant-" + std::to_string(a % 4) + ".command.Account.acc-" + std::to_string(a);
}

// Sends `n` commands made by `body(i)` to `subject(i)` from the clients; false on any failure.
template <typename SubjectFn, typename BodyFn, typename OkFn>
void drive(std::vector<natsConnection*>& conns, int n, SubjectFn subject, BodyFn body, OkFn ok,
           std::vector<double>& latencies_us, std::atomic<std::uint64_t>& failures) {
  std::mutex lat_mu;
  std::atomic<int> next{0};
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < conns.size(); ++t) {
    threads.emplace_back([&, t] {
      std::vector<double> mine;
      for (int i = next++; i < n; i = next++) {
        const auto subj = subject(i);
        const auto b = body(i);
        natsMsg* reply = nullptr;
        const auto t0 = std::chrono::steady_clock::now();
        const auto s = natsConnection_RequestString(&reply, conns[t], subj.c_str(), b.c_str(), 5000);
        mine.push_back(
            std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
        if (s != NATS_OK || reply == nullptr || !ok(std::string_view(natsMsg_GetData(reply)))) ++failures;
        natsMsg_Destroy(reply);
      }
      std::lock_guard lock(lat_mu);
      latencies_us.insert(latencies_us.end(), mine.begin(), mine.end());
    });
  }
  for (auto& th : threads) th.join();
}

std::vector<natsConnection*> connect_clients(int n) {
  std::vector<natsConnection*> conns(static_cast<std::size_t>(n), nullptr);
  for (auto& c : conns) {
    natsOptions* o = nullptr;
    natsOptions_Create(&o);
    natsOptions_SetURL(o, server().url().c_str());
    natsOptions_SetSendAsap(o, true);
    natsConnection_Connect(&c, o);
    natsOptions_Destroy(o);
  }
  return conns;
}

void node_workload(benchmark::State& state) {
  spdlog::set_level(spdlog::level::warn);
  if (node_or_skip(state) == nullptr) return;
  static double setup_per_s = [] {
    auto conns = connect_clients(64);
    std::vector<double> lat;
    std::atomic<std::uint64_t> failures{0};
    const auto t0 = std::chrono::steady_clock::now();
    drive(
        conns, k_accounts, workload_subject,
        [](int) {
          return std::string(
              R"({"aggregate_type":"Account","payload":{"type":"open_account","initial_balance":0}})");
        },
        [](std::string_view r) { return r.find("\"status\":\"accepted\"") != std::string_view::npos; }, lat,
        failures);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (auto* c : conns) natsConnection_Destroy(c);
    return failures.load() == 0 ? k_accounts / secs : -1.0;
  }();
  if (setup_per_s < 0) {
    state.SkipWithError("workload setup failed");
    return;
  }
  const auto clients = static_cast<int>(state.range(0));
  constexpr int per_iteration = 4000;
  static std::atomic<std::uint64_t> rng{42};
  std::vector<double> latencies_us;
  std::atomic<std::uint64_t> failures{0};
  std::uint64_t commands = 0;
  auto conns = connect_clients(clients);
  for (auto _ : state) {
    // splitmix64 per command: account, kind, amount.
    std::vector<std::uint64_t> draws(per_iteration);
    for (auto& d : draws) {
      std::uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      d = z ^ (z >> 31);
    }
    drive(
        conns, per_iteration,
        [&](int i) { return workload_subject(static_cast<int>(draws[i] % k_accounts)); },
        [&](int i) {
          const auto d = draws[i] >> 20;
          const bool deposit = d % 100 < 70;
          const auto amount = std::to_string(1 + (d >> 8) % 100);
          return std::string(R"({"aggregate_type":"Account","payload":{"type":")") +
                 (deposit ? "deposit" : "withdraw") + R"(","amount":)" + amount + "}}";
        },
        [](std::string_view r) {
          return r.find("\"status\":\"accepted\"") != std::string_view::npos ||
                 r.find("insufficient_funds") != std::string_view::npos;
        },
        latencies_us, failures);
    commands += per_iteration;
  }
  for (auto* c : conns) natsConnection_Destroy(c);
  std::sort(latencies_us.begin(), latencies_us.end());
  const auto pct = [&](double p) {
    return latencies_us.empty() ? 0.0 : latencies_us[static_cast<std::size_t>(p * (latencies_us.size() - 1))];
  };
  state.counters["commands_per_s"] =
      benchmark::Counter(static_cast<double>(commands), benchmark::Counter::kIsRate);
  state.counters["p50_us"] = pct(0.50);
  state.counters["p99_us"] = pct(0.99);
  state.counters["failures"] = static_cast<double>(failures.load());
  state.counters["setup_per_s"] = setup_per_s;
}
BENCHMARK(node_workload)->ArgName("clients")->Arg(1)->Arg(16)->Arg(128)->UseRealTime()->MinTime(2.0);

}  // namespace

void stop_node() { g_node.reset(); }

}  // namespace esflow::nats

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  esflow::nats::stop_node();  // drains the node while NATS is still up
  benchmark::Shutdown();
  return 0;
}
