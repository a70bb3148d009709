#include "cli/views.h"

#include "cli/app.h"

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <iomanip>
#include <ostream>

namespace esflow::cli {
namespace {

std::unique_ptr<httplib::Client> client_for(const std::string& url) {
  auto c = std::make_unique<httplib::Client>(url.rfind("http", 0) == 0 ? url : "http://" + url);
  c->set_connection_timeout(5, 0);
  c->set_read_timeout(30, 0);
  return c;
}

std::string text_of(const nlohmann::json& j, const char* key) {
  if (!j.contains(key) || j[key].is_null()) return "-";
  return j[key].is_string() ? j[key].get<std::string>() : j[key].dump();
}

}  // namespace

int views_list_command(const std::string& url, std::ostream& out, std::ostream& err) {
  auto r = client_for(url)->Get("/admin/views");
  if (!r) {
    err << "esflow views: " << url << ": " << httplib::to_string(r.error()) << "\n";
    return k_failure;
  }
  auto views = nlohmann::json::parse(r->body, nullptr, false);
  if (r->status != 200 || !views.is_array()) {
    err << "esflow views: " << url << " answered " << r->status << ": " << r->body << "\n";
    return k_failure;
  }
  out << std::left << std::setw(24) << "VIEW" << std::setw(12) << "STATE" << std::setw(14) << "POSITION"
      << std::setw(10) << "LAG" << std::setw(12) << "ROWS"
      << "PIPELINE\n";
  for (const auto& v : views) {
    std::string state = text_of(v, "state");
    if (v.contains("rebuild"))
      state += " (" + text_of(v["rebuild"], "position") + "/" + text_of(v["rebuild"], "until") + ")";
    out << std::setw(24) << text_of(v, "view") << std::setw(12) << state << std::setw(14)
        << text_of(v, "position") << std::setw(10) << text_of(v, "lag") << std::setw(12) << text_of(v, "rows")
        << text_of(v, "pipeline") << "\n";
  }
  return k_ok;
}

int views_rebuild_command(const std::string& url, const std::string& view, bool confirm, std::ostream& out,
                          std::ostream& err) {
  if (!confirm) {
    err << "esflow views rebuild: a rebuild re-reads the whole event log into a new generation of '" << view
        << "' (queries keep answering from the current rows until it has caught up); add --confirm to start "
           "it\n";
    return k_usage;
  }
  auto r =
      client_for(url)->Post("/admin/views/" + view + "/rebuild", R"({"confirm":true})", "application/json");
  if (!r) {
    err << "esflow views rebuild: " << url << ": " << httplib::to_string(r.error()) << "\n";
    return k_failure;
  }
  if (r->status != 202) {
    err << "esflow views rebuild: " << r->status << ": " << r->body << "\n";
    return k_failure;
  }
  out << r->body << "\n";
  return k_ok;
}

}  // namespace esflow::cli
