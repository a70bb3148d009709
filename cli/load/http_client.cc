#include "cli/load/http_client.h"

#include <algorithm>

namespace esflow::load {

std::unique_ptr<httplib::Client> make_http_client(const std::string& url, std::chrono::milliseconds timeout) {
  auto c = std::make_unique<httplib::Client>(url);
  c->set_keep_alive(true);
  c->set_tcp_nodelay(true);
  c->set_connection_timeout(std::min<std::chrono::milliseconds>(timeout, std::chrono::seconds(5)));
  c->set_read_timeout(timeout);
  c->set_write_timeout(timeout);
  return c;
}

httplib::Headers http_headers(const std::string& tenant, const std::string& key) {
  httplib::Headers h = {{"x-tenant-id", tenant}};
  if (!key.empty()) h.emplace("Authorization", "Bearer " + key);
  return h;
}

std::string client_error_code(httplib::Error e) {
  switch (e) {
    case httplib::Error::Connection:
      return "client_connect_failed";
    case httplib::Error::ConnectionTimeout:
      return "client_connect_timeout";
    case httplib::Error::Read:
      return "client_timeout";  // a read timeout surfaces as a read error
    case httplib::Error::Write:
      return "client_write_failed";
    default:
      return "client_http_error";
  }
}

status check_http_url(const std::string& url, const std::string& flag) {
  if (url.empty()) return error::make(errc::invalid_config, flag + " is required (http://host:port)");
  if (url.find("://") != std::string::npos && !url.starts_with("http://"))
    return error::make(errc::invalid_config, flag + " '" + url + "': http://host:port expected");
  if (!httplib::Client(url).is_valid())
    return error::make(errc::invalid_config, flag + " '" + url + "': not a valid http://host:port");
  return {};
}

}  // namespace esflow::load
