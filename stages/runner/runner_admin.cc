#include "stages/runner/runner_admin.h"

#include "common/errc.h"
#include "common/service_registry.h"
#include "graph/pipeline_spec.h"
#include "schemas/ids.h"
#include "stages/nats/stages.h"
#include "stages/runner/runner_metrics.h"
#include "stages/runner/runner_service.h"
#include "storage/keys.h"
#include "storage/keyspace.h"
#include "transport/http_server.h"
#include "transport/node_host.h"

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <map>
#include <mutex>
#include <set>
#include <tuple>

namespace esflow::runner {
namespace {

using nlohmann::json;

constexpr std::size_t k_default_limit = 100;
constexpr std::size_t k_max_limit = 1000;
constexpr std::size_t k_max_replay_scan = 100'000;  // log positions per replay call
constexpr std::size_t k_max_listed_instances = 100;

// --- base64url (RFC 4648 section 5, no padding) -----------------------------------------
constexpr std::string_view k_alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string base64url(std::string_view bytes) {
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : bytes) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(k_alphabet[(acc >> bits) & 0x3F]);
    }
  }
  if (bits > 0) out.push_back(k_alphabet[(acc << (6 - bits)) & 0x3F]);
  return out;
}

std::optional<std::string> unbase64url(std::string_view text) {
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    const auto v = k_alphabet.find(c);
    if (v == std::string_view::npos) return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  if (bits >= 6 || (acc & ((1U << bits) - 1)) != 0) return std::nullopt;  // not canonical
  return out;
}

std::optional<std::pair<std::string, std::uint64_t>> parse_key(std::string_view key) {
  std::size_t pos = 0;
  std::string_view source;
  if (!storage::keys::get_str(key, pos, source) || key.size() - pos != 8) return std::nullopt;
  return std::pair<std::string, std::uint64_t>{std::string(source),
                                               storage::keys::get_u64_be(key.substr(pos))};
}

// --- answers ------------------------------------------------------------------------
void reply(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

void reply_error(httplib::Response& res, const error& e, int status = 0) {
  reply(res, status != 0 ? status : http_status(e.code),
        {{"status", "rejected"},
         {"code", e.code_text.empty() ? std::string(to_string(e.code)) : e.code_text},
         {"message", e.message},
         {"retryable", e.code == errc::unavailable}});
}

// --- the directory: every runner pipeline of the process, and its /info -----------------
struct entry {
  std::weak_ptr<runner_service> service;
  json info;  // the static part of the pipeline's /info
  bool saga_path = false;
  bool effect_path = false;
};

class admin_directory {
 public:
  void add(entry e) {
    std::lock_guard lock(_mu);
    _entries.push_back(std::move(e));
  }
  std::vector<std::pair<std::shared_ptr<runner_service>, entry>> all() {
    std::lock_guard lock(_mu);
    std::vector<std::pair<std::shared_ptr<runner_service>, entry>> out;
    for (const auto& e : _entries)
      if (auto s = e.service.lock()) out.emplace_back(std::move(s), e);
    return out;
  }
  // The distinct node stores (one per data directory).
  std::vector<std::shared_ptr<runner_service>> by_store() {
    std::vector<std::shared_ptr<runner_service>> out;
    std::set<const void*> stores;
    for (auto& [s, e] : all())
      if (stores.insert(&s->store()).second) out.push_back(s);
    return out;
  }
  std::atomic<bool> routes_served{false};  // the first pipeline registers the routes and /info

 private:
  std::mutex _mu;
  std::vector<entry> _entries;
};

// --- quarantine -----------------------------------------------------------------------
json item_json(const std::string& key, const std::string& value) {
  auto parsed = parse_key(key);
  auto record = json::parse(value, nullptr, false);
  if (record.is_discarded()) record = value;
  json item = {{"id", base64url(key)},
               {"source", parsed ? parsed->first : std::string()},
               {"position", parsed ? parsed->second : 0},
               {"reason", record.is_object() ? record.value("reason", "") : std::string()},
               {"attempts", nullptr},
               {"record", record}};
  if (record.is_object()) {
    if (record.contains("attempts"))
      item["attempts"] = record["attempts"];
    else if (record.contains("deliveries"))
      item["attempts"] = record["deliveries"];
    if (record.contains("tenant_id")) item["tenant_id"] = record["tenant_id"];
  }
  return item;
}

std::size_t limit_of(const httplib::Request& req, std::optional<error>& problem) {
  if (!req.has_param("limit")) return k_default_limit;
  const auto text = req.get_param_value("limit");
  std::size_t n = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || end != text.data() + text.size() || n == 0 || n > k_max_limit)
    problem = error::make(errc::invalid_command,
                          "limit must be an integer from 1 to " + std::to_string(k_max_limit));
  return n;
}

