#include "placement/swarm_constraints.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>

namespace esflow::placement {
namespace {

error bad(std::string what) { return error::make(errc::invalid_config, std::move(what), "placement=ranges"); }

bool is_letter(char c) noexcept { return c >= 'a' && c <= 'z'; }
bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
char lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

result<tenant_range> parse_one(std::string_view item) {
  const std::string shown(item);
  const auto usage =
      "range '" + shown + "' is not <first>-<last> or one character (lowercase letters or digits)";
  tenant_range r;
  r.name = shown;
  if (item.size() == 1) {
    r.first = r.last = item[0];
  } else if (item.size() == 3 && item[1] == '-') {
    r.first = item[0];
    r.last = item[2];
  } else {
    return bad(usage);
  }
  const bool letters = is_letter(r.first) && is_letter(r.last);
  const bool digits = is_digit(r.first) && is_digit(r.last);
  if (!letters && !digits) return bad(usage);
  if (r.first > r.last) return bad("range '" + shown + "' ends before it starts");
  return r;
}

result<std::vector<tenant_range>> check(std::vector<tenant_range> ranges) {
  if (ranges.empty()) return bad("no tenant ranges given");
  auto sorted = ranges;
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (std::size_t i = 1; i < sorted.size(); ++i) {
    if (sorted[i].first <= sorted[i - 1].last)
      return bad("ranges '" + sorted[i - 1].name + "' and '" + sorted[i].name + "' overlap");
  }
  return ranges;  // in the order written: the output follows the operator's file
}

}  // namespace

bool tenant_range::contains(char c) const noexcept {
  c = lower(c);
  return c >= first && c <= last;
}

result<std::vector<tenant_range>> parse_ranges(std::string_view spec) {
  std::vector<tenant_range> out;
  std::size_t start = 0;
  while (start <= spec.size()) {
    auto end = spec.find(',', start);
    if (end == std::string_view::npos) end = spec.size();
    auto item = trim(spec.substr(start, end - start));
    if (item.empty()) return bad("empty range in '" + std::string(spec) + "'");
    auto r = parse_one(item);
    if (!r.ok()) return std::move(r).err();
    out.push_back(std::move(r).value());
    start = end + 1;
  }
  return check(std::move(out));
}

result<std::vector<tenant_range>> load_ranges_file(const std::filesystem::path& path) {
  const auto where = path.string();
  YAML::Node root;
  try {
    root = YAML::LoadFile(where);
  } catch (const YAML::BadFile&) {
    return error::make(errc::not_found, where + ": cannot read the file", "file=" + where);
  } catch (const YAML::Exception& e) {
    return error::make(errc::invalid_config, where + ": " + e.what(), "file=" + where);
  }
  const auto ranges = root.IsMap() ? root["ranges"] : YAML::Node();
  if (!ranges || !ranges.IsSequence())
    return error::make(errc::invalid_config, where + ": expected {\"ranges\": [\"a-h\", ...]}",
                       "file=" + where);
  std::vector<tenant_range> out;
  for (const auto& item : ranges) {
    if (!item.IsScalar())
      return error::make(errc::invalid_config, where + ": every range is a string like \"a-h\"",
                         "file=" + where);
    auto r = parse_one(trim(item.Scalar()));
    if (!r.ok()) return error::make(errc::invalid_config, where + ": " + r.err().message, "file=" + where);
    out.push_back(std::move(r).value());
  }
  auto checked = check(std::move(out));
  if (!checked.ok())
    return error::make(errc::invalid_config, where + ": " + checked.err().message, "file=" + where);
  return checked;
}

std::optional<tenant_range> range_of(std::string_view tenant, const std::vector<tenant_range>& ranges) {
  if (tenant.empty()) return std::nullopt;
  for (const auto& r : ranges)
    if (r.contains(tenant.front())) return r;
  return std::nullopt;
}

std::string swarm_constraints(const std::vector<tenant_range>& ranges, std::string_view service) {
  std::string out;
  for (const auto& r : ranges) {
    out.append(service).append("-").append(r.name).append(":\n");
    out.append("  deploy:\n    placement:\n      constraints: [node.labels.tenant_range==");
    out.append(r.name).append("]\n");
  }
  return out;
}

result<std::string> swarm_constraints(std::string_view spec, std::string_view service) {
  auto r = parse_ranges(spec);
  if (!r.ok()) return std::move(r).err();
  return swarm_constraints(*r, service);
}

}  // namespace esflow::placement
