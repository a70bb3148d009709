#include "cli/replay.h"

#include "cli/app.h"
#include "cli/quarantine.h"

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <ostream>

namespace esflow::cli {

int replay_command(const std::string& url, const std::string& saga, const std::string& tenant,
                   std::uint64_t from, bool confirm, std::ostream& out, std::ostream& err) {
  if (saga.empty()) {
    err << "esflow replay: --saga is required\n";
    return k_usage;
  }
  const nlohmann::json body = {{"tenant_id", tenant}, {"from", from}, {"confirm", confirm}};
  auto r = admin_client(url)->Post("/admin/sagas/" + saga + "/replay", body.dump(), "application/json");
  if (!r) {
    err << "esflow replay: " << url << ": " << httplib::to_string(r.error()) << "\n";
    return k_failure;
  }
  if (r->status != (confirm ? 202 : 200)) {
    err << "esflow replay: " << url << " answered " << r->status << ": " << r->body << "\n";
    return k_failure;
  }
  auto j = nlohmann::json::parse(r->body, nullptr, false);
  out << (j.is_discarded() ? r->body : j.dump(2)) << "\n";
  if (!confirm)
    err << "esflow replay: dry run, nothing changed; add --confirm to run these inputs through the saga "
           "again\n";
  return k_ok;
}

}  // namespace esflow::cli
