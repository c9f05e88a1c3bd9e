// Meta webhook payloads: Facebook Page feed, Messenger, Instagram (comments and DMs) and
// WhatsApp Cloud API. Facts: ../shared/reference/inbound-webhooks.md, section 2.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "router/json_util.h"
#include "router/source.h"

namespace triage::router {
namespace {

using json::element;

bool IsBrand(const ParseContext& context, const std::string& entry_id, const std::string& id) {
  return !id.empty() && (id == entry_id || std::find(context.brand_ids.begin(),
                                                     context.brand_ids.end(), id) !=
                                               context.brand_ids.end());
}

Message NewMessage(const ParseContext& context, const std::string& platform,
                   const std::string& account) {
  Message m;
  m.source = context.source;
  m.platform = platform;
  m.account_id = account;
  return m;
}

// Page feed: a comment or post on the Page. Key (comment or post id, verb): an edit is a new
// event on the same comment.
void AddFeedChange(element value, const std::string& page, absl::Time entry_time,
                   const ParseContext& context, ParseResult* out) {
  const std::string item = json::Str(value, "item");
  const std::string verb = json::Str(value, "verb");
  static const char* kTextItems[] = {"comment", "post", "status", "photo", "video", "share"};
  if (std::find(std::begin(kTextItems), std::end(kTextItems), item) == std::end(kTextItems)) {
    out->Ignore(item == "reaction" || item == "like" ? item : "feed_other", "not_a_message");
    return;
  }
  const std::string kind = item == "comment" ? "comment" : "post";
  if (verb != "add" && verb != "edited") {
    out->Ignore(kind, "not_a_message");  // remove, hide, unhide, ...
    return;
  }
  Message m = NewMessage(context, "facebook", page);
  m.channel = "public";
  m.kind = kind;
  if (const auto from = json::Get(value, "from")) {
    m.author.id = json::Id(*from, "id");
    m.author.name = json::Str(*from, "name");
  } else {
    // Older Graph feed items name the author with sender_id (often a number) and sender_name.
    m.author.id = json::Id(value, "sender_id");
    m.author.name = json::Str(value, "sender_name");
  }
  if (IsBrand(context, page, m.author.id)) {
    out->Ignore(kind, "own_account");
    return;
  }
  const std::string post_id = json::Id(value, "post_id");
  m.id = json::Id(value, "comment_id");
  if (m.id.empty()) m.id = post_id;
  if (m.id.empty()) {
    out->Ignore(kind, "unsupported");
    return;
  }
  if (verb == "edited") m.event_key = absl::StrCat(m.id, "/edited/", json::Int(value, "created_time").value_or(0));
  m.text = json::Str(value, "message");
  const auto created = json::Int(value, "created_time");
  m.created_at = created ? json::EpochSecondsOrMillis(*created) : entry_time;
  m.conversation_id = post_id.empty() ? m.id : post_id;
  if (const auto post = json::Get(value, "post")) m.url = json::Str(*post, "permalink_url");
  if (m.url.empty()) m.url = absl::StrCat("https://www.facebook.com/", m.id);
  ApplyAuthorKnowledge(context, &m.author);
  out->Add(std::move(m));
}

// Instagram comments (field "comments" or "live_comments").
void AddInstagramComment(element value, const std::string& account, absl::Time entry_time,
                         const ParseContext& context, ParseResult* out) {
  Message m = NewMessage(context, "instagram", account);
  m.channel = "public";
  m.kind = "comment";
  if (const auto from = json::Get(value, "from")) {
    m.author.id = json::Id(*from, "id");
    m.author.handle = json::Str(*from, "username");
  }
  if (IsBrand(context, account, m.author.id)) {
    out->Ignore("comment", "own_account");
    return;
  }
  m.id = json::Id(value, "id");
  if (m.id.empty()) {
    out->Ignore("comment", "unsupported");
    return;
  }
  m.text = json::Str(value, "text");
  m.created_at = entry_time;
  if (const auto media = json::Get(value, "media")) m.conversation_id = json::Id(*media, "id");
  const std::string parent = json::Id(value, "parent_id");
  if (!parent.empty()) m.kind = "reply";
  if (m.conversation_id.empty()) m.conversation_id = parent.empty() ? m.id : parent;
  ApplyAuthorKnowledge(context, &m.author);
  out->Add(std::move(m));
}

// Messenger and Instagram DMs: entry.messaging[] items.
void AddMessaging(element item, const std::string& platform, const std::string& account,
                  const ParseContext& context, ParseResult* out) {
  const auto message = json::Get(item, "message");
  if (!message) {
    // delivery, read, reaction, postback, optin, referral, ...: name the first event key.
    std::string kind = "messaging_event";
    for (const char* key : {"delivery", "read", "reaction", "postback", "optin", "referral",
                            "account_linking", "policy_enforcement", "message_edit"}) {
      if (json::Get(item, key)) {
        kind = key;
        break;
      }
    }
    out->Ignore(kind, "not_a_message");
    return;
  }
  std::string sender;
  if (const auto s = json::Get(item, "sender")) sender = json::Id(*s, "id");
  if (json::Bool(*message, "is_echo") || IsBrand(context, account, sender)) {
    out->Ignore("echo", "own_account");
    return;
  }
  if (json::Bool(*message, "is_deleted")) {
    out->Ignore("message_deleted", "not_a_message");
    return;
  }
  Message m = NewMessage(context, platform, account);
  m.channel = "private";
  m.kind = "direct_message";
  m.id = json::Str(*message, "mid");
  m.author.id = sender;
  if (m.id.empty() || sender.empty()) {
    out->Ignore("direct_message", "unsupported");
    return;
  }
  m.text = json::Str(*message, "text");
  if (m.text.empty()) {
    if (const auto attachments = json::Get(*message, "attachments"); attachments && attachments->is_array()) {
      for (element a : json::AsArray(*attachments)) {
        absl::StrAppend(&m.text, m.text.empty() ? "" : " ", "[", json::Str(a, "type"), "]");
      }
    }
  }
  if (const auto ms = json::Int(item, "timestamp")) m.created_at = json::EpochSecondsOrMillis(*ms);
  m.conversation_id = absl::StrCat("dm:", sender);
  ApplyAuthorKnowledge(context, &m.author);
  out->Add(std::move(m));
}

// The words of a WhatsApp message of any type: text, a caption, a button or list reply.
std::string WhatsAppText(element message, const std::string& type) {
  if (type == "text") {
    if (const auto text = json::Get(message, "text")) return json::Str(*text, "body");
  }
  if (const auto media = json::Get(message, type)) {
    for (const char* key : {"caption", "text", "body", "title"}) {
      std::string value = json::Str(*media, key);
      if (!value.empty()) return value;
    }
    for (const char* reply : {"button_reply", "list_reply"}) {
      if (const auto r = json::Get(*media, reply)) return json::Str(*r, "title");
    }
  }
  return absl::StrCat("[", type, "]");
}

void AddWhatsApp(element value, const ParseContext& context, ParseResult* out) {
  std::string phone_id;
  if (const auto metadata = json::Get(value, "metadata")) phone_id = json::Str(*metadata, "phone_number_id");
  if (const auto statuses = json::Get(value, "statuses"); statuses && statuses->is_array()) {
    for (size_t i = 0; i < json::AsArray(*statuses).size(); ++i) {
      out->Ignore("status", "not_a_message");
    }
  }
  const auto messages = json::Get(value, "messages");
  if (!messages || !messages->is_array()) return;
  const auto contacts = json::Get(value, "contacts");
  for (element item : json::AsArray(*messages)) {
    const std::string type = json::Str(item, "type");
    if (type == "reaction" || type == "system" || type == "unsupported") {
      out->Ignore(type == "reaction" ? "reaction" : "whatsapp_other", "not_a_message");
      continue;
    }
    Message m = NewMessage(context, "whatsapp", phone_id);
    m.channel = "private";
    m.kind = "direct_message";
    m.id = json::Id(item, "id");
    // Since the 2026 username rollout the phone number may be absent: fall back to the BSUID.
    m.author.id = json::Str(item, "from");
    const std::string user_id = json::Str(item, "from_user_id");
    if (m.author.id.empty()) m.author.id = user_id;
    if (m.id.empty() || m.author.id.empty()) {
      out->Ignore("direct_message", "unsupported");
      continue;
    }
    if (contacts && contacts->is_array()) {
      for (element contact : json::AsArray(*contacts)) {
        if (json::Str(contact, "wa_id") != m.author.id && json::Str(contact, "user_id") != m.author.id &&
            (user_id.empty() || json::Str(contact, "user_id") != user_id)) {
          continue;
        }
        if (const auto profile = json::Get(contact, "profile")) {
          m.author.name = json::Str(*profile, "name");
          m.author.handle = json::Str(*profile, "username");
        }
      }
    }
    m.text = WhatsAppText(item, type);
    if (const auto seconds = json::Int(item, "timestamp")) m.created_at = json::EpochSecondsOrMillis(*seconds);
    m.conversation_id = absl::StrCat("wa:", m.author.id);
    ApplyAuthorKnowledge(context, &m.author);
    out->Add(std::move(m));
  }
}

}  // namespace

absl::StatusOr<ParseResult> ParseMetaPayload(absl::string_view body, const ParseContext& context) {
  thread_local simdjson::dom::parser parser;
  element root;
  if (auto s = json::ParseDocument(parser, body, context.limits.max_depth, &root); !s.ok()) return s;
  const std::string object = json::Str(root, "object");
  const auto entries = json::Get(root, "entry");
  if (object.empty() || !entries || !entries->is_array()) {
    return absl::InvalidArgumentError("not a Meta webhook: expected {\"object\": ..., \"entry\": [...]}");
  }
  ParseResult out;
  size_t items = 0;
  for (element entry : json::AsArray(*entries)) {
    const std::string account = json::Id(entry, "id");
    const auto time = json::Int(entry, "time");
    const absl::Time entry_time = time ? json::EpochSecondsOrMillis(*time) : absl::InfinitePast();
    if (const auto changes = json::Get(entry, "changes"); changes && changes->is_array()) {
      for (element change : json::AsArray(*changes)) {
        ++items;
        const std::string field = json::Str(change, "field");
        const auto value = json::Get(change, "value");
        if (!value) {
          out.Ignore("other", "unsupported");
        } else if (object == "page" && field == "feed") {
          AddFeedChange(*value, account, entry_time, context, &out);
        } else if (object == "instagram" && (field == "comments" || field == "live_comments")) {
          AddInstagramComment(*value, account, entry_time, context, &out);
        } else if (object == "whatsapp_business_account" && field == "messages") {
          AddWhatsApp(*value, context, &out);
        } else {
          if (field == "mentions") {
            out.Ignore("mention", "no_content");  // carries ids only; the text needs an API call
          } else {
            out.Ignore("other", "unsupported");
          }
        }
      }
    }
    for (const char* list : {"messaging", "standby"}) {
      const auto messaging = json::Get(entry, list);
      if (!messaging || !messaging->is_array()) continue;
      const std::string platform = object == "instagram" ? "instagram" : "messenger";
      for (element item : json::AsArray(*messaging)) {
        ++items;
        if (object != "page" && object != "instagram") {
          out.Ignore("other", "unsupported");  // messaging under an object Meta does not send it for
        } else if (std::string_view(list) == "standby") {
          out.Ignore("standby", "not_a_message");  // another app owns the thread
        } else {
          AddMessaging(item, platform, account, context, &out);
        }
      }
    }
  }
  if (items > context.limits.max_messages) {
    return absl::InvalidArgumentError(
        absl::StrCat("more than ", context.limits.max_messages, " events in one request"));
  }
  return out;
}

}  // namespace triage::router
