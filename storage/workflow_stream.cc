#include "storage/workflow_stream.h"

#include <future>

namespace esflow::storage {

result<publish_ack> publish_and_wait(workflow_stream& stream, publish_request request) {
  std::promise<result<publish_ack>> promise;
  auto future = promise.get_future();
  stream.publish(std::move(request), [&promise](result<publish_ack> r) { promise.set_value(std::move(r)); });
  return future.get();
}

std::vector<std::string_view> workflow_stream_subjects(std::string_view stream) {
  // The same filters as transport/nats/subjects.h (storage does not link the NATS layer).
  if (stream == workflow_commands_stream) return {"tenant.*.effect.>"};
  if (stream == workflow_events_stream)
    return {"tenant.*.effect_result.>", "tenant.*.reminder.>", "tenant.*.command_result.>"};
  return {};
}

namespace {

// The next token of a subject at pos (advancing past its '.'); false at the end.
bool next_token(std::string_view s, std::size_t& pos, std::string_view& token) noexcept {
  if (pos > s.size()) return false;
  auto dot = s.find('.', pos);
  if (dot == std::string_view::npos) dot = s.size();
  token = s.substr(pos, dot - pos);
  pos = dot + 1;
  return true;
}

}  // namespace

bool subject_matches(std::string_view filter, std::string_view subject) noexcept {
  if (filter.empty() || subject.empty()) return false;
  std::size_t fp = 0, sp = 0;
  std::string_view ft, st;
  while (next_token(filter, fp, ft)) {
    if (!next_token(subject, sp, st) || st.empty()) return false;
    if (ft == ">") return true;
    if (ft != "*" && ft != st) return false;
  }
  return sp > subject.size();  // the subject has no tokens left either
}

status check_publish(std::string_view stream, const publish_request& request) {
  const std::string ctx = "stream=" + std::string(stream) + " subject=" + request.subject;
  if (request.msg_id.empty()) return error::make(errc::invalid_command, "msg_id is empty", ctx);
  for (auto filter : workflow_stream_subjects(stream))
    if (subject_matches(filter, request.subject)) return {};
  return error::make(errc::invalid_command, "subject is not carried by stream " + std::string(stream), ctx);
}

}  // namespace esflow::storage
