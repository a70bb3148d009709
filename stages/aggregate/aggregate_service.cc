#include "stages/aggregate/aggregate_service.h"

#include "common/log.h"
#include "common/service_registry.h"
#include "graph/did_you_mean.h"
#include "graph/node_kind_descriptor.h"
#include "graph/pipeline_spec.h"
#include "schemas/ids.h"
#include "stages/aggregate/cache_metrics.h"
#include "stages/ingest/aggregate_reads.h"
#include "stages/node_env.h"
#include "transport/node_host.h"

#include <filesystem>
#include <set>

namespace esflow::aggregate {

namespace {

constexpr std::size_t k_replay_page = 1000;
constexpr std::size_t k_max_read_limit = 1000;
constexpr std::size_t k_default_read_limit = 100;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

// --- aggregates: section ----------------------------------------------------------

result<std::vector<aggregate_type_config>> parse_aggregates(const YAML::Node& section,
                                                            const std::string& file,
                                                            const std::string& base_dir,
                                                            runtime::program_cache& programs) {
  std::vector<std::string> problems;
  std::vector<aggregate_type_config> out;
  auto fail = [&](const YAML::Node& n, const std::string& what) {
    problems.push_back(graph::yaml_where(file, n) + ": " + what);
  };
  if (!section || section.IsNull()) {
    return error::make(
        errc::invalid_config,
        file + ":1: an aggregate pipeline needs an 'aggregates:' section (type -> { program: ... })");
  }
  if (!section.IsMap()) {
    fail(section,
         "'aggregates' must be a mapping of aggregate type to { program, snapshot_every, gas, memory }");
  } else {
    static const std::vector<std::string> known = {"program", "snapshot_every", "gas", "memory"};
    for (const auto& item : section) {
      const auto name = item.first.as<std::string>();
      const auto owner = "aggregates: '" + name + "': ";
      if (!schemas::is_valid_aggregate_type(name)) {
        fail(item.first, owner + "an aggregate type must match [A-Za-z][A-Za-z0-9_]{0,63}");
        continue;
      }
      const auto& body = item.second;
      if (!body.IsMap()) {
        fail(body,
             owner + "must be a mapping { program: <file.lua>, snapshot_every: N, gas: N, memory: <size> }");
        continue;
      }
      aggregate_type_config cfg;
      cfg.name = name;
      bool ok = true;
      for (const auto& kv : body) {
        const auto key = kv.first.as<std::string>();
        const auto& v = kv.second;
        if (std::find(known.begin(), known.end(), key) == known.end()) {
          fail(kv.first, owner + "unknown key '" + key + "'" + graph::did_you_mean(key, known));
          ok = false;
          continue;
        }
        if (!v.IsScalar()) {
          fail(v, owner + "'" + key + "' must be a single value");
          ok = false;
          continue;
        }
        const auto text = v.Scalar();
        if (key == "program") {
          cfg.program_path = text;
        } else if (key == "snapshot_every") {
          auto n = graph::parse_integer(text);
          if (!n || *n < 0) {
            fail(v, owner + "'snapshot_every' must be an integer >= 0 (0: never), got '" + text + "'");
            ok = false;
          } else {
            cfg.snapshot_every = *n;
          }
        } else if (key == "gas") {
          auto n = graph::parse_integer(text);
          if (!n || *n < 1000) {
            fail(v, owner + "'gas' must be an integer >= 1000 (instructions per call), got '" + text + "'");
            ok = false;
          } else {
            cfg.gas = static_cast<std::uint64_t>(*n);
          }
        } else if (key == "memory") {
          auto n = graph::parse_size(text);
          if (!n || *n < (1 << 20)) {
            fail(v, owner + "'memory' must be a size >= 1MiB (e.g. 64MiB), got '" + text + "'");
            ok = false;
          } else {
            cfg.memory = static_cast<std::size_t>(*n);
          }
        }
      }
      if (cfg.program_path.empty()) {
        if (ok) fail(body, owner + "missing 'program' (a .lua file, relative to the pipeline file)");
        continue;
      }
      if (!ok) continue;
      cfg.program_path = graph::resolve_section_path(cfg.program_path, base_dir);
      auto loaded = programs.get(cfg.program_path);
      if (!loaded.ok()) {
        fail(body["program"], owner + "program '" + cfg.program_path + "': " + loaded.err().message);
        continue;
      }
      cfg.program = loaded.value();
      out.push_back(std::move(cfg));
    }
    if (problems.empty() && out.empty()) fail(section, "'aggregates' names no aggregate type");
  }
  if (auto st = graph::section_problems(problems); !st.ok()) return std::move(st).err();
  return out;
}

// --- sandboxes ------------------------------------------------------------------------

runtime::sandbox& sandbox_set::get(const aggregate_type_config& type) {
  auto it = _by_type.find(type.name);
  if (it == _by_type.end()) {
    runtime::sandbox_options o;
    o.gas_per_call = type.gas;
    o.memory_limit_bytes = type.memory;
    it = _by_type.emplace(type.name, std::make_unique<runtime::sandbox>(o)).first;
  }
  return *it->second;
}

sandbox_pool::lease sandbox_pool::take() {
  std::unique_lock lock(_mu);
  _cv.wait(lock, [this] { return !_idle.empty() || _made < _max; });
  if (!_idle.empty()) {
    auto set = std::move(_idle.back());
    _idle.pop_back();
    return lease(*this, std::move(set));
  }
  ++_made;
  return lease(*this, std::make_unique<sandbox_set>());
}

std::size_t sandbox_pool::made() const {
  std::lock_guard lock(_mu);
  return _made;
}

void sandbox_pool::give_back(std::unique_ptr<sandbox_set> set) {
  {
    std::lock_guard lock(_mu);
    _idle.push_back(std::move(set));
  }
  _cv.notify_one();
}

sandbox_set& thread_sandboxes() {
  thread_local sandbox_set set;
  return set;
}

// --- lifecycle --------------------------------------------------------------------------

namespace {

// The HTTP ingest's reads (stages/ingest/aggregate_reads.h) over the service.
class service_reads final : public stages::aggregate_reads {
 public:
  explicit service_reads(std::weak_ptr<aggregate_service> service) : _service(std::move(service)) {}

