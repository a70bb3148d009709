#pragma once
// Helpers of the HTTP tests: temp dirs, pipeline files, JSON answers.
#include "tests/storage/temp_dir.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>

namespace esflow::http_test {

using temp_dir = storage::testing::temp_dir;

// Threads of this process (/proc/self/task).
inline std::size_t thread_count() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& task : std::filesystem::directory_iterator("/proc/self/task")) ++n;
  return n;
}

inline nlohmann::json json_of(const httplib::Result& r) {
  if (!r) return nullptr;
  return nlohmann::json::parse(r->body, nullptr, false);
}

// The rejected CommandResult shape of docs/contract.md, exactly.
inline void expect_rejection(const httplib::Result& r, int status, const std::string& code,
                             const std::string& what = {}) {
  ASSERT_TRUE(r) << what << ": no answer (" << httplib::to_string(r.error()) << ")";
  EXPECT_EQ(r->status, status) << what << ": " << r->body;
  const auto j = json_of(r);
  ASSERT_TRUE(j.is_object()) << what << ": " << r->body;
  EXPECT_EQ(j.size(), 4U) << what << ": " << r->body;
  EXPECT_EQ(j.value("status", ""), "rejected") << what;
  EXPECT_EQ(j.value("code", ""), code) << what << ": " << r->body;
  ASSERT_TRUE(j.contains("message") && j["message"].is_string()) << what;
  EXPECT_FALSE(j["message"].get<std::string>().empty()) << what;
  ASSERT_TRUE(j.contains("retryable") && j["retryable"].is_boolean()) << what;
  EXPECT_EQ(j["retryable"].get<bool>(), code == "version_conflict" || code == "unavailable") << what;
  EXPECT_EQ(r->get_header_value("Content-Type"), "application/json") << what;
  EXPECT_TRUE(r->has_header("x-correlation-id")) << what;
  EXPECT_TRUE(r->has_header("traceparent")) << what;
  EXPECT_TRUE(r->has_header("tenant-id")) << what;
}

}  // namespace esflow::http_test
