// The bank-account workload (bench/README.md). The generator follows the
// reference implementation of the team's workload generator step for step
// (mulberry32 PRNG, UUIDs from its draws), so a seed names one sequence
// whichever tool produced it.
#include "stages/bank_workload.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <functional>
#include <optional>

namespace esflow::stages {
namespace {

// Mix and shape of the workload (bench/README.md).
constexpr std::uint32_t k_dup_per_mille = 10;
constexpr std::uint32_t k_deposit_percent = 70;
constexpr std::uint32_t k_min_amount = 1, k_max_amount = 100;
constexpr std::int64_t k_dup_min_back = 256, k_dup_max_back = 4096;
constexpr std::int64_t k_sample_size = 100;

class mulberry32 {
 public:
  explicit mulberry32(std::uint32_t seed) : _a(seed) {}
  std::uint32_t operator()() {
    _a += 0x6d2b79f5U;
    std::uint32_t t = _a;
    t = (t ^ (t >> 15)) * (t | 1U);
    t ^= t + (t ^ (t >> 7)) * (t | 61U);
    return t ^ (t >> 14);
  }

 private:
  std::uint32_t _a;
};

std::string uuid_v4_from(mulberry32& rng) {
  std::uint8_t b[16];
  for (int w = 0; w < 4; ++w) {
    const auto x = rng();
    for (int i = 0; i < 4; ++i) b[w * 4 + i] = static_cast<std::uint8_t>(x >> (24 - 8 * i));
  }
  b[6] = static_cast<std::uint8_t>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<std::uint8_t>((b[8] & 0x3f) | 0x80);
  std::string s;
  char hex[3];
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s += '-';
    std::snprintf(hex, sizeof hex, "%02x", b[i]);
    s += hex;
  }
  return s;
}

std::string tenant_of(std::int64_t k, std::int64_t tenants) {
  return "tenant-" + std::to_string(k % tenants);
}

std::string account_id(std::int64_t k) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "acc-%05lld", static_cast<long long>(k));
  return buf;
}

bank_command record(const nlohmann::json& j) {
  bank_command c;
  c.setup = j.at("phase").get<std::string>() == "setup";
  c.seq = j.value("seq", std::int64_t{0});
  c.command_id = j.at("command_id").get<std::string>();
  c.tenant = j.at("tenant").get<std::string>();
  c.account_id = j.at("account_id").get<std::string>();
  c.type = j.at("type").get<std::string>();
  const auto& data = j.at("data");
  c.amount = c.type == "open_account" ? data.value("initial_balance", std::int64_t{0})
                                      : data.at("amount").get<std::int64_t>();
  c.duplicate_of = j.value("duplicate_of", std::int64_t{-1});
  return c;
}

// Each non-blank line of a JSON Lines file, parsed (one not an object is
// `not_object`); `on` returns the problem to stop at, or nullopt. Problems
// and JSON type errors come back as path:line.
using json_line_handler = std::function<std::optional<std::string>(nlohmann::json&, std::string&)>;
status for_each_json_line(const std::string& path, const std::string& not_object,
                          const json_line_handler& on) {
  std::ifstream in(path);
  if (!in) return error::make(errc::invalid_config, "cannot read workload file '" + path + "'");
  int line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    std::optional<std::string> problem;
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      problem = not_object;
    } else {
      try {
        problem = on(j, line);
      } catch (const nlohmann::json::exception& e) {
        problem = std::string("workload record: ") + e.what();
      }
    }
    if (problem)
      return error::make(errc::invalid_config, path + ":" + std::to_string(line_no) + ": " + *problem);
  }
  return {};
}

}  // namespace

std::vector<bank_command> generate_bank_workload(const bank_workload_options& o) {
  mulberry32 id_rng(o.seed ^ 0x5bd1e995U);
  mulberry32 rng(o.seed);
  std::vector<bank_command> out;
  out.reserve(static_cast<std::size_t>(o.accounts + o.commands));
  for (std::int64_t k = 0; k < o.accounts; ++k) {
    bank_command c;
    c.setup = true;
    c.seq = k;
    c.command_id = uuid_v4_from(id_rng);
    c.tenant = tenant_of(k, o.tenants);
    c.account_id = account_id(k);
    c.type = "open_account";
    out.push_back(std::move(c));
  }
  const auto run_start = out.size();
  std::vector<std::int64_t> deposits;  // run seqs of original deposits, ascending
  const std::uint32_t span = k_max_amount - k_min_amount + 1;
  for (std::int64_t i = 0; i < o.commands; ++i) {
    const auto r = rng();
    if (i >= k_dup_min_back && r % 1000 < k_dup_per_mille) {
      const auto lo = std::lower_bound(deposits.begin(), deposits.end(), i - k_dup_max_back);
      const auto hi = std::lower_bound(deposits.begin(), deposits.end(), i - k_dup_min_back + 1);
      if (hi > lo) {
        const auto j = lo[rng() % static_cast<std::uint32_t>(hi - lo)];
        bank_command c = out[run_start + static_cast<std::size_t>(j)];
        c.seq = i;
        c.duplicate_of = j;
        out.push_back(std::move(c));
        continue;
      }
    }
    const auto acct = static_cast<std::int64_t>(rng() % static_cast<std::uint32_t>(o.accounts));
    const bool deposit = rng() % 100 < k_deposit_percent;
    bank_command c;
    c.seq = i;
    c.amount = k_min_amount + rng() % span;
    c.type = deposit ? "deposit" : "withdraw";
    c.tenant = tenant_of(acct, o.tenants);
    c.account_id = account_id(acct);
    c.command_id = uuid_v4_from(id_rng);
    if (deposit) deposits.push_back(i);
    out.push_back(std::move(c));
  }
  return out;
}

