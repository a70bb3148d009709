// The projection node's benchmarks (bench/README.md, "Projection"), each
// beside the raw ceiling of the component underneath, measured in the same
// run:
//
//   throughput  100,000 Account commits over 10,000 aggregates appended
//               straight into the embedded log, then a projection pipeline
//               (one view, with or without an index) served on that directory
//               and timed from start until its watermark reaches the log's
//               head; ceiling: a raw loop writing the same rows, index
//               entries and a checkpoint per commit in one write_set each
//               (commit_unsynced, one thread).
//   query       1,000,000 rows of `accounts` written directly in the view's
//               layout (row_value + index entries), then run_query p50/p99:
//               an indexed range returning 100 rows, and a filter on a field
//               without an index (limit 100: it must scan); ceiling:
//               readmodel_store::scan of 100 rows.
//   lag         pipelines/aggregate.yaml + pipelines/projection.yaml in one
//               process (embedded; fsync as shipped, then relaxed), the bank workload's
//               shape from concurrent HTTP clients at the aggregate's peak;
//               the projection's lag (log head - watermark, as /admin/views)
//               sampled every 100 ms; ceiling: the aggregate's commit rate.
//
// ESFLOW_PBENCH=throughput,query,lag picks parts (default all);
// ESFLOW_PBENCH_COMMITS (100000), ESFLOW_PBENCH_ROWS (1000000),
// ESFLOW_PBENCH_CLIENTS (56: the HTTP server admits 60 commands at once), ESFLOW_PBENCH_SECONDS (20) size
// them.
#include "cli/app.h"
#include "stages/position_tracker.h"
#include "stages/projection/projection_service.h"
#include "stages/projection/row_index.h"
#include "stages/projection/row_value.h"
#include "stages/projection/view_query.h"
#include "storage/embedded_event_log.h"
#include "storage/index_value.h"
#include "storage/node_store.h"
#include "transport/node_host.h"

#include <httplib.h>
#include <nlohmann/json.hpp>
#include <rocksdb/db.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

namespace esflow::projection {
namespace {

namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;
using nlohmann::json;

std::size_t env_size(const char* name, std::size_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::stoul(v) : fallback;
}

bool part_wanted(const std::string& part) {
  const char* v = std::getenv("ESFLOW_PBENCH");
  if (v == nullptr || *v == '\0') return true;
  return ("," + std::string(v) + ",").find("," + part + ",") != std::string::npos;
}

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

std::string account_key(std::size_t i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "acc-%07zu", i);
  return buf;
}

const std::string k_tenant = "acme";

// ---------------------------------------------------------------- throughput

// Aggregate a's commits: version 1 opens with 0, every later one deposits 5.
std::string payload_of(std::uint64_t version) {
  return version == 1 ? R"({"type":"account_opened","initial_balance":0})"
                      : R"({"type":"deposited","amount":5})";
}

storage::append_request commit_request(std::size_t aggregate, std::uint64_t version) {
  storage::append_request r;
  r.tenant_id = k_tenant;
  r.aggregate_type = "Account";
  r.aggregate_id = account_key(aggregate);
  r.command_id = "cmd-" + r.aggregate_id + "-" + std::to_string(version);
  r.expected_version = version - 1;
  const auto payload = payload_of(version);
  r.request_hash = storage::request_hash("Account", r.aggregate_id, payload);
  schemas::event e;
  char id[64];
  std::snprintf(id, sizeof id, "01938000-0000-7000-8000-%06zx%06llx", aggregate,
                static_cast<unsigned long long>(version));
  e.event_id = id;
  e.event_type = version == 1 ? "account_opened" : "deposited";
  e.payload_json = payload;
  e.correlation_id = r.command_id;
  e.timestamp = "2026-12-05T07:00:00.000Z";
  r.events.push_back(std::move(e));
  return r;
}

// Appends `commits` commits over `aggregates` aggregates into the directory's
// embedded log, from 32 threads (each its own aggregates, round after round).
bool prewrite_log(const fs::path& dir, std::size_t commits, std::size_t aggregates) {
  auto store = storage::node_store::open({.data_dir = dir.string(), .mode = storage::durability::relaxed});
  if (!store.ok()) return false;
  auto log = storage::embedded_event_log::open(store.value()->database());
  if (!log.ok()) return false;
  const std::size_t rounds = commits / aggregates;
  constexpr std::size_t k_threads = 32;
  std::atomic<bool> failed{false};
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < k_threads; ++t)
    threads.emplace_back([&, t] {
      for (std::uint64_t v = 1; v <= rounds; ++v)
        for (std::size_t a = t; a < aggregates; a += k_threads) {
          auto r = storage::append_and_wait(*log.value(), commit_request(a, v));
          if (!r.ok()) failed = true;
        }
    });
  for (auto& th : threads) th.join();
  ignore(log.value()->close());
  log.value().reset();
  ignore(store.value()->close());
  return !failed;
}