void handle_list(admin_directory& dir, const httplib::Request& req, httplib::Response& res) {
  std::optional<error> problem;
  const auto limit = limit_of(req, problem);
  if (problem) return reply_error(res, *problem);
  std::string after;
  if (req.has_param("after")) {
    auto key = unbase64url(req.get_param_value("after"));
    if (!key || !parse_key(*key))
      return reply_error(res, error::make(errc::invalid_command, "after is not a quarantine id"));
    after = *key;
  }
  std::map<std::string, std::string> merged;  // key order across the stores
  for (const auto& s : dir.by_store()) {
    storage::keyspace space(s->store().database(), storage::cf::quarantine);
    auto rows = space.scan({}, after, limit + 1);
    if (!rows.ok()) return reply_error(res, rows.err());
    for (auto& kv : rows.value()) merged.emplace(std::move(kv.key), std::move(kv.value));
  }
  json items = json::array();
  json next = nullptr;
  for (const auto& [k, v] : merged) {
    if (items.size() == limit) {
      next = items.back()["id"];
      break;
    }
    items.push_back(item_json(k, v));
  }
  reply(res, 200, {{"items", items}, {"next", next}});
}

struct found_record {
  std::shared_ptr<runner_service> service;  // whose store holds it
  std::string key;
  std::string value;
};

// The record of an id: an answer is written (400 / 404 / 5xx) when nullopt.
std::optional<found_record> find_record(admin_directory& dir, const std::string& id, httplib::Response& res) {
  auto key = unbase64url(id);
  if (!key || !parse_key(*key)) {
    reply_error(res, error::make(errc::invalid_command, "'" + id + "' is not a quarantine id"));
    return std::nullopt;
  }
  for (const auto& s : dir.by_store()) {
    storage::keyspace space(s->store().database(), storage::cf::quarantine);
    auto v = space.get(*key);
    if (!v.ok()) {
      reply_error(res, v.err());
      return std::nullopt;
    }
    if (v.value()) return found_record{s, *key, *v.value()};
  }
  reply_error(res, error::make(errc::not_found, "no quarantined input '" + id + "' on this node"));
  return std::nullopt;
}

void handle_show(admin_directory& dir, const httplib::Request& req, httplib::Response& res) {
  if (auto f = find_record(dir, req.matches[1], res)) reply(res, 200, item_json(f->key, f->value));
}

// The inputs of a runner saga record; an error names what is missing.
result<std::vector<saga_input>> inputs_of_record(const json& r) {
  std::vector<saga_input> out;
  for (const auto& i : r["inputs"]) {
    if (!i.is_object() || !i.contains("input_id") || !i["input_id"].is_string() || !i.contains("kind") ||
        !i["kind"].is_string() || !i.contains("input") || !i["input"].is_object())
      return error::make(errc::invalid_command, "the record's inputs are not {input_id, kind, input}");
    out.push_back({r.value("tenant_id", ""), r.value("saga", ""), r.value("correlation_id", ""),
                   i["input_id"].get<std::string>(), i["kind"].get<std::string>(), i["input"].dump(), ""});
  }
  if (out.empty()) return error::make(errc::invalid_command, "the record has no inputs");
  return out;
}

