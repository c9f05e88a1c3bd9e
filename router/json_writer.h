#pragma once

#include "absl/strings/string_view.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/time/time.h"

namespace triage::router {

// A minimal streaming JSON writer: the caller opens and closes objects and arrays in order, the
// writer places commas and escapes strings (control characters as \u00XX; UTF-8 passes through).
// Not thread-safe; one per document.
class JsonWriter {
 public:
  JsonWriter() = default;
  explicit JsonWriter(size_t reserve) { out_.reserve(reserve); }
  JsonWriter& BeginObject();
  JsonWriter& EndObject();
  JsonWriter& BeginArray();
  JsonWriter& EndArray();
  JsonWriter& Key(absl::string_view key);
  JsonWriter& String(absl::string_view value);
  JsonWriter& Int(int64_t value);
  JsonWriter& Double(double value);  // up to 6 significant digits; null when not finite
  JsonWriter& Bool(bool value);
  JsonWriter& Null();
  JsonWriter& Time(absl::Time value);  // RFC 3339 UTC with milliseconds; null outside years 1-9999
  // Inserts already-serialised JSON as one value; the caller guarantees it is valid.
  JsonWriter& Raw(absl::string_view json);

  const std::string& str() const { return out_; }
  std::string Take() { return std::move(out_); }

 private:
  void Separate();

  std::string out_;
  bool need_comma_ = false;
};

// Appends `value` as a quoted, escaped JSON string.
void AppendJsonString(absl::string_view value, std::string* out);

// RFC 3339 in UTC with milliseconds, e.g. "2026-03-03T10:02:11.000Z"; nullopt outside the
// years 1 to 9999 (infinite times included).
std::optional<std::string> FormatTimestamp(absl::Time time);

}  // namespace triage::router
