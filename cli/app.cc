#include "cli/app.h"

#include "common/log.h"
#include "graph/graph_dump.h"
#include "graph/node.h"
#include "graph/pipeline_loader.h"
#include "stages/builtin.h"
#include "storage/event_log_factory.h"
#include "storage/jetstream/jetstream_backend.h"
#include "transport/node_host.h"

#include <nlohmann/json.hpp>

#include <csignal>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <thread>
#include <unistd.h>

namespace esflow::cli {
namespace {

std::atomic<int> g_signal{0};
// The first SIGINT/SIGTERM asks for a drain; a second one (an impatient
// Ctrl-C, an orchestrator's repeat) ends the process at once.
extern "C" void on_signal(int sig) {
  if (g_signal.exchange(sig) != 0) _exit(128 + sig);
}

result<graph::pipeline_spec> load(const std::string& file) {
  return graph::load_pipeline_file(file, builtin_registry());
}

}  // namespace

const graph::kind_registry& builtin_registry() {
  static const graph::kind_registry registry = [] {
    graph::kind_registry r;
    stages::register_builtin_stages(r);
    return r;
  }();
  return registry;
}

std::shared_ptr<storage::event_log_factory> builtin_event_logs() {
  auto f = std::make_shared<storage::event_log_factory>();
  // The one list of backends; two with one name is a build mistake.
  for (auto make : {storage::embedded_backend, storage::jetstream::jetstream_backend})
    if (auto added = f->add(make()); !added.ok()) throw std::logic_error(added.err().to_string());
  return f;
}

int validate_command(const std::vector<std::string>& files, std::ostream& out, std::ostream& err) {
  int code = k_ok;
  for (const auto& f : files) {
    auto spec = load(f);
    if (!spec.ok()) {
      err << spec.err().message << "\n";
      code = k_usage;
      continue;
    }
    out << f << ": ok (pipeline '" << spec->name << "', " << spec->stages.size() << " stages, "
        << spec->edges.size() << " edges)\n";
  }
  return code;
}

int graph_command(const std::string& file, const std::string& format, std::ostream& out, std::ostream& err) {
  auto spec = load(file);
  if (!spec.ok()) {
    err << spec.err().message << "\n";
    return k_usage;
  }
  if (format == "dot")
    out << graph::graph_dot(*spec);
  else if (format == "mermaid")
    out << graph::graph_mermaid(*spec);
  else
    out << graph::graph_json(*spec).dump(2) << "\n";
  return k_ok;
}

int stages_command(const std::string& format, std::ostream& out) {
  const auto all = builtin_registry().all();
  if (format == "json") {
    nlohmann::json list = nlohmann::json::array();
    for (const auto* d : all) {
      nlohmann::json params = nlohmann::json::array();
      for (const auto& p : d->params) {
        nlohmann::json jp = {{"name", p.name},
                             {"type", std::string(graph::to_string(p.type))},
                             {"required", p.required()},
                             {"doc", p.doc}};
        if (p.default_value) jp["default"] = graph::render(*p.default_value);
        if (!p.choices.empty()) jp["choices"] = p.choices;
        params.push_back(jp);
      }
      std::vector<std::string> ports = d->output_ports;
      if (d->ports_from_params) ports = {"<from params>"};
      ports.push_back("error");
      list.push_back({{"kind", d->kind},
                      {"node_kind", d->node_kind},
                      {"description", d->description},
                      {"role", std::string(graph::to_string(d->role))},
                      {"async", d->async},
                      {"default_concurrency", d->default_concurrency.to_string()},
                      {"ports", ports},
                      {"params", params}});
    }
    out << list.dump(2) << "\n";
    return k_ok;
  }
  for (const auto* d : all) {
    out << d->kind << " (" << graph::to_string(d->role) << (d->async ? ", async" : "") << ")\n    "
        << d->description << "\n";
    for (const auto& p : d->params) {
      out << "    " << std::left << std::setw(16) << p.name << std::setw(9) << graph::to_string(p.type);
      out << (p.required() ? "required" : "default " + graph::render(*p.default_value)) << "  " << p.doc
          << "\n";
    }
  }
  return k_ok;
}

int kinds_command(const std::string& format, std::ostream& out) {
  const auto& r = builtin_registry();
  const auto stages_of = [&](const std::string& kind) {
    std::vector<std::string> names;
    for (const auto* d : r.all())
      if (d->node_kind == kind) names.push_back(d->kind);
    return names;
  };
  const auto settings_of = [&](const std::string& owner) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& p : r.settings())
      if (r.settings_owner(p.name) == owner)
        list.push_back({{"name", p.name},
                        {"type", std::string(graph::to_string(p.type))},
                        {"default", p.default_value ? graph::render(*p.default_value) : std::string()},
                        {"doc", p.doc}});
    return list;
  };
  nlohmann::json kinds = nlohmann::json::array();
  for (const auto* k : r.node_kinds())
    kinds.push_back({{"name", k->name},
                     {"description", k->description},
                     {"sections", k->sections},
                     {"stages", stages_of(k->name)},
                     {"settings", settings_of(k->name)}});
  if (format == "json") {
    out << nlohmann::json{{"node_kinds", kinds},
                          {"shared_stages", stages_of("")},
                          {"settings", {{"engine", settings_of("engine")}, {"node", settings_of("node")}}}}
               .dump(2)
        << "\n";
    return k_ok;
  }
  const auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
    return s.empty() ? std::string("-") : s;
  };
  for (const auto& k : kinds) {
    out << k["name"].get<std::string>() << "\n    " << k["description"].get<std::string>() << "\n"
        << "    sections: " << join(k["sections"].get<std::vector<std::string>>()) << "\n"
        << "    stages:   " << join(k["stages"].get<std::vector<std::string>>()) << "\n";
  }
  out << "shared stages (any node kind): " << join(stages_of("")) << "\n";
  for (const auto* owner : {"engine", "node"}) {
    out << owner << " settings:\n";
    for (const auto& p : settings_of(owner))
      out << "    " << std::left << std::setw(20) << p["name"].get<std::string>() << std::setw(10)
          << p["type"].get<std::string>() << "default " << p["default"].get<std::string>() << "  "
          << p["doc"].get<std::string>() << "\n";
  }
  return k_ok;
}

