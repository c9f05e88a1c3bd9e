#include "router/sources/telegram/telegram_source.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "router/json_util.h"
#include "router/sources/source_type.h"

namespace triage::router {
namespace {

using json::element;

// Updates that carry a message someone wrote.
constexpr const char* kMessageUpdates[] = {"message",          "edited_message",          "channel_post",
                                           "edited_channel_post", "business_message",     "edited_business_message",
                                           "guest_message"};
// Updates that are not messages: buttons, reactions, membership, inline queries, payments...
constexpr const char* kOtherUpdates[] = {
    "callback_query", "message_reaction", "message_reaction_count", "my_chat_member", "chat_member",
    "chat_join_request", "deleted_business_messages", "business_connection", "inline_query",
    "chosen_inline_result", "poll", "poll_answer", "shipping_query", "pre_checkout_query",
    "purchased_paid_media", "chat_boost", "removed_chat_boost", "managed_bot"};
// Content without words: named in brackets, as other sources do.
constexpr const char* kMedia[] = {"photo", "video", "voice", "audio", "document", "sticker", "animation",
                                  "video_note", "location", "venue", "contact", "poll", "dice"};

void AddMessage(element message, const std::string& update, const ParseContext& context, ParseResult* out) {
  const bool edited = update.starts_with("edited_");
  const bool channel_post = update.find("channel_post") != std::string::npos;
  const auto chat = json::Get(message, "chat");
  const std::string chat_id = chat ? json::Id(*chat, "id") : "";
  const std::string message_id = json::Id(message, "message_id");
  if (chat_id.empty() || message_id.empty()) {
    out->CouldNotRead("message", absl::StrCat("a Telegram ", update, " without chat.id or message_id"));
    return;
  }
  Message m;
  m.source = context.source;
  m.platform = "telegram";
  // message_id is unique within a chat only; a business connection is a chat space of its own.
  const std::string connection = json::Str(message, "business_connection_id");
  m.id = absl::StrCat(connection.empty() ? "" : connection + ":", chat_id, ":", message_id);
  if (edited) m.event_key = absl::StrCat(m.id, "/edited/", json::Int(message, "edit_date").value_or(0));
  const std::string chat_type = chat ? json::Str(*chat, "type") : "";
  m.channel = chat_type == "private" ? "private" : "public";
  if (const auto from = json::Get(message, "from")) {
    m.author.id = json::Id(*from, "id");
    m.author.handle = json::Str(*from, "username");
    m.author.name = json::Str(*from, "first_name");
    if (const std::string last = json::Str(*from, "last_name"); !last.empty()) absl::StrAppend(&m.author.name, " ", last);
  }
  if (const auto sender_chat = json::Get(message, "sender_chat"); sender_chat && (m.author.id.empty() || channel_post)) {
    // Posted on behalf of a chat (a channel, an anonymous admin): the chat is the author.
    m.author.id = json::Id(*sender_chat, "id");
    m.author.handle = json::Str(*sender_chat, "username");
    m.author.name = json::Str(*sender_chat, "title");
  }
  if (m.author.id.empty() && channel_post) {
    m.author.id = chat_id;
    m.author.handle = chat ? json::Str(*chat, "username") : "";
    m.author.name = chat ? json::Str(*chat, "title") : "";
  }
  if (std::find(context.brand_ids.begin(), context.brand_ids.end(), m.author.id) != context.brand_ids.end()) {
    out->Ignore(update, "own_account");
    return;
  }
  m.text = json::Str(message, "text");
  if (m.text.empty()) m.text = json::Str(message, "caption");
  if (m.text.empty()) {
    for (const char* media : kMedia) {
      if (json::Get(message, media)) {
        m.text = absl::StrCat("[", media, "]");
        break;
      }
    }
  }
  if (m.text.empty()) {
    out->Ignore("service", "not_a_message");  // members joined or left, a pinned message, ...
    return;
  }
  if (chat_type == "private") {
    m.kind = "direct_message";
  } else if (channel_post) {
    m.kind = "comment";
  } else if (const auto replied = json::Get(message, "reply_to_message");
             replied && json::Get(*replied, "from") && json::Bool(*json::Get(*replied, "from"), "is_bot")) {
    m.kind = "reply";  // to the bot
  } else {
    m.kind = "comment";
    if (const auto entities = json::Get(message, "entities"); entities && entities->is_array()) {
      for (element entity : json::AsArray(*entities)) {
        if (json::Str(entity, "type") == "mention") m.kind = "mention";
      }
    }
  }
  const auto when = json::Int(message, edited ? "edit_date" : "date");
  m.created_at = when ? absl::FromUnixSeconds(*when) : absl::InfinitePast();
  m.conversation_id = chat_id;
  if (const std::string thread = json::Id(message, "message_thread_id"); !thread.empty()) {
    absl::StrAppend(&m.conversation_id, ":", thread);
  }
  if (const std::string public_name = chat ? json::Str(*chat, "username") : ""; !public_name.empty() && chat_type != "private") {
    m.url = absl::StrCat("https://t.me/", public_name, "/", message_id);
  }
  m.language = json::Str(json::Get(message, "from").value_or(message), "language_code");
  ApplyAuthorKnowledge(context, &m.author);
  out->Add(std::move(m));
}

class TelegramType final : public SourceType {
 public:
  std::string_view name() const override { return "telegram"; }
  std::vector<Setting> settings() const override {
    return {{"secret_token", Setting::Kind::kSecret, true, "", {}},
            {"bot_ids", Setting::Kind::kStringList, false, "", {}}};
  }
  std::string brand_ids_setting() const override { return "bot_ids"; }
  std::vector<SignatureCheck> Signature(const Settings& s) const override {
    return {{SignatureCheck::Kind::kSharedToken, "X-Telegram-Bot-Api-Secret-Token", "", false, false,
             s.Get("secret_token")}};
  }
  absl::StatusOr<ParseResult> Parse(absl::string_view body, const ParseContext& context) const override {
    return ParseTelegramUpdate(body, context);
  }
};

}  // namespace

absl::StatusOr<ParseResult> ParseTelegramUpdate(absl::string_view body, const ParseContext& context) {
  thread_local simdjson::dom::parser parser;
  element root;
  if (auto s = json::ParseDocument(parser, body, context.limits.max_depth, &root); !s.ok()) return s;
  if (!root.is_object() || !json::Int(root, "update_id")) {
    return absl::InvalidArgumentError("not a Telegram update: expected {\"update_id\": N, ...}");
  }
  ParseResult out;
  bool known = false;
  for (const auto field : root.get_object()) {
    const std::string key(field.key);
    if (key == "update_id") continue;
    if (json::Listed(kMessageUpdates, key)) {
      AddMessage(field.value, key, context, &out);
      known = true;
    } else if (json::Listed(kOtherUpdates, key)) {
      out.Ignore(key, "not_a_message");
      known = true;
    }
  }
  // One update carries one of the fields above; anything else is a kind this version does not
  // know (keys some tools add beside a known one are left alone).
  if (!known) out.CouldNotRead("update", "a Telegram update of a kind this version does not know");
  return out;
}

const SourceType& TelegramSourceType() {
  static const TelegramType type;
  return type;
}

}  // namespace triage::router
