#pragma once
// The gateway's API keys (docs/contract.md "Gateway (the edge) and tenant
// placement"): deny by default, `Authorization: Bearer <key>`, keys kept in a
// file as SHA-256 digests, each with its tenants (or `*`) and rights. The file
// format and the reload rules are in stages/gateway/README.md.
//
// NOTE: an api_key_set is immutable once loaded: any number of threads may
// call authenticate() on it. api_key_store swaps whole sets (an atomic
// shared_ptr), so a request holds the set, or the grants, it started with
// while a reload installs the next one.
#include "common/result.h"
#include "common/sha256.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace esflow::gateway {

// What a key may do; the contract's three rights.
enum class right : std::uint8_t { commands, queries, admin };
std::string_view to_string(right r) noexcept;
std::optional<right> parse_right(std::string_view name) noexcept;

// A key's grants: what one line of the key file says (never the key itself).
struct key_grants {
  sha256_digest digest;              // of the key string: names the key in logs (its first hex digits)
  bool all_tenants = false;          // "tenants":"*"
  std::vector<std::string> tenants;  // sorted, unique; empty when all_tenants
  std::uint8_t rights = 0;           // bit (1 << right)
  std::string label;
  std::string created;  // RFC 3339, as written

  bool has(right r) const noexcept { return (rights & (1U << static_cast<unsigned>(r))) != 0; }
  bool allows_tenant(std::string_view tenant) const noexcept;
};

// ok; tenant_access_denied when the key does not hold the tenant (checked
// first: a key of another tenant learns nothing about its rights there);
// forbidden when it lacks the right. The messages name the key by its label
// and the tenant/right, never the key.
status authorize(const key_grants& grants, std::string_view tenant, right r);
// The same for a call that is about no tenant (runner admin, docs/gateway.md
// "Runner admin"): forbidden when the key lacks the right, whatever its tenants.
status authorize_untenanted(const key_grants& grants, right r);

// One loaded key file: digest -> grants in a hash map. Looking a request's
// key up by its digest means the map compares digests, never the secret, so
// the comparison's timing tells nothing about a key.
class api_key_set {
 public:
  // Reads and parses the file. A malformed line fails the whole load
  // (invalid_config, "<path>:<line>: <problem>"): a half-read key file must
  // not silently drop keys. An unreadable file is invalid_config too.
  static result<api_key_set> load(const std::string& path);
  // The same for text already read; `name` is the file name for messages.
  static result<api_key_set> parse(std::string_view text, std::string_view name);

  // `value` is the Authorization header's value. "Bearer <key>" (scheme
  // case-insensitive, RFC 7235) of a key in the set -> its grants; a missing
  // header, another scheme, an empty or unknown key -> unauthenticated. No
  // message echoes the header's value.
  result<std::shared_ptr<const key_grants>> authenticate(std::string_view value) const;

  std::size_t size() const noexcept { return _keys.size(); }

 private:
  std::unordered_map<sha256_digest, std::shared_ptr<const key_grants>, sha256_digest_hasher> _keys;
};

// The key file the gateway uses, reloaded when it changes so keys added by
// `esflow keys add` work without a restart.
//
// NOTE: no thread of its own. reload() runs on the caller's thread (a
// request's, or the gateway's admin route) and stats the file at most once
// per `check_interval`; concurrent callers skip the check instead of waiting.
// A failed reload keeps the current set (and is reported once per change of
// the file, not on every check).
class api_key_store {
 public:
  using clock = std::chrono::steady_clock;
  struct options {
    std::chrono::milliseconds check_interval{1000};
    std::function<clock::time_point()> now{};  // tests inject a clock; steady_clock::now when empty
  };

  // Loads the file once; an error (no file, a malformed line) stops the
  // gateway from starting: without keys it could only deny.
  static result<std::unique_ptr<api_key_store>> open(std::string path, options opts);
  static result<std::unique_ptr<api_key_store>> open(std::string path) { return open(std::move(path), {}); }

  // The set in use (never null).
  std::shared_ptr<const api_key_set> current() const { return _current.load(std::memory_order_acquire); }

  // At most one stat per check_interval; when the file's identity, size or
  // mtime changed, loads it and installs the new set. Returns the load's
  // error when that failed (the previous set stays in use), ok otherwise
  // (including "not checked yet").
  status reload();
  // Loads the file now, whatever its stat says (an admin "reload" route).
  status reload_now();

  // reload(), then current()->authenticate(value).
  result<std::shared_ptr<const key_grants>> authenticate(std::string_view value);

  const std::string& path() const noexcept { return _path; }

  struct counters {
    std::uint64_t reloads = 0;          // sets installed after the first
    std::uint64_t reload_failures = 0;  // loads that failed (old set kept)
  };
  counters stats() const noexcept {
    return {_reloads.load(std::memory_order_relaxed), _reload_failures.load(std::memory_order_relaxed)};
  }

 private:
  struct file_stamp {
    std::uint64_t dev = 0, ino = 0, size = 0;
    std::int64_t mtime_ns = 0;
    bool exists = false;
    friend bool operator==(const file_stamp&, const file_stamp&) = default;
  };
  api_key_store(std::string path, options opts);
  static file_stamp stamp_of(const std::string& path);
  clock::time_point now() const { return _opts.now ? _opts.now() : clock::now(); }
  // Under _reload_mutex.
  status load_and_install(const file_stamp& stamp);

  std::string _path;
  options _opts;
  std::atomic<std::shared_ptr<const api_key_set>> _current;
  std::atomic<clock::rep> _next_check;  // time_since_epoch of the next allowed stat
  std::mutex _reload_mutex;             // one load at a time; guards _stamp
  file_stamp _stamp;
  std::atomic<std::uint64_t> _reloads{0}, _reload_failures{0};
};

// A new key: "esk_" + 32 bytes of OpenSSL's CSPRNG (RAND_bytes) as base64url
// without padding (43 characters). internal if the CSPRNG fails.
result<std::string> new_api_key();

// Tenant names a key may carry: [A-Za-z0-9_-]{1,64}, or "*" alone.
status validate_key_tenants(const std::vector<std::string>& tenants);

// Makes a key, appends its line (digest, tenants, rights, label, created now
// in UTC) to `path` and returns the key: the only time it exists outside its
// holder. The file is created 0600 if missing; the line is one O_APPEND write
// followed by fsync (and the directory's fsync when the file was created).
// tenants: validate_key_tenants; rights: at least one of commands, queries,
// admin (invalid_config naming the bad one).
result<std::string> append_api_key(const std::string& path, const std::vector<std::string>& tenants,
                                   const std::vector<std::string>& rights, std::string_view label);

}  // namespace esflow::gateway