std::vector<bank_account> bank_workload_sample(const bank_workload_options& o) {
  mulberry32 rng(o.seed ^ 0x2545f491U);
  const auto n = std::min(k_sample_size, o.accounts);
  std::vector<bool> chosen(static_cast<std::size_t>(o.accounts), false);
  std::vector<bank_account> out;
  // Bounded: n <= accounts distinct values exist, and mulberry32 visits every
  // residue; the cap only guards against a broken PRNG.
  for (std::int64_t draws = 0; static_cast<std::int64_t>(out.size()) < n && draws < (n << 20); ++draws) {
    const auto k = static_cast<std::int64_t>(rng() % static_cast<std::uint32_t>(o.accounts));
    if (chosen[static_cast<std::size_t>(k)]) continue;
    chosen[static_cast<std::size_t>(k)] = true;
    out.push_back({tenant_of(k, o.tenants), account_id(k)});
  }
  return out;
}

std::string sample_line(const std::vector<bank_account>& sample) {
  nlohmann::ordered_json accounts = nlohmann::ordered_json::array();
  for (const auto& a : sample) accounts.push_back({{"tenant", a.tenant}, {"account_id", a.account_id}});
  nlohmann::ordered_json j = {{"phase", "sample"}};
  j["accounts"] = std::move(accounts);
  return j.dump();
}

result<bank_workload> read_bank_workload(const std::string& path) {
  bank_workload w;
  std::int64_t run_seq = 0;  // duplicate_of names a run seq: seqs must be the run's positions
  const std::string not_record = "not a workload record (a JSON object with \"phase\" setup, run or sample)";
  auto read = for_each_json_line(
      path, not_record, [&](nlohmann::json& j, std::string&) -> std::optional<std::string> {
        if (!j.contains("phase")) return not_record;
        if (j.at("phase") == "sample") {
          for (const auto& a : j.at("accounts"))
            w.sample.push_back({a.at("tenant").get<std::string>(), a.at("account_id").get<std::string>()});
          return std::nullopt;
        }
        auto c = record(j);
        if (!c.setup && c.seq != run_seq++)
          return "run records must come in seq order from 0 (seq " + std::to_string(c.seq) + ")";
        if (c.duplicate_of >= c.seq) return std::string("duplicate_of must name an earlier run seq");
        w.commands.push_back(std::move(c));
        return std::nullopt;
      });
  if (!read.ok()) return std::move(read).err();
  return w;
}

std::string command_body(const bank_command& c, bool with_tenant) {
  nlohmann::json payload = {{"type", c.type}};
  payload[c.type == "open_account" ? "initial_balance" : "amount"] = c.amount;
  nlohmann::json j;
  if (with_tenant) j["tenant_id"] = c.tenant;
  j["command_id"] = c.command_id;
  j["aggregate_type"] = "Account";
  j["aggregate_id"] = c.account_id;
  j["payload"] = std::move(payload);
  return j.dump();
}

std::string workload_line(const bank_command& c) {
  // nlohmann::ordered_json keeps the generator's key order.
  nlohmann::ordered_json j = {{"phase", c.setup ? "setup" : "run"}, {"seq", c.seq},
                              {"command_id", c.command_id},         {"tenant", c.tenant},
                              {"account_id", c.account_id},         {"type", c.type}};
  j["data"] = c.type == "open_account" ? nlohmann::ordered_json{{"initial_balance", c.amount}}
                                       : nlohmann::ordered_json{{"amount", c.amount}};
  if (c.duplicate_of >= 0) j["duplicate_of"] = c.duplicate_of;
  return j.dump();
}

result<std::vector<workload_item>> read_workload_file(const std::string& path, bool with_tenant) {
  std::vector<workload_item> items;
  auto read = for_each_json_line(
      path, "not a JSON object (a workload record or a command envelope per line)",
      [&](nlohmann::json& j, std::string& line) -> std::optional<std::string> {
        if (j.contains("phase")) {
          if (j.at("phase") == "sample") return std::nullopt;  // the generator's verification sample
          auto c = record(j);
          items.push_back({with_tenant ? c.tenant : std::string(), command_body(c, with_tenant)});
        } else if (j.contains("aggregate_type")) {
          std::string tenant;
          if (j.contains("tenant_id") && j["tenant_id"].is_string())
            tenant = j["tenant_id"].get<std::string>();
          items.push_back({std::move(tenant), std::move(line)});
        } else {
          return "neither a workload record (\"phase\") nor a command envelope (\"aggregate_type\")";
        }
        return std::nullopt;
      });
  if (!read.ok()) return std::move(read).err();
  return items;
}

}  // namespace esflow::stages
