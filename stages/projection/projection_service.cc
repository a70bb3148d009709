#include "stages/projection/projection_service.h"

#include "common/log.h"
#include "common/service_registry.h"
#include "graph/pipeline_spec.h"
#include "schemas/json_encode.h"
#include "stages/node_env.h"
#include "stages/projection/projection_metrics.h"
#include "stages/projection/row_index.h"
#include "transport/nats/headers.h"
#include "transport/nats/nats_connection.h"
#include "transport/nats/nats_link.h"
#include "transport/nats/subjects.h"
#include "transport/node_host.h"

#include <nats/nats.h>

#include <algorithm>

namespace esflow::projection {

runtime::sandbox& lane_sandboxes::get(std::size_t view_index, const view_config& v) {
  if (_by_view.size() <= view_index) _by_view.resize(view_index + 1);
  auto& sb = _by_view[view_index];
  if (!sb) sb = std::make_unique<runtime::sandbox>(runtime::sandbox_options{v.gas, v.memory});
  return *sb;
}

std::string view_checkpoint_name(const view_config& v) { return "view:" + v.name; }

result<std::shared_ptr<projection_service>> projection_service::for_pipeline(
    const graph::node_kind_init& init) {
  const auto dir = stages::data_dir_of(init.pipeline);
  return init.services.get_or_create<projection_service>(
      "projection:" + dir + ":" + init.pipeline.name, [&]() -> result<std::shared_ptr<projection_service>> {
        std::shared_ptr<projection_service> s(new projection_service());
        s->_pipeline = init.pipeline.name;
        s->_single_tenant = init.pipeline.settings.str("tenancy") == "single";
        auto it = init.pipeline.sections.find("views");
        auto views = parse_views(it == init.pipeline.sections.end() ? YAML::Node() : it->second,
                                 init.pipeline.file, init.pipeline.base_dir, s->_programs);
        if (!views.ok()) return std::move(views).err();
        s->_views = std::move(views).value();
        auto store = stages::node_store_for(init.pipeline, init.services);
        if (!store.ok()) return std::move(store).err();
        auto log = stages::event_log_for(init.pipeline, init.services);
        if (!log.ok()) return std::move(log).err();
        s->_store = std::move(store).value();
        s->_log = std::move(log).value();
        auto host = init.services.find<transport::node_host>("");
        std::vector<std::string> names;
        for (const auto& v : s->_views) names.push_back(v.name);
        s->_metrics = std::make_unique<projection_metrics>(host ? &host->metrics() : nullptr, names);
        s->_rows = std::make_unique<std::atomic<std::int64_t>[]>(s->_views.size());
        watch_limits limits;
        for (const auto& st : init.pipeline.stages) {
          if (st.kind != "projection.notify") continue;
          limits.max_watchers = static_cast<std::size_t>(st.params.integer("max_watches"));
          limits.buffer_events = static_cast<std::size_t>(st.params.integer("watch_buffer"));
        }
        s->_watches = std::make_unique<view_watches>(limits);
        if (auto st = s->count_rows(); !st.ok()) return std::move(st).err();
        if (const auto url = init.pipeline.settings.str("nats_url"); !url.empty()) {
          auto link = nats::nats_link::for_url(init.services, url);
          if (!link.ok()) return std::move(link).err();
          s->_nats = link.value()->shared_connection();
        }
        return s;
      });
}

projection_service::~projection_service() = default;

const view_config* projection_service::find_view(std::string_view name) const {
  for (const auto& v : _views)
    if (v.name == name) return &v;
  return nullptr;
}

bool projection_service::follows(std::string_view aggregate_type) const {
  return std::any_of(_views.begin(), _views.end(),
                     [&](const view_config& v) { return v.follows(aggregate_type); });
}

status projection_service::count_rows() {
  for (std::size_t i = 0; i < _views.size(); ++i) {
    std::int64_t n = 0;
    auto st = _store->readmodels().for_each_row(_views[i].name, [&](auto, auto, std::string_view value) {
      auto r = decode_row(value);
      if (r && !r->deleted) ++n;
      return true;
    });
    if (!st.ok()) return st;
    _rows[i].store(n);
  }
  return {};
}

std::int64_t projection_service::rows(const view_config& v) const {
  return _rows[static_cast<std::size_t>(&v - _views.data())].load();
}

result<schemas::position_t> projection_service::start_position() {
  std::optional<schemas::position_t> lowest;
  for (const auto& v : _views) {
    auto cp = _store->checkpoints().get({}, view_checkpoint_name(v));
    if (!cp.ok()) return std::move(cp).err();
    const auto p = cp.value().value_or(0);
    lowest = lowest ? std::min(*lowest, p) : p;
  }
  return lowest.value_or(0);
}

status projection_service::write_checkpoints(schemas::position_t p) {
  auto ws = _store->begin();
  for (const auto& v : _views) _store->checkpoints().put(ws, {}, view_checkpoint_name(v), p);
  return _store->commit_unsynced(ws);
}

std::string projection_service::pending_key(const std::string& tenant, const view_config& v,
                                            const std::string& key) const {
  std::string k;
  k.reserve(tenant.size() + v.name.size() + key.size() + 2);
  k += tenant;
  k += '\x1f';
  k += v.name;
  k += '\x1f';
  k += key;
  return k;
}

result<std::optional<row_value>> projection_service::current_row(const std::string& tenant,
                                                                 const view_config& v,
                                                                 const std::string& key) {
  {
    std::lock_guard lock(_pending_mu);
    if (auto it = _pending.find(pending_key(tenant, v, key)); it != _pending.end())
      return std::optional(it->second);
  }
  auto stored = _store->readmodels().get(tenant, v.name, key);
  if (!stored.ok()) return std::move(stored).err();
  if (!stored.value()) return std::optional<row_value>();
  auto r = decode_row(**stored);
  if (!r)
    return error::make(errc::internal, "stored row is not a row value",
                       "tenant=" + tenant + " view=" + v.name + " key=" + key);
  return std::optional(std::move(*r));
}

status projection_service::project_commit(lane_sandboxes& lanes, projection_context& ctx) {
  const auto& c = ctx.commit;
  const std::string key = c.aggregate_id;
  {
    std::lock_guard lock(_pending_mu);
    if (_poisoned.count(row_lane_key(ctx.tenant, key)) != 0)
      return error::make(errc::unavailable,
                         "an earlier commit of this row failed to store; re-reading the log",
                         "tenant=" + ctx.tenant + " key=" + key);
  }
  for (std::size_t i = 0; i < _views.size(); ++i) {
    const auto& v = _views[i];
    if (!v.follows(c.aggregate_type)) continue;
    auto cur = current_row(ctx.tenant, v, key);
    if (!cur.ok()) return std::move(cur).err();
    const auto& before = cur.value();
    if (before && before->position >= ctx.position) continue;  // a replay: the row holds this commit
    auto& sb = lanes.get(i, v);
    runtime::state_handle row;
    status st;
    if (before && !before->deleted) {
      auto h = sb.state_from_json(before->json);
      if (h.ok())
        row = std::move(h).value();
      else
        st = std::move(h).err();
    } else if (!v.uses_project()) {
      auto h = sb.initial_state(*v.program);
      if (h.ok())
        row = std::move(h).value();
      else
        st = std::move(h).err();
    }
    std::string event_json;
    for (const auto& e : c.events) {
      if (!st.ok()) break;
      if (v.uses_project()) {
        event_json.clear();
        schemas::append_event(event_json, e);
        st = sb.project(*v.program, row, event_json);
      } else {
        st = sb.apply(*v.program, row, e.payload_json);
      }
    }
    row_value after;
    if (st.ok()) {
      after.version = c.events.empty() ? (before ? before->version : 0) : c.events.back().version;
      after.position = ctx.position;
      after.deleted = !row.valid();
      if (row.valid()) {
        auto json = sb.state_to_json(row);
        if (json.ok())
          after.json = std::move(json).value();
        else
          st = std::move(json).err();
      }
    }
    if (!st.ok()) {
      auto e = st.err();
      e.context += (e.context.empty() ? "" : " ") + std::string("view=") + v.name + " tenant=" + ctx.tenant +
                   " aggregate=" + c.aggregate_type + "/" + key + " position=" + std::to_string(ctx.position);
      ESFLOW_WARN("projection", "view {} skips the commit at position {}: {}", v.name, ctx.position,
                  e.to_string());
      ctx.failures.push_back({&v, std::move(e)});
      continue;
    }
    {
      std::lock_guard lock(_pending_mu);
      _pending[pending_key(ctx.tenant, v, key)] = after;
    }
    ctx.changes.push_back({&v, key, before, std::move(after)});
  }
  return {};
}

status projection_service::store_commit(projection_context& ctx) {
  auto ws = _store->begin();
  auto& rm = _store->readmodels();
  for (const auto& ch : ctx.changes) {
    const auto& v = *ch.view;
    rm.put(ws, ctx.tenant, v.name, ch.key, encode_row(ch.after));
    if (v.index.empty()) continue;
    const bool had = ch.before && !ch.before->deleted;
    const bool has = !ch.after.deleted;
    nlohmann::json old_row, new_row;
    if (had) old_row = nlohmann::json::parse(ch.before->json, nullptr, false);
    if (has) new_row = nlohmann::json::parse(ch.after.json, nullptr, false);
    for (const auto& field : v.index) {
      std::optional<std::string> was, now;
      if (had) was = index_entry(old_row, field);
      if (has) now = index_entry(new_row, field);
      if (was == now) continue;
      if (was) rm.erase_index(ws, ctx.tenant, v.name, field, *was, ch.key);
      if (now) rm.put_index(ws, ctx.tenant, v.name, field, *now, ch.key);
    }
  }
  for (const auto& f : ctx.failures) {
    nlohmann::json record = {{"view", f.view->name},
                             {"tenant_id", ctx.tenant},
                             {"aggregate_type", ctx.commit.aggregate_type},
                             {"aggregate_id", ctx.commit.aggregate_id},
                             {"code", f.error.code_text},
                             {"reason", f.error.to_string()}};
    _store->quarantine().put(ws, view_checkpoint_name(*f.view), ctx.position, record.dump());
  }
  const auto checkpoint = _tracker.watermark_with(ctx.position);
  for (const auto& v : _views) _store->checkpoints().put(ws, {}, view_checkpoint_name(v), checkpoint);
  if (auto st = _store->commit_unsynced(ws); !st.ok()) return st;

  std::lock_guard lock(_pending_mu);
  for (const auto& ch : ctx.changes) {
    auto it = _pending.find(pending_key(ctx.tenant, *ch.view, ch.key));
    if (it != _pending.end() && it->second.position == ch.after.position) _pending.erase(it);
    const bool had = ch.before && !ch.before->deleted;
    const bool has = !ch.after.deleted;
    auto& n = _rows[static_cast<std::size_t>(ch.view - _views.data())];
    if (has && !had) ++n;
    if (had && !has) --n;
    _metrics->projected(ch.view->name, ctx.commit.events.size());
  }
  for (const auto& f : ctx.failures) _metrics->failed(f.view->name);
  return {};
}

void projection_service::forget_pending(const projection_context& ctx) {
  std::lock_guard lock(_pending_mu);
  _poisoned.insert(row_lane_key(ctx.tenant, ctx.commit.aggregate_id));
  for (const auto& ch : ctx.changes) _pending.erase(pending_key(ctx.tenant, *ch.view, ch.key));
}

void projection_service::rewound() {
  std::lock_guard lock(_pending_mu);
  _poisoned.clear();
  _pending.clear();
}

std::uint64_t projection_service::subscribe(subscriber s) {
  std::lock_guard lock(_subscribers_mu);
  const auto id = _next_subscriber++;
  _subscribers.emplace(id, std::move(s));
  return id;
}

void projection_service::unsubscribe(std::uint64_t id) {
  std::lock_guard lock(_subscribers_mu);
  _subscribers.erase(id);
}

std::string row_event_json(const row_event& e) {
  std::string out = "{\"view\":";
  schemas::append_json_string(out, e.view);
  out += ",\"key\":";
  schemas::append_json_string(out, e.key);
  out += ",\"version\":" + std::to_string(e.version) + ",\"row\":" + e.row_json +
         ",\"position\":" + std::to_string(e.position) + "}";
  return out;
}

void projection_service::notify(const projection_context& ctx) {
  if (ctx.changes.empty()) return;
  std::vector<row_event> events;
  events.reserve(ctx.changes.size());
  for (const auto& ch : ctx.changes) {
    const bool had = ch.before && !ch.before->deleted;
    events.push_back({ctx.tenant, ch.view->name, ch.key, ch.after.version, ch.after.position,
                      ch.after.deleted ? std::string("null") : ch.after.json,
                      had ? ch.before->json : std::string("null")});
  }
  {
    // Subscribers only copy into their own bounded buffers: never block here.
    std::lock_guard lock(_subscribers_mu);
    for (const auto& e : events)
      for (const auto& [id, s] : _subscribers) s(e);
  }
  if (!_nats) return;
  for (const auto& e : events) {
    const auto body = row_event_json(e);
    const auto subject = nats::view_subject(e.tenant, e.view, e.key);
    natsMsg* msg = nullptr;
    auto s = natsMsg_Create(&msg, subject.c_str(), nullptr, body.data(), static_cast<int>(body.size()));
    bool ok = s == NATS_OK && nats::set_common_headers(msg, e.tenant, ctx.trace).ok() &&
              natsConnection_PublishMsg(_nats->raw(), msg) == NATS_OK;
    natsMsg_Destroy(msg);
    _metrics->published(ok);
  }
}

nlohmann::json projection_service::views_json() {
  const auto position = _tracker.watermark();
  auto head = _log->last_position();
  auto out = nlohmann::json::array();
  for (const auto& v : _views) {
    nlohmann::json j = {{"view", v.name},       {"pipeline", _pipeline}, {"from", v.from}, {"index", v.index},
                        {"position", position}, {"rows", rows(v)},       {"state", "live"}};
    if (head.ok()) {
      const auto lag = head.value() > position ? head.value() - position : 0;
      j["lag"] = lag;
      _metrics->position(v.name, static_cast<double>(position), static_cast<double>(lag));
    } else {
      j["lag"] = nullptr;
      j["lag_error"] = head.err().to_string();
    }
    out.push_back(std::move(j));
  }
  return out;
}

}  // namespace esflow::projection