  result<stages::aggregate_state_view> state(const std::string& tenant, const std::string& type,
                                             const std::string& id) override {
    auto service = _service.lock();
    if (!service) return error::make(errc::unavailable, "the aggregate node is stopping");
    auto s = service->get_state(tenant, type, id);
    if (!s.ok()) return std::move(s).err();
    return stages::aggregate_state_view{s->version, std::move(s->state_json)};
  }

  result<stages::aggregate_event_page> events(const std::string& tenant, const std::string& type,
                                              const std::string& id, schemas::version_t after,
                                              std::size_t limit) override {
    auto service = _service.lock();
    if (!service) return error::make(errc::unavailable, "the aggregate node is stopping");
    auto page = service->read_events(tenant, type, id, after, limit);
    if (!page.ok()) return std::move(page).err();
    return stages::aggregate_event_page{std::move(page->events), page->next_after};
  }

 private:
  std::weak_ptr<aggregate_service> _service;
};

}  // namespace

result<std::shared_ptr<aggregate_service>> aggregate_service::open(aggregate_service_options options) {
  if (!options.store || !options.log)
    return error::make(errc::internal, "aggregate service without store or log");
  std::shared_ptr<aggregate_service> s(new aggregate_service(options.cache_bytes));
  s->_options = std::move(options);
  const auto& o = s->_options;
  auto types = parse_aggregates(o.aggregates, o.pipeline_file, o.base_dir, s->_programs);
  if (!types.ok()) return std::move(types).err();
  s->_types = std::move(types).value();
  s->_store = o.store;
  s->_log = o.log;
  s->_embedded = dynamic_cast<storage::embedded_event_log*>(s->_log.get());
  // Two readers keep a cold read waiting on the network from holding up the
  // next; the queue matches a pipeline's default max_in_flight.
  if (s->remote_log()) s->_readers = std::make_unique<blocking_pool>("esflow-agg-read", 2, 4096);
  s->_metrics =
      std::make_unique<aggregate_metrics>(o.host ? &o.host->metrics() : nullptr, o.metrics_tenant_cap);
  for (const auto& t : s->_types) s->_metrics->declare_type(t.name);
  auto tenants = tenant_tracker::open(*s->_store);
  if (!tenants.ok()) return std::move(tenants).err();
  s->_tenants = std::move(tenants).value();

  if (o.host) {
    std::weak_ptr<aggregate_service> weak = s;
    o.host->add_metrics(make_cache_metrics(
        [weak]() -> std::optional<cache_stats> {
          auto self = weak.lock();
          return self ? std::optional(self->_cache.stats()) : std::nullopt;
        },
        s->_cache.capacity_bytes()));
    o.host->add_tenants_provider([weak] {
      auto self = weak.lock();
      return self ? self->_tenants->list() : nlohmann::json::array();
    });
    o.host->add_reload_hook("programs", [weak]() -> result<std::string> {
      auto self = weak.lock();
      if (!self) return std::string("gone");
      auto changed = self->reload_programs();
      if (!changed.ok()) return std::move(changed).err();
      std::string names;
      for (const auto& n : changed.value()) names += (names.empty() ? "" : ", ") + n;
      return changed->empty() ? std::string("unchanged") : "reloaded " + names;
    });
    o.host->set_info("programs", [weak] {
      auto out = nlohmann::json::array();
      if (auto self = weak.lock()) {
        for (const auto& t : self->_types)
          out.push_back(
              {{"name", t.name}, {"path", t.program_path}, {"hash", t.current_program()->hash().to_hex()}});
      }
      return out;
    });
  }
  return s;
}

result<std::shared_ptr<aggregate_service>> aggregate_service::for_pipeline(
    const graph::node_kind_init& init) {
  const auto& settings = init.pipeline.settings;
  const auto dir = stages::data_dir_of(init.pipeline);
  return init.services.get_or_create<aggregate_service>(
      "aggregate:" + dir, [&]() -> result<std::shared_ptr<aggregate_service>> {
        aggregate_service_options o;
        auto store = stages::node_store_for(init.pipeline, init.services);
        if (!store.ok()) return std::move(store).err();
        auto log = stages::event_log_for(init.pipeline, init.services);
        if (!log.ok()) return std::move(log).err();
        o.store = std::move(store).value();
        o.log = std::move(log).value();
        o.metrics_tenant_cap = static_cast<std::size_t>(settings.integer("metrics_tenant_cap"));
        for (const auto& st : init.pipeline.stages) {
          if (st.kind == "aggregate.rehydrate" && st.params.has("cache_mb"))
            o.cache_bytes = static_cast<std::size_t>(st.params.integer("cache_mb")) << 20;
        }
        auto it = init.pipeline.sections.find("aggregates");
        if (it != init.pipeline.sections.end()) o.aggregates = it->second;
        o.pipeline_file = init.pipeline.file;
        o.base_dir = init.pipeline.base_dir;
        o.host = init.services.find<transport::node_host>("").get();
        auto made = open(std::move(o));
        if (!made.ok()) return made;
        init.services.put<stages::aggregate_reads>(stages::aggregate_reads_key(dir),
                                                   std::make_shared<service_reads>(made.value()));
        return made;
      });
}

const aggregate_type_config* aggregate_service::find_type(std::string_view name) const {
  for (const auto& t : _types)
    if (t.name == name) return &t;
  return nullptr;
}

result<std::vector<std::string>> aggregate_service::reload_programs() {
  std::lock_guard lock(_reload_mu);
  std::vector<runtime::program_ptr> fresh;
  for (const auto& t : _types) {
    auto p = _programs.reload(t.program_path);
    if (!p.ok()) {
      auto e = std::move(p).err();
      e.message = "aggregate " + t.name + ": " + e.message + " (no program was swapped)";
      return e;
    }
    fresh.push_back(std::move(p).value());
  }
  std::vector<std::string> changed;
  for (std::size_t i = 0; i < _types.size(); ++i) {
    auto& t = _types[i];
    if (t.current_program() == fresh[i]) continue;
    std::atomic_store(&t.program, fresh[i]);
    changed.push_back(t.name);
    ESFLOW_INFO("aggregate", "reloaded the program of {} from {} (sha256 {})", t.name, t.program_path,
                fresh[i]->hash().to_hex());
  }
  return changed;
}

std::string aggregate_service::type_names() const {
  std::string out;
  for (const auto& t : _types) out += (out.empty() ? "" : ", ") + t.name;
  return out;
}

// --- rehydration -------------------------------------------------------------------------

result<rehydrated> aggregate_service::load(const std::string& tenant, const aggregate_type_config& type,
                                           const std::string& id, runtime::sandbox& sb, bool use_snapshot) {
  const auto denied = [&] {
    return error::make(errc::tenant_access_denied,
                       "aggregate " + type.name + "/" + id + " holds data of another tenant",
                       "tenant=" + tenant);
  };
  rehydrated out;
  runtime::state_handle state;
  const auto program = type.current_program();  // one program for the whole fold
  if (use_snapshot) {
    auto snap = snapshots().get(tenant, type.name, id);
    if (!snap.ok()) return std::move(snap).err();
    if (snap.value()) {
      const auto& s = *snap.value();
      if (s.tenant_id != tenant) return denied();
      auto st = sb.state_from_json(s.state_json);
      if (!st.ok()) return std::move(st).err();
      state = std::move(st).value();
      out.head.version = s.version;
      out.head.position = s.log_position;
    }
  }
  if (!state.valid()) {
    auto st = sb.initial_state(*program);
    if (!st.ok()) return std::move(st).err();
    state = std::move(st).value();
  }
  // The snapshot's position starts the read (JetStream: the stream sequence
  // after it), and each page continues where the last one ended: the cost is
  // the events after the snapshot, never the whole history. Each page
  // advances the version by its size, so this ends.
  storage::position_t from = out.head.position;
  while (true) {
    auto page = _log->read_page(tenant, type.name, id, out.head.version, from, k_replay_page);
    if (!page.ok()) return std::move(page).err();
    for (const auto& e : page->events) {
      if (e.tenant_id != tenant) return denied();
      if (e.version != out.head.version + 1) {
        return error::make(errc::internal, "aggregate " + type.name + "/" + id + ": expected version " +
                                               std::to_string(out.head.version + 1) + ", read " +
                                               std::to_string(e.version));
      }
      if (auto ok = sb.apply(*program, state, e.payload_json); !ok.ok()) return std::move(ok).err();
      out.head.version = e.version;
      ++out.replayed;
    }
    from = page->next_after_position;
    if (page->events.size() < k_replay_page) break;
  }
  // Every commit read was read whole: `from` is the last one's position.
  if (from != 0) out.head.position = from;
  auto js = sb.state_to_json(state);
  if (!js.ok()) return std::move(js).err();
  out.head.state_json = std::move(js).value();
  return out;
}

result<std::optional<rehydrated>> aggregate_service::rehydrate_local(const std::string& tenant,
                                                                     const aggregate_type_config& type,
                                                                     const std::string& id,
                                                                     runtime::sandbox& sb, bool guess_new) {
  using out_t = std::optional<rehydrated>;
  const auto t0 = std::chrono::steady_clock::now();
  if (auto hit = _cache.committed(aggregate_key(tenant, type.name, id))) {
    _metrics->rehydration(true, seconds_since(t0), 0);
    return out_t{rehydrated{std::move(*hit), true, false, 0}};
  }
  if (!guess_new || !remote_log()) return out_t{};
  // A snapshot (local RocksDB) proves the aggregate exists: only the log can tell.
  auto snap = snapshots().get(tenant, type.name, id);
  if (!snap.ok()) return std::move(snap).err();
  if (snap.value()) return out_t{};
  auto st = sb.initial_state(*type.current_program());
  if (!st.ok()) return std::move(st).err();
  auto js = sb.state_to_json(*st);
  if (!js.ok()) return std::move(js).err();
  rehydrated out;
  out.head.state_json = std::move(js).value();  // version 0, token 0: not cached
  out.guessed = true;
  _metrics->rehydration(false, seconds_since(t0), 0);
  return out_t{std::move(out)};
}

result<rehydrated> aggregate_service::rehydrate(const std::string& tenant, const aggregate_type_config& type,
                                                const std::string& id, runtime::sandbox& sb, bool guess_new) {
  auto local = rehydrate_local(tenant, type, id, sb, guess_new);
  if (!local.ok()) return std::move(local).err();
  if (local.value()) return std::move(*local.value());
  return load_and_cache(tenant, type, id, sb);
}

result<rehydrated> aggregate_service::load_and_cache(const std::string& tenant,
                                                     const aggregate_type_config& type, const std::string& id,
                                                     runtime::sandbox& sb) {
  const auto t0 = std::chrono::steady_clock::now();
  auto loaded = load(tenant, type, id, sb, true);
  if (!loaded.ok()) return loaded;
  if (type.snapshot_every > 0 && loaded->replayed >= static_cast<std::size_t>(type.snapshot_every))
    snapshot_loaded(tenant, type, id, loaded->head);
  loaded->head.token = _cache.next_token();
  loaded->head = _cache.insert_loaded(aggregate_key(tenant, type.name, id), std::move(loaded->head));
  _metrics->rehydration(false, seconds_since(t0), loaded->replayed);
  return loaded;
}

// A long replay (no snapshot here yet: a new node, or a lost data directory)
// is not paid twice: the next cold read starts from this one.
void aggregate_service::snapshot_loaded(const std::string& tenant, const aggregate_type_config& type,
                                        const std::string& id, const state_head& head) {
  if (head.position == 0 && remote_log()) return;  // no position to start the next read from
  schemas::snapshot snap;
  snap.tenant_id = tenant;
  snap.aggregate_type = type.name;
  snap.aggregate_id = id;
  snap.version = head.version;
  snap.log_position = head.position;
  snap.state_json = head.state_json;
  snap.created_at = schemas::now_timestamp();
  if (auto ok = snapshots().put(snap); !ok.ok() && ok.err().code != errc::version_conflict) {
    ESFLOW_WARN("aggregate", "snapshot of {}/{} at version {} after a replay not written: {}", type.name, id,
                snap.version, ok.err().to_string());
  }
}

bool aggregate_service::read_async(std::function<void()> job) {
  return _readers != nullptr && _readers->try_submit(std::move(job));
}

// --- decide -------------------------------------------------------------------------------

status aggregate_service::decide_command(const aggregate_type_config& type, runtime::sandbox& sb,
                                         aggregate_context& ctx) {
  auto st = sb.state_from_json(ctx.state_json);
  if (!st.ok()) return std::move(st).err();
  runtime::decision d;
  if (auto ok = sb.decide_and_apply(*type.current_program(), *st, ctx.cmd.payload_json, d); !ok.ok())
    return ok;
  ctx.events.clear();
  if (d.empty()) {
    ctx.new_state_json = ctx.state_json;
    return {};
  }
  auto js = sb.state_to_json(*st);
  if (!js.ok()) return std::move(js).err();
  ctx.new_state_json = std::move(js).value();
  const auto ts = schemas::now_timestamp();
  ctx.events.reserve(d.size());
  for (std::size_t i = 0; i < d.size(); ++i) {
    schemas::event e;
    e.tenant_id = ctx.tenant;
    e.event_id = schemas::new_uuid_v7();
    e.aggregate_type = ctx.cmd.aggregate_type;
    e.aggregate_id = ctx.cmd.aggregate_id;
    e.version = ctx.version + i + 1;
    e.event_type = std::move(d[i].event_type);
    e.payload_json = std::move(d[i].payload_json);
    e.command_id = ctx.cmd.command_id;
    e.correlation_id = ctx.trace.correlation_id;
    e.trace_id = ctx.trace.trace_id;
    e.timestamp = ts;
    ctx.events.push_back(std::move(e));
  }
  return {};
}

// --- reads ----------------------------------------------------------------------------------

result<aggregate_state> aggregate_service::get_state(const std::string& tenant, const std::string& type,
                                                     const std::string& id) {
  const auto* t = find_type(type);
  if (!t)
    return error::make(errc::invalid_command,
                       "unknown aggregate type '" + type + "' (known: " + type_names() + ")");
  if (auto ok = schemas::validate_aggregate_id(id); !ok.ok()) return std::move(ok).err();
  // A cache hit needs no sandbox; a miss takes one of the few shared ones.
  auto key = aggregate_key(tenant, t->name, id);
  if (auto hit = _cache.committed(key)) {
    if (hit->version == 0)
      return error::make(errc::not_found, "aggregate " + type + "/" + id + " has no events");
    return aggregate_state{hit->version, std::move(hit->state_json)};
  }
  auto sandboxes = _read_sandboxes.take();
  auto r = load_and_cache(tenant, *t, id, (*sandboxes).get(*t));
  if (!r.ok()) return std::move(r).err();
  if (r->head.version == 0)
    return error::make(errc::not_found, "aggregate " + type + "/" + id + " has no events");
  return aggregate_state{r->head.version, std::move(r->head.state_json)};
}

result<event_page> aggregate_service::read_events(const std::string& tenant, const std::string& type,
                                                  const std::string& id, schemas::version_t after,
                                                  std::size_t limit) {
  if (!find_type(type))
    return error::make(errc::invalid_command,
                       "unknown aggregate type '" + type + "' (known: " + type_names() + ")");
  if (auto ok = schemas::validate_aggregate_id(id); !ok.ok()) return std::move(ok).err();
  if (limit == 0) limit = k_default_read_limit;
  limit = std::min(limit, k_max_read_limit);
  auto current = _log->current_version(tenant, type, id);
  if (!current.ok()) return std::move(current).err();
  if (current.value() == 0)
    return error::make(errc::not_found, "aggregate " + type + "/" + id + " has no events");
  auto events = _log->read(tenant, type, id, after, limit);
  if (!events.ok()) return std::move(events).err();
  event_page page;
  page.events = std::move(events).value();
  if (page.events.size() == limit && page.events.back().version < current.value())
    page.next_after = page.events.back().version;
  return page;
}

}  // namespace esflow::aggregate
