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

std::string view_store_name(const view_config& v, std::uint64_t generation) {
  return generation == 0 ? v.name : v.name + "@" + std::to_string(generation);
}

std::string view_checkpoint_name(const view_config& v, std::uint64_t generation) {
  return "view:" + view_store_name(v, generation);
}

namespace {
// The generation records of a view in the checkpoints family (values are u64s).
std::string live_generation_key(const view_config& v) { return "viewgen:" + v.name; }
std::string next_generation_key(const view_config& v) { return "viewnext:" + v.name; }
std::string drop_generation_key(const view_config& v) { return "viewdrop:" + v.name; }
constexpr std::size_t k_erase_batch = 4096;
}  // namespace

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
        watch_limits limits;
        for (const auto& st : init.pipeline.stages) {
          if (st.kind != "projection.notify") continue;
          limits.max_watchers = static_cast<std::size_t>(st.params.integer("max_watches"));
          limits.buffer_events = static_cast<std::size_t>(st.params.integer("watch_buffer"));
        }
        s->_watches = std::make_unique<view_watches>(limits);
        if (auto st = s->load_generations(); !st.ok()) return std::move(st).err();
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

std::int64_t projection_service::count_rows(const std::string& store_view) {
  std::int64_t n = 0;
  auto st = _store->readmodels().for_each_row(store_view, [&](auto, auto, std::string_view value) {
    auto r = decode_row(value);
    if (r && !r->deleted) ++n;
    return true;
  });
  if (!st.ok()) ESFLOW_WARN("projection", "counting the rows of {}: {}", store_view, st.err().to_string());
  return n;
}

status projection_service::load_generations() {
  auto& cps = _store->checkpoints();
  _gens.resize(_views.size());
  for (std::size_t i = 0; i < _views.size(); ++i) {
    const auto& v = _views[i];
    auto& g = _gens[i];
    for (auto [key, field] :
         {std::pair{live_generation_key(v), &g.live}, std::pair{next_generation_key(v), &g.next},
          std::pair{drop_generation_key(v), &g.drop}}) {
      auto got = cps.get({}, key);
      if (!got.ok()) return std::move(got).err();
      *field = got.value().value_or(0);
    }
    auto floor = cps.get({}, view_checkpoint_name(v, g.live));
    if (!floor.ok()) return std::move(floor).err();
    g.floor = floor.value().value_or(0);
    g.live_rows = count_rows(view_store_name(v, g.live));
    if (g.next != 0) g.next_rows = count_rows(view_store_name(v, g.next));
  }
  return {};
}

std::vector<projection_service::target> projection_service::targets_locked(std::size_t view) const {
  const auto& v = _views[view];
  const auto& g = _gens[view];
  std::vector<target> out{{view_store_name(v, g.live), view_checkpoint_name(v, g.live), true}};
  if (g.next != 0) out.push_back({view_store_name(v, g.next), view_checkpoint_name(v, g.next), false});
  return out;
}

std::int64_t projection_service::rows(const view_config& v) const {
  std::lock_guard lock(_gen_mu);
  return _gens[static_cast<std::size_t>(&v - _views.data())].live_rows;
}

std::string projection_service::live_store(const view_config& v) const {
  std::lock_guard lock(_gen_mu);
  return view_store_name(v, _gens[static_cast<std::size_t>(&v - _views.data())].live);
}

schemas::position_t projection_service::view_position(const view_config& v) const {
  schemas::position_t floor;
  {
    std::lock_guard lock(_gen_mu);
    floor = _gens[static_cast<std::size_t>(&v - _views.data())].floor;
  }
  return std::max(floor, _tracker.watermark());
}

bool projection_service::wait_for_position(const view_config& v, schemas::position_t p,
                                           std::chrono::steady_clock::time_point deadline) const {
  {
    std::lock_guard lock(_gen_mu);
    if (_gens[static_cast<std::size_t>(&v - _views.data())].floor >= p) return true;
  }
  return _tracker.wait_for(p, deadline);
}

result<schemas::position_t> projection_service::start_position() {
  std::lock_guard lock(_gen_mu);
  std::optional<schemas::position_t> lowest;
  for (std::size_t i = 0; i < _views.size(); ++i) {
    for (const auto& t : targets_locked(i)) {
      auto cp = _store->checkpoints().get({}, t.checkpoint);
      if (!cp.ok()) return std::move(cp).err();
      const auto p = cp.value().value_or(0);
      lowest = lowest ? std::min(*lowest, p) : p;
    }
  }
  return lowest.value_or(0);
}

status projection_service::write_checkpoints(schemas::position_t p) {
  auto ws = _store->begin();
  put_checkpoints(ws, p);
  return _store->commit_unsynced(ws);
}

