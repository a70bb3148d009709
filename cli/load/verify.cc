#include "cli/load/verify.h"

#include "cli/load/http_client.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <ostream>
#include <thread>
#include <unordered_map>

namespace esflow::load {
namespace {

using account_key = std::pair<std::string, std::string>;  // tenant, account id

// What the client knows of one command id from its answers.
struct id_model {
  std::int64_t delta = 0;  // its effect on the balance when stored
  bool accepted = false;   // accepted or duplicate: stored exactly once
  bool rejected = false;
  bool unknown = false;  // an error answer: stored once or not at all
  bool must_store() const { return accepted; }
  bool must_not_store() const { return rejected && !accepted && !unknown; }
};
using account_model = std::unordered_map<std::string, id_model>;

struct stored_event {
  std::uint64_t version = 0;
  std::string command_id, type;
  std::int64_t amount = 0;
};

constexpr int k_readers = 8;
constexpr int k_page = 1000;
constexpr int k_max_pages = 100000;  // 100M events per account: far beyond any workload
constexpr int k_read_attempts = 3;

// Failures by check, each with its first example.
class failure_log {
 public:
  void add(const std::string& check, std::size_t n, const std::string& example) {
    if (n == 0) return;
    std::lock_guard lock(_mu);
    auto& f = _by_check[check];
    f.check = check;
    if (f.example.empty()) f.example = example;
    f.count += n;
  }
  std::vector<verify_failure> all() const {
    std::lock_guard lock(_mu);
    std::vector<verify_failure> out;
    for (const auto& [_, f] : _by_check) out.push_back(f);
    return out;
  }

 private:
  mutable std::mutex _mu;
  std::map<std::string, verify_failure> _by_check;
};

std::int64_t delta_of(const stages::bank_command& c) {
  if (c.type == "withdraw") return -c.amount;
  return c.amount;  // deposit, open_account's initial balance
}

// Every stored event of one account, paged; false with `why` when it cannot be read.
bool read_events(httplib::Client& client, const verify_options& o, const account_key& key,
                 std::vector<stored_event>& out, std::string& why) {
  std::uint64_t after = 0;
  for (int page = 0; page < k_max_pages; ++page) {
    const auto path = "/v1/aggregates/Account/" + key.second + "/events?limit=" + std::to_string(k_page) +
                      "&after=" + std::to_string(after);
    httplib::Result r{nullptr, httplib::Error::Unknown};
    for (int attempt = 0; attempt < k_read_attempts; ++attempt) {
      r = client.Get(path, http_headers(key.first, o.key));
      if (r && r->status < 500) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100 << attempt));
    }
    if (!r) {
      why = "GET " + path + ": " + client_error_code(r.error());
      return false;
    }
    if (r->status == 404 && after == 0) return true;  // no events
    if (r->status != 200) {
      why = "GET " + path + ": HTTP " + std::to_string(r->status) + " " + r->body.substr(0, 200);
      return false;
    }
    const auto j = nlohmann::json::parse(r->body, nullptr, false);
    if (!j.is_object() || !j.contains("events") || !j["events"].is_array()) {
      why = "GET " + path + ": not an events page";
      return false;
    }
    try {
      for (const auto& e : j["events"]) {
        stored_event ev;
        ev.version = e.at("version").get<std::uint64_t>();
        ev.command_id = e.value("command_id", std::string());
        ev.type = e.at("event_type").get<std::string>();
        const auto& p = e.at("payload");
        ev.amount = ev.type == "account_opened" ? p.value("initial_balance", std::int64_t{0})
                                                : p.value("amount", std::int64_t{0});
        out.push_back(std::move(ev));
      }
    } catch (const nlohmann::json::exception& e) {
      why = "GET " + path + ": malformed event: " + e.what();
      return false;
    }
    const auto& next = j.value("next_after", nlohmann::json());
    if (next.is_null()) return true;
    if (!next.is_number_unsigned() || next.get<std::uint64_t>() <= after) {
      why = "GET " + path + ": next_after does not advance";
      return false;
    }
    after = next.get<std::uint64_t>();
  }
  why = "more than " + std::to_string(k_max_pages) + " pages of events";
  return false;
}

