// Meta webhook payloads: Facebook Page feed, Messenger, Instagram (comments and DMs) and
// WhatsApp Cloud API. Facts: ../shared/reference/inbound-webhooks.md, section 2.
#include "router/sources/meta/meta_source.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "router/json_util.h"
#include "router/source.h"
#include "router/sources/source_type.h"

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
    out->CouldNotRead(kind, "a Page feed item without comment_id or post_id");
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
    out->CouldNotRead("comment", "an Instagram comment without id");
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
    out->CouldNotRead("direct_message", "a messaging item without message.mid or sender.id");
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

// WhatsApp message types, as the Cloud API documents them. Those with words or media become
// tickets; the others are not messages. A type not listed here is not guessed at: it is
// could_not_read, and its request is quarantined for a later version.
constexpr const char* kWhatsAppContent[] = {"text",  "image",    "video",   "audio",  "document",
                                            "sticker", "location", "contacts", "button", "order",
                                            "interactive", "edit"};
constexpr const char* kWhatsAppNotMessages[] = {"reaction", "system", "revoke", "request_welcome",
                                                "ephemeral"};

// The words of a WhatsApp message of a content type: text, a caption, a button's text, an
// interactive reply's title or body. Empty when it has none (a call permission reply).
std::string WhatsAppWords(element message, const std::string& type) {
  if (type == "text") {
    if (const auto text = json::Get(message, "text")) return json::Str(*text, "body");
    return "";
  }
  const auto content = json::Get(message, type);
  if (!content) return "";
  if (type == "interactive") {
    for (const char* reply : {"button_reply", "list_reply"}) {
      if (const auto r = json::Get(*content, reply)) {
        std::string words = json::Str(*r, "title");
        if (const std::string more = json::Str(*r, "description"); !more.empty()) absl::StrAppend(&words, ": ", more);
        return words;
      }
    }
    if (const auto flow = json::Get(*content, "nfm_reply")) return json::Str(*flow, "body");
    return "";
  }
  for (const char* key : {"caption", "text", "body", "title"}) {
    std::string value = json::Str(*content, key);
    if (!value.empty()) return value;
  }
  return "";
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
    std::string type = json::Str(item, "type");
    if (json::Listed(kWhatsAppNotMessages, type)) {
      out->Ignore(type == "reaction" ? "reaction" : type == "revoke" ? "message_deleted" : "whatsapp_other",
                  "not_a_message");
      continue;
    }
    if (type == "unsupported") {  // WhatsApp could not pass on what the customer sent
      out->Ignore("direct_message", "no_content");
      continue;
    }
    if (!json::Listed(kWhatsAppContent, type)) {
      out->CouldNotRead("direct_message", absl::StrCat("WhatsApp message type '", type.substr(0, 64), "'"));
      continue;
    }
    Message m = NewMessage(context, "whatsapp", phone_id);
    m.channel = "private";
    m.kind = "direct_message";
    m.id = json::Id(item, "id");
    // Since the 2026 username rollout the phone number may be absent: the BSUID then, or the
    // one contact of the envelope.
    m.author.id = json::Str(item, "from");
    const std::string user_id = json::Str(item, "from_user_id");
    if (m.author.id.empty()) m.author.id = user_id;
    if (m.author.id.empty() && contacts && contacts->is_array() && json::AsArray(*contacts).size() == 1) {
      const element contact = *json::AsArray(*contacts).begin();
      m.author.id = json::Str(contact, "wa_id");
      if (m.author.id.empty()) m.author.id = json::Str(contact, "user_id");
    }
    if (m.id.empty() || m.author.id.empty()) {
      out->CouldNotRead("direct_message", "a WhatsApp message without id or sender");
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
    element content = item;
    if (type == "edit") {
      // The new version of an earlier message: same id as the original (it links to it), a
      // new event for dedup, the new words.
      const auto edit = json::Get(item, "edit");
      const std::string original = edit ? json::Id(*edit, "original_message_id") : "";
      const auto edited = edit ? json::Get(*edit, "message") : std::nullopt;
      if (original.empty() || !edited) {
        out->CouldNotRead("direct_message", "a WhatsApp edit without original_message_id or message");
        continue;
      }
      m.event_key = absl::StrCat(original, "/edited/", m.id);
      m.id = original;
      content = *edited;
      type = json::Str(content, "type");
      if (type.empty()) type = "text";
    }
    const std::string words = WhatsAppWords(content, type);
    if (words.empty() && type == "interactive") {
      out->Ignore("interactive", "not_a_message");  // a reply without words (a call permission)
      continue;
    }
    m.text = words.empty() ? absl::StrCat("[", type, "]") : words;
    if (const auto seconds = json::Int(item, "timestamp")) m.created_at = json::EpochSecondsOrMillis(*seconds);
    m.conversation_id = absl::StrCat("wa:", m.author.id);
    ApplyAuthorKnowledge(context, &m.author);
    out->Add(std::move(m));
  }
}