void handle_retry(admin_directory& dir, const httplib::Request& req, httplib::Response& res) {
  const std::string id = req.matches[1];
  auto f = find_record(dir, id, res);
  if (!f) return;
  const auto r = json::parse(f->value, nullptr, false);
  const auto conflict = [&](const std::string& why) {
    reply_error(res, error::make(errc::invalid_command, why), 409);
  };
  if (!r.is_object()) return conflict("the record is not JSON: nothing to retry");
  if (r.contains("stream_sequence") || (r.contains("subject") && r.contains("body"))) {
    // A JetStream consumer's record: the server's message is terminated, so the
    // consumer that quarantined it takes it in again from here.
    auto ws = f->service->store().begin();
    storage::keyspace quarantine(f->service->store().database(), storage::cf::quarantine);
    quarantine.erase(ws, f->key);
    if (auto st = f->service->store().commit(ws); !st.ok()) return reply_error(res, st.err());
    if (auto st = stages::retry_quarantined_record(f->service->store(), r); !st.ok()) {
      // Not taken: the record goes back, unchanged.
      auto back = f->service->store().begin();
      quarantine.put(back, f->key, f->value);
      if (auto put = f->service->store().commit(back); !put.ok()) return reply_error(res, put.err());
      if (st.err().code == errc::not_found)
        return conflict(st.err().message + ": retry it on the node that quarantined it");
      return reply_error(res, st.err());
    }
    if (auto* m = f->service->metrics()) m->retried(1);
    return reply(res, 202,
                 {{"status", "accepted"},
                  {"id", id},
                  {"source", r.value("source", "")},
                  {"stream_sequence", r.value("stream_sequence", std::uint64_t{0})},
                  {"inputs", 1}});
  }
  if (!r.contains("saga") || !r.contains("inputs") || !r["inputs"].is_array())
    return conflict("only a runner saga record (with saga and inputs) is retried here; this one (source " +
                    parse_key(f->key)->first + ") is not");
  const auto pipeline = r.value("pipeline", "");
  const auto saga = r.value("saga", "");
  std::shared_ptr<runner_service> service;
  for (auto& [s, e] : dir.all())
    if (s->pipeline() == pipeline && s->find_saga(saga) != nullptr && &s->store() == &f->service->store())
      service = s;
  if (!service)
    return conflict("the runner pipeline '" + pipeline + "' with saga '" + saga +
                    "' does not run on this node's data directory");
  auto inputs = inputs_of_record(r);
  if (!inputs.ok()) return conflict(inputs.err().message);
  auto ws = service->store().begin();
  storage::keyspace markers(service->store().database(), storage::cf::dedupe);
  for (const auto& in : inputs.value())
    markers.erase(ws, storage::keys::dedupe(in.tenant, service->marker_id(in)));
  storage::keyspace quarantine(service->store().database(), storage::cf::quarantine);
  quarantine.erase(ws, f->key);
  if (auto st = service->store().commit(ws); !st.ok()) return reply_error(res, st.err());
  runner_service::retry_item item;
  item.source = r.value("source", "log");
  item.position = r.value("position", std::uint64_t{0});
  item.attempts = r.value("attempts", 1) + 1;
  item.inputs = std::move(inputs).value();
  const auto n = item.inputs.size();
  service->enqueue_retries({std::move(item)});
  if (auto* m = service->metrics()) m->retried(n);
  reply(res, 202,
        {{"status", "accepted"},
         {"id", id},
         {"pipeline", pipeline},
         {"saga", saga},
         {"correlation_id", r.value("correlation_id", "")},
         {"inputs", n}});
}