int run_command(const std::vector<std::string>& files, const run_options& options, std::ostream& err) {
  // Before any start-up work (opening RocksDB, connecting to NATS): a signal
  // that arrives meanwhile is seen by the loop below, which then drains.
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  if (files.empty()) {
    err << "no pipeline files given\n";
    return k_usage;
  }
  std::vector<graph::pipeline_spec> specs;
  for (const auto& f : files) {
    auto spec = load(f);
    if (!spec.ok()) {
      err << spec.err().message << "\n";
      return k_usage;
    }
    specs.push_back(std::move(spec).value());
  }
  serve_options so;
  so.overrides = options.overrides;
  so.http = "";  // the first file's settings.http unless --http
  auto served = serve_loaded(std::move(specs), so);
  if (!served.ok()) {
    err << served.err().message << "\n";
    return k_failure;
  }
  auto& host = served_host(*served.value());

  // Finite pipelines end by themselves; servers run until a signal or POST /admin/drain.
  bool all_finished = false;
  while (!all_finished && g_signal.load() == 0 && !host.drain_requested()) {
    all_finished = true;
    for (const auto& n : host.nodes())
      if (!n->wait_finished(std::chrono::steady_clock::now() + std::chrono::milliseconds(50)))
        all_finished = false;
  }
  int code = k_ok;
  if (!all_finished) {
    ESFLOW_INFO("cli", "draining ({})", g_signal.load() ? "signal" : "admin request");
    if (auto stopped = stop_served(*served.value()); !stopped.ok()) {
      err << stopped.err().to_string() << "\n";
      code = k_failure;
    }
  }
  return code;
}

class served_nodes {
 public:
  ~served_nodes() { ignore(stop()); }

