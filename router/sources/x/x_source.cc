// X (Twitter) webhook payloads: Account Activity API (v1.1 shape, also sent by v2 AAA),
// filtered-stream webhooks (v2 Post + includes.users) and the X Activity API envelope.
// Facts: ../shared/reference/inbound-webhooks.md, section 1.
#include "router/sources/x/x_source.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "router/json_util.h"
#include "router/json_writer.h"
#include "router/source.h"
#include "router/sources/source_type.h"

namespace triage::router {
namespace {

using json::element;

bool IsBrand(const std::vector<std::string>& brand_ids, const std::string& id) {
  return !id.empty() && std::find(brand_ids.begin(), brand_ids.end(), id) != brand_ids.end();
}

std::string PostUrl(const std::string& handle, const std::string& id) {
  return handle.empty() ? absl::StrCat("https://x.com/i/web/status/", id)
                        : absl::StrCat("https://x.com/", handle, "/status/", id);
}

// v1.1 "Mon Dec 23 13:03:29 +0000 2019".
absl::Time V1Time(const std::string& text) {
  absl::Time t;
  std::string error;
  return absl::ParseTime("%a %b %d %H:%M:%S %z %Y", text, &t, &error) && FormatTimestamp(t) ? t : absl::InfinitePast();
}

absl::Time IsoTime(const std::string& text) {
  absl::Time t;
  std::string error;
  return absl::ParseTime(absl::RFC3339_full, text, &t, &error) && FormatTimestamp(t) ? t : absl::InfinitePast();
}

// A v1.1 user object (full, or the reduced one of DM users maps).
Author V1Author(element user) {
  Author a;
  a.id = json::Str(user, "id_str");
  if (a.id.empty()) a.id = json::Str(user, "id");
  if (a.id.empty()) {
    if (const auto id = json::Int(user, "id")) a.id = absl::StrCat(*id);
  }
  a.handle = json::Str(user, "screen_name");
  a.name = json::Str(user, "name");
  a.followers = json::Int(user, "followers_count");
  a.verified = json::Bool(user, "verified");
  return a;
}

// A v2 user object: {id, username, name, verified, verified_type, public_metrics{...}}.
Author V2Author(element user) {
  Author a;
  a.id = json::Str(user, "id");
  a.handle = json::Str(user, "username");
  a.name = json::Str(user, "name");
  if (const auto metrics = json::Get(user, "public_metrics")) {
    a.followers = json::Int(*metrics, "followers_count");
  }
  a.verified = json::Bool(user, "verified");
  a.verified_type = json::Str(user, "verified_type");
  if (a.verified_type == "none") a.verified_type.clear();
  if (!a.verified_type.empty()) a.verified = true;
  return a;
}

// The full text of a v1.1 tweet: extended_tweet.full_text when truncated.
std::string V1Text(element tweet) {
  if (const auto extended = json::Get(tweet, "extended_tweet")) {
    std::string full = json::Str(*extended, "full_text");
    if (!full.empty()) return full;
  }
  std::string full = json::Str(tweet, "full_text");
  return full.empty() ? json::Str(tweet, "text") : full;
}

Message NewXMessage(const ParseContext& context, const std::string& account, const char* channel) {
  Message m;
  m.source = context.source;
  m.platform = "x";
  m.channel = channel;
  m.account_id = account;
  return m;
}

void AddV1Tweet(element tweet, const std::string& account, const ParseContext& context,
                ParseResult* out) {
  Message m = NewXMessage(context, account, "public");
  m.id = json::Str(tweet, "id_str");
  if (m.id.empty()) {
    out->CouldNotRead("tweet", "a tweet without id_str");
    return;
  }
  const auto user = json::Get(tweet, "user");
  if (user) m.author = V1Author(*user);
  if (m.author.id.empty()) {
    out->CouldNotRead("tweet", "a tweet without its user");  // not even "own" can be told
    return;
  }
  if (m.author.id == account || IsBrand(context.brand_ids, m.author.id)) {
    out->Ignore("own_post", "own_account");
    return;
  }
  if (const auto retweeted = json::Get(tweet, "retweeted_status")) {
    // The words are the original's; the retweeter is who brought it to the brand.
    m.kind = "retweet";
    m.text = V1Text(*retweeted);
    m.conversation_id = json::Str(*retweeted, "id_str");
  } else {
    m.text = V1Text(tweet);
    const std::string reply_to = json::Str(tweet, "in_reply_to_status_id_str");
    if (json::Bool(tweet, "is_quote_status") || !json::Str(tweet, "quoted_status_id_str").empty()) {
      m.kind = "quote";
    } else if (!reply_to.empty()) {
      m.kind = "reply";
    } else {
      m.kind = "mention";
    }
    m.conversation_id = reply_to.empty() ? m.id : reply_to;
  }
  m.language = json::Str(tweet, "lang");
  if (const auto ms = json::Int(tweet, "timestamp_ms")) {
    m.created_at = json::EpochSecondsOrMillis(*ms);
  } else {
    m.created_at = V1Time(json::Str(tweet, "created_at"));
  }
  m.url = PostUrl(m.author.handle, m.id);
  ApplyAuthorKnowledge(context, &m.author);
  out->Add(std::move(m));
}

// direct_message_events items, with the users map of the envelope (v1.1) or of an XAA
// payload, where each user is wrapped as {"data": {...v2 user...}}.
void AddDirectMessage(element event, std::optional<element> users, const std::string& account,
                      const ParseContext& context, ParseResult* out) {
  if (json::Str(event, "type") != "message_create") {
    out->Ignore("direct_message_other", "not_a_message");
    return;
  }
  const auto create = json::Get(event, "message_create");
  if (!create) {
    out->CouldNotRead("direct_message", "a message_create event without message_create");
    return;
  }
  Message m = NewXMessage(context, account, "private");
  m.kind = "direct_message";
  m.id = json::Str(event, "id");
  m.author.id = json::Str(*create, "sender_id");
  if (m.id.empty() || m.author.id.empty()) {
    out->CouldNotRead("direct_message", "a direct message without id or sender_id");
    return;
  }
  if (m.author.id == account || IsBrand(context.brand_ids, m.author.id)) {
    out->Ignore("own_direct_message", "own_account");
    return;
  }
  if (const auto data = json::Get(*create, "message_data")) m.text = json::Str(*data, "text");
  if (users) {
    if (const auto user = json::Get(*users, m.author.id)) {
      if (const auto wrapped = json::Get(*user, "data")) {
        m.author = V2Author(*wrapped);
      } else {
        m.author = V1Author(*user);
      }
      if (m.author.id.empty()) m.author.id = json::Str(*create, "sender_id");
    }
  }
  if (const auto ms = json::Int(event, "created_timestamp")) m.created_at = json::EpochSecondsOrMillis(*ms);
  m.conversation_id = absl::StrCat("dm:", m.author.id);  // one DM thread per customer
  ApplyAuthorKnowledge(context, &m.author);
  out->Add(std::move(m));
}

// A v2 Post with the users of `includes`: filtered-stream webhooks and XAA post events.
void AddV2Post(element post, std::optional<element> includes, const std::string& account,
               const std::string& kind_hint, const ParseContext& context, ParseResult* out) {
  Message m = NewXMessage(context, account, "public");
  m.id = json::Str(post, "id");
  if (m.id.empty()) {
    out->CouldNotRead("post", "a post without id");
    return;
  }
  m.author.id = json::Str(post, "author_id");
  if (includes) {
    if (const auto users = json::Get(*includes, "users"); users && users->is_array()) {
      for (element user : json::AsArray(*users)) {
        if (json::Str(user, "id") == m.author.id) m.author = V2Author(user);
      }
    }
  }
  if (m.author.id.empty()) {
    out->CouldNotRead("post", "a post without author_id");
    return;
  }
  if (m.author.id == account || IsBrand(context.brand_ids, m.author.id)) {
    out->Ignore("own_post", "own_account");
    return;
  }
  // Long posts carry their whole text in note_tweet.
  if (const auto note = json::Get(post, "note_tweet")) m.text = json::Str(*note, "text");
  if (m.text.empty()) m.text = json::Str(post, "text");
  m.kind = kind_hint;
  if (const auto refs = json::Get(post, "referenced_tweets"); refs && refs->is_array()) {
    for (element ref : json::AsArray(*refs)) {
      const std::string type = json::Str(ref, "type");
      if (type == "retweeted") m.kind = "retweet";
      if (type == "quoted" && m.kind != "retweet") m.kind = "quote";
      if (type == "replied_to" && m.kind.empty()) m.kind = "reply";
    }
  }
  if (m.kind.empty()) m.kind = "mention";
  m.language = json::Str(post, "lang");
  m.created_at = IsoTime(json::Str(post, "created_at"));
  m.conversation_id = json::Str(post, "conversation_id");
  if (m.conversation_id.empty()) m.conversation_id = m.id;
  m.url = PostUrl(m.author.handle, m.id);
  ApplyAuthorKnowledge(context, &m.author);
  out->Add(std::move(m));
}

// Event arrays of the Account Activity envelope that are not customer messages.
constexpr const char* kAaaNonMessages[] = {
    "favorite_events",        "follow_events",
    "block_events",           "mute_events",
    "user_event",             "direct_message_indicate_typing_events",
    "direct_message_mark_read_events", "tweet_delete_events",
    "replay_job_status",
};

std::string EventKind(std::string_view array_name) {
  std::string kind(array_name);
  if (kind.size() > 7 && kind.substr(kind.size() - 7) == "_events") kind.resize(kind.size() - 7);
  return kind;
}

absl::Status ParseAccountActivity(element root, const ParseContext& context, ParseResult* out) {
  const std::string account = json::Str(root, "for_user_id");
  if (const auto tweets = json::Get(root, "tweet_create_events"); tweets && tweets->is_array()) {
    for (element tweet : json::AsArray(*tweets)) AddV1Tweet(tweet, account, context, out);
  }
  if (const auto dms = json::Get(root, "direct_message_events"); dms && dms->is_array()) {
    const auto users = json::Get(root, "users");
    for (element dm : json::AsArray(*dms)) AddDirectMessage(dm, users, account, context, out);
  }
  for (const char* name : kAaaNonMessages) {
    const auto events = json::Get(root, name);
    if (!events) continue;
    const int count = events->is_array() ? static_cast<int>(json::AsArray(*events).size()) : 1;
    for (int i = 0; i < count; ++i) out->Ignore(EventKind(name), "not_a_message");
  }
  return absl::OkStatus();
}

// X Activity API: {"data": {event_uuid, filter{user_id}, event_type, payload, includes}}.
void ParseActivityEvent(element data, const ParseContext& context, ParseResult* out) {
  const std::string type = json::Str(data, "event_type");
  std::string account;
  if (const auto filter = json::Get(data, "filter")) account = json::Str(*filter, "user_id");
  const auto payload = json::Get(data, "payload");
  const auto includes = json::Get(data, "includes");
  static const std::map<std::string, std::string> kPostKinds = {
      {"post.mention.create", "mention"}, {"post.reply.create", "reply"},
      {"post.quote.create", "quote"},     {"post.repost.create", "retweet"},
      {"post.create", "post"},
  };
  if (const auto kind = kPostKinds.find(type); kind != kPostKinds.end() && payload) {
    AddV2Post(*payload, includes, account, kind->second, context, out);
    return;
  }
  if (type == "dm.received" && payload) {
    const auto users = json::Get(*payload, "users");
    const auto events = json::Get(*payload, "direct_message_events");
    if (events && events->is_array()) {
      for (element dm : json::AsArray(*events)) AddDirectMessage(dm, users, account, context, out);
      return;
    }
  }
  if (type == "dm.sent") {
    out->Ignore("own_direct_message", "own_account");
    return;
  }
  // Event kinds become metric labels: name the known families, fold the rest into "other".
  static const char* kFamilies[] = {"like", "follow", "mute", "block", "profile", "chat",
                                    "news", "spaces", "broadcast", "oauth", "post", "dm"};
  const std::string family = type.substr(0, type.find('.'));
  const bool known = std::find(std::begin(kFamilies), std::end(kFamilies), family) != std::end(kFamilies);
  if (known) {
    out->Ignore(family, "not_a_message");
  } else {
    out->CouldNotRead("other", absl::StrCat("X activity event_type '", type.substr(0, 64), "'"));
  }
}

}  // namespace

absl::StatusOr<ParseResult> ParseXPayload(absl::string_view body, const ParseContext& context) {
  thread_local simdjson::dom::parser parser;  // reuses its buffers between requests
  element root;
  if (auto s = json::ParseDocument(parser, body, context.limits.max_depth, &root); !s.ok()) return s;
  if (!root.is_object()) return absl::InvalidArgumentError("an X webhook body is a JSON object");
  ParseResult out;
  if (json::Get(root, "for_user_id") || json::Get(root, "tweet_create_events") ||
      json::Get(root, "direct_message_events") || json::Get(root, "user_event")) {
    if (auto s = ParseAccountActivity(root, context, &out); !s.ok()) return s;
  } else if (const auto data = json::Get(root, "data")) {
    if (json::Get(*data, "event_type")) {
      ParseActivityEvent(*data, context, &out);
    } else if (data->is_object()) {  // filtered stream: {data: Post, includes, matching_rules}
      AddV2Post(*data, json::Get(root, "includes"), "", "", context, &out);
    } else {
      return absl::InvalidArgumentError("data: must be an object");
    }
  } else {
    return absl::InvalidArgumentError(
        "not an X webhook: expected for_user_id with event arrays, or data");
  }
  size_t events = 0;
  for (const auto& [kind, count] : out.events) events += count;
  if (events > context.limits.max_messages) {
    return absl::InvalidArgumentError(
        absl::StrCat("more than ", context.limits.max_messages, " events in one request"));
  }
  return out;
}

namespace {

class XType final : public SourceType {
 public:
  std::string_view name() const override { return "x"; }
  std::vector<Setting> settings() const override {
    return {{"consumer_secret", Setting::Kind::kSecret, true, "", {}},
            {"oauth2_client_secret", Setting::Kind::kSecret, false, "", {}},
            {"crc_secret", Setting::Kind::kString, false, "consumer_secret",
             {"consumer_secret", "oauth2_client_secret"}},
            {"brand_user_ids", Setting::Kind::kStringList, false, "", {}}};
  }
  std::string brand_ids_setting() const override { return "brand_user_ids"; }
  std::vector<std::pair<std::string, std::string>> Validate(const Settings& s) const override {
    if (s.Get("crc_secret") == "oauth2_client_secret" && s.Get("oauth2_client_secret").empty()) {
      return {{"oauth2_client_secret", "is required when crc_secret names it"}};
    }
    return {};
  }
  std::vector<SignatureCheck> Signature(const Settings& s) const override {
    std::vector<SignatureCheck> checks;
    // During X's migration both headers may come; the OAuth2 one is checked when it can be.
    if (!s.Get("oauth2_client_secret").empty()) {
      checks.push_back({SignatureCheck::Kind::kHmacSha256Base64, "X-Twitter-Webhooks-Signature-OAuth2", "sha256=",
                        true, true, s.Get("oauth2_client_secret")});
    }
    checks.push_back({SignatureCheck::Kind::kHmacSha256Base64, "X-Twitter-Webhooks-Signature", "sha256=", true,
                      false, s.Get("consumer_secret")});
    return checks;
  }
  HandshakeSpec Handshake(const Settings& s) const override {
    return {HandshakeSpec::Kind::kXCrc, s.Get(s.Get("crc_secret"))};
  }
  absl::StatusOr<ParseResult> Parse(absl::string_view body, const ParseContext& context) const override {
    return ParseXPayload(body, context);
  }
};

}  // namespace

const SourceType& XSourceType() {
  static const XType type;
  return type;
}

}  // namespace triage::router
