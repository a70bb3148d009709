#pragma once
#include "graph/pipeline_spec.h"

#include <filesystem>
#include <string>

namespace esflow::stages {

// Paths in a pipeline file are relative to that file's directory.
inline std::string resolve_path(const graph::pipeline_spec& p, const std::string& path) {
  std::filesystem::path fp(path);
  if (fp.is_absolute() || p.base_dir.empty()) return path;
  return (std::filesystem::path(p.base_dir) / fp).lexically_normal().string();
}

}  // namespace esflow::stages