std::string write_file(const fs::path& path, const std::string& text) {
  std::ofstream(path) << text;
  return path.string();
}

std::string projection_yaml(const std::string& name, const fs::path& data_dir, const std::string& views) {
  return "pipeline: " + name + "\nsettings:\n  data_dir: " + data_dir.string() +
         "\n  durability: relaxed\n  event_log: embedded\n  tenancy: multi\n  max_in_flight: 4096\n"
         "views:\n" +
         views +
         "stages:\n"
         "  tail:    { kind: projection.follow, batch: 256, poll: 20ms }\n"
         "  decode:  { kind: projection.decode, key: message, concurrency: 4 }\n"
         "  tenant:  { kind: tenant.gate, key: message, concurrency: 4 }\n"
         "  project: { kind: projection.project, key: message, concurrency: 4 }\n"
         "  store:   { kind: projection.store, key: message, concurrency: 4 }\n"
         "  notify:  { kind: projection.notify, key: message, concurrency: 4 }\n"
         "  ack:     { kind: ack }\n"
         "flow:\n  - tail -> decode -> tenant -> project -> store -> notify -> ack\n"
         "  - \"*.error -> ack\"\n";
}

std::shared_ptr<projection_service> service_of(cli::served_nodes& served, const fs::path& data_dir,
                                               const std::string& pipeline) {
  return cli::served_services(served).find<projection_service>(
      "projection:" + storage::normalise_data_dir(data_dir.string()) + ":" + pipeline);
}

