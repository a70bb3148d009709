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

#include <cctype>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <set>
#include <sstream>
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

void apply_overrides(graph::pipeline_spec& spec, const node_overrides& o) {
  if (o.http) spec.settings.set("http", *o.http);
  if (o.grpc) spec.settings.set("grpc", *o.grpc);
  if (o.data_dir) spec.settings.set("data_dir", *o.data_dir);
  if (o.node_id) spec.settings.set("node_id", *o.node_id);
  if (o.nats_url) {
    spec.settings.set("nats_url", *o.nats_url);
    spec.settings.set("event_log", std::string("jetstream"));
  }
}

// The process's gRPC address: the pipelines' non-empty settings.grpc (after
// the overrides), which must agree; empty when none asks for gRPC.
result<std::string> grpc_address(const std::vector<graph::pipeline_spec>& specs) {
  std::string out;
  for (const auto& spec : specs) {
    const auto addr = spec.settings.str("grpc");
    if (addr.empty() || addr == out) continue;
    if (!out.empty())
      return error::make(errc::invalid_config, "pipeline '" + spec.name + "' asks for gRPC on " + addr +
                                                   ", another pipeline of this process on " + out +
                                                   " (one gRPC server per process; or use --grpc)");
    out = addr;
  }
  return out;
}

// The content of a secret file, surrounding whitespace removed; nullopt when
// it cannot be read or is empty.
std::optional<std::string> read_secret_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream buf;
  buf << in.rdbuf();
  auto s = buf.str();
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return std::nullopt;
  return s.substr(first, s.find_last_not_of(" \t\r\n") - first + 1);
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

namespace {

nlohmann::json stages_json() {
  nlohmann::json list = nlohmann::json::array();
  for (const auto* d : builtin_registry().all()) {
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
                    {"runs_inline", d->runs_inline},
                    {"ports", ports},
                    {"params", params}});
  }
  return list;
}

// A table cell: pipes escaped, no line breaks.
std::string cell(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '|')
      out += "\\|";
    else if (c == '\n')
      out += ' ';
    else
      out += c;
  }
  return out;
}

std::string code(const std::string& s) { return s.empty() ? std::string("\"\"") : "`" + s + "`"; }

std::string join(const std::vector<std::string>& v, const std::string& sep = ", ") {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : sep) + x;
  return s;
}

std::vector<std::string> codes(const std::vector<std::string>& v) {
  std::vector<std::string> out;
  for (const auto& x : v) out.push_back(code(x));
  return out;
}

// A parameter's or setting's type, with its choices.
std::string type_of(const nlohmann::json& p) {
  std::string type = p["type"].get<std::string>();
  if (p.contains("choices")) type += ": " + join(p["choices"].get<std::vector<std::string>>(), " \\| ");
  return type;
}

// A default as a table cell, with the unit durations and sizes are kept in.
std::string default_of(const nlohmann::json& p) {
  const auto type = p["type"].get<std::string>();
  const auto value = cell(code(p["default"].get<std::string>()));
  if (type == "duration") return value + " ms";
  if (type == "size") return value + " bytes";
  return value;
}

constexpr const char* k_generated_note =
    "Generated from the code by `docs/reference/generate.sh`; do not edit (a test compares it with the "
    "binary's output).\n";

