// CommandService.SubmitCommand (schemas/proto): the tenant and the API key
// as metadata, a rejection as the gRPC status with trailing esflow-code.
// Channels are pooled, each on its own connection (a local subchannel pool),
// one per k_clients_per_connection clients.
#include "cli/load/transport.h"
#include "schemas/proto/command_service.grpc.pb.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <vector>

namespace esflow::load {
namespace {

class grpc_sender final : public command_sender {
 public:
  grpc_sender(std::shared_ptr<grpc::Channel> channel, std::string key, std::chrono::milliseconds timeout)
      : _stub(esflow::v1::CommandService::NewStub(channel)), _key(std::move(key)), _timeout(timeout) {}

  answer send(const load_item& item) override {
    esflow::v1::Command in;
    in.set_command_id(item.cmd.command_id);
    in.set_aggregate_type("Account");
    in.set_aggregate_id(item.cmd.account_id);
    in.set_payload_json(item.payload);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + _timeout);
    ctx.AddMetadata("x-tenant-id", item.cmd.tenant);
    if (!_key.empty()) ctx.AddMetadata("authorization", "Bearer " + _key);
    esflow::v1::CommandResult out;
    const auto st = _stub->SubmitCommand(&ctx, in, &out);
    if (st.ok()) return {out.duplicate() ? outcome::duplicate : outcome::accepted, {}};
    const auto& trailers = ctx.GetServerTrailingMetadata();
    if (auto it = trailers.find("esflow-code"); it != trailers.end()) {
      std::string code(it->second.data(), it->second.size());
      return {outcome_of_code(code), code};
    }
    // No esflow-code: the client's deadline or the channel failed.
    if (st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) return {outcome::error, "client_timeout"};
    return {outcome::error, "client_grpc_" + std::to_string(static_cast<int>(st.error_code()))};
  }

 private:
  std::unique_ptr<esflow::v1::CommandService::Stub> _stub;
  std::string _key;
  std::chrono::milliseconds _timeout;
};

class grpc_transport final : public transport {
 public:
  grpc_transport(std::vector<std::shared_ptr<grpc::Channel>> pool, std::string key,
                 std::chrono::milliseconds timeout)
      : _pool(std::move(pool)), _key(std::move(key)), _timeout(timeout) {}
  std::unique_ptr<command_sender> sender(int client) override {
    return std::make_unique<grpc_sender>(_pool[static_cast<std::size_t>(client) % _pool.size()], _key,
                                         _timeout);
  }

 private:
  std::vector<std::shared_ptr<grpc::Channel>> _pool;
  std::string _key;
  std::chrono::milliseconds _timeout;
};

}  // namespace

result<std::unique_ptr<transport>> open_grpc_transport(const transport_options& o) {
  if (o.url.empty() || o.url.find("://") != std::string::npos)
    return error::make(errc::invalid_config, "--url '" + o.url + "': host:port expected for grpc");
  std::vector<std::shared_ptr<grpc::Channel>> pool;
  const int n = std::max(1, (o.clients + k_clients_per_connection - 1) / k_clients_per_connection);
  for (int i = 0; i < n; ++i) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // a connection of its own, not a shared one
    auto channel = grpc::CreateCustomChannel(o.url, grpc::InsecureChannelCredentials(), args);
    if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(5)))
      return error::make(errc::unavailable, "cannot connect to gRPC at " + o.url + " within 5 s (--url)");
    pool.push_back(std::move(channel));
  }
  return std::unique_ptr<transport>(new grpc_transport(std::move(pool), o.key, o.timeout));
}

}  // namespace esflow::load