void projection_service::put_checkpoints(storage::write_set& ws, schemas::position_t p) {
  std::lock_guard lock(_gen_mu);
  for (std::size_t i = 0; i < _views.size(); ++i)
    for (const auto& t : targets_locked(i))
      _store->checkpoints().put(ws, {}, t.checkpoint, t.live ? std::max(p, _gens[i].floor) : p);
}

result<nlohmann::json> projection_service::start_rebuild(const std::string& name) {
  const auto* v = find_view(name);
  if (v == nullptr) return error::make(errc::invalid_query, "unknown view '" + name + "'");
  const auto i = static_cast<std::size_t>(v - _views.data());
  {
    std::lock_guard lock(_gen_mu);
    auto& g = _gens[i];
    if (g.next == 0) {
      if (g.drop != 0)
        return error::make(errc::unavailable, "view '" + name + "' is still erasing generation " +
                                                  std::to_string(g.drop - 1) +
                                                  " of its last rebuild; retry later");
      const auto next = g.live + 1;
      // Every view keeps answering what it held: its floor is where it is now.
      const auto watermark = _tracker.watermark();
      for (auto& other : _gens) other.floor = std::max(other.floor, watermark);
      auto ws = _store->begin();
      _store->checkpoints().put(ws, {}, next_generation_key(*v), next);
      _store->checkpoints().put(ws, {}, view_checkpoint_name(*v, next), 0);
      if (auto st = _store->commit(ws); !st.ok()) return std::move(st).err();
      // The rewind first: from now on the watermark says 0 until the re-read
      // has caught up, so tend_generations cannot switch to empty rows.
      _tracker.request_rewind(0);
      g.next = next;
      g.next_rows = 0;
      ESFLOW_INFO(
          "projection",
          "view {}: rebuilding into generation {} from the start of the log (live rows: generation {}, up "
          "to position {})",
          name, next, g.live, g.floor);
    }
  }
  for (auto& j : views_json())
    if (j["view"] == name) return j;
  return nlohmann::json::object();
}

void projection_service::tend_generations() {
  for (std::size_t i = 0; i < _views.size(); ++i) {
    const auto& v = _views[i];
    std::lock_guard lock(_gen_mu);
    const auto watermark = _tracker.watermark();  // read under the lock: start_rebuild rewinds under it
    auto& g = _gens[i];
    if (g.next == 0 || watermark < g.floor) continue;
    // The new generation holds every commit the live one held: it becomes live.
    const auto old = g.live;
    auto ws = _store->begin();
    _store->checkpoints().put(ws, {}, live_generation_key(v), g.next);
    _store->checkpoints().put(ws, {}, next_generation_key(v), 0);
    _store->checkpoints().put(ws, {}, drop_generation_key(v), old + 1);
    _store->checkpoints().put(ws, {}, view_checkpoint_name(v, g.next), watermark);
    if (auto st = _store->commit(ws); !st.ok()) {
      ESFLOW_WARN("projection", "view {}: switching to generation {}: {}", v.name, g.next,
                  st.err().to_string());
      continue;
    }
    ESFLOW_INFO("projection", "view {}: generation {} is live ({} rows, position {}); erasing generation {}",
                v.name, g.next, g.next_rows, watermark, old);
    g.live = g.next;
    g.live_rows = g.next_rows;
    g.next = 0;
    g.next_rows = 0;
    g.drop = old + 1;
    g.drop_after.clear();
  }
  if (_tracker.in_flight() != 0) return;  // nothing may still write a dropped generation
  for (std::size_t i = 0; i < _views.size(); ++i) {
    const auto& v = _views[i];
    std::lock_guard lock(_gen_mu);
    auto& g = _gens[i];
    if (g.drop == 0) continue;
    const auto old = view_store_name(v, g.drop - 1);
    auto next = _store->readmodels().erase_view(old, g.drop_after, k_erase_batch);
    if (!next.ok()) {
      ESFLOW_WARN("projection", "view {}: erasing {}: {}", v.name, old, next.err().to_string());
      return;
    }
    g.drop_after = next.value();
    if (g.drop_after.empty()) {
      auto ws = _store->begin();
      _store->checkpoints().put(ws, {}, drop_generation_key(v), 0);
      if (_store->commit_unsynced(ws).ok()) g.drop = 0;
    }
    return;  // one batch per call: the source goes back to the log
  }
}

std::string projection_service::pending_key(const std::string& tenant, const std::string& store_view,
                                            const std::string& key) const {
  std::string k;
  k.reserve(tenant.size() + store_view.size() + key.size() + 2);
  k += tenant;
  k += '\x1f';
  k += store_view;
  k += '\x1f';
  k += key;
  return k;
}

