#include "stages/runner/runner_service.h"

#include "common/log.h"
#include "graph/pipeline_spec.h"
#include "schemas/ids.h"
#include "stages/node_env.h"
#include "stages/runner/runner_metrics.h"
#include "storage/keys.h"
#include "storage/keyspace.h"
#include "transport/nats/nats_link.h"
#include "transport/nats/subjects.h"
#include "transport/node_host.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <limits>
#include <random>

namespace esflow::runner {
namespace {

using nlohmann::json;
using clock_type = std::chrono::steady_clock;

// Input markers live in the `dedupe` family beside command ids (whose form,
// [A-Za-z0-9_-], has no ':', so "saga:..." never meets one); the value starts
// with the expiry the family's compaction filter reads.
constexpr std::uint64_t k_marker_ttl_ms = 7ULL * 24 * 3600 * 1000;

std::string marker_value(std::uint64_t expires_ms) {
  std::string v;
  storage::keys::put_u64_be(v, expires_ms);
  return v;
}

}  // namespace

runtime::sandbox& lane_sandboxes::get(const saga_config& s) {
  auto& sb = _by_saga[s.name];
  if (!sb) sb = std::make_unique<runtime::sandbox>(runtime::sandbox_options{s.gas, s.memory});
  return *sb;
}

result<std::shared_ptr<runner_service>> runner_service::for_pipeline(const graph::node_kind_init& init) {
  const auto dir = stages::data_dir_of(init.pipeline);
  return init.services.get_or_create<runner_service>(
      "runner:" + dir + ":" + init.pipeline.name, [&]() -> result<std::shared_ptr<runner_service>> {
        std::shared_ptr<runner_service> s(new runner_service());
        s->_pipeline = init.pipeline.name;
        s->_single_tenant = init.pipeline.settings.str("tenancy") == "single";
        auto it = init.pipeline.sections.find("sagas");
        auto sagas = parse_sagas(it == init.pipeline.sections.end() ? YAML::Node() : it->second,
                                 init.pipeline.file, init.pipeline.base_dir, s->_programs);
        if (!sagas.ok()) return std::move(sagas).err();
        s->_sagas = std::move(sagas).value();
        auto eit = init.pipeline.sections.find("effects");
        auto effects = parse_effects(eit == init.pipeline.sections.end() ? YAML::Node() : eit->second,
                                     init.pipeline.file, init.pipeline.base_dir);
        if (!effects.ok()) return std::move(effects).err();
        s->_effects = std::move(effects).value();
        auto store = stages::node_store_for(init.pipeline, init.services);
        if (!store.ok()) return std::move(store).err();
        auto log = stages::event_log_for(init.pipeline, init.services);
        if (!log.ok()) return std::move(log).err();
        auto events = stages::workflow_stream_for(init.pipeline, init.services, "WORKFLOW_EVENTS");
        if (!events.ok()) return std::move(events).err();
        auto commands = stages::workflow_stream_for(init.pipeline, init.services, "WORKFLOW_COMMANDS");
        if (!commands.ok()) return std::move(commands).err();
        s->_store = std::move(store).value();
        s->_log = std::move(log).value();
        s->_events = std::move(events).value();
        s->_commands = std::move(commands).value();
        s->_committer = std::make_unique<storage::commit_pool>(s->_store);
        s->_local_commands = stages::local_command_port_for(init.services, dir);
        if (const auto url = init.pipeline.settings.str("nats_url"); !url.empty()) {
          auto link = nats::nats_link::for_url(init.services, url);
          if (!link.ok()) return std::move(link).err();
          s->_remote =
              std::make_unique<remote_commands>(link.value()->shared_connection(), std::chrono::seconds(5));
        }
        if (auto host = init.services.find<transport::node_host>(""); host && !s->_sagas.empty()) {
          host->add_reload_hook("sagas:" + s->_pipeline,
                                [w = std::weak_ptr<runner_service>(s)]() -> result<std::string> {
                                  auto self = w.lock();
                                  if (!self) return std::string("gone");
                                  auto changed = self->reload_programs();
                                  if (!changed.ok()) return std::move(changed).err();
                                  std::string names;
                                  for (const auto& n : changed.value())
                                    names += (names.empty() ? "" : ", ") + n;
                                  return names.empty() ? std::string("unchanged") : "reloaded " + names;
                                });
        }
        return s;
      });
}

result<std::vector<std::string>> runner_service::reload_programs() {
  std::lock_guard lock(_reload_mu);
  std::vector<runtime::program_ptr> fresh;
  for (const auto& s : _sagas) {
    auto p = _programs.reload(s.program_path);
    std::string why;
    if (!p.ok()) {
      why = p.err().message;
    } else {
      runtime::sandbox probe(runtime::sandbox_options{s.gas, s.memory});
      if (auto st = probe.preload(*p.value()); !st.ok())
        why = st.err().message;
      else if (!probe.defines_on_event(*p.value()))
        why = "'" + s.program_path + "' defines no on_event(state, input)";
    }
    if (!why.empty())
      return error::make(errc::program_error, "saga " + s.name + ": " + why + " (no program was swapped)");
    fresh.push_back(std::move(p).value());
  }
  std::vector<std::string> changed;
  for (std::size_t i = 0; i < _sagas.size(); ++i) {
    if (_sagas[i].current_program() == fresh[i]) continue;
    std::atomic_store(&_sagas[i].program, fresh[i]);
    changed.push_back(_sagas[i].name);
    ESFLOW_INFO("runner", "reloaded the program of saga {} from {}", _sagas[i].name, _sagas[i].program_path);
  }
  return changed;
}

runner_service::~runner_service() {
  if (_remote) _remote->stop();
  if (_executor) _executor->stop();
  if (_committer) _committer->stop();
}

effect_executor& runner_service::executor() {
  std::lock_guard lock(_executor_mu);
  if (!_executor) _executor = std::make_unique<effect_executor>(_effects);
  return *_executor;
}

result<std::optional<std::string>> runner_service::stored_result(const std::string& tenant,
                                                                 const std::string& command_id) {
  storage::keyspace space(_store->database(), storage::cf::dedupe);
  auto v = space.get(storage::keys::dedupe(tenant, "effect:" + command_id));
  if (!v.ok()) return std::move(v).err();
  if (!v.value() || v.value()->size() <= 8) return std::optional<std::string>();
  return std::optional<std::string>(v.value()->substr(8));
}

void runner_service::commit_effect(runner_context& ctx, std::function<void(status)> done) {
  _committer->submit(effect_done_writes(ctx), std::move(done));
}

storage::write_set runner_service::effect_done_writes(runner_context& ctx) {
  auto ws = _store->begin();
  if (!ctx.replay) {
    storage::keyspace space(_store->database(), storage::cf::dedupe);
    space.put(ws, storage::keys::dedupe(ctx.call.tenant, "effect:" + ctx.call.command_id),
              marker_value(now_ms() + k_marker_ttl_ms) + ctx.result_body);
  }
  if (ctx.source == "commands")
    _store->checkpoints().put(ws, {}, checkpoint_name("commands"), _commands_tracker.watermark());
  return ws;
}

const saga_config* runner_service::find_saga(const std::string& name) const {
  for (const auto& s : _sagas)
    if (s.name == name) return &s;
  return nullptr;
}

std::string runner_service::checkpoint_name(const std::string& source) const {
  return "runner:" + _pipeline + ":" + source;
}

void runner_service::checkpoint_when_idle(stages::position_tracker& tracker, const std::string& source,
                                          schemas::position_t& checkpointed) {
  const auto w = tracker.watermark();
  if (tracker.in_flight() != 0 || w <= checkpointed) return;
  auto ws = _store->begin();
  _store->checkpoints().put(ws, {}, checkpoint_name(source), w);
  if (auto st = _store->commit(ws); st.ok())
    checkpointed = w;
  else
    ESFLOW_WARN("runner", "{}: checkpoint {} at {}: {}", _pipeline, source, w, st.err().to_string());
}

std::uint64_t runner_service::now_ms() const {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

std::string runner_service::marker_id(const saga_input& in) const {
  return "saga:" + in.saga + ":" + in.input_id;
}

result<bool> runner_service::seen(const saga_input& in) {
  storage::keyspace space(_store->database(), storage::cf::dedupe);
  auto v = space.get(storage::keys::dedupe(in.tenant, marker_id(in)));
  if (!v.ok()) return std::move(v).err();
  if (!v.value()) return false;
  return v.value()->size() < 8 || storage::keys::get_u64_be(*v.value()) > now_ms();
}

result<runner_service::loaded_record> runner_service::load(const saga_input& in, std::uint64_t since) {
  loaded_record out;
  {
    std::lock_guard lock(_pending_mu);
    if (auto it = _records.find(instance_key(in.tenant, in.saga, in.correlation_id)); it != _records.end()) {
      auto& r = it->second;
      if (r.stored) _stored_order.splice(_stored_order.end(), _stored_order, r.lru);
      out.record = r.record;
      out.pending = !r.stored;
      return out;
    }
    out.mark = _records_forgotten + 1;
    if (since == out.mark) {
      out.unchanged = true;
      return out;
    }
  }
  auto stored = _store->sagas().get(in.tenant, in.saga, in.correlation_id);
  if (!stored.ok()) return std::move(stored).err();
  out.record = std::move(stored).value();
  return out;
}

void runner_service::set_record_cache(std::size_t n) {
  std::lock_guard lock(_pending_mu);
  _record_cache = n;
  forget_over_cache();
}

bool runner_service::stored_done(const std::string& instance_key) {
  std::lock_guard lock(_pending_mu);
  const auto it = _records.find(instance_key);
  return it != _records.end() && it->second.stored && it->second.done;
}

void runner_service::forget_over_cache() {
  while (_stored_order.size() > _record_cache) {
    _records.erase(_stored_order.front());
    _stored_order.pop_front();
    ++_records_forgotten;
  }
}

namespace {
// Whether any input made a transition. Not only the last: an input may end the instance and the
// next one in the same message meet it done (skipped), and the first one's work must be stored.
bool changes_instance(const runner_context& ctx) {
  return std::any_of(ctx.steps.begin(), ctx.steps.end(), [](const step_result& s) { return !s.skipped; });
}
}  // namespace

status runner_service::run(lane_sandboxes& lanes, runner_context& ctx) {
  if (ctx.inputs.empty()) return {};
  const saga_input first = ctx.inputs.front();  // a copy: ctx.inputs is narrowed below
  const auto* saga = find_saga(first.saga);
  if (saga == nullptr) return error::make(errc::internal, "unknown saga '" + first.saga + "'");
  ctx.saga = saga;
  auto& sb = lanes.get(*saga);
  // ctx.record was read in this instance's turn of saga.run (load_record, stages.h).
  auto record = ctx.record;
  const auto now = now_ms();
  {
    // Inputs another message is committing right now are not run twice (see _running_markers).
    std::lock_guard lock(_pending_mu);
    std::vector<saga_input> mine;
    std::vector<std::string> marks, seen;
    for (auto& in : ctx.inputs) {
      auto mark = in.tenant + '\x1f' + marker_id(in);
      if (_running_markers.insert(mark).second) {
        marks.push_back(std::move(mark));
        seen.push_back(marker_id(in));
        mine.push_back(std::move(in));
      }
    }
    ctx.inputs = std::move(mine);
    ctx.seen = std::move(seen);
    ctx.running = std::move(marks);
  }
  if (ctx.inputs.empty()) return {};
  for (const auto& in : ctx.inputs) {
    auto step = run_step(*saga, sb, record, in, now);
    if (!step.ok()) return std::move(step).err();
    record = step.value().record_json;
    ctx.steps.push_back(std::move(step).value());
  }
  if (changes_instance(ctx)) {
    std::lock_guard lock(_pending_mu);
    ctx.pending_serial = ++_pending_serial;
    auto& r = _records[instance_key(first.tenant, first.saga, first.correlation_id)];
    if (r.stored) _stored_order.erase(r.lru);
    r.record = *record;
    r.serial = ctx.pending_serial;
    r.stored = false;
    r.done = std::any_of(ctx.steps.begin(), ctx.steps.end(), [](const step_result& s) { return s.done; });
  }
  return {};
}

void runner_service::release_running(runner_context& ctx) {
  std::lock_guard lock(_pending_mu);
  for (const auto& mark : ctx.running) _running_markers.erase(mark);
  ctx.running.clear();
}

void runner_service::commit(runner_context& ctx, std::function<void(status)> done) {
  if (!ctx.poison && !ctx.inputs.empty() && !ctx.record_pending && !changes_instance(ctx)) {
    // Nothing to store: every input met the instance done, and done as stored (not a transition
    // still being written: that one's write must land first, so such a message goes through the
    // commit pool in turn, as do inputs being committed by another message). No marker is needed:
    // read again after a crash, the inputs meet the stored done record again. The checkpoint moves
    // with a later commit or when the source is idle. Saves a durable write per input after the
    // last transition (docs/runner.md "The commit").
    release_running(ctx);
    if (_metrics)
      for (const auto& in : ctx.inputs) _metrics->input(in.kind, "skipped_done");
    done({});
    return;
  }
  auto ws = _store->begin();
  const auto expires = now_ms() + k_marker_ttl_ms;
  storage::keyspace markers(_store->database(), storage::cf::dedupe);
  const std::string tenant = ctx.inputs.empty() ? ctx.tenant : ctx.inputs.front().tenant;
  for (const auto& id : ctx.seen) markers.put(ws, storage::keys::dedupe(tenant, id), marker_value(expires));
  constexpr auto k_no_due = std::numeric_limits<std::uint64_t>::max();
  auto earliest_due = k_no_due;
  std::vector<storage::outbox_item> written;  // handed to outbox.scan once stored
  if (ctx.poison && !ctx.inputs.empty()) {
    const auto& first = ctx.inputs.front();
    json inputs = json::array();
    for (const auto& in : ctx.inputs)
      inputs.push_back({{"input_id", in.input_id},
                        {"kind", in.kind},
                        {"input", json::parse(in.input_json, nullptr, false)}});
    json record = {{"pipeline", _pipeline},
                   {"source", ctx.source},
                   {"position", ctx.position},
                   {"tenant_id", first.tenant},
                   {"saga", first.saga},
                   {"correlation_id", first.correlation_id},
                   {"inputs", inputs},
                   {"attempts", std::max(ctx.attempts, 1)},
                   {"code", ctx.poison->code_text.empty() ? std::string(to_string(ctx.poison->code))
                                                          : ctx.poison->code_text},
                   {"reason", ctx.poison->to_string()}};
    _store->quarantine().put(ws, checkpoint_name(ctx.source) + ":" + first.saga + ":" + first.correlation_id,
                             ctx.position, record.dump());
    ESFLOW_WARN("runner", "{}: saga {} instance {} quarantined the input at {} {}: {}", _pipeline, first.saga,
                first.correlation_id, ctx.source, ctx.position, ctx.poison->to_string());
  } else if (!ctx.poison && changes_instance(ctx)) {
    const auto& first = ctx.inputs.front();
    _store->sagas().put(ws, first.tenant, first.saga, first.correlation_id, ctx.steps.back().record_json);
    for (const auto& step : ctx.steps) {
      for (const auto& w : step.work) {
        _store->outbox().put(ws, first.tenant, w.kind, w.command_id, w.item_json);
        written.push_back({storage::keys::outbox(first.tenant, w.kind, w.command_id), first.tenant, w.kind,
                           w.command_id, w.item_json});
      }
      for (const auto& k : step.cancel) _store->schedules().erase(ws, k);
      for (const auto& a : step.add) _store->schedules().put(ws, a.key, a.value_json);
      for (const auto& a : step.add) earliest_due = std::min(earliest_due, a.key.due_ms);
    }
  }
  // Embedded sources keep a checkpoint; a JetStream consumer's position is the server's (acks).
  if (ctx.source == "log" || ctx.source == "events") {
    auto& tracker = ctx.source == "events" ? _events_tracker : _log_tracker;
    _store->checkpoints().put(ws, {}, checkpoint_name(ctx.source), tracker.watermark());
  }
  const auto key = ctx.inputs.empty() ? std::string()
                                      : instance_key(ctx.inputs.front().tenant, ctx.inputs.front().saga,
                                                     ctx.inputs.front().correlation_id);
  const auto serial = ctx.pending_serial;
  const std::uint64_t hint_serial =
      written.empty() ? 0 : ++_outbox_serial;  // before the write (outbox_serial)
  std::vector<std::string> kinds;
  for (const auto& in : ctx.inputs) kinds.push_back(in.kind);
  const bool quarantined = ctx.poison.has_value();
  const auto started = clock_type::now();
  _committer->submit(std::move(ws), [this, key, serial, earliest_due, kinds = std::move(kinds), quarantined,
                                     started, running = ctx.running, written = std::move(written),
                                     hint_serial, done = std::move(done)](status st) mutable {
    {
      std::lock_guard lock(_pending_mu);
      for (const auto& mark : running) _running_markers.erase(mark);
    }
    if (_metrics && st.ok()) {
      _metrics->saga_commit(std::chrono::duration<double>(clock_type::now() - started).count());
      for (const auto& k : kinds) _metrics->input(k, quarantined ? "quarantined" : "committed");
    }
    if (serial != 0) {
      std::lock_guard lock(_pending_mu);
      // Stored: kept in memory as the store's record, or forgotten when it failed (the store's
      // record is the truth again). A later transition that replaced it is left alone.
      if (auto it = _records.find(key); it != _records.end() && it->second.serial == serial) {
        if (st.ok()) {
          it->second.stored = true;
          it->second.lru = _stored_order.insert(_stored_order.end(), key);
          forget_over_cache();  // with a cache of 0, this record at once
        } else {
          _records.erase(it);
          ++_records_forgotten;
        }
      }
    }
    if (st.ok() && !written.empty()) {
      std::lock_guard lock(_work_mu);
      if (hints_have_room(written.size())) {
        for (auto& w : written) _hints.items.push_back({std::move(w), hint_serial});
      } else {
        _hints.dropped = true;
        if (_metrics) _metrics->outbox_hints_dropped(written.size());
      }
    }
    if (st.ok() && !written.empty()) wake_outbox();
    if (st.ok() && earliest_due != k_no_due) wake_schedules(earliest_due);
    done(std::move(st));
  });
}

runner_service::outbox_hints runner_service::take_outbox_hints() {
  std::lock_guard lock(_work_mu);
  return std::exchange(_hints, outbox_hints{});
}

bool runner_service::mark_woken(wake_signal& s, bool notify) {
  s.woken = true;
  if (!notify || s.notified) return false;
  s.notified = true;
  return true;
}

void runner_service::wake(wake_signal& s) {
  bool notify = false;
  {
    std::lock_guard lock(_work_mu);
    notify = mark_woken(s);
  }
  if (notify) s.cv.notify_one();
}

void runner_service::wait_for(wake_signal& s, std::chrono::milliseconds d, const std::stop_token& stop,
                              bool wants_slots) {
  std::unique_lock lock(_work_mu);
  s.wants_slots = wants_slots;
  s.cv.wait_for(lock, stop, d, [&] { return s.woken; });
  s.woken = s.notified = s.wants_slots = false;
}

void runner_service::wake_outbox() { wake(_outbox_wake); }
void runner_service::wake_schedules(std::uint64_t earliest_due_ms) {
  // Most schedules are timeouts far ahead: waking the scan for each would make it read the family
  // once per commit for nothing.
  if (earliest_due_ms < _schedule_scan_next_ms.load()) wake(_schedules_wake);
}
void runner_service::wait_for_outbox(std::chrono::milliseconds d, const std::stop_token& stop,
                                     bool wants_slots) {
  wait_for(_outbox_wake, d, stop, wants_slots);
}
void runner_service::wait_for_schedules(std::chrono::milliseconds d, const std::stop_token& stop) {
  _schedule_scan_next_ms.store(now_ms() + static_cast<std::uint64_t>(d.count()));
  wait_for(_schedules_wake, d, stop, true);  // every freed claim is worth a look
  _schedule_scan_next_ms.store(std::numeric_limits<std::uint64_t>::max());  // scanning: every new one wakes
}

bool runner_service::hints_have_room(std::size_t n) const {
  return _hints.items.size() + _hints.retries.size() + n <= _hint_bound.load();
}

bool runner_service::claim(const std::string& key, clock_type::time_point now, const std::string& tenant) {
  std::lock_guard lock(_work_mu);
  auto& c = _claims[key];
  if (c.in_flight || now < c.not_before) return false;
  c.in_flight = true;
  c.tenant = tenant;
  if (!tenant.empty()) ++_in_flight_by_tenant[tenant];
  return true;
}

void runner_service::end_claim(claim_state& c) {
  if (c.in_flight && !c.tenant.empty()) {
    auto it = _in_flight_by_tenant.find(c.tenant);
    if (it != _in_flight_by_tenant.end() && --it->second == 0) _in_flight_by_tenant.erase(it);
  }
  c.in_flight = false;
}

clock_type::time_point runner_service::back_off(claim_state& c) {
  c.failures = std::min(c.failures + 1, 30);
  const auto cap = std::min<std::int64_t>(10'000, std::int64_t{100} << std::min(c.failures - 1, 7));
  thread_local std::mt19937_64 rng{std::random_device{}()};
  const auto wait_ms = std::uniform_int_distribution<std::int64_t>(cap / 2, cap)(rng);
  c.not_before = clock_type::now() + std::chrono::milliseconds(wait_ms);
  return c.not_before;
}

void runner_service::release(const std::string& key, bool failed) {
  wake_signal* notify = nullptr;
  {
    std::lock_guard lock(_work_mu);
    auto it = _claims.find(key);
    if (it != _claims.end()) {
      end_claim(it->second);
      if (!failed)
        _claims.erase(it);
      else
        back_off(it->second);
    }
    // A freed slot (per-tenant limit) is work for the scan that claimed it; the outbox scan is
    // woken for one only while items wait for slots (a notify per dispatch cost a thread switch).
    auto& s = key.starts_with(k_schedule_claim_prefix) ? _schedules_wake : _outbox_wake;
    if (mark_woken(s, s.wants_slots)) notify = &s;
  }
  if (notify != nullptr) notify->cv.notify_one();
}

void runner_service::release_for_retry(storage::outbox_item item) {
  bool notify = false;
  {
    std::lock_guard lock(_work_mu);
    auto& c = _claims[item.key];
    end_claim(c);
    const auto when = back_off(c);
    if (hints_have_room(1)) {
      _hints.retries.emplace_back(when, std::move(item));
    } else {
      _hints.dropped = true;  // a pass finds it (the claim keeps its backoff)
      if (_metrics) _metrics->outbox_hints_dropped(1);
    }
    notify = mark_woken(_outbox_wake);
  }
  if (notify) _outbox_wake.cv.notify_one();
}

storage::message_headers runner_service::headers_for(const std::string& tenant,
                                                     const std::string& correlation_id,
                                                     const std::string& trace_id) {
  std::string traceparent;
  if (trace_id.size() == 32) {
    const auto fresh = schemas::new_traceparent();  // 00-<trace>-<parent>-01: keep the trace, new parent
    traceparent = "00-" + trace_id + fresh.substr(35);
  }
  const auto trace = schemas::make_trace_context(traceparent, correlation_id);
  return {{"tenant-id", nats::tenant_token(tenant)},
          {"x-correlation-id", trace.correlation_id},
          {"correlation-id", trace.correlation_id},
          {"traceparent", trace.traceparent},
          {"trace-id", trace.trace_id}};
}

std::size_t runner_service::in_flight_of(const std::string& tenant) const {
  std::lock_guard lock(_work_mu);
  auto it = _in_flight_by_tenant.find(tenant);
  return it == _in_flight_by_tenant.end() ? 0 : it->second;
}

result<std::string> runner_service::outbox_json() {
  constexpr std::size_t k_max_scan = 100'000;
  std::map<std::pair<std::string, std::string>, std::size_t> depth;
  std::map<std::pair<std::string, std::string>, std::uint64_t> oldest;
  std::string after;
  std::size_t scanned = 0;
  bool truncated = false;
  while (scanned < k_max_scan) {
    auto page = _store->outbox().list(after, 1000);
    if (!page.ok()) return std::move(page).err();
    for (const auto& item : page.value()) {
      const std::pair<std::string, std::string> k{item.tenant, item.kind};
      ++depth[k];
      const auto j = json::parse(item.item, nullptr, false);
      const auto created = j.is_object() ? j.value("created_ms", std::uint64_t{0}) : 0;
      if (created != 0 && (oldest[k] == 0 || created < oldest[k])) oldest[k] = created;
    }
    scanned += page->size();
    if (page->size() < 1000) break;
    after = page->back().key;
    truncated = scanned >= k_max_scan;
  }
  json out = json::array();
  const auto now = now_ms();
  for (const auto& [k, n] : depth) {
    const auto created = oldest[k];
    out.push_back({{"tenant_id", k.first},
                   {"kind", k.second},
                   {"depth", n},
                   {"oldest_age_ms", created != 0 && now > created ? now - created : 0}});
  }
  return json{{"pipeline", _pipeline}, {"items", out}, {"truncated", truncated}}.dump();
}

result<std::optional<std::string>> runner_service::instance_json(const std::string& tenant,
                                                                 const std::string& saga,
                                                                 const std::string& correlation_id) {
  auto record = _store->sagas().get(tenant, saga, correlation_id);
  if (!record.ok()) return std::move(record).err();
  if (!record.value()) return std::optional<std::string>();
  auto r = json::parse(*record.value(), nullptr, false);
  if (!r.is_object()) return error::make(errc::internal, "stored saga record is not JSON");
  json pending = json::array();
  std::string after;
  for (int page_no = 0; page_no < 100; ++page_no) {
    auto page = _store->outbox().list(after, 1000);
    if (!page.ok()) return std::move(page).err();
    for (const auto& item : page.value()) {
      if (item.tenant != tenant) continue;
      auto j = json::parse(item.item, nullptr, false);
      if (j.is_object() && j.value("saga", "") == saga && j.value("correlation_id", "") == correlation_id)
        pending.push_back(std::move(j));
    }
    if (page->size() < 1000) break;
    after = page->back().key;
  }
  json schedules = json::array();
  if (r["schedules"].is_object())
    for (auto& [name, due] : r["schedules"].items()) schedules.push_back({{"name", name}, {"due_ms", due}});
  return std::optional<std::string>(json{
      {"saga", saga},
      {"correlation_id", correlation_id},
      {"state", r["state"]},
      {"done", r.value("done", false)},
      {"inputs", r.value("inputs", 0)},
      {"pending_work", pending},
      {"schedules", schedules}}.dump());
}

void runner_service::enqueue_retries(std::vector<retry_item> items) {
  {
    std::lock_guard lock(_retry_mu);
    for (auto& i : items) _retries.push_back(std::move(i));
  }
}

std::vector<runner_service::retry_item> runner_service::take_retries(std::size_t max) {
  std::lock_guard lock(_retry_mu);
  std::vector<retry_item> out;
  while (!_retries.empty() && out.size() < max) {
    out.push_back(std::move(_retries.front()));
    _retries.pop_front();
  }
  return out;
}

}  // namespace esflow::runner