// --- replay ---------------------------------------------------------------------------
void handle_replay(admin_directory& dir, const httplib::Request& req, httplib::Response& res) {
  const std::string saga_name = req.matches[1];
  if (saga_name.empty())
    return reply_error(
        res, error::make(errc::invalid_command, "the saga is required: /admin/sagas/<saga>/replay"));
  const auto body = json::parse(req.body.empty() ? std::string("{}") : req.body, nullptr, false);
  if (!body.is_object())
    return reply_error(res, error::make(errc::invalid_command, "the body is not a JSON object"));
  std::shared_ptr<runner_service> service;
  for (auto& [s, e] : dir.all())
    if (s->find_saga(saga_name) != nullptr) service = s;
  if (!service)
    return reply_error(res, error::make(errc::not_found, "no saga '" + saga_name + "' on this node"));
  if (body.contains("tenant_id") && !body["tenant_id"].is_string())
    return reply_error(res, error::make(errc::invalid_command, "tenant_id must be a string"));
  if (!body.contains("tenant_id") && !service->single_tenant())
    return reply_error(res, error::make(errc::invalid_tenant, "tenant_id is required (multi-tenant node)"));
  const auto tenant = body.value("tenant_id", "");
  if (auto t = schemas::validate_tenant(tenant, service->single_tenant()); !t.ok())
    return reply_error(res, t.err());
  if (body.contains("from") && !body["from"].is_number_unsigned())
    return reply_error(res,
                       error::make(errc::invalid_command, "from must be a log position (an integer >= 0)"));
  if (body.contains("confirm") && !body["confirm"].is_boolean())
    return reply_error(res, error::make(errc::invalid_command, "confirm must be a boolean"));
  const auto from = body.value("from", std::uint64_t{0});
  const bool confirm = body.value("confirm", false);
  const std::vector<saga_config> only{*service->find_saga(saga_name)};

  auto head = service->log().last_position();
  if (!head.ok()) return reply_error(res, head.err());
  // ONE message per instance with all its inputs in log order (saga.run runs them one after the other
  // on one record): messages of one instance pipelined through load and run could each read the
  // record before the other's transition.
  std::vector<runner_service::retry_item> items;
  std::map<std::string, std::size_t> by_instance;  // correlation id -> index in items
  std::vector<std::string> instances;
  std::set<std::string> instance_set;
  std::size_t inputs = 0, scanned = 0;
  schemas::position_t after = from;
  bool truncated = false;
  while (after < head.value()) {
    if (scanned >= k_max_replay_scan) {
      truncated = true;
      break;
    }
    auto page = service->log().read_from(after, std::min<std::size_t>(1000, k_max_replay_scan - scanned));
    if (!page.ok()) return reply_error(res, page.err());
    if (page->empty()) break;
    for (const auto& pc : page.value()) {
      after = pc.position;
      ++scanned;
      if (pc.commit.tenant_id != tenant) continue;
      for (auto& in : inputs_of_commit(only, pc.commit)) {
        ++inputs;
        if (instance_set.insert(in.correlation_id).second && instances.size() < k_max_listed_instances)
          instances.push_back(in.correlation_id);
        auto [it, fresh] = by_instance.emplace(in.correlation_id, items.size());
        if (fresh) items.push_back({"log", pc.position, 1, {}, 0});
        items[it->second].inputs.push_back(std::move(in));
      }
    }
  }
  if (confirm && !items.empty()) {
    auto ws = service->store().begin();
    storage::keyspace markers(service->store().database(), storage::cf::dedupe);
    for (const auto& item : items)
      for (const auto& in : item.inputs)
        markers.erase(ws, storage::keys::dedupe(in.tenant, service->marker_id(in)));
    if (auto st = service->store().commit(ws); !st.ok()) return reply_error(res, st.err());
    service->enqueue_retries(std::move(items));
    if (auto* m = service->metrics()) m->retried(inputs);
  }
  json answer = {
      {"dry_run", !confirm},    {"pipeline", service->pipeline()},
      {"saga", saga_name},      {"tenant_id", tenant},
      {"from", from},           {"to", truncated ? after : std::max<schemas::position_t>(head.value(), from)},
      {"head", head.value()},   {"scanned", scanned},
      {"inputs", inputs},       {"instance_count", instance_set.size()},
      {"instances", instances}, {"truncated", truncated}};
  if (truncated)
    answer["message"] = "stopped after " + std::to_string(k_max_replay_scan) +
                        " log positions: call again with from=" + std::to_string(after);
  reply(res, confirm ? 202 : 200, answer);
}

