// bench_http: the bank-account workload (bench/README.md) over
// HTTP, against an in-process aggregate node (a fresh temp data dir per client
// count) or a running node (--url, one client count).
//
//   node gen-workload.mjs --commands 20000 > w.jsonl
//   bench_http --workload w.jsonl [--clients 1,16,128] [--duration 60] [--url http://host:port]
//              [--key API_KEY]   (Authorization: Bearer, for a gateway)
//
// Setup: every open_account with 48 keep-alive clients (reported apart).
// Measured: C clients share one in-order cursor over the run commands; each
// sends one, waits for the answer, takes the next; a duplicate is sent only
// after its original was answered. Stops at the end or after --duration s.
// Verification: sample accounts folded from their stored events; every
// duplicate answered as duplicate; stored events = accepted commands, each
// accepted command id stored once, no rejected one stored.
#include "cli/app.h"

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <sys/resource.h>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

// --key: an API key sent as Authorization: Bearer (a gateway in front).
std::string g_key;
httplib::Headers headers_for(const std::string& tenant) {
  httplib::Headers h = {{"x-tenant-id", tenant}};
  if (!g_key.empty()) h.emplace("Authorization", "Bearer " + g_key);
  return h;
}
using nlohmann::json;

struct command {
  std::string tenant;
  std::string account;
  std::string command_id;
  std::string type;
  std::int64_t amount = 0;
  std::int64_t duplicate_of = -1;
  std::string body;  // the HTTP body
};

struct workload {
  std::vector<command> setup, run;
  std::vector<std::pair<std::string, std::string>> sample;  // tenant, account
};

workload load_workload(const std::string& path) {
  workload w;
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto j = json::parse(line);
    if (j["phase"] == "sample") {
      for (const auto& a : j["accounts"]) w.sample.emplace_back(a["tenant"], a["account_id"]);
      continue;
    }
    command c;
    c.tenant = j["tenant"];
    c.account = j["account_id"];
    c.command_id = j["command_id"];
    c.type = j["type"];
    json payload = j["data"];
    payload["type"] = c.type;
    c.amount = payload.value("amount", std::int64_t{0});
    if (j.contains("duplicate_of")) c.duplicate_of = j["duplicate_of"];
    c.body = json{{"command_id", c.command_id},
                  {"aggregate_type", "Account"},
                  {"aggregate_id", c.account},
                  {"payload", payload}}
                 .dump();
    (j["phase"] == "setup" ? w.setup : w.run).push_back(std::move(c));
  }
  return w;
}

enum class outcome : std::uint8_t { none, accepted, duplicate, rejected, error };

struct phase_result {
  double wall_s = 0;
  std::size_t answered = 0;
  std::size_t counts[5] = {};
  std::vector<std::uint64_t> latencies_ns;
  double cpu_s = 0;
};

double process_cpu_s() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// Non-accepted answers by "status code" (or transport error), for the report.
std::mutex g_why_mu;
std::map<std::string, std::size_t> g_why;

void note_why(const httplib::Result& r) {
  std::string why;
  if (!r) {
    why = "transport " + httplib::to_string(r.error());
  } else {
    auto j = json::parse(r->body, nullptr, false);
    why = std::to_string(r->status) + " " +
          (j.is_object() ? j.value("code", std::string("?")) : std::string("?"));
  }
  std::lock_guard lock(g_why_mu);
  ++g_why[why];
}

void print_why() {
  std::lock_guard lock(g_why_mu);
  if (g_why.empty()) return;
  std::cout << "  answers other than 200:";
  for (const auto& [k, n] : g_why) std::cout << " [" << k << "] " << n;
  std::cout << "\n";
  g_why.clear();
}

outcome classify(const httplib::Result& r) {
  if (!r || r->status != 200) note_why(r);
  if (!r) return outcome::error;
  if (r->status == 200) {
    auto j = json::parse(r->body, nullptr, false);
    return j.is_object() && j.value("duplicate", false) ? outcome::duplicate : outcome::accepted;
  }
  if (r->status >= 400 && r->status < 500) return outcome::rejected;
  return outcome::error;
}