  status stop() {
    if (_stopped) return {};
    _stopped = true;
    status out;
    if (host) {
      host->request_drain();
      for (const auto& n : host->nodes())
        if (auto drained = n->drain(); !drained.ok() && out.ok()) out = drained.err();
    }
    if (http) http->stop();
    return out;
  }

  // Destroyed in reverse order: the host (and its nodes) before the services they use.
  esflow::service_registry services;
  std::shared_ptr<transport::http_server> http;
  std::unique_ptr<transport::node_host> host;

 private:
  bool _stopped = false;
};

namespace {

void apply_overrides(graph::pipeline_spec& spec, const node_overrides& o) {
  if (o.http) spec.settings.set("http", *o.http);
  if (o.data_dir) spec.settings.set("data_dir", *o.data_dir);
  if (o.nats_url) {
    spec.settings.set("nats_url", *o.nats_url);
    spec.settings.set("event_log", std::string("jetstream"));
  }
}

}  // namespace

result<std::shared_ptr<served_nodes>> serve_loaded(std::vector<graph::pipeline_spec> specs,
                                                   const serve_options& options) {
  if (specs.empty()) return error::make(errc::invalid_config, "no pipeline files given");
  for (auto& spec : specs) apply_overrides(spec, options.overrides);
  auto served = std::make_shared<served_nodes>();
  const auto listen = options.overrides.http ? *options.overrides.http
                      : options.http.empty() ? specs.front().settings.str("http")
                                             : options.http;
  served->http = std::make_shared<transport::http_server>(listen);
  served->services.put<transport::http_server>("", served->http);
  served->host = std::make_unique<transport::node_host>(served->http);
  served->services.put<transport::node_host>(
      "", std::shared_ptr<transport::node_host>(served->host.get(), [](auto*) {}));
  served->services.put<storage::event_log_factory>("", builtin_event_logs());
  if (options.prepare) options.prepare(served->services);
  for (auto& spec : specs) {
    auto n = graph::node::build(std::move(spec), served->services);
    if (!n.ok()) return std::move(n).err();
    served->host->add_node(std::shared_ptr<graph::node>(std::move(n).value()));
  }
  served->host->install_routes();
  if (auto started = served->http->start(); !started.ok()) return std::move(started).err();
  if (options.start) start_served(*served);
  return served;
}

void start_served(served_nodes& nodes) {
  for (const auto& n : nodes.host->nodes()) n->start();
}

esflow::service_registry& served_services(served_nodes& nodes) { return nodes.services; }

result<std::shared_ptr<served_nodes>> serve_nodes(const std::vector<std::string>& files,
                                                  const serve_options& options) {
  const auto& registry = options.registry ? *options.registry : builtin_registry();
  std::vector<graph::pipeline_spec> specs;
  for (const auto& f : files) {
    auto spec = graph::load_pipeline_file(f, registry);
    if (!spec.ok()) return std::move(spec).err();
    specs.push_back(std::move(spec).value());
  }
  return serve_loaded(std::move(specs), options);
}

std::string served_url(const served_nodes& nodes) { return nodes.http->url(); }

transport::node_host& served_host(served_nodes& nodes) { return *nodes.host; }

status stop_served(served_nodes& nodes) { return nodes.stop(); }

std::optional<std::string> find_pipelines_dir(const std::string& argv0) {
  namespace fs = std::filesystem;
  std::vector<fs::path> candidates;
  if (const char* env = std::getenv("ESFLOW_PIPELINES_DIR")) candidates.emplace_back(env);
  candidates.emplace_back("pipelines");
  std::error_code ec;
  auto exe = fs::canonical("/proc/self/exe", ec);
  if (ec) exe = fs::absolute(argv0);
  candidates.push_back(exe.parent_path() / ".." / "pipelines");
  candidates.push_back(exe.parent_path() / ".." / ".." / "pipelines");
  candidates.emplace_back("/usr/share/esflow/pipelines");
  for (const auto& c : candidates)
    if (fs::is_directory(c, ec)) return fs::weakly_canonical(c, ec).string();
  return std::nullopt;
}

}  // namespace esflow::cli