result<std::optional<row_value>> projection_service::current_row(const std::string& tenant,
                                                                 const std::string& store_view,
                                                                 const std::string& key) {
  {
    std::lock_guard lock(_pending_mu);
    if (auto it = _pending.find(pending_key(tenant, store_view, key)); it != _pending.end())
      return std::optional(it->second);
  }
  auto stored = _store->readmodels().get(tenant, store_view, key);
  if (!stored.ok()) return std::move(stored).err();
  if (!stored.value()) return std::optional<row_value>();
  auto r = decode_row(**stored);
  if (!r)
    return error::make(errc::internal, "stored row is not a row value",
                       "tenant=" + tenant + " view=" + store_view + " key=" + key);
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
    std::vector<target> targets;
    {
      std::lock_guard lock(_gen_mu);
      targets = targets_locked(i);
    }
    // The live generation, and a rebuilding one beside it: each folds the
    // commits it does not hold yet (during a rebuild's re-read of the log the
    // live one skips what it has).
    for (const auto& t : targets) {
      project_view(lanes, ctx, i, t.store_view, t.live);
      if (ctx.storage_error) return std::move(*ctx.storage_error);
    }
  }
  return {};
}

void projection_service::project_view(lane_sandboxes& lanes, projection_context& ctx, std::size_t i,
                                      const std::string& store_view, bool live) {
  const auto& c = ctx.commit;
  const std::string& key = c.aggregate_id;
  const auto& v = _views[i];
  {
    auto cur = current_row(ctx.tenant, store_view, key);
    if (!cur.ok()) {
      ctx.storage_error = std::move(cur).err();
      return;
    }
    const auto& before = cur.value();
    if (before && before->position >= ctx.position) return;  // a replay: the row holds this commit
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
      if (live) ctx.failures.push_back({&v, std::move(e)});
      return;
    }
    {
      std::lock_guard lock(_pending_mu);
      _pending[pending_key(ctx.tenant, store_view, key)] = after;
    }
    ctx.changes.push_back({&v, store_view, live, key, before, std::move(after)});
  }
}

status projection_service::store_commit(projection_context& ctx) {
  auto ws = _store->begin();
  auto& rm = _store->readmodels();
  for (const auto& ch : ctx.changes) {
    const auto& v = *ch.view;
    const auto row_value = encode_row(ch.after);
    rm.put(ws, ctx.tenant, ch.store_view, ch.key, row_value);
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
      // Entries carry the row (covering index), so an unchanged entry is rewritten too.
      if (was && was != now) rm.erase_index(ws, ctx.tenant, ch.store_view, field, *was, ch.key);
      if (now) rm.put_index(ws, ctx.tenant, ch.store_view, field, *now, ch.key, row_value);
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
  put_checkpoints(ws, checkpoint);
  if (auto st = _store->commit_unsynced(ws); !st.ok()) return st;

  {
    std::lock_guard lock(_gen_mu);
    for (const auto& ch : ctx.changes) {
      auto& g = _gens[static_cast<std::size_t>(ch.view - _views.data())];
      // Counted in the generation it was written to (a switch may have happened since).
      auto* n = ch.store_view == view_store_name(*ch.view, g.live)   ? &g.live_rows
                : ch.store_view == view_store_name(*ch.view, g.next) ? &g.next_rows
                                                                     : nullptr;
      const bool had = ch.before && !ch.before->deleted;
      const bool has = !ch.after.deleted;
      if (n && has && !had) ++*n;
      if (n && had && !has) --*n;
    }
  }
  std::lock_guard lock(_pending_mu);
  for (const auto& ch : ctx.changes) {
    auto it = _pending.find(pending_key(ctx.tenant, ch.store_view, ch.key));
    if (it != _pending.end() && it->second.position == ch.after.position) _pending.erase(it);
    if (ch.live) _metrics->projected(ch.view->name, ctx.commit.events.size());
  }
  for (const auto& f : ctx.failures) _metrics->failed(f.view->name);
  return {};
}

void projection_service::forget_pending(const projection_context& ctx) {
  std::lock_guard lock(_pending_mu);
  _poisoned.insert(row_lane_key(ctx.tenant, ctx.commit.aggregate_id));
  for (const auto& ch : ctx.changes) _pending.erase(pending_key(ctx.tenant, ch.store_view, ch.key));
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
    if (!ch.live) continue;  // a rebuild's rows are not served yet
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
  auto head = _log->last_position();
  const auto watermark = _tracker.watermark();
  auto out = nlohmann::json::array();
  for (std::size_t i = 0; i < _views.size(); ++i) {
    const auto& v = _views[i];
    generations g;
    {
      std::lock_guard lock(_gen_mu);
      g = _gens[i];
    }
    const auto position = std::max(g.floor, watermark);
    nlohmann::json j = {{"view", v.name},
                        {"pipeline", _pipeline},
                        {"from", v.from},
                        {"index", v.index},
                        {"position", position},
                        {"rows", g.live_rows},
                        {"state", g.next != 0 ? "rebuilding" : "live"},
                        {"generation", g.live}};
    if (g.next != 0)
      j["rebuild"] = {
          {"generation", g.next}, {"position", watermark}, {"rows", g.next_rows}, {"until", g.floor}};
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
