#include "storage/event_log.h"

#include <future>

namespace esflow::storage {
sha256_digest request_hash(std::string_view aggregate_type, std::string_view aggregate_id,
                           std::string_view payload_json) {
  sha256_builder b;
  b.field(aggregate_type).field(aggregate_id).field(payload_json);
  return b.finish();
}

result<append_result> append_and_wait(event_log& log, append_request request) {
  std::promise<result<append_result>> promise;
  auto future = promise.get_future();
  log.append(std::move(request), [&promise](result<append_result> r) { promise.set_value(std::move(r)); });
  return future.get();
}

}  // namespace esflow::storage
