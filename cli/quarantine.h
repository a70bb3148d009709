#pragma once
// `esflow quarantine list|show|retry`: a node's quarantined inputs over its
// admin endpoints (docs/runner.md "Reads and operations"):
// GET /admin/quarantine, GET /admin/quarantine/<id>, POST /admin/quarantine/<id>/retry.
#include <iosfwd>
#include <memory>
#include <string>

namespace httplib {
class Client;
}

namespace esflow::cli {

// A client of a node's HTTP address ("127.0.0.1:8080" or "http://host:port"):
// 5 s to connect, 30 s to answer.
std::unique_ptr<httplib::Client> admin_client(const std::string& url);

// Exit codes: 0 ok, 1 the node failed or refused, 2 bad usage.
int quarantine_list_command(const std::string& url, int limit, std::ostream& out, std::ostream& err);
int quarantine_show_command(const std::string& url, const std::string& id, std::ostream& out,
                            std::ostream& err);
int quarantine_retry_command(const std::string& url, const std::string& id, std::ostream& out,
                             std::ostream& err);

}  // namespace esflow::cli
