#include "router/json_util.h"

#include "router/json_writer.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace triage::router::json {

std::optional<element> Get(element parent, std::string_view key) {
  element child;
  if (!parent.is_object() || parent[key].get(child) != simdjson::SUCCESS || child.is_null()) {
    return std::nullopt;
  }
  return child;
}

simdjson::dom::array AsArray(element value) {
  simdjson::dom::array array;
  if (value.get(array) != simdjson::SUCCESS) {
    static simdjson::dom::parser empty_parser;
    static const simdjson::dom::array kEmpty = empty_parser.parse("[]", 2).get_array().value();
    return kEmpty;
  }
  return array;
}

std::string Str(element parent, std::string_view key) {
  std::string_view text;
  if (const auto child = Get(parent, key); child && child->get(text) == simdjson::SUCCESS) {
    return std::string(text);
  }
  return "";
}

std::string Id(element parent, std::string_view key) {
  const auto child = Get(parent, key);
  if (!child) return "";
  std::string_view text;
  if (child->get(text) == simdjson::SUCCESS) return std::string(text);
  uint64_t number = 0;
  if (child->get(number) == simdjson::SUCCESS) return std::to_string(number);
  int64_t negative = 0;  // Telegram's group and channel chats: -100...
  if (child->get(negative) == simdjson::SUCCESS) return std::to_string(negative);
  return "";
}

std::optional<int64_t> Int(element parent, std::string_view key) {
  const auto child = Get(parent, key);
  if (!child) return std::nullopt;
  int64_t value = 0;
  if (child->get(value) == simdjson::SUCCESS) return value;
  uint64_t unsigned_value = 0;
  if (child->get(unsigned_value) == simdjson::SUCCESS) return static_cast<int64_t>(unsigned_value);
  std::string_view text;
  if (child->get(text) == simdjson::SUCCESS &&
      absl::SimpleAtoi(absl::string_view(text.data(), text.size()), &value)) {
    return value;
  }
  return std::nullopt;
}

bool Bool(element parent, std::string_view key) {
  const auto child = Get(parent, key);
  if (!child) return false;
  bool value = false;
  if (child->get(value) == simdjson::SUCCESS) return value;
  std::string_view text;
  return child->get(text) == simdjson::SUCCESS && text == "true";
}

absl::Time EpochSecondsOrMillis(int64_t value) {
  // 10^11 seconds is the year 5138; 10^11 milliseconds is 1973.
  const absl::Time t = value >= 100'000'000'000 ? absl::FromUnixMillis(value) : absl::FromUnixSeconds(value);
  return FormatTimestamp(t) ? t : absl::InfinitePast();  // outside the years 1-9999: unknown
}

absl::Status ParseDocument(simdjson::dom::parser& parser, absl::string_view body, size_t max_depth,
                           element* root) {
  if (parser.max_depth() != max_depth &&
      parser.allocate(std::max<size_t>(parser.capacity(), 64 * 1024), max_depth) != simdjson::SUCCESS) {
    return absl::ResourceExhaustedError("cannot allocate the JSON parser");
  }
  if (const auto error = parser.parse(body.data(), body.size()).get(*root); error) {
    if (error == simdjson::DEPTH_ERROR) {
      return absl::InvalidArgumentError(absl::StrCat("JSON nested deeper than ", max_depth, " levels"));
    }
    return absl::InvalidArgumentError(absl::StrCat("malformed JSON: ", simdjson::error_message(error)));
  }
  return absl::OkStatus();
}

}  // namespace triage::router::json
