#include "stages/gateway/api_keys.h"

#include "common/log.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <fstream>
#include <openssl/rand.h>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

namespace esflow::gateway {
namespace {

constexpr std::array<std::string_view, 3> k_right_names = {"commands", "queries", "admin"};
constexpr std::size_t k_max_label = 256;
constexpr std::string_view k_key_prefix = "esk_";

bool is_space(char c) noexcept { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

bool valid_tenant(std::string_view t) noexcept {
  if (t.empty() || t.size() > 64) return false;
  return std::all_of(t.begin(), t.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

// A short name of a key for messages and logs: its label, or the first hex
// digits of its digest (which say nothing about the key).
std::string key_name(const key_grants& g) {
  if (!g.label.empty()) return "'" + g.label + "'";
  return "sha256:" + g.digest.to_hex().substr(0, 12);
}

// One line of the key file -> grants, or the problem (without file:line).
result<key_grants> parse_line(std::string_view line) {
  auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return error::make(errc::invalid_config, "not valid JSON");
  if (!j.is_object()) return error::make(errc::invalid_config, "not a JSON object");
  key_grants g;

  auto sha = j.find("sha256");
  if (sha == j.end() || !sha->is_string())
    return error::make(errc::invalid_config, "\"sha256\" missing or not a string");
  auto digest = sha256_digest::from_hex(sha->get_ref<const std::string&>());
  if (!digest) return error::make(errc::invalid_config, "\"sha256\" is not 64 hex digits");
  g.digest = *digest;

  auto tenants = j.find("tenants");
  if (tenants == j.end()) return error::make(errc::invalid_config, "\"tenants\" missing");
  if (tenants->is_string()) {
    if (tenants->get_ref<const std::string&>() != "*")
      return error::make(errc::invalid_config, "\"tenants\" is a list of tenants or \"*\"");
    g.all_tenants = true;
  } else if (tenants->is_array()) {
    if (tenants->empty()) return error::make(errc::invalid_config, "\"tenants\" is empty");
    for (const auto& t : *tenants) {
      if (!t.is_string() || !valid_tenant(t.get_ref<const std::string&>()))
        return error::make(errc::invalid_config, "\"tenants\" has " + t.dump() +
                                                     ": a tenant is [A-Za-z0-9_-]{1,64} (all tenants: "
                                                     "\"tenants\":\"*\")");
      g.tenants.push_back(t.get<std::string>());
    }
    std::sort(g.tenants.begin(), g.tenants.end());
    g.tenants.erase(std::unique(g.tenants.begin(), g.tenants.end()), g.tenants.end());
  } else {
    return error::make(errc::invalid_config, "\"tenants\" is a list of tenants or \"*\"");
  }

  auto rights = j.find("rights");
  if (rights == j.end() || !rights->is_array() || rights->empty())
    return error::make(errc::invalid_config, "\"rights\" missing or not a non-empty list");
  for (const auto& r : *rights) {
    auto parsed = r.is_string() ? parse_right(r.get_ref<const std::string&>()) : std::nullopt;
    if (!parsed)
      return error::make(errc::invalid_config,
                         "\"rights\" has " + r.dump() + " (rights: commands, queries, admin)");
    g.rights |= static_cast<std::uint8_t>(1U << static_cast<unsigned>(*parsed));
  }

  for (auto [field, out] : {std::pair{"label", &g.label}, std::pair{"created", &g.created}}) {
    auto it = j.find(field);
    if (it == j.end()) continue;
    if (!it->is_string())
      return error::make(errc::invalid_config, std::string("\"") + field + "\" not a string");
    *out = it->get<std::string>();
  }
  return g;
}

std::string errno_text(int err) { return std::strerror(err); }

std::string base64url(const unsigned char* data, std::size_t n) {
  static constexpr char k_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  out.reserve((n * 4 + 2) / 3);
  std::size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    const std::uint32_t v = (data[i] << 16) | (data[i + 1] << 8) | data[i + 2];
    out += k_alphabet[(v >> 18) & 63];
    out += k_alphabet[(v >> 12) & 63];
    out += k_alphabet[(v >> 6) & 63];
    out += k_alphabet[v & 63];
  }
  if (n - i == 1) {
    const std::uint32_t v = data[i] << 16;
    out += k_alphabet[(v >> 18) & 63];
    out += k_alphabet[(v >> 12) & 63];
  } else if (n - i == 2) {
    const std::uint32_t v = (data[i] << 16) | (data[i + 1] << 8);
    out += k_alphabet[(v >> 18) & 63];
    out += k_alphabet[(v >> 12) & 63];
    out += k_alphabet[(v >> 6) & 63];
  }
  return out;
}

std::string utc_now_rfc3339() {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  const auto n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return {buf, n};
}

std::string parent_dir(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// Closes the descriptor on every return path.
struct fd_guard {
  int fd;
  ~fd_guard() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

std::string_view to_string(right r) noexcept { return k_right_names[static_cast<std::size_t>(r)]; }

std::optional<right> parse_right(std::string_view name) noexcept {
  for (std::size_t i = 0; i < k_right_names.size(); ++i)
    if (k_right_names[i] == name) return static_cast<right>(i);
  return std::nullopt;
}

bool key_grants::allows_tenant(std::string_view tenant) const noexcept {
  return all_tenants || std::binary_search(tenants.begin(), tenants.end(), tenant);
}

status authorize(const key_grants& grants, std::string_view tenant, right r) {
  if (!grants.allows_tenant(tenant))
    return error::make(
        errc::tenant_access_denied,
        "API key " + key_name(grants) + " is not granted tenant '" + std::string(tenant) + "'");
  if (!grants.has(r))
    return error::make(errc::forbidden, "API key " + key_name(grants) + " lacks the right '" +
                                            std::string(to_string(r)) + "'");
  return {};
}

status authorize_untenanted(const key_grants& grants, right r) {
  if (!grants.has(r))
    return error::make(errc::forbidden, "API key " + key_name(grants) + " lacks the right '" +
                                            std::string(to_string(r)) + "'");
  return {};
}

result<api_key_set> api_key_set::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return error::make(errc::invalid_config, "cannot read key file " + path + ": " + errno_text(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return error::make(errc::invalid_config, "cannot read key file " + path);
  return parse(text.str(), path);
}

result<api_key_set> api_key_set::parse(std::string_view text, std::string_view name) {
  api_key_set set;
  std::unordered_map<sha256_digest, std::size_t, sha256_digest_hasher> first_line;
  std::size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    const auto eol = text.find('\n');
    auto line = trim(text.substr(0, eol));
    text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
    if (line.empty() || line.front() == '#') continue;
    const auto where = std::string(name) + ":" + std::to_string(line_no);
    auto grants = parse_line(line);
    if (!grants) return error::make(errc::invalid_config, where + ": " + grants.err().message);
    auto [it, fresh] = first_line.emplace(grants->digest, line_no);
    if (!fresh)
      return error::make(errc::invalid_config,
                         where + ": the same key digest as line " + std::to_string(it->second));
    const auto digest = grants->digest;
    set._keys.emplace(digest, std::make_shared<const key_grants>(std::move(grants).value()));
  }
  return set;
}

result<std::shared_ptr<const key_grants>> api_key_set::authenticate(std::string_view value) const {
  value = trim(value);
  if (value.empty())
    return error::make(errc::unauthenticated, "no API key: send Authorization: Bearer <key>");
  const auto space = std::min(value.find_first_of(" \t"), value.size());
  if (!iequals(value.substr(0, space), "bearer"))
    return error::make(errc::unauthenticated,
                       "the Authorization header is not a Bearer API key: send Authorization: Bearer <key>");
  const auto key = trim(value.substr(space));
  if (key.empty()) return error::make(errc::unauthenticated, "no API key after Bearer");
  auto it = _keys.find(sha256_digest::of(key));
  if (it == _keys.end()) return error::make(errc::unauthenticated, "unknown API key");
  return it->second;
}

api_key_store::api_key_store(std::string path, options opts)
    : _path(std::move(path)), _opts(std::move(opts)), _next_check(0) {}

api_key_store::file_stamp api_key_store::stamp_of(const std::string& path) {
  struct ::stat st {};
  if (::stat(path.c_str(), &st) != 0) return {};
  file_stamp s;
  s.exists = true;
  s.dev = st.st_dev;
  s.ino = st.st_ino;
  s.size = static_cast<std::uint64_t>(st.st_size);
  s.mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  return s;
}

result<std::unique_ptr<api_key_store>> api_key_store::open(std::string path, options opts) {
  std::unique_ptr<api_key_store> store(new api_key_store(std::move(path), std::move(opts)));
  const auto stamp = stamp_of(store->_path);
  auto set = api_key_set::load(store->_path);
  if (!set) return std::move(set).err();
  store->_stamp = stamp;
  store->_current.store(std::make_shared<const api_key_set>(std::move(set).value()),
                        std::memory_order_release);
  store->_next_check.store((store->now() + store->_opts.check_interval).time_since_epoch().count(),
                           std::memory_order_relaxed);
  ESFLOW_INFO("gateway", "API keys: {} from {}", store->current()->size(), store->_path);
  return store;
}

status api_key_store::load_and_install(const file_stamp& stamp) {
  // The stamp is recorded even when the load fails: a broken file is
  // reported once, and looked at again when it changes.
  _stamp = stamp;
  auto set = api_key_set::load(_path);
  if (!set) {
    _reload_failures.fetch_add(1, std::memory_order_relaxed);
    ESFLOW_WARN("gateway", "API keys not reloaded, the previous {} stay in use: {}", current()->size(),
                set.err().message);
    return std::move(set).err();
  }
  ESFLOW_INFO("gateway", "API keys reloaded: {} from {}", set->size(), _path);
  _current.store(std::make_shared<const api_key_set>(std::move(set).value()), std::memory_order_release);
  _reloads.fetch_add(1, std::memory_order_relaxed);
  return {};
}

status api_key_store::reload() {
  const auto t = now();
  auto next = _next_check.load(std::memory_order_relaxed);
  if (t.time_since_epoch().count() < next) return {};
  // One caller per interval claims the check; the others go on with the current set.
  if (!_next_check.compare_exchange_strong(next, (t + _opts.check_interval).time_since_epoch().count(),
                                           std::memory_order_relaxed))
    return {};
  std::unique_lock lock(_reload_mutex, std::try_to_lock);
  if (!lock) return {};
  const auto stamp = stamp_of(_path);
  if (stamp == _stamp) return {};
  return load_and_install(stamp);
}

status api_key_store::reload_now() {
  std::lock_guard lock(_reload_mutex);
  return load_and_install(stamp_of(_path));
}

result<std::shared_ptr<const key_grants>> api_key_store::authenticate(std::string_view value) {
  // A failed reload is already logged; the request is answered from the set in use.
  ignore(reload());
  return current()->authenticate(value);
}

result<std::string> new_api_key() {
  std::array<unsigned char, 32> bytes{};
  if (::RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1)
    return error::make(errc::internal, "the CSPRNG (OpenSSL RAND_bytes) failed");
  return std::string(k_key_prefix) + base64url(bytes.data(), bytes.size());
}

status validate_key_tenants(const std::vector<std::string>& tenants) {
  if (tenants.empty())
    return error::make(errc::invalid_config, "no tenant: give --tenant T (or '*' for all)");
  const bool star = std::find(tenants.begin(), tenants.end(), "*") != tenants.end();
  if (star && tenants.size() > 1)
    return error::make(errc::invalid_config, "'*' (all tenants) stands alone, without other tenants");
  if (star) return {};
  for (const auto& t : tenants)
    if (!valid_tenant(t))
      return error::make(errc::invalid_config,
                         "bad tenant '" + t + "': a tenant is [A-Za-z0-9_-]{1,64} or '*'");
  return {};
}

result<std::string> append_api_key(const std::string& path, const std::vector<std::string>& tenants,
                                   const std::vector<std::string>& rights, std::string_view label) {
  if (auto ok = validate_key_tenants(tenants); !ok) return std::move(ok).err();
  if (rights.empty())
    return error::make(errc::invalid_config, "no rights: give commands, queries and/or admin");
  std::vector<std::string> right_names;
  for (const auto& r : rights) {
    if (!parse_right(r))
      return error::make(errc::invalid_config,
                         "unknown right '" + r + "' (rights: commands, queries, admin)");
    if (std::find(right_names.begin(), right_names.end(), r) == right_names.end()) right_names.push_back(r);
  }
  if (label.size() > k_max_label)
    return error::make(errc::invalid_config, "label longer than " + std::to_string(k_max_label) + " bytes");

  auto key = new_api_key();
  if (!key) return key;

  nlohmann::ordered_json line;
  line["sha256"] = sha256_digest::of(*key).to_hex();
  if (tenants.size() == 1 && tenants[0] == "*")
    line["tenants"] = "*";
  else
    line["tenants"] = tenants;
  line["rights"] = right_names;
  line["label"] = std::string(label);
  line["created"] = utc_now_rfc3339();
  // replace: a label that is not UTF-8 is stored with U+FFFD rather than failing.
  std::string text = line.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";

  bool created = true;
  fd_guard f{::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0600)};
  if (f.fd < 0 && errno == EEXIST) {
    created = false;
    f.fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  }
  if (f.fd < 0)
    return error::make(errc::unavailable, "cannot open key file " + path + ": " + errno_text(errno));
  // The umask may have taken the owner's bits: the file holds digests only,
  // but who may add keys is decided by who may write it.
  if (created && ::fchmod(f.fd, 0600) != 0)
    return error::make(errc::unavailable, "cannot chmod 0600 " + path + ": " + errno_text(errno));
  if (!created) {
    // A file edited by hand may lack its last newline: ours must not join that line.
    struct ::stat st {};
    if (::fstat(f.fd, &st) == 0 && st.st_size > 0) {
      int rd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      char last = '\n';
      if (rd >= 0) {
        if (::pread(rd, &last, 1, st.st_size - 1) != 1) last = '\n';
        ::close(rd);
      }
      if (last != '\n') text.insert(text.begin(), '\n');
    }
  }
  // One write: O_APPEND puts it whole at the end even beside another appender.
  std::string_view rest = text;
  while (!rest.empty()) {
    const auto n = ::write(f.fd, rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      return error::make(errc::unavailable, "cannot write key file " + path + ": " + errno_text(errno));
    rest.remove_prefix(static_cast<std::size_t>(n));
  }
  if (::fsync(f.fd) != 0)
    return error::make(errc::unavailable, "cannot fsync key file " + path + ": " + errno_text(errno));
  if (created) {
    // The new file's directory entry must survive a crash too.
    fd_guard dir{::open(parent_dir(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
    if (dir.fd >= 0 && ::fsync(dir.fd) != 0)
      return error::make(errc::unavailable,
                         "cannot fsync the directory of " + path + ": " + errno_text(errno));
  }
  return key;
}

}  // namespace esflow::gateway
