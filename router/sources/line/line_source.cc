#include "router/sources/line/line_source.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "router/json_util.h"
#include "router/sources/source_type.h"

namespace triage::router {
namespace {

using json::element;

// Lifecycle and button events: not messages. "unsend" withdraws one.
constexpr const char* kOtherEvents[] = {"follow", "unfollow", "join", "leave", "memberJoined", "memberLeft",
                                        "postback", "videoPlayComplete", "beacon", "accountLink", "membership",
                                        "module", "activated", "deactivated", "botSuspended", "botResumed",
                                        "delivery", "things"};

void AddMessage(element event, bool edited, const ParseContext& context, ParseResult* out) {
  const auto message = json::Get(event, "message");
  const std::string id = message ? json::Str(*message, "id") : "";
  if (id.empty()) {
    out->CouldNotRead("message", "a LINE message event without message.id");
    return;
  }
  Message m;
  m.source = context.source;
  m.platform = "line";
  m.id = id;
  // An edit reuses the message id: a new event on the same message.
  if (edited) m.event_key = absl::StrCat(id, "/edited/", json::Int(event, "timestamp").value_or(0));
  std::string source_type, conversation;
  if (const auto source = json::Get(event, "source")) {
    source_type = json::Str(*source, "type");
    m.author.id = json::Str(*source, "userId");
    conversation = json::Str(*source, source_type == "group" ? "groupId" : source_type == "room" ? "roomId" : "userId");
  }
  if (m.author.id.empty()) m.author.name = "unknown member";  // LINE may leave the user out in groups
  m.channel = source_type == "user" ? "private" : "public";
  m.conversation_id = conversation;
  const std::string type = json::Str(*message, "type");
  m.text = json::Str(*message, "text");
  if (m.text.empty() && type == "sticker") {
    std::vector<std::string> keywords;
    if (const auto words = json::Get(*message, "keywords"); words && words->is_array()) {
      for (element w : json::AsArray(*words)) {
        std::string_view word;
        if (w.get(word) == simdjson::SUCCESS) keywords.emplace_back(word);
      }
    }
    m.text = absl::StrCat("[sticker", keywords.empty() ? "" : ": ", absl::StrJoin(keywords, ", "), "]");
  }
  if (m.text.empty()) m.text = absl::StrCat("[", type.empty() ? "message" : type, "]");
  if (source_type == "user") {
    m.kind = "direct_message";
  } else {
    m.kind = json::Get(*message, "quotedMessageId") ? "reply" : "comment";
    if (const auto mention = json::Get(*message, "mention")) {
      if (const auto mentionees = json::Get(*mention, "mentionees"); mentionees && mentionees->is_array()) {
        for (element who : json::AsArray(*mentionees)) {
          if (json::Bool(who, "isSelf")) m.kind = "mention";
        }
      }
    }
  }
  if (const auto ms = json::Int(event, "timestamp")) m.created_at = absl::FromUnixMillis(*ms);
  ApplyAuthorKnowledge(context, &m.author);
  out->Add(std::move(m));
}

class LineType final : public SourceType {
 public:
  std::string_view name() const override { return "line"; }
  std::vector<Setting> settings() const override {
    return {{"channel_secret", Setting::Kind::kSecret, true, "", {}}};
  }
  std::vector<SignatureCheck> Signature(const Settings& s) const override {
    return {{SignatureCheck::Kind::kHmacSha256Base64, "x-line-signature", "", false, false, s.Get("channel_secret")}};
  }
  absl::StatusOr<ParseResult> Parse(absl::string_view body, const ParseContext& context) const override {
    return ParseLineWebhook(body, context);
  }
};

}  // namespace

absl::StatusOr<ParseResult> ParseLineWebhook(absl::string_view body, const ParseContext& context) {
  thread_local simdjson::dom::parser parser;
  element root;
  if (auto s = json::ParseDocument(parser, body, context.limits.max_depth, &root); !s.ok()) return s;
  const auto events = root.is_object() ? json::Get(root, "events") : std::nullopt;
  if (!events || !events->is_array()) {
    return absl::InvalidArgumentError("not a LINE webhook: expected {\"destination\": ..., \"events\": [...]}");
  }
  if (json::AsArray(*events).size() > context.limits.max_messages) {
    return absl::InvalidArgumentError(absl::StrCat("more than ", context.limits.max_messages, " events in one request"));
  }
  ParseResult out;
  for (element event : json::AsArray(*events)) {
    const std::string type = json::Str(event, "type");
    if (type == "message" || type == "messageEdited") {
      AddMessage(event, type == "messageEdited", context, &out);
    } else if (type == "unsend") {
      out.Ignore("message_deleted", "not_a_message");
    } else if (json::Listed(kOtherEvents, type)) {
      out.Ignore(type, "not_a_message");
    } else {
      out.CouldNotRead("event", absl::StrCat("LINE event type '", type.substr(0, 64), "'"));
    }
  }
  return out;
}

const SourceType& LineSourceType() {
  static const LineType type;
  return type;
}

}  // namespace triage::router
