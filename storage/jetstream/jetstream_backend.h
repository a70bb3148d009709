#pragma once
// The "jetstream" event-log backend for the factory (storage/event_log_factory.h).
//
// make() connects through the process's NATS link of settings.nats_url
// (transport/nats/nats_link.h: /ready "nats", /info "nats"), creates or
// validates the contract's streams (an incompatible stream fails the build
// naming the field: the node does not start), runs the durability
// self-check (a warning at start, /info "durability"), publishes /info
// "streams" and "storage", registers its Prometheus figures
// (esflow_jetstream_*) and opens the log on AGGREGATE_EVENTS. Dedupe entries
// live in the node store's dedupe family.
#include "storage/event_log_factory.h"

namespace esflow::storage::jetstream {

event_log_backend jetstream_backend();

}  // namespace esflow::storage::jetstream