// Serves the pipeline on the directory and times it from start to the head.
double fold_to_head(const fs::path& file, const fs::path& data_dir, const std::string& pipeline) {
  cli::serve_options o;
  o.start = false;
  auto served = cli::serve_nodes({file.string()}, o);
  if (!served.ok()) {
    std::fprintf(stderr, "serve: %s\n", served.err().to_string().c_str());
    return -1;
  }
  auto svc = service_of(*served.value(), data_dir, pipeline);
  if (!svc) return -1;
  auto head = svc->log().last_position();
  if (!head.ok()) return -1;
  const auto t0 = clock_type::now();
  cli::start_served(*served.value());
  while (svc->tracker().watermark() < head.value()) {
    if (seconds_since(t0) > 600) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  const double s = seconds_since(t0);
  ignore(cli::stop_served(*served.value()));
  return s;
}

// The ceiling: the same rows, index entries and a checkpoint per commit, one
// write_set each, commit_unsynced, one thread, in the order the log holds them.
double raw_write_set(const fs::path& dir, std::size_t commits, std::size_t aggregates, bool indexed) {
  auto store = storage::node_store::open({.data_dir = dir.string(), .mode = storage::durability::relaxed});
  if (!store.ok()) return -1;
  auto& rm = store.value()->readmodels();
  const std::string view = indexed ? "accounts" : "accounts_plain";
  const std::size_t rounds = commits / aggregates;
  std::uint64_t position = 0;
  const auto t0 = clock_type::now();
  for (std::uint64_t v = 1; v <= rounds; ++v)
    for (std::size_t a = 0; a < aggregates; ++a) {
      ++position;
      const auto key = account_key(a);
      const json before = {{"balance", v < 2 ? 0 : (v - 2) * 5}, {"open", true}};
      const json after = {{"balance", (v - 1) * 5}, {"open", true}};
      auto ws = store.value()->begin();
      const auto row_value = encode_row({.version = v, .position = position, .json = after.dump()});
      rm.put(ws, k_tenant, view, key, row_value);
      if (indexed)
        for (const std::string field : {"balance", "open"}) {
          // Covering entries: an unchanged one is rewritten with the new row, as the store stage does.
          const auto now = index_entry(after, field);
          if (v > 1) {
            const auto was = index_entry(before, field);
            if (was != now) rm.erase_index(ws, k_tenant, view, field, was, key);
          }
          rm.put_index(ws, k_tenant, view, field, now, key, row_value);
        }
      store.value()->checkpoints().put(ws, {}, "view:" + view, position);
      if (!store.value()->commit_unsynced(ws).ok()) return -1;
    }
  const double s = seconds_since(t0);
  ignore(store.value()->close());
  return s;
}

int run_throughput(const fs::path& root) {
  const std::size_t commits = env_size("ESFLOW_PBENCH_COMMITS", 100'000);
  const std::size_t aggregates = std::min<std::size_t>(10'000, commits);
  std::printf("\n== projection throughput: %zu commits (1 event each) over %zu aggregates\n", commits,
              aggregates);
  const auto src = std::string(ESFLOW_SOURCE_DIR) + "/pipelines/programs/account.lua";
  struct variant {
    std::string name, view;
    bool indexed;
  };
  for (const variant& v :
       {variant{"plain", "  accounts_plain: { from: [Account], apply: " + src + " }\n", false},
        variant{"indexed", "  accounts: { from: [Account], apply: " + src + ", index: [balance, open] }\n",
                true},
        // pipelines/projection.yaml's two views: its capacity against the aggregate's peak (lag part).
        variant{"shipped",
                "  accounts: { from: [Account], apply: " + src +
                    ", index: [balance, open] }\n  account_activity: { from: [Account], program: " +
                    std::string(ESFLOW_SOURCE_DIR) +
                    "/pipelines/programs/account_activity.lua, index: [deposits] }\n",
                true}}) {
    // Each variant on its own directory: the same log, a fresh read model.
    const auto data = root / ("tp-" + v.name);
    fs::create_directories(data);
    const auto tw = clock_type::now();
    if (!prewrite_log(data, commits, aggregates)) return 1;
    std::printf("pre-wrote the log in %.1f s (%.0f commits/s, 32 threads, append_and_wait)\n",
                seconds_since(tw), static_cast<double>(commits) / seconds_since(tw));
    const auto file =
        write_file(root / ("tp-" + v.name + ".yaml"), projection_yaml("tp_" + v.name, data, v.view));
    const double s = fold_to_head(file, data, "tp_" + v.name);
    if (s < 0) return 1;
    if (v.name == "shipped") {
      std::printf("%-8s pipeline: %9.0f events/s (%.2f s), two views; no single-view ceiling\n",
                  v.name.c_str(), static_cast<double>(commits) / s, s);
      continue;
    }
    const double ceiling = raw_write_set(root / ("raw-" + v.name), commits, aggregates, v.indexed);
    if (ceiling < 0) return 1;
    const double rate = static_cast<double>(commits) / s;
    const double raw = static_cast<double>(commits) / ceiling;
    std::printf("%-8s pipeline: %9.0f events/s (%.2f s)   ceiling write_set: %9.0f commits/s   ratio %.2f\n",
                v.name.c_str(), rate, s, raw, rate / raw);
  }
  return 0;
}

// --------------------------------------------------------------------- query

// Row i: a unique balance (a permutation of 0..n-1), open, and `tag` = i % 100
// (not indexed).
json query_row_json(std::size_t i, std::size_t n) {
  return {{"balance", (i * 7919) % n}, {"open", true}, {"tag", i % 100}};
}

bool write_rows(const fs::path& dir, std::size_t n) {
  auto store = storage::node_store::open({.data_dir = dir.string(), .mode = storage::durability::relaxed});
  if (!store.ok()) return false;
  auto& rm = store.value()->readmodels();
  constexpr std::size_t k_batch = 1000;
  for (std::size_t first = 0; first < n; first += k_batch) {
    auto ws = store.value()->begin();
    for (std::size_t i = first; i < std::min(n, first + k_batch); ++i) {
      const auto key = account_key(i);
      const auto row = query_row_json(i, n);
      const auto row_value = encode_row({.version = 1, .position = i + 1, .json = row.dump()});
      rm.put(ws, k_tenant, "accounts", key, row_value);
      for (const std::string field : {"balance", "open"})
        rm.put_index(ws, k_tenant, "accounts", field, index_entry(row, field), key, row_value);
    }
    if (!store.value()->commit_unsynced(ws).ok()) return false;
  }
  // Settle the bulk write as a node that has run a while would have it
  // (levels compacted), not as a pile of L0 files.
  auto& d = store.value()->database();
  if (!d.raw()
           ->CompactRange(rocksdb::CompactRangeOptions{}, d.handle(storage::cf::readmodels), nullptr, nullptr)
           .ok())
    return false;
  return store.value()->close().ok();
}

struct query_figures {
  double p50_us = 0, p99_us = 0;
  std::size_t rows = 0, scanned = 0;
};

template <typename F>
query_figures sample(std::size_t count, F&& one) {
  std::vector<double> us;
  query_figures f;
  for (std::size_t i = 0; i < count; ++i) {
    const auto t0 = clock_type::now();
    const auto [rows, scanned] = one(i);
    us.push_back(std::chrono::duration<double, std::micro>(clock_type::now() - t0).count());
    f.rows += rows;
    f.scanned += scanned;
  }
  f.p50_us = percentile(us, 0.50);
  f.p99_us = percentile(us, 0.99);
  f.rows /= count;
  f.scanned /= count;
  return f;
}

void print_query(const char* what, const query_figures& f) {
  std::printf("%-44s p50 %8.1f us  p99 %8.1f us  (rows %zu, scanned %zu)\n", what, f.p50_us, f.p99_us, f.rows,
              f.scanned);
}

int run_query_bench(const fs::path& root) {
  const std::size_t n = env_size("ESFLOW_PBENCH_ROWS", 1'000'000);
  std::printf("\n== query latency at %zu rows (view accounts, index [balance, open])\n", n);
  const auto data = root / "query";
  fs::create_directories(data);
  const auto tw = clock_type::now();
  if (!write_rows(data, n)) return 1;
  std::printf("wrote %zu rows + %zu index entries in %.1f s\n", n, 2 * n, seconds_since(tw));
  const auto src = std::string(ESFLOW_SOURCE_DIR) + "/pipelines/programs/account.lua";
  const auto file = write_file(
      root / "query.yaml",
      projection_yaml("query", data,
                      "  accounts: { from: [Account], apply: " + src + ", index: [balance, open] }\n"));
  auto served = cli::serve_nodes({file});
  if (!served.ok()) {
    std::fprintf(stderr, "serve: %s\n", served.err().to_string().c_str());
    return 1;
  }
  auto svc = service_of(*served.value(), data, "query");
  if (!svc) return 1;
  std::mt19937_64 rng(42);
  const std::size_t samples = 2000;
  std::vector<std::size_t> starts(samples);
  for (auto& s : starts) s = rng() % (n - 100);

  auto query = [&](const std::string& filter) {
    query_request r;
    r.tenant = k_tenant;
    r.view = "accounts";
    r.filter = filter;
    r.limit = "100";
    auto a = run_query(*svc, r);
    if (!a.ok()) {
      std::fprintf(stderr, "query %s: %s\n", filter.c_str(), a.err().to_string().c_str());
      return std::pair<std::size_t, std::size_t>{0, 0};
    }
    return std::pair<std::size_t, std::size_t>{a.value().rows.size(), a.value().scanned};
  };
  // Warm the block cache like a running node's: one pass of each query shape.
  for (std::size_t i = 0; i < 20; ++i) query("tag = " + std::to_string(i));
  for (std::size_t i = 0; i < 200; ++i)
    query("balance >= " + std::to_string(starts[i]) + " and balance < " + std::to_string(starts[i] + 100));

  const auto indexed = sample(samples, [&](std::size_t i) {
    return query("balance >= " + std::to_string(starts[i]) + " and balance < " +
                 std::to_string(starts[i] + 100));
  });
  const auto scan_1pct =
      sample(200, [&](std::size_t i) { return query("tag = " + std::to_string(i % 100)); });
  // Nothing matches: the query stops at max_scan (100,000 rows) with a cursor.
  const auto scan_none = sample(20, [&](std::size_t) { return query("tag = 1000"); });
  auto& rm = svc->store().readmodels();
  const auto raw = sample(samples, [&](std::size_t i) {
    auto rows = rm.scan(k_tenant, "accounts", account_key(starts[i]), 100);
    return std::pair<std::size_t, std::size_t>{rows.ok() ? rows.value().size() : 0, 100};
  });
  auto raw_index = sample(samples, [&](std::size_t i) {
    // The index probe's raw part: 100 balance entries, then each row's get.
    const auto from = storage::index_value::of_number(static_cast<double>(starts[i]));
    auto hits = rm.scan_index(k_tenant, "accounts", "balance", from, {}, {}, {}, 100);
    if (!hits.ok()) return std::pair<std::size_t, std::size_t>{0, 0};
    std::size_t got = 0;
    for (const auto& h : hits.value())
      if (auto row = rm.get(k_tenant, "accounts", h.row_key); row.ok() && row.value()) ++got;
    return std::pair<std::size_t, std::size_t>{got, hits.value().size()};
  });
  const auto raw_index_only = sample(samples, [&](std::size_t i) {
    const auto from = storage::index_value::of_number(static_cast<double>(starts[i]));
    auto hits = rm.scan_index(k_tenant, "accounts", "balance", from, {}, {}, {}, 100);
    return std::pair<std::size_t, std::size_t>{hits.ok() ? hits.value().size() : 0, 100};
  });
  const auto raw_gets = sample(samples, [&](std::size_t i) {
    std::size_t got = 0;
    for (std::size_t k = 0; k < 100; ++k)
      if (auto row = rm.get(k_tenant, "accounts", account_key((starts[i] + k * 7919) % n));
          row.ok() && row.value())
        ++got;
    return std::pair<std::size_t, std::size_t>{got, 100};
  });
  print_query("indexed range, 100 rows (run_query)", indexed);
  print_query("filter on tag (no index, 1% match, limit 100)", scan_1pct);
  print_query("filter on tag (no index, no match: max_scan)", scan_none);
  print_query("ceiling: readmodel_store::scan of 100 rows", raw);
  print_query("ceiling: scan_index of 100 covering entries", raw_index_only);
  print_query("without covering: scan_index 100 + 100 gets", raw_index);
  print_query("  of which 100 row gets (random keys)", raw_gets);
  std::printf("goal: indexed p99 < 1 ms -> %.2f of the goal\n", indexed.p99_us / 1000.0);
  ignore(cli::stop_served(*served.value()));
  return 0;
}

// ----------------------------------------------------------------------- lag

// with_projection false: the same load on aggregate.yaml alone, the ceiling
// the projection's lag run is compared with (same clients, same machine).
int run_lag(const fs::path& root, const std::string& durability, bool with_projection) {
  const std::size_t clients = env_size("ESFLOW_PBENCH_CLIENTS", 56);
  const std::size_t run_s = env_size("ESFLOW_PBENCH_SECONDS", 20);
  constexpr std::size_t k_accounts = 10'000;
  constexpr int k_tenants = 4;
  std::printf(
      "\n== lag under the aggregate's peak: aggregate.yaml%s (embedded, %s), %zu "
      "HTTP clients, %zu s\n",
      with_projection ? " + projection.yaml" : " alone (ceiling)", durability.c_str(), clients, run_s);
  const auto data = root / ("lag-" + durability + (with_projection ? "" : "-alone"));
  // The shipped files read ${ESFLOW_DURABILITY:-fsync}; one directory, one durability for both.
  ::setenv("ESFLOW_DURABILITY", durability.c_str(), 1);
  cli::serve_options o;
  o.overrides.data_dir = data.string();
  o.overrides.http = "127.0.0.1:0";
  const auto dir = std::string(ESFLOW_SOURCE_DIR) + "/pipelines/";
  std::vector<std::string> files{dir + "aggregate.yaml"};
  if (with_projection) files.push_back(dir + "projection.yaml");
  auto served = cli::serve_nodes(files, o);
  if (!served.ok()) {
    std::fprintf(stderr, "serve: %s\n", served.err().to_string().c_str());
    return 1;
  }
  auto& host = cli::served_host(*served.value());
  for (int i = 0; i < 1500 && !host.ready().ok; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  std::shared_ptr<projection_service> svc;
  if (with_projection && !(svc = service_of(*served.value(), data, "projection"))) return 1;
  const auto url = cli::served_url(*served.value());

  std::atomic<std::size_t> accepted{0}, other{0}, retries{0};
  std::mutex failure_mu;
  std::string first_failure;
  auto drive = [&](bool setup, clock_type::time_point until) {
    std::vector<std::thread> threads;
    for (std::size_t c = 0; c < clients; ++c)
      threads.emplace_back([&, c] {
        httplib::Client cl(url);
        cl.set_keep_alive(true);
        cl.set_tcp_nodelay(true);  // else Nagle + delayed ACK holds each POST ~40 ms
        cl.set_read_timeout(30, 0);
        std::mt19937_64 rng(c + 1);
        for (std::size_t i = c;; i += clients) {
          if (setup ? i >= k_accounts : clock_type::now() >= until) return;
          const std::size_t a = setup ? i : rng() % k_accounts;
          const bool dep = setup || rng() % 10 < 7;
          const json payload =
              setup ? json{{"type", "open_account"}, {"initial_balance", 100}}
                    : json{{"type", dep ? "deposit" : "withdraw"}, {"amount", 1 + rng() % 100}};
          const json body = {
              {"aggregate_type", "Account"}, {"aggregate_id", account_key(a)}, {"payload", payload}};
          auto r = cl.Post("/v1/commands", {{"x-tenant-id", "tenant-" + std::to_string(a % k_tenants)}},
                           body.dump(), "application/json");
          // 503 unavailable is retryable (the node's admission bound): the same command again.
          for (int retry = 0; r && r->status == 503 && retry < 1000; ++retry) {
            ++retries;
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
            r = cl.Post("/v1/commands", {{"x-tenant-id", "tenant-" + std::to_string(a % k_tenants)}},
                        body.dump(), "application/json");
          }
          if (r && r->status == 200 && r->body.find("\"accepted\"") != std::string::npos)
            ++accepted;
          else {
            ++other;
            std::lock_guard lock(failure_mu);
            if (first_failure.empty())
              first_failure = r ? std::to_string(r->status) + " " + r->body : httplib::to_string(r.error());
          }
        }
      });
    for (auto& t : threads) t.join();
  };
  const auto ts = clock_type::now();
  drive(true, {});
  std::printf("setup: %zu accounts opened in %.1f s\n", accepted.load(), seconds_since(ts));
  if (!first_failure.empty()) std::printf("first failure: %s\n", first_failure.c_str());
  if (!with_projection) {
    const auto accepted0 = accepted.load();
    const auto t0 = clock_type::now();
    drive(false, t0 + std::chrono::seconds(run_s));
    std::printf("aggregate alone: %.0f accepted commits/s (%zu rejected or failed, %zu 503 retries)\n",
                static_cast<double>(accepted.load() - accepted0) / seconds_since(t0), other.load(),
                retries.load());
    ignore(cli::stop_served(*served.value()));
    return 0;
  }

  struct lag_sample {
    double t;
    std::uint64_t lag;
  };
  std::vector<lag_sample> lags;
  std::atomic<bool> sampling{true};
  auto lag_now = [&] {
    auto head = svc->log().last_position();
    const auto w = svc->tracker().watermark();
    return head.ok() && head.value() > w ? head.value() - w : 0;
  };
  const auto head0 = svc->log().last_position();
  const auto accepted0 = accepted.load();
  const auto t0 = clock_type::now();
  std::thread sampler([&] {
    while (sampling) {
      lags.push_back({seconds_since(t0), lag_now()});
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  drive(false, t0 + std::chrono::seconds(run_s));
  const double run = seconds_since(t0);
  sampling = false;
  sampler.join();
  const auto head1 = svc->log().last_position();
  const auto tc = clock_type::now();
  while (lag_now() > 0 && seconds_since(tc) < 120) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const double catch_up = seconds_since(tc);

  std::vector<double> all, first, last;
  for (const auto& s : lags) {
    all.push_back(static_cast<double>(s.lag));
    if (s.t < run / 4) first.push_back(static_cast<double>(s.lag));
    if (s.t >= run * 3 / 4) last.push_back(static_cast<double>(s.lag));
  }
  const double commits = head0.ok() && head1.ok() ? static_cast<double>(head1.value() - head0.value()) : 0;
  const double rate = commits / run;
  std::printf(
      "aggregate: %.0f commits/s, %.0f accepted/s (%zu accepted, %zu rejected or failed, %zu 503 retries)\n",
      rate, static_cast<double>(accepted.load() - accepted0) / run, accepted.load() - accepted0, other.load(),
      retries.load());
  std::printf("lag (commits behind the head, %zu samples every 100 ms): median %.0f  p99 %.0f  max %.0f\n",
              all.size(), percentile(all, 0.5), percentile(all, 0.99), percentile(all, 1.0));
  std::printf("lag median, first quarter %.0f  last quarter %.0f  (%s)\n", percentile(first, 0.5),
              percentile(last, 0.5),
              percentile(last, 0.5) > 2 * percentile(first, 0.5) + 100 ? "GROWS" : "bounded");
  std::printf("lag in ms at that rate: median %.1f  max %.1f; caught up %.3f s after the load stopped\n",
              1000 * percentile(all, 0.5) / rate, 1000 * percentile(all, 1.0) / rate, catch_up);
  ignore(cli::stop_served(*served.value()));
  return 0;
}

}  // namespace
}  // namespace esflow::projection

int main() {
  namespace fs = std::filesystem;
  using namespace esflow::projection;
  const auto root = fs::temp_directory_path() / ("esflow-bench-projection-" + std::to_string(::getpid()));
  fs::create_directories(root);
  int rc = 0;
  if (rc == 0 && part_wanted("throughput")) rc = run_throughput(root);
  if (rc == 0 && part_wanted("query")) rc = run_query_bench(root);
  for (const char* durability : {"fsync", "relaxed"})
    if (rc == 0 && part_wanted("lag")) {
      rc = run_lag(root, durability, false);
      if (rc == 0) rc = run_lag(root, durability, true);
    }
  std::error_code ec;
  fs::remove_all(root, ec);
  return rc;
}