// Replays `cmds` with `clients` threads sharing one cursor; outcomes[i] is the answer of cmds[i].
phase_result replay(const std::string& url, const std::vector<command>& cmds, int clients,
                    std::chrono::seconds duration, std::vector<outcome>& outcomes) {
  outcomes.assign(cmds.size(), outcome::none);
  std::vector<std::atomic<bool>> answered(cmds.size());
  std::mutex answered_mu;
  std::condition_variable answered_cv;
  std::atomic<std::size_t> cursor{0};
  std::vector<std::vector<std::uint64_t>> lat(clients);
  const auto start = clock_type::now();
  const auto deadline = start + duration;
  const double cpu0 = process_cpu_s();
  std::vector<std::thread> threads;
  for (int t = 0; t < clients; ++t) {
    threads.emplace_back([&, t] {
      httplib::Client c(url);
      c.set_keep_alive(true);
      c.set_tcp_nodelay(true);
      c.set_read_timeout(60, 0);
      c.set_connection_timeout(10, 0);
      lat[t].reserve(cmds.size() / clients + 16);
      for (;;) {
        if (clock_type::now() >= deadline) return;
        const auto i = cursor.fetch_add(1);
        if (i >= cmds.size()) return;
        const auto& cmd = cmds[i];
        if (cmd.duplicate_of >= 0) {
          std::unique_lock lock(answered_mu);
          answered_cv.wait(lock, [&] { return answered[cmd.duplicate_of].load(); });
        }
        const auto t0 = clock_type::now();
        auto r = c.Post("/v1/commands", headers_for(cmd.tenant), cmd.body, "application/json");
        lat[t].push_back(static_cast<std::uint64_t>((clock_type::now() - t0).count()));
        outcomes[i] = classify(r);
        {
          std::lock_guard lock(answered_mu);
          answered[i].store(true);
        }
        answered_cv.notify_all();
      }
    });
  }
  for (auto& th : threads) th.join();
  phase_result res;
  res.wall_s = std::chrono::duration<double>(clock_type::now() - start).count();
  res.cpu_s = process_cpu_s() - cpu0;
  for (auto& l : lat) res.latencies_ns.insert(res.latencies_ns.end(), l.begin(), l.end());
  std::sort(res.latencies_ns.begin(), res.latencies_ns.end());
  for (auto o : outcomes) {
    if (o == outcome::none) continue;
    ++res.answered;
    ++res.counts[static_cast<int>(o)];
  }
  return res;
}

double quantile_us(const std::vector<std::uint64_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  const auto idx =
      std::min(sorted.size() - 1, static_cast<std::size_t>(q * static_cast<double>(sorted.size())));
  return static_cast<double>(sorted[idx]) / 1000.0;
}

void report(const std::string& name, int clients, const phase_result& r) {
  std::cout << std::fixed << std::setprecision(0) << name << " C=" << clients << ": "
            << static_cast<double>(r.answered) / r.wall_s << " commands/s (" << r.answered << " in "
            << std::setprecision(2) << r.wall_s << " s)  p50 " << std::setprecision(0)
            << quantile_us(r.latencies_ns, 0.5) << " us  p99 " << quantile_us(r.latencies_ns, 0.99)
            << " us  p999 " << quantile_us(r.latencies_ns, 0.999) << " us  accepted " << r.counts[1]
            << " rejected " << r.counts[3] << " duplicate " << r.counts[2] << " error " << r.counts[4]
            << "  cpu " << std::setprecision(2) << r.cpu_s / r.wall_s << " cores (process)\n";
}

// Every stored event of one aggregate, paged.
bool read_all_events(httplib::Client& c, const std::string& tenant, const std::string& account, json& out) {
  out = json::array();
  std::uint64_t after = 0;
  for (;;) {
    auto r = c.Get("/v1/aggregates/Account/" + account + "/events?limit=1000&after=" + std::to_string(after),
                   headers_for(tenant));
    if (!r) return false;
    if (r->status == 404) return true;
    if (r->status != 200) return false;
    auto j = json::parse(r->body);
    for (auto& e : j["events"]) out.push_back(std::move(e));
    if (j["next_after"].is_null()) return true;
    after = j["next_after"];
  }
}

