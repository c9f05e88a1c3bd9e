#include "router/sources/generic/generic_source.h"

#include "router/sources/source_type.h"

#include <simdjson.h>

#include "absl/strings/str_cat.h"
#include "router/json_util.h"
#include "router/json_writer.h"

namespace triage::router {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

absl::Status FieldError(absl::string_view path, absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(path, field, ": ", what));
}

// Reads an optional string field; `required` turns absence into an error.
absl::Status ReadString(element object, absl::string_view path, absl::string_view field,
                        bool required, size_t max_bytes, std::string* out) {
  auto value = object[std::string_view(field.data(), field.size())];
  if (value.error() == simdjson::NO_SUCH_FIELD || (!required && value.is_null())) {
    return required ? FieldError(path, field, "is required") : absl::OkStatus();
  }
  std::string_view text;
  if (value.get(text) != simdjson::SUCCESS) return FieldError(path, field, "must be a string");
  if (required && text.empty()) return FieldError(path, field, "must not be empty");
  if (text.size() > max_bytes) {
    return FieldError(path, field, absl::StrCat("is longer than ", max_bytes, " bytes"));
  }
  out->assign(text);
  return absl::OkStatus();
}

absl::Status ReadCreatedAt(element object, absl::string_view path, absl::Time* out) {
  auto value = object["created_at"];
  if (value.error() == simdjson::NO_SUCH_FIELD) return FieldError(path, "created_at", "is required");
  int64_t millis = 0;
  std::string_view text;
  std::string error;
  if (value.get(millis) == simdjson::SUCCESS) {
    *out = absl::FromUnixMillis(millis);
  } else if (value.get(text) != simdjson::SUCCESS ||
             !absl::ParseTime(absl::RFC3339_full, std::string(text), out, &error)) {
    return FieldError(path, "created_at",
                      "must be an RFC 3339 time or integer epoch milliseconds");
  }
  if (!FormatTimestamp(*out)) return FieldError(path, "created_at", "must be within the years 1 to 9999");
  return absl::OkStatus();
}