// Checks one account's stored events against the client's model.
void check_account(const account_key& key, const account_model& model,
                   const std::vector<stored_event>& events, failure_log& log) {
  const auto where = key.first + "/" + key.second;
  std::int64_t balance = 0;
  std::string fold_problem;
  std::unordered_map<std::string, int> seen;
  for (std::size_t v = 0; v < events.size(); ++v) {
    const auto& ev = events[v];
    if (fold_problem.empty() && ev.version != v + 1)
      fold_problem = "version " + std::to_string(ev.version) + " at position " + std::to_string(v + 1);
    if (fold_problem.empty() && v == 0 && ev.type != "account_opened")
      fold_problem = "first event is " + ev.type + ", not account_opened";
    if (ev.type == "withdrawn")
      balance -= ev.amount;
    else
      balance += ev.amount;
    if (fold_problem.empty() && balance < 0)
      fold_problem = "balance " + std::to_string(balance) + " at version " + std::to_string(ev.version);
    ++seen[ev.command_id];
  }
  if (!fold_problem.empty()) log.add("fold", 1, where + ": " + fold_problem);

  std::int64_t expected = 0;
  for (const auto& [id, count] : seen) {
    if (count > 1)
      log.add("stored_twice", 1, where + ": command " + id + " stored " + std::to_string(count) + " times");
    const auto it = model.find(id);
    if (it == model.end()) {
      log.add("unexpected_stored", 1, where + ": command " + id);
      continue;
    }
    if (it->second.must_not_store()) log.add("rejected_stored", 1, where + ": command " + id);
    if (it->second.unknown && !it->second.accepted) expected += it->second.delta;  // an error answer, stored
  }
  for (const auto& [id, m] : model) {
    if (!m.must_store()) continue;
    expected += m.delta;
    if (!seen.count(id)) log.add("accepted_not_stored", 1, where + ": command " + id);
  }
  if (balance != expected)
    log.add("balance", 1,
            where + ": stored events fold to " + std::to_string(balance) + ", accepted commands make " +
                std::to_string(expected));
}

}  // namespace