// Subscribed fields that notify the business about its own account, templates, numbers and
// apps: never a customer's words.
constexpr const char* kNotificationFields[] = {
    "account_update", "account_review_update", "account_alerts", "business_capability_update",
    "message_template_status_update", "message_template_quality_update",
    "message_template_components_update", "template_category_update", "phone_number_name_update",
    "phone_number_quality_update", "security", "flows", "user_preferences", "history",
    "smb_app_state_sync", "partner_solutions", "payment_configuration_update"};

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
          out.CouldNotRead("other", absl::StrCat(object.substr(0, 64), " change '", field.substr(0, 64), "' without value"));
        } else if (object == "page" && field == "feed") {
          AddFeedChange(*value, account, entry_time, context, &out);
        } else if (object == "instagram" && (field == "comments" || field == "live_comments")) {
          AddInstagramComment(*value, account, entry_time, context, &out);
        } else if (object == "whatsapp_business_account" && field == "messages") {
          AddWhatsApp(*value, context, &out);
        } else {
          if (field == "mentions") {
            out.Ignore("mention", "no_content");  // carries ids only; the text needs an API call
          } else if (object == "whatsapp_business_account" && field == "smb_message_echoes") {
            out.Ignore("echo", "own_account");  // sent from the WhatsApp Business app
          } else if (json::Listed(kNotificationFields, field)) {
            out.Ignore("notification", "not_a_message");
          } else {
            out.CouldNotRead("other", absl::StrCat(object.substr(0, 64), " change '", field.substr(0, 64), "'"));
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
          // messaging under an object Meta does not send it for
          out.CouldNotRead("other", absl::StrCat("messaging under object '", object.substr(0, 64), "'"));
        } else if (std::string_view(list) == "standby") {
          out.Ignore("standby", "not_a_message");  // another app owns the thread
        } else {
          AddMessaging(item, platform, account, context, &out);
        }
      }
    }
  }
  // Changes and messaging items, and the messages and statuses inside a WhatsApp change.
  size_t events = 0;
  for (const auto& [kind, count] : out.events) events += static_cast<size_t>(count);
  if (std::max(items, events) > context.limits.max_messages) {
    return absl::InvalidArgumentError(
        absl::StrCat("more than ", context.limits.max_messages, " events in one request"));
  }
  return out;
}

namespace {

class MetaType final : public SourceType {
 public:
  std::string_view name() const override { return "meta"; }
  std::vector<Setting> settings() const override {
    return {{"app_secret", Setting::Kind::kSecret, true, "", {}},
            {"verify_token", Setting::Kind::kSecret, true, "", {}},
            {"brand_ids", Setting::Kind::kStringList, false, "", {}}};
  }
  std::string brand_ids_setting() const override { return "brand_ids"; }
  std::vector<SignatureCheck> Signature(const Settings& s) const override {
    // Only the SHA-256 header, with its prefix (the legacy SHA-1 one is not accepted).
    return {{SignatureCheck::Kind::kHmacSha256Hex, "X-Hub-Signature-256", "sha256=", true, false, s.Get("app_secret")}};
  }
  HandshakeSpec Handshake(const Settings& s) const override {
    return {HandshakeSpec::Kind::kMetaVerify, s.Get("verify_token")};
  }
  absl::StatusOr<ParseResult> Parse(absl::string_view body, const ParseContext& context) const override {
    return ParseMetaPayload(body, context);
  }
};

}  // namespace

const SourceType& MetaSourceType() {
  static const MetaType type;
  return type;
}

}  // namespace triage::router