void stages_markdown(const nlohmann::json& list, std::ostream& out) {
  out << "# Stage kinds\n\n"
      << k_generated_note
      << "The same as `esflow stages --format markdown`; `--format json` gives it as data.\n"
         "Every stage also has an `error` port; `concurrency` and `key` are set per stage in the "
         "pipeline file ([pipeline-files.md](../pipeline-files.md)).\n\n"
      << "| kind | node kind | role | description |\n|---|---|---|---|\n";
  for (const auto& d : list) {
    const auto kind = d["kind"].get<std::string>();
    const auto node_kind = d["node_kind"].get<std::string>();
    out << "| [`" << kind << "`](#" <<
        [&] {
          std::string anchor;
          for (char c : kind)
            if (c != '.') anchor += c;
          return anchor;
        }()
        << ") | " << (node_kind.empty() ? "shared" : node_kind) << " | " << d["role"].get<std::string>()
        << " | " << cell(d["description"].get<std::string>()) << " |\n";
  }
  for (const auto& d : list) {
    const auto node_kind = d["node_kind"].get<std::string>();
    out << "\n## " << d["kind"].get<std::string>() << "\n\n"
        << d["description"].get<std::string>() << "\n\n"
        << "- node kind: " << (node_kind.empty() ? "shared (any)" : node_kind) << "\n"
        << "- role: " << d["role"].get<std::string>() << (d["async"].get<bool>() ? ", async" : "") << "\n"
        << "- default concurrency: "
        << (d["runs_inline"].get<bool>()
                ? std::string("inline (on the thread that hands it the message; a `concurrency` makes it TBB "
                              "tasks)")
                : d["default_concurrency"].get<std::string>())
        << "\n"
        << "- ports: " << join(codes(d["ports"].get<std::vector<std::string>>())) << "\n";
    if (d["params"].empty()) {
      out << "- parameters: none\n";
      continue;
    }
    out << "\n| parameter | type | default | description |\n|---|---|---|---|\n";
    for (const auto& p : d["params"]) {
      out << "| `" << p["name"].get<std::string>() << "` | " << type_of(p) << " | "
          << (p["required"].get<bool>() ? std::string("required") : default_of(p)) << " | "
          << cell(p["doc"].get<std::string>()) << " |\n";
    }
  }
}

}  // namespace

