#pragma once
// `esflow views list|rebuild`: a projection node's views over its admin
// endpoints (docs/projection.md "Operations"): GET /admin/views and
// POST /admin/views/<view>/rebuild {"confirm":true}.
#include <iosfwd>
#include <string>

namespace esflow::cli {

// url: the node's HTTP address ("127.0.0.1:8080" or "http://host:port").
// Exit codes: 0 ok, 1 the node failed or refused, 2 bad usage.
int views_list_command(const std::string& url, std::ostream& out, std::ostream& err);
// Without confirm nothing is sent: a rebuild re-reads the whole log.
int views_rebuild_command(const std::string& url, const std::string& view, bool confirm, std::ostream& out,
                          std::ostream& err);

}  // namespace esflow::cli
