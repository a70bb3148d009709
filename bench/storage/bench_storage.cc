// Storage ceilings and the embedded event log's group commit.
//
//   raw_write_batch/sync:1    one small WriteBatch per write, fsync each: the durable single-writer ceiling
//   raw_write_batch/sync:0    the same without fsync: the relaxed ceiling
//   event_log_append/...      256 aggregates with one append each in flight, callback-driven
//
// Goals: durable group commit >= 10x raw fsync writes/s; relaxed >= 80% of raw unsynced writes/s.
#include "storage/db.h"
#include "storage/embedded_event_log.h"
#include "storage/keys.h"

#include <benchmark/benchmark.h>
#include <rocksdb/write_batch.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <string>
#include <unistd.h>
#include <vector>

namespace esflow::storage {
namespace {

class bench_dir {
 public:
  bench_dir() {
    static int n = 0;
    _path = std::filesystem::temp_directory_path() /
            ("esflow-bench-storage-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
    std::filesystem::create_directories(_path);
  }
  ~bench_dir() {
    std::error_code ec;
    std::filesystem::remove_all(_path, ec);
  }
  std::string str() const { return _path.string(); }

 private:
  std::filesystem::path _path;
};

std::unique_ptr<db> open_db(const bench_dir& dir, durability mode, benchmark::State& state) {
  auto d = db::open({.path = dir.str(), .mode = mode});
  if (!d.ok()) state.SkipWithError(d.err().to_string().c_str());
  return d.ok() ? std::move(d).value() : nullptr;
}

void raw_write_batch(benchmark::State& state) {
  bench_dir dir;
  auto d = open_db(dir, state.range(0) != 0 ? durability::fsync : durability::relaxed, state);
  if (!d) return;
  const std::string value(200, 'v');
  std::uint64_t n = 0;
  for (auto _ : state) {
    rocksdb::WriteBatch wb;
    wb.Put(d->handle(cf::events), keys::position(++n), value);
    if (!d->write(wb).ok()) {
      state.SkipWithError("write failed");
      break;
    }
  }
  state.counters["writes_per_s"] = benchmark::Counter(static_cast<double>(n), benchmark::Counter::kIsRate);
}
BENCHMARK(raw_write_batch)->ArgName("sync")->Arg(1)->Arg(0)->UseRealTime()->MinTime(2.0);

// Keeps `in_flight` aggregates busy with one append each. A completion only
// records the new version and hands the aggregate back; this thread builds and
// issues the next request, as a runtime's worker would (completions run on
// the commit thread and must stay short).
class append_driver {
 public:
  append_driver(event_log& log, std::size_t in_flight) : _log(log), _versions(in_flight, 0) {}

  // Returns false on a failed append.
  bool run(std::uint64_t total) {
    std::uint64_t issued = 0, completed = 0;
    std::vector<std::size_t> ready;
    for (std::size_t a = 0; a < _versions.size(); ++a) ready.push_back(a);
    while (completed < total) {
      for (auto a : ready) {
        if (issued < total) {
          issue(a);
          ++issued;
        }
      }
      ready.clear();
      std::unique_lock lock(_mu);
      if (!_cv.wait_for(lock, std::chrono::seconds(60), [&] { return !_done.empty() || _failed; }))
        return false;
      if (_failed) return false;
      completed += _done.size();
      ready.swap(_done);
    }
    return true;
  }

 private:
  void issue(std::size_t a) {
    append_request r;
    r.tenant_id = "bench";
    r.aggregate_type = "Account";
    r.aggregate_id = "acc-" + std::to_string(a);
    r.command_id = r.aggregate_id + "-" + std::to_string(_versions[a] + 1);
    r.expected_version = _versions[a];
    schemas::event e;
    e.event_id = "0192f0c4-7d2a-7cc1-9c6f-" + std::to_string(_versions[a]);
    e.event_type = "deposited";
    e.payload_json = R"({"type":"deposited","amount":50})";
    e.correlation_id = r.command_id;
    e.trace_id = "0af7651916cd43dd8448eb211c80319c";
    e.timestamp = "2026-11-22T16:00:00.123Z";
    r.request_hash = request_hash(r.aggregate_type, r.aggregate_id, e.payload_json + r.command_id);
    r.events.push_back(std::move(e));
    _log.append(std::move(r), [this, a](result<append_result> res) {
      std::unique_lock lock(_mu);
      bool wake = _done.empty();
      if (res.ok()) {
        _versions[a] = res->last_version;  // one append per aggregate in flight
        _done.push_back(a);
      } else {
        _failed = wake = true;
      }
      lock.unlock();
      if (wake) _cv.notify_one();
    });
  }

  event_log& _log;
  std::vector<version_t> _versions;
  std::mutex _mu;
  std::condition_variable _cv;
  std::vector<std::size_t> _done;  // guarded by _mu
  bool _failed = false;            // guarded by _mu
};

void event_log_append(benchmark::State& state) {
  bench_dir dir;
  auto mode = state.range(0) != 0 ? durability::fsync : durability::relaxed;
  auto d = open_db(dir, mode, state);
  if (!d) return;
  auto log = embedded_event_log::open(*d);
  if (!log.ok()) {
    state.SkipWithError(log.err().to_string().c_str());
    return;
  }
  const auto in_flight = static_cast<std::size_t>(state.range(1));
  append_driver driver(**log, in_flight);
  const std::uint64_t per_round = mode == durability::fsync ? 20000 : 100000;
  std::uint64_t total = 0;
  for (auto _ : state) {
    if (!driver.run(per_round)) {
      state.SkipWithError("append failed");
      break;
    }
    total += per_round;
  }
  auto s = (*log)->stats();
  state.counters["appends_per_s"] =
      benchmark::Counter(static_cast<double>(total), benchmark::Counter::kIsRate);
  state.counters["avg_group"] = s.avg_batch_size();
  state.counters["batches"] = static_cast<double>(s.batches);
  ignore((*log)->close());
}
BENCHMARK(event_log_append)
    ->ArgNames({"sync", "in_flight"})
    ->Args({1, 256})
    ->Args({0, 256})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond)
    ->MinTime(2.0);

}  // namespace
}  // namespace esflow::storage

BENCHMARK_MAIN();