// --- /info ----------------------------------------------------------------------------
entry describe(const graph::pipeline_spec& p, const std::shared_ptr<runner_service>& s) {
  entry e;
  e.service = s;
  for (const auto& st : p.stages) {
    if (st.kind.rfind("saga.", 0) == 0 || st.kind.rfind("outbox.", 0) == 0 ||
        st.kind.rfind("schedule.", 0) == 0)
      e.saga_path = true;
    if (st.kind.rfind("effect.", 0) == 0) e.effect_path = true;
  }
  json sagas = json::array();
  for (const auto& sg : s->sagas()) {
    json triggers = json::array();
    for (const auto& t : sg.triggers)
      triggers.push_back({{"aggregate_type", t.aggregate_type}, {"events", t.events}});
    sagas.push_back({{"name", sg.name},
                     {"program", sg.program_path},
                     {"triggers", triggers},
                     {"correlate_by", sg.correlate_by}});
  }
  json effects = json::array();
  for (const auto& ef : s->effects())
    effects.push_back({{"name", ef.name},
                       {"provider", std::string(to_string(ef.provider))},
                       {"url", ef.url},
                       {"timeout_ms", ef.timeout.count()},
                       {"retries", ef.retries},
                       {"authorization", !ef.secret_file.empty()}});  // never the secret
  json reads = json::array(), writes = json::array(), checkpoints = json::array();
  if (e.saga_path) {
    reads.push_back("event log");
    reads.push_back("WORKFLOW_EVENTS");
    writes.push_back("WORKFLOW_COMMANDS");
    writes.push_back("WORKFLOW_EVENTS");
    checkpoints.push_back(s->checkpoint_name("log"));
    checkpoints.push_back(s->checkpoint_name("events"));
  }
  if (e.effect_path) {
    reads.push_back("WORKFLOW_COMMANDS");
    writes.push_back("WORKFLOW_EVENTS");
    checkpoints.push_back(s->checkpoint_name("commands"));
  }
  std::sort(writes.begin(), writes.end());
  writes.erase(std::unique(writes.begin(), writes.end()), writes.end());
  e.info = {{"mode", e.saga_path && e.effect_path ? "combined" : (e.effect_path ? "effect" : "saga")},
            {"event_log", p.settings.str("event_log")},
            {"streams", {{"reads", reads}, {"writes", writes}}},
            {"checkpoints", checkpoints},
            // Embedded backend: the checkpoints are the consumers (JetStream durables when on NATS).
            {"consumers", checkpoints},
            {"sagas", sagas},
            {"effects", effects}};
  return e;
}

json info_of(admin_directory& dir) {
  json out = json::object();
  for (auto& [s, e] : dir.all()) {
    auto info = e.info;
    json positions = json::object();
    for (const auto& name : info["checkpoints"]) {
      auto cp = s->store().checkpoints().get({}, name.get<std::string>());
      positions[name.get<std::string>()] = cp.ok() ? json(cp.value().value_or(0)) : json(nullptr);
    }
    info["checkpoint_positions"] = positions;
    out[s->pipeline()] = std::move(info);
  }
  return out;
}

// Records in the quarantine family of every store, counted in pages (bounded: the
// call runs on a control-plane thread and must answer).
std::pair<std::uint64_t, bool> quarantine_count(admin_directory& dir, std::optional<error>& problem) {
  std::uint64_t n = 0;
  for (const auto& s : dir.by_store()) {
    storage::keyspace space(s->store().database(), storage::cf::quarantine);
    std::string after;
    for (;;) {
      if (n >= k_max_quarantine_count) return {n, true};
      auto rows = space.scan({}, after, 1000);
      if (!rows.ok()) {
        problem = rows.err();
        return {n, false};
      }
      n += rows->size();
      if (rows->size() < 1000) break;
      after = rows->back().key;
    }
  }
  return {std::min(n, k_max_quarantine_count), n > k_max_quarantine_count};
}

}  // namespace

