#pragma once

#include <simdjson.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

// Lenient readers over a simdjson DOM for platform payloads: a missing field or one of
// another type reads as absent, because platforms add, drop and retype fields over time.
namespace triage::router::json {

using simdjson::dom::element;

// The child `key` of an object, or nullopt.
std::optional<element> Get(element parent, std::string_view key);
// The array `value` is (empty when it is not an array), by value so that a range-for over it
// does not dangle.
simdjson::dom::array AsArray(element value);
// A string field, or "" when absent, null or not a string.
std::string Str(element parent, std::string_view key);
// An id given as a string, or as an integer (Meta sends "sender":{"id":987654321432} in some
// payloads, Telegram's group chats are negative): its decimal digits. "" when absent or of
// another type.
std::string Id(element parent, std::string_view key);
// An integer field given as a number or as a string of digits ("timestamp_ms": "123").
std::optional<int64_t> Int(element parent, std::string_view key);
// A boolean given as true/false or "true"/"false".
bool Bool(element parent, std::string_view key);
// Epoch seconds or milliseconds, told apart by magnitude (Meta's entry.time uses both).
absl::Time EpochSecondsOrMillis(int64_t value);
// Whether `value` is one of the names in `list` (a C array or a container of C strings).
template <typename List>
bool Listed(const List& list, std::string_view value) {
  for (const auto& name : list) {
    if (value == name) return true;
  }
  return false;
}

// Parses `body` into `parser`'s document, with the depth limit; InvalidArgument when malformed.
absl::Status ParseDocument(simdjson::dom::parser& parser, absl::string_view body, size_t max_depth,
                           element* root);

}  // namespace triage::router::json
