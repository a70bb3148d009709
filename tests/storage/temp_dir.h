#pragma once
// A fresh directory under the system temp dir, removed with everything in it
// when the object goes away.
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <unistd.h>

namespace esflow::storage::testing {

class temp_dir {
 public:
  temp_dir() {
    static std::atomic<unsigned> counter{0};
    auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
    _path =
        std::filesystem::temp_directory_path() / ("esflow-storage-" + std::to_string(::getpid()) + "-" +
                                                  std::to_string(stamp) + "-" + std::to_string(counter++));
    std::filesystem::create_directories(_path);
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(_path, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  const std::filesystem::path& path() const noexcept { return _path; }
  std::string str() const { return _path.string(); }
  // Writes `text` to a file in the directory; returns its path.
  std::string write(const std::string& name, const std::string& text) const {
    const auto p = _path / name;
    std::ofstream(p) << text;
    return p.string();
  }

 private:
  std::filesystem::path _path;
};

}  // namespace esflow::storage::testing