int stages_command(const std::string& format, std::ostream& out) {
  const auto list = stages_json();
  if (format == "json") {
    out << list.dump(2) << "\n";
    return k_ok;
  }
  if (format == "markdown") {
    stages_markdown(list, out);
    return k_ok;
  }
  for (const auto* d : builtin_registry().all()) {
    out << d->kind << " (" << graph::to_string(d->role) << (d->async ? ", async" : "")
        << (d->runs_inline ? ", inline" : "") << ")\n    " << d->description << "\n";
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
      if (r.settings_owner(p.name) == owner) {
        nlohmann::json jp = {{"name", p.name},
                             {"type", std::string(graph::to_string(p.type))},
                             {"default", p.default_value ? graph::render(*p.default_value) : std::string()},
                             {"doc", p.doc}};
        if (!p.choices.empty()) jp["choices"] = p.choices;
        list.push_back(jp);
      }
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
  const auto or_dash = [](const std::string& s) { return s.empty() ? std::string("-") : s; };
  if (format == "markdown") {
    const auto settings_table = [&](const nlohmann::json& list) {
      out << "| setting | type | default | description |\n|---|---|---|---|\n";
      for (const auto& p : list)
        out << "| `" << p["name"].get<std::string>() << "` | " << type_of(p) << " | " << default_of(p)
            << " | " << cell(p["doc"].get<std::string>()) << " |\n";
    };
    out << "# Node kinds\n\n"
        << k_generated_note
        << "The same as `esflow kinds --format markdown`; `--format json` gives it as data. What a node "
           "kind is and how one is built: [../node-kinds.md](../node-kinds.md); the stages: "
           "[stages.md](stages.md).\n";
    for (const auto& k : kinds) {
      out << "\n## " << k["name"].get<std::string>() << "\n\n"
          << k["description"].get<std::string>() << "\n\n"
          << "- pipeline-file sections: "
          << or_dash(join(codes(k["sections"].get<std::vector<std::string>>()))) << "\n"
          << "- stages: " << or_dash(join(codes(k["stages"].get<std::vector<std::string>>()))) << "\n";
      if (k["settings"].empty())
        out << "- settings of its own: none\n";
      else {
        out << "\n";
        settings_table(k["settings"]);
      }
    }
    out << "\n## Shared stages\n\nAny node kind may use them: " << join(codes(stages_of(""))) << ".\n";
    out << "\n## Engine settings\n\nEvery pipeline file's `settings:` (graph/pipeline_settings.cc).\n\n";
    settings_table(settings_of("engine"));
    out << "\n## Node settings\n\nEvery node kind's `settings:`, declared once in stages/node_env.cc.\n\n";
    settings_table(settings_of("node"));
    return k_ok;
  }
  for (const auto& k : kinds) {
    out << k["name"].get<std::string>() << "\n    " << k["description"].get<std::string>() << "\n"
        << "    sections: " << or_dash(join(k["sections"].get<std::vector<std::string>>())) << "\n"
        << "    stages:   " << or_dash(join(k["stages"].get<std::vector<std::string>>())) << "\n";
  }
  out << "shared stages (any node kind): " << or_dash(join(stages_of(""))) << "\n";
  for (const auto* owner : {"engine", "node"}) {
    out << owner << " settings:\n";
    for (const auto& p : settings_of(owner))
      out << "    " << std::left << std::setw(20) << p["name"].get<std::string>() << std::setw(10)
          << p["type"].get<std::string>() << "default " << p["default"].get<std::string>() << "  "
          << p["doc"].get<std::string>() << "\n";
  }
  return k_ok;
}

int placement_constraints_command(const std::vector<std::string>& node_ids, const std::string& label,
                                  std::ostream& out, std::ostream& err) {
  const auto valid = [](const std::string& s, bool dots) {
    if (s.empty() || s.size() > 63) return false;
    if (!std::isalnum(static_cast<unsigned char>(s[0]))) return false;
    for (char c : s)
      if (!(std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) ||
            c == '-' || c == '_' || (dots && c == '.')))
        return false;
    return true;
  };
  if (!valid(label, true)) {
    err << "invalid label '" << label << "': [a-z0-9][a-z0-9._-]{0,62}\n";
    return k_usage;
  }
  std::set<std::string> seen;
  for (const auto& id : node_ids) {
    if (!valid(id, false)) {
      err << "invalid node id '" << id << "': [a-z0-9][a-z0-9_-]{0,62}\n";
      return k_usage;
    }
    if (!seen.insert(id).second) {
      err << "node id '" << id << "' given twice\n";
      return k_usage;
    }
  }
  for (const auto& id : node_ids) out << id << ": [\"node.labels." << label << " == " << id << "\"]\n";
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
  node_overrides overrides = options.overrides;
  if (!overrides.nats_url && options.nats_url_file) {
    auto url = read_secret_file(*options.nats_url_file);
    if (!url) {
      err << "cannot read a NATS URL from '" << *options.nats_url_file << "' (--nats-file)\n";
      return k_usage;
    }
    overrides.nats_url = std::move(url);
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
  if (options.check) {
    // What would run, and nothing started: no RocksDB opened, no connection made.
    for (std::size_t i = 0; i < specs.size(); ++i) {
      apply_overrides(specs[i], overrides);
      const auto& st = specs[i].settings;
      std::cout << files[i] << ": ok (pipeline '" << specs[i].name << "', " << specs[i].stages.size()
                << " stages; event_log " << st.str("event_log") << ", data_dir " << st.str("data_dir")
                << ")\n";
    }
    std::cout << "http " << (overrides.http ? *overrides.http : specs.front().settings.str("http")) << "\n";
    auto grpc = grpc_address(specs);
    if (!grpc.ok()) {
      err << grpc.err().message << "\n";
      return k_usage;
    }
    if (!grpc.value().empty()) std::cout << "grpc " << grpc.value() << "\n";
    return k_ok;
  }
  serve_options so;
  so.overrides = overrides;
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
    if (host && host->grpc()) host->grpc()->stop();
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
  auto grpc = grpc_address(specs);
  if (!grpc.ok()) return std::move(grpc).err();
  if (!grpc.value().empty()) {
    auto server = std::make_shared<transport::grpc_server>(grpc.value());
    served->services.put<transport::grpc_server>("", server);
    served->host->set_grpc(std::move(server));
  }
  if (options.prepare) options.prepare(served->services);
  for (auto& spec : specs) {
    auto n = graph::node::build(std::move(spec), served->services);
    if (!n.ok()) return std::move(n).err();
    served->host->add_node(std::shared_ptr<graph::node>(std::move(n).value()));
  }
  served->host->install_routes();
  if (auto started = served->http->start(); !started.ok()) return std::move(started).err();
  if (const auto& g = served->host->grpc())
    if (auto started = g->start(); !started.ok()) return std::move(started).err();
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