absl::Status ParseOne(element object, absl::string_view path, absl::string_view source,
                      const PayloadLimits& limits, bool strict, Message* m) {
  if (!object.is_object()) return absl::InvalidArgumentError(absl::StrCat(path, ": must be an object"));
  m->source = std::string(source);
  if (auto s = ReadString(object, path, "id", strict, limits.max_id_bytes, &m->id); !s.ok()) return s;
  for (const char c : m->id) {
    if (static_cast<unsigned char>(c) < 0x20) return FieldError(path, "id", "must not contain control characters");
  }
  if (auto s = ReadString(object, path, "platform", strict, 64, &m->platform); !s.ok()) return s;
  if (m->platform.empty()) m->platform = "unknown";
  if (auto s = ReadString(object, path, "kind", false, 64, &m->kind); !s.ok()) return s;
  if (auto s = ReadString(object, path, "channel", false, 16, &m->channel); !s.ok()) return s;
  if (!m->channel.empty() && m->channel != "public" && m->channel != "private") {
    return FieldError(path, "channel", "must be public or private");
  }
  if (auto s = ReadString(object, path, "text", false, limits.max_text_bytes, &m->text); !s.ok()) {
    return s;
  }
  if (object["text"].error() == simdjson::NO_SUCH_FIELD) return FieldError(path, "text", "is required");
  if (strict || object["created_at"].error() != simdjson::NO_SUCH_FIELD) {
    if (auto s = ReadCreatedAt(object, path, &m->created_at); !s.ok()) return s;
  }
  if (auto s = ReadString(object, path, "conversation_id", false, limits.max_id_bytes,
                          &m->conversation_id);
      !s.ok()) {
    return s;
  }
  if (auto s = ReadString(object, path, "url", false, 2048, &m->url); !s.ok()) return s;

  auto author = object["author"];
  const std::string author_path = absl::StrCat(path, "author.");
  if (author.error() == simdjson::NO_SUCH_FIELD) {
    return strict ? FieldError(path, "author", "is required") : absl::OkStatus();
  }
  if (!author.is_object()) return FieldError(path, "author", "must be an object");
  if (auto s = ReadString(author.value_unsafe(), author_path, "id", strict, limits.max_id_bytes,
                          &m->author.id);
      !s.ok()) {
    return s;
  }
  if (auto s = ReadString(author.value_unsafe(), author_path, "handle", false, 256, &m->author.handle);
      !s.ok()) {
    return s;
  }
  if (auto s = ReadString(author.value_unsafe(), author_path, "name", false, 256, &m->author.name);
      !s.ok()) {
    return s;
  }
  auto followers = author["followers"];
  if (followers.error() != simdjson::NO_SUCH_FIELD && !followers.is_null()) {
    int64_t count = 0;
    if (followers.get(count) != simdjson::SUCCESS || count < 0) {
      return FieldError(author_path, "followers", "must be a non-negative integer");
    }
    m->author.followers = count;
  }
  auto verified = author["verified"];
  if (verified.error() != simdjson::NO_SUCH_FIELD) {
    if (verified.get(m->author.verified) != simdjson::SUCCESS) {
      return FieldError(author_path, "verified", "must be true or false");
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Message> ParseLooseMessage(absl::string_view json, absl::string_view source,
                                          const PayloadLimits& limits) {
  thread_local simdjson::dom::parser parser;
  element root;
  if (auto s = json::ParseDocument(parser, json, limits.max_depth, &root); !s.ok()) return s;
  Message m;
  if (auto s = ParseOne(root, "", source, limits, false, &m); !s.ok()) return s;
  return m;
}

absl::StatusOr<std::vector<Message>> ParseGenericPayload(absl::string_view body,
                                                         absl::string_view source,
                                                         const PayloadLimits& limits) {
  // One parser per thread: simdjson reuses its buffers between documents, so the steady state
  // allocates nothing for parsing. The parser holds no state that outlives a call.
  thread_local simdjson::dom::parser parser;
  element root;
  if (auto s = json::ParseDocument(parser, body, limits.max_depth, &root); !s.ok()) return s;

  std::vector<Message> messages;
  if (root.is_array()) {
    simdjson::dom::array array = root.get_array().value_unsafe();
    if (array.size() == 0) return absl::InvalidArgumentError("the array holds no message");
    if (array.size() > limits.max_messages) {
      return absl::InvalidArgumentError(
          absl::StrCat("more than ", limits.max_messages, " messages in one request"));
    }
    messages.reserve(array.size());
    size_t index = 0;
    for (element item : array) {
      Message& m = messages.emplace_back();
      if (auto s = ParseOne(item, absl::StrCat("[", index++, "]."), source, limits, true, &m); !s.ok()) {
        return s;
      }
    }
  } else {
    Message& m = messages.emplace_back();
    if (auto s = ParseOne(root, "", source, limits, true, &m); !s.ok()) return s;
  }
  return messages;
}

namespace {

// `generic`: any system that can sign its JSON with a shared secret. A body that does not parse
// is the sender's to fix: 400 with the path of the problem, never quarantined.
class GenericType final : public SourceType {
 public:
  std::string_view name() const override { return "generic"; }
  std::vector<Setting> settings() const override {
    return {{"secret", Setting::Kind::kSecret, true, "", {}},
            {"signature_header", Setting::Kind::kString, false, "X-Triage-Signature", {}}};
  }
  std::vector<SignatureCheck> Signature(const Settings& s) const override {
    // "sha256=<hex>" or bare hex.
    return {{SignatureCheck::Kind::kHmacSha256Hex, s.Get("signature_header"), "sha256=", false, false, s.Get("secret")}};
  }
  bool quarantine_unparsable() const override { return false; }
  absl::StatusOr<ParseResult> Parse(absl::string_view body, const ParseContext& context) const override {
    absl::StatusOr<std::vector<Message>> messages = ParseGenericPayload(body, context.source, context.limits);
    if (!messages.ok()) return messages.status();
    ParseResult result;
    for (Message& m : *messages) {
      ApplyAuthorKnowledge(context, &m.author);
      result.Add(std::move(m));
    }
    return result;
  }
};

}  // namespace

const SourceType& GenericSourceType() {
  static const GenericType type;
  return type;
}

}  // namespace triage::router
