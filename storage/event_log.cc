#include "storage/event_log.h"

#include <future>

namespace esflow::storage {
sha256_digest request_hash(std::string_view aggregate_type, std::string_view aggregate_id,
                           std::string_view payload_json) {
  sha256_builder b;
  b.field(aggregate_type).field(aggregate_id).field(payload_json);
  return b.finish();
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
