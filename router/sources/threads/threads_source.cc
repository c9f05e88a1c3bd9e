#include "router/sources/threads/threads_source.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "router/json_util.h"
#include "router/sources/source_type.h"

namespace triage::router {
namespace {

using json::element;

bool IsBrand(const ParseContext& context, const std::string& username) {
  return std::any_of(context.brand_ids.begin(), context.brand_ids.end(), [&](const std::string& brand) {
    return absl::EqualsIgnoreCase(brand, username);
  });
}

// "2026-03-03T10:02:11+0000": ISO 8601 with an offset without a colon.
absl::Time ThreadsTime(const std::string& text, absl::Time fallback) {
  absl::Time t;
  std::string error;
  if (absl::ParseTime("%Y-%m-%dT%H:%M:%S%z", text, &t, &error)) return t;
  if (absl::ParseTime(absl::RFC3339_full, text, &t, &error)) return t;
  return fallback;
}

void AddValue(element change, absl::Time sent, const ParseContext& context, ParseResult* out) {
  const std::string field = json::Str(change, "field");
  const auto value = json::Get(change, "value");
  if (field == "delete") {
    out->Ignore("delete", "not_a_message");
    return;
  }
  if (field == "publish") {
    out->Ignore("publish", "own_account");  // the account's own post
    return;
  }
  if ((field != "replies" && field != "mentions") || !value) {
    out->CouldNotRead("other", absl::StrCat("Threads field '", field.substr(0, 64), "'"));
    return;
  }
  Message m;
  m.source = context.source;
  m.platform = "threads";
  m.channel = "public";
  m.kind = field == "replies" ? "reply" : "mention";
  m.id = json::Id(*value, "id");
  const std::string username = json::Str(*value, "username");
  if (m.id.empty() || username.empty()) {
    out->CouldNotRead(m.kind, "a Threads reply or mention without id or username");
    return;
  }
  // The brand's own replies come on the same field: by its configured usernames, or as the
  // owner of the thread it replies in.
  const auto root = json::Get(*value, "root_post");
  if (IsBrand(context, username) || (field == "replies" && root && json::Str(*root, "username") == username)) {
    out->Ignore(m.kind, "own_account");
    return;
  }
  // Threads delivers no user id: the username is the identity.
  m.author.id = username;
  m.author.handle = username;
  m.author.verified = json::Bool(*value, "is_verified");
  m.text = json::Str(*value, "text");
  if (m.text.empty()) m.text = absl::StrCat("[", absl::AsciiStrToLower(json::Str(*value, "media_type")), "]");
  m.created_at = ThreadsTime(json::Str(*value, "timestamp"), sent);
  m.conversation_id = root ? json::Id(*root, "id") : "";
  if (m.conversation_id.empty()) m.conversation_id = m.id;
  m.url = json::Str(*value, "permalink");
  ApplyAuthorKnowledge(context, &m.author);
  out->Add(std::move(m));
}

void AddNotification(element notification, const ParseContext& context, ParseResult* out) {
  const auto time = json::Int(notification, "time");
  const absl::Time sent = time ? absl::FromUnixSeconds(*time) : absl::InfinitePast();
  const auto values = json::Get(notification, "values");
  if (!values) {
    out->CouldNotRead("other", "a Threads notification without values");
  } else if (values->is_array()) {
    for (element change : json::AsArray(*values)) AddValue(change, sent, context, out);
  } else {
    AddValue(*values, sent, context, out);
  }
}

class ThreadsType final : public SourceType {
 public:
  std::string_view name() const override { return "threads"; }
  std::vector<Setting> settings() const override {
    return {{"app_secret", Setting::Kind::kSecret, true, "", {}},
            // Which secret Meta signs Threads webhooks with is not documented: a second one
            // (the Meta app's, say) is accepted too while that is found out.
            {"alternate_app_secret", Setting::Kind::kSecret, false, "", {}},
            {"verify_token", Setting::Kind::kSecret, true, "", {}},
            {"brand_usernames", Setting::Kind::kStringList, false, "", {}}};
  }
  std::string brand_ids_setting() const override { return "brand_usernames"; }
  std::vector<SignatureCheck> Signature(const Settings& s) const override {
    return {{SignatureCheck::Kind::kHmacSha256Hex, "X-Hub-Signature-256", "sha256=", true, false, s.Get("app_secret"),
             s.Get("alternate_app_secret")}};
  }
  HandshakeSpec Handshake(const Settings& s) const override {
    return {HandshakeSpec::Kind::kMetaVerify, s.Get("verify_token")};
  }
  absl::StatusOr<ParseResult> Parse(absl::string_view body, const ParseContext& context) const override {
    return ParseThreadsWebhook(body, context);
  }
};

}  // namespace

absl::StatusOr<ParseResult> ParseThreadsWebhook(absl::string_view body, const ParseContext& context) {
  thread_local simdjson::dom::parser parser;
  element root;
  if (auto s = json::ParseDocument(parser, body, context.limits.max_depth, &root); !s.ok()) return s;
  ParseResult out;
  if (root.is_array()) {
    for (element notification : json::AsArray(root)) AddNotification(notification, context, &out);
  } else if (root.is_object() && json::Get(root, "values")) {
    AddNotification(root, context, &out);
  } else {
    return absl::InvalidArgumentError("not a Threads webhook: expected {\"values\": ...} or an array of them");
  }
  size_t events = 0;
  for (const auto& [kind, count] : out.events) events += static_cast<size_t>(count);
  if (events > context.limits.max_messages) {
    return absl::InvalidArgumentError(absl::StrCat("more than ", context.limits.max_messages, " events in one request"));
  }
  return out;
}

const SourceType& ThreadsSourceType() {
  static const ThreadsType type;
  return type;
}

}  // namespace triage::router