verify_result verify(const verify_options& o, const load_workload& w, const std::vector<answer>& setup,
                     const std::vector<answer>& run) {
  verify_result res;
  failure_log log;
  std::map<account_key, account_model> accounts;
  const auto learn = [&](const std::vector<load_item>& items, const std::vector<answer>& answers) {
    for (std::size_t i = 0; i < items.size() && i < answers.size(); ++i) {
      const auto& a = answers[i];
      if (a.kind == outcome::none) continue;
      const auto& c = items[i].cmd;
      auto& m = accounts[{c.tenant, c.account_id}][c.command_id];
      m.delta = delta_of(c);
      if (a.kind == outcome::accepted || a.kind == outcome::duplicate) m.accepted = true;
      if (a.kind == outcome::rejected) m.rejected = true;
      if (a.kind == outcome::error) m.unknown = true;
    }
  };
  learn(w.setup, setup);
  learn(w.run, run);

  // Re-sends of an accepted command: the original's answer, as a duplicate.
  for (std::size_t i = 0; i < w.run.size() && i < run.size(); ++i) {
    const auto j = w.run[i].cmd.duplicate_of;
    if (j < 0 || static_cast<std::size_t>(j) >= run.size()) continue;
    const auto& orig = run[static_cast<std::size_t>(j)];
    const auto& again = run[i];
    if (again.kind == outcome::none || again.kind == outcome::error) continue;
    if ((orig.kind == outcome::accepted || orig.kind == outcome::duplicate) &&
        again.kind != outcome::duplicate)
      log.add("duplicate_not_answered_duplicate", 1,
              "run seq " + std::to_string(i) + " (re-send of seq " + std::to_string(j) + ", command " +
                  w.run[i].cmd.command_id + ") answered " + std::string(to_string(again.kind)) +
                  (again.code.empty() ? "" : " " + again.code));
  }
  for (const auto& [_, m] : accounts)
    for (const auto& [id, s] : m) {
      if (s.accepted) ++res.accepted;
      if (s.unknown && !s.accepted) ++res.unknown;
    }

  std::vector<account_key> keys;
  for (const auto& s : w.sample) keys.emplace_back(s.tenant, s.account_id);
  res.sample_accounts = keys.size();
  if (!o.sample_only)
    for (const auto& [k, _] : accounts) keys.push_back(k);
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());

  const account_model empty;
  std::atomic<std::size_t> next{0}, read_count{0}, stored_count{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < std::min<int>(k_readers, static_cast<int>(keys.size())); ++t) {
    readers.emplace_back([&] {
      auto client = make_http_client(o.read_url, o.timeout);
      for (std::size_t i; (i = next.fetch_add(1)) < keys.size();) {
        std::vector<stored_event> events;
        std::string why;
        if (!read_events(*client, o, keys[i], events, why)) {
          log.add("read_failed", 1, keys[i].first + "/" + keys[i].second + ": " + why);
          continue;
        }
        const auto it = accounts.find(keys[i]);
        check_account(keys[i], it == accounts.end() ? empty : it->second, events, log);
        ++read_count;
        stored_count += events.size();
      }
    });
  }
  for (auto& t : readers) t.join();
  res.accounts_read = read_count.load();
  res.events_stored = stored_count.load();
  res.failures = log.all();
  res.passed = res.failures.empty();
  return res;
}

std::string failure_text(const verify_failure& f) {
  static const std::map<std::string, std::string> k_what = {
      {"accepted_not_stored", "accepted commands not stored"},
      {"stored_twice", "command ids stored more than once"},
      {"rejected_stored", "rejected commands stored"},
      {"unexpected_stored", "stored commands this run did not send (or not to this fresh node)"},
      {"fold", "accounts whose events do not fold (versions 1.., opened first, balance never negative)"},
      {"balance", "accounts whose balance is not accepted deposits minus withdrawals"},
      {"duplicate_not_answered_duplicate", "re-sends of accepted commands not answered as duplicates"},
      {"read_failed", "accounts whose events could not be read"},
  };
  const auto it = k_what.find(f.check);
  return f.check + ": " + std::to_string(f.count) + " " + (it == k_what.end() ? f.check : it->second) +
         " (e.g. " + f.example + ")";
}

nlohmann::ordered_json to_json(const verify_result& v) {
  nlohmann::ordered_json j;
  j["passed"] = v.passed;
  j["accounts_read"] = v.accounts_read;
  j["sample_accounts"] = v.sample_accounts;
  j["events_stored"] = v.events_stored;
  j["commands_accepted"] = v.accepted;
  j["commands_unknown"] = v.unknown;
  auto failures = nlohmann::ordered_json::array();
  for (const auto& f : v.failures)
    failures.push_back(
        {{"check", f.check}, {"count", f.count}, {"example", f.example}, {"text", failure_text(f)}});
  j["failures"] = std::move(failures);
  return j;
}

void print_text(const verify_result& v, std::ostream& out) {
  out << "  verify: " << v.accounts_read << " accounts read (" << v.sample_accounts << " in the sample), "
      << v.events_stored << " events stored, " << v.accepted << " commands accepted, " << v.unknown
      << " unknown (error answers)\n";
  for (const auto& f : v.failures) out << "  FAIL " << failure_text(f) << "\n";
  out << "  verification " << (v.passed ? "passed" : "FAILED") << "\n";
}

}  // namespace esflow::load
