#include "cli/dev.h"

#include "stages/gateway/api_keys.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <unistd.h>

namespace esflow::cli {
namespace {

// The key, 0600 from its creation (never readable by others, even briefly),
// replaced whole: an older dev-key belongs to a key file that is gone.
status write_secret(const std::string& path, const std::string& key) {
  const auto tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return error::make(errc::internal, "cannot create " + tmp + ": " + std::strerror(errno));
  const auto line = key + "\n";
  const bool ok =
      ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) && ::fsync(fd) == 0;
  const int saved = errno;
  ::close(fd);
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return error::make(errc::internal, "cannot write " + path + ": " + std::strerror(ok ? errno : saved));
  }
  return {};
}

}  // namespace

result<dev_key> ensure_dev_key(const std::string& data_dir) {
  namespace fs = std::filesystem;
  dev_key k;
  const fs::path dir = data_dir.empty() ? fs::path(".") : fs::path(data_dir);
  k.keys_file = (dir / "dev-keys.jsonl").string();
  k.key_file = (dir / "dev-key").string();
  std::error_code ec;
  if (fs::exists(k.keys_file, ec)) return k;
  fs::create_directories(dir, ec);
  if (ec) return error::make(errc::internal, "cannot create " + dir.string() + ": " + ec.message());
  // The key file's line, then the key: when the key cannot be written the
  // line goes again, so the next start makes both anew.
  auto appended = gateway::append_api_key(k.keys_file, {"*"}, {"commands", "queries", "admin"}, "esflow dev");
  if (!appended.ok()) return std::move(appended).err();
  if (auto st = write_secret(k.key_file, appended.value()); !st.ok()) {
    fs::remove(k.keys_file, ec);  // a key nobody holds: made again next time
    return st.err();
  }
  k.created = true;
  return k;
}

}  // namespace esflow::cli
