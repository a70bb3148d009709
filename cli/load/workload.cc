#include "cli/load/workload.h"

#include <nlohmann/json.hpp>

#include <ostream>

namespace esflow::load {
namespace {

load_item item_of(stages::bank_command c) {
  load_item i;
  i.body = stages::command_body(c, false);
  nlohmann::json payload = {{"type", c.type}};
  payload[c.type == "open_account" ? "initial_balance" : "amount"] = c.amount;
  i.payload = payload.dump();
  i.cmd = std::move(c);
  return i;
}

load_workload split(std::vector<stages::bank_command> commands) {
  load_workload w;
  for (auto& c : commands) (c.setup ? w.setup : w.run).push_back(item_of(std::move(c)));
  return w;
}

}  // namespace

load_workload generate_workload(const stages::bank_workload_options& o) {
  auto w = split(stages::generate_bank_workload(o));
  w.sample = stages::bank_workload_sample(o);
  w.source = "generated (seed " + std::to_string(o.seed) + ", " + std::to_string(o.commands) + " commands, " +
             std::to_string(o.accounts) + " accounts, " + std::to_string(o.tenants) + " tenants)";
  return w;
}

result<load_workload> read_workload(const std::string& path) {
  auto file = stages::read_bank_workload(path);
  if (!file.ok()) return file.err();
  auto w = split(std::move(file->commands));
  w.sample = std::move(file->sample);
  w.source = path;
  return w;
}

void print_workload(const stages::bank_workload_options& o, std::ostream& out) {
  // One buffer per 10,000 lines: 200,000 commands print in a fraction of a second.
  std::string buf;
  std::size_t lines = 0;
  for (const auto& c : stages::generate_bank_workload(o)) {
    buf += stages::workload_line(c);
    buf += '\n';
    if (++lines % 10000 == 0) {
      out << buf;
      buf.clear();
    }
  }
  buf += stages::sample_line(stages::bank_workload_sample(o));
  buf += '\n';
  out << buf;
}

}  // namespace esflow::load
