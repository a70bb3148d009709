// POST /v1/commands with x-tenant-id (and Authorization: Bearer for a
// gateway), one keep-alive connection per client.
#include "cli/load/http_client.h"
#include "cli/load/transport.h"

namespace esflow::load {
namespace {

class http_sender final : public command_sender {
 public:
  http_sender(const std::string& url, const std::string& key, std::chrono::milliseconds timeout)
      : _client(make_http_client(url, timeout)), _key(key) {}

  answer send(const load_item& item) override {
    auto r =
        _client->Post("/v1/commands", http_headers(item.cmd.tenant, _key), item.body, "application/json");
    if (!r) return {outcome::error, client_error_code(r.error())};
    if (r->status == 200) return answer_of_json(r->body, "client_bad_answer");
    return answer_of_json(r->body, "http_" + std::to_string(r->status));
  }

 private:
  std::unique_ptr<httplib::Client> _client;
  std::string _key;
};

class http_transport final : public transport {
 public:
  explicit http_transport(transport_options o) : _o(std::move(o)) {}
  std::unique_ptr<command_sender> sender(int) override {
    return std::make_unique<http_sender>(_o.url, _o.key, _o.timeout);
  }

 private:
  transport_options _o;
};

}  // namespace

result<std::unique_ptr<transport>> open_http_transport(const transport_options& o) {
  if (auto st = check_http_url(o.url, "--url"); !st.ok()) return st.err();
  return std::unique_ptr<transport>(new http_transport(o));
}

}  // namespace esflow::load
