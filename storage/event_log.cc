#include "storage/event_log.h"

#include <future>

namespace esflow::storage {
namespace {
constexpr std::uint64_t fnv_offset = 0xcbf29ce484222325ULL;
constexpr std::uint64_t fnv_prime = 0x100000001b3ULL;

void mix(std::uint64_t& h, std::string_view field) {
  auto n = static_cast<std::uint64_t>(field.size());
  for (int i = 0; i < 8; ++i) {
    h = (h ^ ((n >> (8 * i)) & 0xFF)) * fnv_prime;
  }
  for (unsigned char c : field) h = (h ^ c) * fnv_prime;
}
}  // namespace

std::uint64_t request_hash(std::string_view aggregate_type, std::string_view aggregate_id,
                           std::string_view payload_json) {
  std::uint64_t h = fnv_offset;
  mix(h, aggregate_type);
  mix(h, aggregate_id);
  mix(h, payload_json);
  return h;
}

result<aggregate_page> event_log::read_page(std::string_view tenant, std::string_view type,
                                            std::string_view id, version_t after,
                                            position_t /*after_position*/, std::size_t limit) {
  auto events = read(tenant, type, id, after, limit);
  if (!events.ok()) return std::move(events).err();
  return aggregate_page{std::move(events).value(), 0};
}

result<bool> event_log::knows_command(std::string_view tenant, std::string_view command_id) {
  auto known = find_command(tenant, command_id);
  if (!known.ok()) return std::move(known).err();
  return known.value().has_value();
}

result<append_result> append_and_wait(event_log& log, append_request request) {
  std::promise<result<append_result>> promise;
  auto future = promise.get_future();
  log.append(std::move(request), [&promise](result<append_result> r) { promise.set_value(std::move(r)); });
  return future.get();
}

}  // namespace esflow::storage
