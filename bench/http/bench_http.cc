// bench_http: the bank-account workload (bench/README.md) over HTTP from its
// own process, against an in-process aggregate node (a fresh temp data dir
// per client count) or a running node (--url, one client count). The load,
// report and verification are `esflow load`'s (cli/load/); this wrapper adds
// the in-process node and the list of client counts.
//
//   bench_http --workload w.jsonl [--clients 1,16,128] [--duration 60] [--url http://host:port]
//              [--key API_KEY]   (Authorization: Bearer, for a gateway)
#include "cli/app.h"
#include "cli/load/load.h"

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  esflow::load::load_options o;
  std::vector<int> clients = {1, 16, 128};
  std::string pipeline = std::string(ESFLOW_SOURCE_DIR) + "/pipelines/aggregate.yaml";
  o.duration = std::chrono::seconds(60);
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--workload")
      o.workload_file = next();
    else if (a == "--url")
      o.transport.url = next();
    else if (a == "--duration")
      o.duration = std::chrono::seconds(std::stoi(next()));
    else if (a == "--pipeline")
      pipeline = next();
    else if (a == "--key")
      o.transport.key = next();
    else if (a == "--clients") {
      clients.clear();
      std::stringstream ss(next());
      for (std::string c; std::getline(ss, c, ',');) clients.push_back(std::stoi(c));
    } else {
      std::cerr << "usage: bench_http --workload FILE [--clients 1,16,128] [--duration 60] [--url URL] "
                   "[--pipeline FILE] [--key API_KEY]\n";
      return 2;
    }
  }
  if (o.workload_file.empty()) {
    std::cerr << "--workload is required (node gen-workload.mjs --commands N > FILE)\n";
    return 2;
  }
  if (!o.transport.url.empty() && clients.size() != 1) {
    std::cerr << "--url runs one client count (the node keeps its data between runs)\n";
    return 2;
  }
  const std::string url = o.transport.url;
  std::cout << "node " << (url.empty() ? "in-process (embedded log)" : url) << ", durability "
            << (std::getenv("ESFLOW_DURABILITY") ? std::getenv("ESFLOW_DURABILITY") : "fsync") << "\n";
  bool all_ok = true;
  for (int c : clients) {
    std::shared_ptr<esflow::cli::served_nodes> served;
    std::filesystem::path dir;
    o.transport.url = url;
    if (url.empty()) {
      std::random_device rd;
      dir = std::filesystem::temp_directory_path() / ("esflow-bench-http-" + std::to_string(rd()));
      ::setenv("ESFLOW_DATA_DIR", dir.c_str(), 1);
      auto s = esflow::cli::serve_nodes({pipeline});
      if (!s.ok()) {
        std::cerr << s.err().to_string() << "\n";
        return 1;
      }
      served = std::move(s).value();
      o.transport.url = esflow::cli::served_url(*served);
    }
    o.clients = c;
    all_ok = esflow::load::load_command(o, std::cout, std::cerr) == 0 && all_ok;
    if (served) {
      served.reset();
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  }
  return all_ok ? 0 : 1;
}
