#pragma once
// The JetStream context of a backend that publishes asynchronously (the
// event log, the workflow streams): API calls wait `wait`, at most
// `max_pending` publishes in flight, acks handed to `handler(closure)` on
// nats.c's ack-handler thread. The caller destroys the context.
#include "common/result.h"
#include "transport/nats/nats_connection.h"

#include <nats/nats.h>

#include <chrono>
#include <cstdint>

namespace esflow::storage::jetstream {

inline result<jsCtx*> async_publish_context(const nats::nats_connection& connection,
                                            std::chrono::milliseconds wait, std::int64_t max_pending,
                                            jsPubAckHandler handler, void* closure) {
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = wait.count();
  jo.PublishAsync.MaxPending = max_pending;
  jo.PublishAsync.AckHandler = handler;
  jo.PublishAsync.AckHandlerClosure = closure;
  return connection.jetstream(jo);
}

}  // namespace esflow::storage::jetstream
