#pragma once
// A tiny stand-in for an aggregate node running account.lua, for testing
// `esflow load`'s verification: POST /v1/commands and GET
// /v1/aggregates/Account/<id>/events (docs/contract.md sections 9-11) from
// in-memory maps, with one injected fault on the Nth accepted deposit:
//   lose:  answered accepted, never stored (a lost commit);
//   twice: stored two times (a commit applied twice);
//   shed:  every Nth command's first send answered 503 `unavailable` (a node
//          shedding load), stored when it is sent again.
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace esflow::load::testing {

enum class fault { none, lose, twice, shed };

class fake_bank_node {
 public:
  fake_bank_node(fault f, int fault_at) : _fault(f), _fault_at(fault_at) {
    // A worker per keep-alive connection: the load's setup clients and the verification's readers.
    _server.new_task_queue = [] { return new httplib::ThreadPool(64); };
    _server.Post("/v1/commands",
                 [this](const httplib::Request& req, httplib::Response& res) { command(req, res); });
    _server.Get(R"(/v1/aggregates/Account/([A-Za-z0-9_-]+)/events)",
                [this](const httplib::Request& req, httplib::Response& res) { events(req, res); });
    _port = _server.bind_to_any_port("127.0.0.1");
    _thread = std::thread([this] { _server.listen_after_bind(); });
    // Bound already: a connection waits in the backlog; the poll is for tidiness.
    for (int i = 0; i < 500 && !_server.is_running(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ~fake_bank_node() {
    _server.stop();
    _thread.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(_port); }

 private:
  struct account {
    bool open = false;
    std::int64_t balance = 0;
    std::vector<nlohmann::json> events;
  };
  using key = std::pair<std::string, std::string>;

  static void reject(httplib::Response& res, int status, const std::string& code) {
    res.status = status;
    res.set_content(
        nlohmann::json{{"status", "rejected"}, {"code", code}, {"message", code}, {"retryable", false}}
            .dump(),
        "application/json");
  }

  void command(const httplib::Request& req, httplib::Response& res) {
    const auto tenant = req.get_header_value("x-tenant-id");
    const auto body = nlohmann::json::parse(req.body, nullptr, false);
    if (!body.is_object()) return reject(res, 400, "invalid_command");
    const auto id = body.value("aggregate_id", std::string());
    const auto command_id = body.value("command_id", std::string());
    const auto payload = body.value("payload", nlohmann::json::object());
    if (!payload.is_object()) return reject(res, 400, "invalid_command");
    const auto type = payload.value("type", std::string());
    std::lock_guard lock(_mu);
    if (auto known = _answers.find({tenant, command_id}); known != _answers.end()) {
      auto again = known->second;
      again["duplicate"] = true;
      return res.set_content(again.dump(), "application/json");
    }
    if (_fault == fault::shed && ++_commands % _fault_at == 0 && _shed.insert({tenant, command_id}).second) {
      res.set_header("Retry-After", "1");
      return reject(res, 503, "unavailable");
    }
    auto& a = _accounts[{tenant, id}];
    std::string event_type;
    std::int64_t amount = 0;
    if (type == "open_account") {
      if (a.open) return reject(res, 422, "account_already_open");
      event_type = "account_opened";
      amount = payload.value("initial_balance", std::int64_t{0});
    } else if (type == "deposit" || type == "withdraw") {
      if (!a.open) return reject(res, 422, "account_not_open");
      amount = payload.value("amount", std::int64_t{0});
      if (type == "withdraw" && a.balance < amount) return reject(res, 422, "insufficient_funds");
      event_type = type == "deposit" ? "deposited" : "withdrawn";
    } else {
      return reject(res, 422, "unknown_command");
    }
    nlohmann::json event_payload = {{"type", event_type}};
    event_payload[event_type == "account_opened" ? "initial_balance" : "amount"] = amount;
    int copies = 1;
    if (type == "deposit" && ++_deposits == _fault_at)
      copies = _fault == fault::lose ? 0 : _fault == fault::twice ? 2 : 1;
    nlohmann::json events = nlohmann::json::array();
    for (int i = 0; i < copies; ++i) {
      a.open = true;
      a.balance += event_type == "withdrawn" ? -amount : amount;
      nlohmann::json e = {{"tenant_id", tenant},      {"aggregate_type", "Account"},
                          {"aggregate_id", id},       {"version", a.events.size() + 1},
                          {"event_type", event_type}, {"payload", event_payload},
                          {"command_id", command_id}};
      a.events.push_back(e);
      events.push_back(std::move(e));
    }
    nlohmann::json answer = {{"status", "accepted"},    {"aggregate_id", id}, {"version", a.events.size()},
                             {"position", ++_position}, {"duplicate", false}, {"events", events}};
    _answers[{tenant, command_id}] = answer;
    res.set_content(answer.dump(), "application/json");
  }

  void events(const httplib::Request& req, httplib::Response& res) {
    const auto after = std::stoull(req.has_param("after") ? req.get_param_value("after") : "0");
    const auto limit = std::stoull(req.has_param("limit") ? req.get_param_value("limit") : "100");
    std::lock_guard lock(_mu);
    const auto it = _accounts.find({req.get_header_value("x-tenant-id"), req.matches[1].str()});
    if (it == _accounts.end() || it->second.events.empty()) return reject(res, 404, "not_found");
    const auto& all = it->second.events;
    nlohmann::json page = nlohmann::json::array();
    for (auto v = after; v < all.size() && page.size() < limit; ++v) page.push_back(all[v]);
    const auto last = after + page.size();
    res.set_content(
        nlohmann::json{{"events", page},
                       {"next_after", last < all.size() ? nlohmann::json(last) : nlohmann::json()}}
            .dump(),
        "application/json");
  }

  fault _fault;
  int _fault_at;
  httplib::Server _server;
  std::thread _thread;
  int _port = 0;
  std::mutex _mu;
  std::map<key, account> _accounts;        // guarded by _mu
  std::map<key, nlohmann::json> _answers;  // guarded by _mu: by (tenant, command id)
  int _deposits = 0;                       // guarded by _mu
  int _commands = 0;                       // guarded by _mu
  std::set<key> _shed;                     // guarded by _mu: commands answered unavailable once
  std::uint64_t _position = 0;             // guarded by _mu
};

}  // namespace esflow::load::testing