// The workload's verification (bench/README.md); prints what fails; true when all holds.
bool verify(const std::string& url, const workload& w, const std::vector<outcome>& setup_out,
            const std::vector<outcome>& run_out) {
  bool ok = true;
  // 2. every duplicate answered as duplicate.
  std::size_t dup_wrong = 0;
  for (std::size_t i = 0; i < w.run.size(); ++i)
    if (w.run[i].duplicate_of >= 0 && run_out[i] != outcome::none && run_out[i] != outcome::duplicate)
      ++dup_wrong;
  if (dup_wrong) {
    std::cout << "  FAIL: " << dup_wrong << " duplicates not answered as duplicate\n";
    ok = false;
  }
  // Expected per account: accepted command ids and balance.
  struct expect {
    std::int64_t balance = 0;
    std::set<std::string> accepted;
    std::set<std::string> rejected;
  };
  std::map<std::pair<std::string, std::string>, expect> accounts;
  std::size_t accepted = 0;
  for (std::size_t i = 0; i < w.setup.size(); ++i) {
    auto& e = accounts[{w.setup[i].tenant, w.setup[i].account}];
    if (setup_out[i] == outcome::accepted) {
      e.accepted.insert(w.setup[i].command_id);
      ++accepted;
    }
  }
  std::size_t unanswered = 0;
  for (std::size_t i = 0; i < w.run.size(); ++i) {
    const auto& c = w.run[i];
    auto& e = accounts[{c.tenant, c.account}];
    if (run_out[i] == outcome::accepted) {
      e.accepted.insert(c.command_id);
      e.balance += c.type == "deposit" ? c.amount : -c.amount;
      ++accepted;
    } else if (run_out[i] == outcome::rejected) {
      e.rejected.insert(c.command_id);
    } else if (run_out[i] == outcome::error) {
      ++unanswered;  // may or may not be stored
    }
  }
  // 1 and 3: read every account's events (the sample gets the full fold check).
  std::set<std::pair<std::string, std::string>> sample(w.sample.begin(), w.sample.end());
  std::mutex mu;
  std::size_t stored = 0, bad_fold = 0, missing = 0, extra = 0, twice = 0, read_fail = 0;
  std::vector<std::pair<std::string, std::string>> keys;
  for (const auto& [k, _] : accounts) keys.push_back(k);
  std::atomic<std::size_t> next{0};
  std::vector<std::thread> th;
  for (int t = 0; t < 8; ++t) {
    th.emplace_back([&] {
      httplib::Client c(url);
      c.set_keep_alive(true);
      c.set_tcp_nodelay(true);
      for (std::size_t i; (i = next.fetch_add(1)) < keys.size();) {
        const auto& key = keys[i];
        const auto& e = accounts.at(key);
        json events;
        if (!read_all_events(c, key.first, key.second, events)) {
          std::lock_guard lock(mu);
          ++read_fail;
          continue;
        }
        std::set<std::string> ids;
        std::size_t local_twice = 0, local_extra = 0, local_missing = 0;
        bool fold_ok = true;
        std::int64_t balance = 0;
        for (std::size_t v = 0; v < events.size(); ++v) {
          const auto& ev = events[v];
          const std::string id = ev["command_id"];
          if (!ids.insert(id).second) ++local_twice;
          if (!e.accepted.count(id) && e.rejected.count(id)) ++local_extra;
          if (ev["version"] != v + 1) fold_ok = false;
          const std::string type = ev["event_type"];
          if (v == 0 && type != "account_opened") fold_ok = false;
          if (type == "deposited") balance += ev["payload"]["amount"].get<std::int64_t>();
          if (type == "withdrawn") balance -= ev["payload"]["amount"].get<std::int64_t>();
          if (balance < 0) fold_ok = false;
        }
        for (const auto& id : e.accepted)
          if (!ids.count(id)) ++local_missing;
        if (sample.count(key) && unanswered == 0 && balance != e.balance) fold_ok = false;
        std::lock_guard lock(mu);
        stored += events.size();
        twice += local_twice;
        extra += local_extra;
        missing += local_missing;
        if (!fold_ok) ++bad_fold;
      }
    });
  }
  for (auto& t : th) t.join();
  std::cout << "  verify: " << accounts.size() << " accounts read, " << stored << " events stored, "
            << accepted << " commands accepted (setup + run), " << unanswered << " unanswered\n";
  if (read_fail) std::cout << "  FAIL: " << read_fail << " accounts could not be read\n", ok = false;
  if (bad_fold) std::cout << "  FAIL: " << bad_fold << " accounts fail the fold check\n", ok = false;
  if (missing) std::cout << "  FAIL: " << missing << " accepted command ids not stored\n", ok = false;
  if (extra) std::cout << "  FAIL: " << extra << " rejected command ids stored\n", ok = false;
  if (twice) std::cout << "  FAIL: " << twice << " command ids stored twice\n", ok = false;
  if (unanswered == 0 && stored != accepted)
    std::cout << "  FAIL: events stored != commands accepted\n", ok = false;
  std::cout << "  verification " << (ok ? "passed" : "FAILED") << " (sample of " << w.sample.size()
            << " folded; every account checked for ids)\n";
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  std::string workload_path, url;
  std::vector<int> clients = {1, 16, 128};
  int duration_s = 60;
  std::string pipeline = std::string(ESFLOW_SOURCE_DIR) + "/pipelines/aggregate.yaml";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--workload")
      workload_path = next();
    else if (a == "--url")
      url = next();
    else if (a == "--duration")
      duration_s = std::stoi(next());
    else if (a == "--pipeline")
      pipeline = next();
    else if (a == "--key")
      g_key = next();
    else if (a == "--clients") {
      clients.clear();
      std::stringstream ss(next());
      for (std::string c; std::getline(ss, c, ',');) clients.push_back(std::stoi(c));
    } else {
      std::cerr << "usage: bench_http --workload FILE [--clients 1,16,128] [--duration 60] [--url URL] "
                   "[--pipeline FILE] [--key API_KEY]\n";
      return 2;
    }
  }
  if (workload_path.empty()) {
    std::cerr << "--workload is required (node gen-workload.mjs --commands N > FILE)\n";
    return 2;
  }
  const auto w = load_workload(workload_path);
  std::cout << "workload: " << w.setup.size() << " setup, " << w.run.size() << " run commands, "
            << w.sample.size() << " sample accounts; transport HTTP/1.1 keep-alive; node "
            << (url.empty() ? "in-process (embedded log)" : url) << ", durability "
            << (std::getenv("ESFLOW_DURABILITY") ? std::getenv("ESFLOW_DURABILITY") : "fsync") << "\n";
  if (!url.empty() && clients.size() != 1) {
    std::cerr << "--url runs one client count (the node keeps its data between runs)\n";
    return 2;
  }
  bool all_ok = true;
  for (int c : clients) {
    std::shared_ptr<esflow::cli::served_nodes> served;
    std::filesystem::path dir;
    std::string target = url;
    if (target.empty()) {
      std::random_device rd;
      dir = std::filesystem::temp_directory_path() / ("esflow-bench-http-" + std::to_string(rd()));
      ::setenv("ESFLOW_DATA_DIR", dir.c_str(), 1);
      auto s = esflow::cli::serve_nodes({pipeline});
      if (!s.ok()) {
        std::cerr << s.err().to_string() << "\n";
        return 1;
      }
      served = std::move(s).value();
      target = esflow::cli::served_url(*served);
    }
    std::vector<outcome> setup_out, run_out;
    // 48: below the node's 60 commands waiting at once (http.commands'
    // server_threads - reserved_threads), so setup is never answered 503.
    auto setup = replay(target, w.setup, 48, std::chrono::seconds(600), setup_out);
    report("setup", 48, setup);
    print_why();
    auto run = replay(target, w.run, c, std::chrono::seconds(duration_s), run_out);
    report("run  ", c, run);
    print_why();
    all_ok = verify(target, w, setup_out, run_out) && all_ok;
    if (served) {
      served.reset();
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  }
  return all_ok ? 0 : 1;
}
