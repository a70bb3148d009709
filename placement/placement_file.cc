#include "placement/placement_file.h"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <unistd.h>

namespace esflow::placement {
namespace {

error file_error(errc code, std::string_view where, const std::string& what) {
  return error::make(code, std::string(where) + ": " + what, "file=" + std::string(where));
}

// The registration's own errors name the key ("nodes.<id>"); prefix the file.
error in_file(std::string_view where, error e) {
  e.message = std::string(where) + ": " + e.message;
  e.context = "file=" + std::string(where) + " " + e.context;
  return e;
}

}  // namespace

result<placement_map> parse_placement(std::string_view text, std::string_view where, int vnodes,
                                      std::string_view ring_kind) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return file_error(errc::invalid_config, where, "not valid JSON");
  if (!j.is_object()) return file_error(errc::invalid_config, where, "not a JSON object");
  placement_map::node_table nodes;
  if (auto it = j.find("nodes"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) return file_error(errc::invalid_config, where, "'nodes' is not an object");
    for (const auto& [id, reg] : it->items()) {
      auto r = node_registration::from_json(reg, node_key(id));
      if (!r.ok()) return in_file(where, std::move(r).err());
      nodes.emplace(id, std::move(r).value());
    }
  }
  placement_map::tenant_table tenants;
  if (auto it = j.find("tenants"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) return file_error(errc::invalid_config, where, "'tenants' is not an object");
    for (const auto& [t, node] : it->items()) {
      if (!node.is_string())
        return file_error(errc::invalid_config, where, "tenant '" + t + "' maps to a non-string");
      tenants.emplace(t, node.get<std::string>());
    }
  }
  auto m = placement_map::make(std::move(nodes), std::move(tenants), vnodes, ring_kind);
  if (!m.ok()) return in_file(where, std::move(m).err());
  return m;
}

result<placement_map> load_placement_file(const std::filesystem::path& path, int vnodes,
                                          std::string_view ring_kind) {
  const auto where = path.string();
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) return file_error(errc::not_found, where, "no such file");
    return file_error(errc::unavailable, where, std::string("cannot open: ") + std::strerror(errno));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return file_error(errc::unavailable, where, "read failed");
  return parse_placement(text.str(), where, vnodes, ring_kind);
}

status save_placement_file(const std::filesystem::path& path, const placement_map& map) {
  const auto where = path.string();
  const auto text = map.json().dump(2) + "\n";
  auto dir = path.parent_path();
  if (dir.empty()) dir = ".";
  // Same directory as the target: rename() is atomic only within one file system.
  // pid and a counter: two savers of one path (two services in one process) never share a temp file.
  static std::atomic<std::uint64_t> counter{0};
  auto tmp = dir / ("." + path.filename().string() + ".tmp." + std::to_string(::getpid()) + "." +
                    std::to_string(counter.fetch_add(1)));
  const auto tmp_s = tmp.string();
  int fd = ::open(tmp_s.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return file_error(errc::unavailable, where, "cannot create " + tmp_s + ": " + std::strerror(errno));
  std::size_t off = 0;
  while (off < text.size()) {
    auto n = ::write(fd, text.data() + off, text.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      auto msg = std::string("write failed: ") + std::strerror(errno);
      ::close(fd);
      ::unlink(tmp_s.c_str());
      return file_error(errc::unavailable, where, msg);
    }
    off += static_cast<std::size_t>(n);
  }
  // fsync before rename: otherwise a crash can leave the new name on empty data.
  const bool synced = ::fsync(fd) == 0;
  const int sync_errno = errno;
  const bool closed = ::close(fd) == 0;
  if (!synced || !closed) {
    auto msg = std::string(synced ? "close failed: " : "fsync failed: ") +
               std::strerror(synced ? errno : sync_errno);
    ::unlink(tmp_s.c_str());
    return file_error(errc::unavailable, where, msg);
  }
  if (::rename(tmp_s.c_str(), where.c_str()) != 0) {
    auto msg = std::string("rename failed: ") + std::strerror(errno);
    ::unlink(tmp_s.c_str());
    return file_error(errc::unavailable, where, msg);
  }
  return {};
}

}  // namespace esflow::placement