result<runner_status> collect_runner_status(esflow::service_registry& services) {
  auto dir = services.find<admin_directory>("runner.admin");
  std::vector<std::pair<std::shared_ptr<runner_service>, entry>> pipelines;
  if (dir) pipelines = dir->all();
  if (pipelines.empty()) return error::make(errc::not_found, "this process runs no runner pipeline");
  runner_status st;
  if (auto host = services.find<transport::node_host>("")) {
    const auto r = host->ready();
    st.ready = r.ok;
    st.ready_detail = r.detail;
    st.draining = host->drain_requested();
  }
  json by_pipeline = info_of(*dir);
  std::set<const void*> counted;  // outbox depth once per store (pipelines may share one)
  for (auto& [s, e] : pipelines) {
    auto outbox = s->outbox_json();
    if (!outbox.ok()) return std::move(outbox).err();
    auto j = json::parse(outbox.value(), nullptr, false);
    const bool first = counted.insert(&s->store()).second;
    if (j.is_object())
      for (const auto& item : j["items"])
        if (first) st.outbox_depth += item.value("depth", std::uint64_t{0});
    by_pipeline[s->pipeline()]["outbox"] = std::move(j);
    const std::string mode = e.info.value("mode", "");
    st.mode = st.mode.empty() || st.mode == mode ? mode : "combined";
  }
  std::optional<error> problem;
  std::tie(st.quarantine_count, st.quarantine_truncated) = quarantine_count(*dir, problem);
  if (problem) return std::move(*problem);
  st.json = json{{"mode", st.mode},
                 {"ready", st.ready},
                 {"ready_detail", st.ready_detail},
                 {"draining", st.draining},
                 {"outbox_depth", st.outbox_depth},
                 {"quarantine_count", st.quarantine_count},
                 {"quarantine_truncated", st.quarantine_truncated},
                 {"pipelines", by_pipeline}}
                .dump();
  return st;
}

std::string quarantine_id(std::string_view source, std::uint64_t position) {
  return base64url(storage::keys::quarantine(source, position));
}

std::optional<std::pair<std::string, std::uint64_t>> parse_quarantine_id(std::string_view id) {
  auto key = unbase64url(id);
  if (!key) return std::nullopt;
  return parse_key(*key);
}

status attach_runner_operations(const graph::node_kind_init& init,
                                const std::shared_ptr<runner_service>& service) {
  auto host = init.services.find<transport::node_host>("");
  if (!service->metrics()) {
    std::vector<std::string> effects;
    for (const auto& e : service->effects()) effects.push_back(e.name);
    service->set_metrics(
        std::make_shared<runner_metrics>(host ? &host->metrics() : nullptr, service->pipeline(), effects));
  }
  auto dir = init.services.get_or_create<admin_directory>("runner.admin", [] {
    return result<std::shared_ptr<admin_directory>>(std::make_shared<admin_directory>());
  });
  if (!dir.ok()) return std::move(dir).err();
  dir.value()->add(describe(init.pipeline, service));
  auto http = init.services.find<transport::http_server>();
  if (dir.value()->routes_served.exchange(true)) return {};
  std::weak_ptr<admin_directory> weak = dir.value();
  if (host)
    host->set_info("runner", [weak] {
      auto d = weak.lock();
      return d ? info_of(*d) : json::object();
    });
  if (!http) return {};
  auto& server = http->routes();
  auto route = [weak](void (*handler)(admin_directory&, const httplib::Request&, httplib::Response&)) {
    return [weak, handler](const httplib::Request& req, httplib::Response& res) {
      if (auto d = weak.lock())
        handler(*d, req, res);
      else
        reply_error(res, error::make(errc::unavailable, "the runner is stopping"));
    };
  };
  server.Get("/admin/quarantine", route(handle_list));
  server.Get(R"(/admin/quarantine/([^/]+))", route(handle_show));
  server.Post(R"(/admin/quarantine/([^/]+)/retry)", route(handle_retry));
  server.Post(R"(/admin/sagas/([^/]*)/replay)", route(handle_replay));
  return {};
}

}  // namespace esflow::runner
