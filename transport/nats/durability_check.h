#pragma once
// Durability self-check of the JetStream event log: is an acknowledged commit
// fsync-durable on the server, replicated, or neither?
//
// - fsync: nats-server >= 2.10 has `sync_interval` (`always` makes every ack
//   follow an fsync); earlier servers (Debian's 2.9.10) flush to the OS and
//   fsync in the background every 2 minutes: a machine crash can lose
//   acknowledged commits. The server's sync setting is not visible to a
//   client, so a >= 2.10 server is reported as "fsync possible" (operator's
//   setting), < 2.10 as not fsync-durable.
// - replicated: the stream has R > 1 (an ack then means a quorum stored it).
//
// NOTE: blocking (one TCP read of the server's INFO line, one stream info
// call): control plane only.
#include "common/result.h"

#include <nats/nats.h>

#include <string>

namespace esflow::nats {

struct durability_report {
  std::string server_version;  // from the server's INFO
  int major = 0, minor = 0, patch = 0;
  long replicas = 0;
  bool fsync_capable = false;  // server has sync_interval (>= 2.10)
  bool replicated = false;     // R > 1
  std::string description;     // one line for /info
  std::string warning;         // non-empty when neither holds: log it at start
};

// Reads the version from the server at `url` (nats://host:port) and the
// replicas of `stream`.
result<durability_report> check_durability(const std::string& url, jsCtx* js, const std::string& stream);

// The INFO line's "version" of the server at url; exposed for tests.
result<std::string> read_server_version(const std::string& url);

}  // namespace esflow::nats
