#pragma once
// The HTTP client settings `esflow load` uses for commands and reads:
// keep-alive, TCP_NODELAY (else Nagle and delayed ACKs cap a client at ~25
// requests/s), bounded connect/read/write timeouts.
#include "common/result.h"

#include <httplib.h>

#include <chrono>
#include <memory>
#include <string>

namespace esflow::load {

std::unique_ptr<httplib::Client> make_http_client(const std::string& url, std::chrono::milliseconds timeout);
httplib::Headers http_headers(const std::string& tenant, const std::string& key);
// client_connect_failed, client_timeout, ...: an error outcome's code.
std::string client_error_code(httplib::Error e);
// http://host:port (or host:port); https is not built in.
status check_http_url(const std::string& url, const std::string& flag);

}  // namespace esflow::load
