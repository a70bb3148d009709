#include "cli/quarantine.h"

#include "cli/app.h"

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <iomanip>
#include <ostream>

namespace esflow::cli {
namespace {

std::string text_of(const nlohmann::json& j, const char* key) {
  if (!j.contains(key) || j[key].is_null()) return "-";
  return j[key].is_string() ? j[key].get<std::string>() : j[key].dump();
}

// The answer's body when it has the expected status, else the failure on err.
bool answered(const httplib::Result& r, int expected, const std::string& what, const std::string& url,
              std::ostream& err) {
  if (!r) {
    err << what << ": " << url << ": " << httplib::to_string(r.error()) << "\n";
    return false;
  }
  if (r->status != expected) {
    err << what << ": " << url << " answered " << r->status << ": " << r->body << "\n";
    return false;
  }
  return true;
}

}  // namespace

std::unique_ptr<httplib::Client> admin_client(const std::string& url) {
  auto c = std::make_unique<httplib::Client>(url.rfind("http", 0) == 0 ? url : "http://" + url);
  c->set_connection_timeout(5, 0);
  c->set_read_timeout(30, 0);
  return c;
}

int quarantine_list_command(const std::string& url, int limit, std::ostream& out, std::ostream& err) {
  if (limit < 1 || limit > 1000) {
    err << "esflow quarantine list: --limit must be from 1 to 1000\n";
    return k_usage;
  }
  auto r = admin_client(url)->Get("/admin/quarantine?limit=" + std::to_string(limit));
  if (!answered(r, 200, "esflow quarantine list", url, err)) return k_failure;
  auto page = nlohmann::json::parse(r->body, nullptr, false);
  if (!page.is_object() || !page["items"].is_array()) {
    err << "esflow quarantine list: " << url << " answered " << r->body << "\n";
    return k_failure;
  }
  out << std::left << std::setw(12) << "POSITION" << std::setw(10) << "ATTEMPTS" << std::setw(14) << "TENANT"
      << std::setw(48) << "SOURCE"
      << "ID / REASON\n";
  for (const auto& q : page["items"]) {
    out << std::setw(12) << text_of(q, "position") << std::setw(10) << text_of(q, "attempts") << std::setw(14)
        << text_of(q, "tenant_id") << std::setw(48) << text_of(q, "source") << text_of(q, "id") << "\n"
        << std::setw(94) << "" << text_of(q, "reason") << "\n";
  }
  if (!page["next"].is_null()) out << "(more: GET /admin/quarantine?after=" << text_of(page, "next") << ")\n";
  return k_ok;
}

int quarantine_show_command(const std::string& url, const std::string& id, std::ostream& out,
                            std::ostream& err) {
  auto r = admin_client(url)->Get("/admin/quarantine/" + id);
  if (!answered(r, 200, "esflow quarantine show", url, err)) return k_failure;
  auto j = nlohmann::json::parse(r->body, nullptr, false);
  out << (j.is_discarded() ? r->body : j.dump(2)) << "\n";
  return k_ok;
}

int quarantine_retry_command(const std::string& url, const std::string& id, std::ostream& out,
                             std::ostream& err) {
  auto r = admin_client(url)->Post("/admin/quarantine/" + id + "/retry", "", "application/json");
  if (!answered(r, 202, "esflow quarantine retry", url, err)) return k_failure;
  out << r->body << "\n";
  return k_ok;
}

}  // namespace esflow::cli
