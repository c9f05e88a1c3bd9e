// zendesk: the Support API v2 (https://developer.zendesk.com/api-reference/ticketing/).
//   - a new ticket: POST /api/v2/tickets.json with Idempotency-Key and external_id set to the
//     delivery id (Zendesk replays its first answer to a key for 2 hours);
//   - a follow-up: an internal comment on the thread's ticket (PUT /api/v2/tickets/{id}.json);
//     nothing reaches the customer unless an agent answers. A more urgent one raises the
//     ticket's priority, tags and group in the same update;
//   - the requester is the customer as a Zendesk end user (users/create_or_update by
//     external_id "<platform>:<author id>", with a twitter, facebook or phone_number identity),
//     or, with `requester_email`, the user of that email;
//   - a retry after the key may have expired first looks the ticket up by external_id;
//   - informed teams join the ticket: their `watchers` (agent ids or e-mails) become its
//     followers, on the ticket or on the follow-up that informs them.
// Auth: Basic base64("{email}/token:{api_token}") or Bearer {oauth_token}. About 10 requests a
// second fits every plan's account-wide per-minute limit (200 to 700).

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "router/destinations/destination_type.h"
#include "router/destinations/ticket_parts.h"
#include "router/json_writer.h"

namespace triage::router {
namespace {

constexpr PriorityScale<const char*> kPriority{"urgent", "high", "normal", "low"};

// The Zendesk user identity of a platform's author, where Zendesk has that type: twitter (the
// handle), facebook (the user id), phone_number (WhatsApp's wa_id is the number).
std::optional<std::pair<const char*, std::string>> Identity(const TicketView& t) {
  if (t.platform == "x" && !t.author_handle.empty()) return std::pair("twitter", t.author_handle);
  if ((t.platform == "facebook" || t.platform == "messenger") && !t.author_id.empty()) {
    return std::pair("facebook", t.author_id);
  }
  if (t.platform == "whatsapp" && !t.author_id.empty()) return std::pair("phone_number", "+" + t.author_id);
  return std::nullopt;
}

void WriteTags(JsonWriter& w, const TicketView& t, const DeliveryContext& c, bool join_informed) {
  w.Key("tags").BeginArray();
  for (const std::string& tag : TicketTags(t, c, join_informed)) w.String(tag);
  w.EndArray();
}

// The informed teams' watchers follow the ticket: {"user_id": "N"} for an id (a string, as in
// Zendesk's "Setting followers" example), else {"user_email": E}; "put" adds one who is not a
// follower yet and leaves the others.
void WriteFollowers(JsonWriter& w, const DestinationView& d, const TicketView& t, const DeliveryContext& c) {
  const std::vector<std::string> users = d.InformedWatchers(t, c.team);
  if (users.empty()) return;
  w.Key("followers").BeginArray();
  for (const std::string& user : users) {
    int64_t id = 0;
    w.BeginObject();
    if (absl::SimpleAtoi(user, &id)) {
      w.Key("user_id").String(user);
    } else {
      w.Key("user_email").String(user);
    }
    w.Key("action").String("put").EndObject();
  }
  w.EndArray();
}

class ZendeskDestination : public TicketingType {
 public:
  std::string_view name() const override { return "zendesk"; }
  std::vector<Setting> settings() const override {
    return {{.key = "email", .kind = Setting::Kind::kString},
            {.key = "api_token", .kind = Setting::Kind::kSecret},
            {.key = "oauth_token", .kind = Setting::Kind::kSecret},
            {.key = "requester_email", .kind = Setting::Kind::kTemplate}};
  }
  DestinationDefaults defaults() const override { return HelpdeskDefaults(10); }
  TicketKeys ticket_keys() const override {
    TicketKeys keys = kHelpdeskTicketKeys;
    keys.watchers = true;
    return keys;
  }
  std::string CustomFieldKeyProblem(absl::string_view key) const override {
    int64_t id = 0;
    return absl::SimpleAtoi(key, &id) ? "" : "a Zendesk custom field is named by its numeric id";
  }
  std::vector<std::pair<std::string, std::string>> Validate(const Settings& s) const override {
    if (s.Has("oauth_token") == (s.Has("email") && s.Has("api_token"))) {
      return {{"", "give either email and api_token, or oauth_token"}};
    }
    return {};
  }
  std::string Authorization(const Settings& s) const override {
    if (s.Has("oauth_token")) return absl::StrCat("Bearer ", s.Get("oauth_token"));
    return BasicAuthorization(absl::StrCat(s.Get("email"), "/token"), s.Get("api_token"));
  }

  OutboundRequest Create(const DestinationView& d, const TicketView& ticket,
                         const DeliveryContext& context) const override {
    OutboundRequest request;
    JsonWriter w;
    const std::string body = d.templates.body.Render(ticket, context.team, context.owner);
    request.target = "/api/v2/tickets.json";
    // Zendesk replays the first answer for a key it has seen (2 hours): a retry after a lost
    // answer cannot open a second ticket. The body is rendered from stored data only, so it is
    // byte-identical on every retry, as Zendesk requires.
    request.headers.emplace_back("Idempotency-Key", context.delivery_id);
    w.BeginObject().Key("ticket").BeginObject();
    w.Key("subject").String(d.templates.subject.Render(ticket, context.team, context.owner));
    w.Key("comment").BeginObject().Key("body").String(body).Key("public").Bool(false).EndObject();
    w.Key("priority").String(kPriority.Of(ticket.level));
    w.Key("status").String("new");
    WriteTags(w, ticket, context, d.join_informed);
    WriteFollowers(w, d, ticket, context);
    w.Key("external_id").String(context.delivery_id);
    if (const auto group = d.GroupOf(context.team)) w.Key("group_id").Int(*group);
    if (!context.requester_id.empty()) {
      int64_t requester = 0;
      if (absl::SimpleAtoi(context.requester_id, &requester)) w.Key("requester_id").Int(requester);
    } else if (d.settings.Has("requester_email")) {
      w.Key("requester").BeginObject();
      w.Key("name").String(RequesterName(ticket));
      w.Key("email").String(d.templates.settings.at("requester_email").Render(ticket, context.team, context.owner));
      w.EndObject();
    }
    if (!d.templates.custom_fields.empty()) {
      w.Key("custom_fields").BeginArray();
      for (const auto& [id, value] : d.templates.custom_fields) {
        const std::optional<std::string> text = value.RenderIfAny(ticket, context.team, context.owner);
        if (!text) continue;  // nothing to say: the field keeps its default
        int64_t numeric = 0;
        (void)absl::SimpleAtoi(id, &numeric);  // checked numeric when the config loaded
        w.BeginObject().Key("id").Int(numeric).Key("value").String(*text).EndObject();
      }
      w.EndArray();
    }
    w.EndObject().EndObject();
    request.body = w.Take();
    return request;
  }

  // The customer as a Zendesk end user, found or made by external_id "<platform>:<author id>":
  // POST /api/v2/users/create_or_update.json. Not when requester_email names them by email.
  std::optional<OutboundRequest> RequesterRequest(const DestinationView& d, const TicketView& ticket,
                                                  const DeliveryContext&) const override {
    if (d.settings.Has("requester_email") || ticket.author_id.empty()) return std::nullopt;
    JsonWriter w;
    w.BeginObject().Key("user").BeginObject();
    w.Key("name").String(RequesterName(ticket));
    w.Key("external_id").String(absl::StrCat(ticket.platform, ":", ticket.author_id));
    w.Key("role").String("end-user");
    if (const auto identity = Identity(ticket)) {
      w.Key("identities").BeginArray();
      w.BeginObject().Key("type").String(identity->first).Key("value").String(identity->second).EndObject();
      w.EndArray();
    }
    w.EndObject().EndObject();
    return Request(HttpMethod::kPost, "/api/v2/users/create_or_update.json", w.Take());
  }
  // {"user":{"id":N,...}}
  absl::StatusOr<std::string> RequesterId(absl::string_view answer) const override { return AnswerId(answer, "user"); }

  // An internal comment on the thread's ticket (PUT /api/v2/tickets/{id}.json); one that
  // raises the ticket also sets its priority, adds its level, team and category tags (removing
  // the old level's) and moves it to the new owner's group, in the same update.
  OutboundRequest Note(const DestinationView& d, const TicketView& ticket, const DeliveryContext& context) const override {
    JsonWriter w;
    w.BeginObject().Key("ticket").BeginObject();
    w.Key("comment").BeginObject();
    w.Key("body").String(FollowUpNote(d, ticket, context, Template::Escape::kNone)).Key("public").Bool(false);
    w.EndObject();
    WriteFollowers(w, d, ticket, context);  // teams this follow-up informs join too
    if (context.Escalates()) {
      w.Key("priority").String(kPriority.Of(ticket.level));
      w.Key("additional_tags").BeginArray();
      for (const std::string& tag : TicketTags(ticket, context, d.join_informed)) w.String(tag);
      w.EndArray();
      std::vector<std::string> removed;
      if (context.ticket_level && *context.ticket_level != context.level) {
        removed.push_back(absl::StrCat("level_", LevelName(*context.ticket_level)));
      }
      if (!context.ticket_team.empty() && context.ticket_team != context.team) {
        removed.push_back(absl::StrCat("team_", TagOf(context.ticket_team)));
      }
      if (!removed.empty()) {
        w.Key("remove_tags").BeginArray();
        for (const std::string& tag : removed) w.String(tag);
        w.EndArray();
      }
      if (context.ticket_team != context.team) {
        if (const auto group = d.GroupOf(context.team)) w.Key("group_id").Int(*group);
      }
    }
    w.EndObject().EndObject();
    return Request(HttpMethod::kPut, absl::StrCat("/api/v2/tickets/", *context.remote_ticket, ".json"), w.Take());
  }

  absl::StatusOr<std::string> CreatedTicketId(absl::string_view answer) const override {
    return AnswerId(answer, "ticket");
  }

  // Zendesk keeps an Idempotency-Key for 2 hours. A creation retried after that could open a
  // second ticket if an earlier attempt's answer was lost (checked with 15 minutes to spare;
  // the first attempt came after the enqueue, so the key is younger than now - enqueued).
  bool LookUpBeforeCreating(absl::Time enqueued, uint32_t attempts, absl::Time now) const override {
    return attempts > 0 && now - enqueued >= absl::Hours(2) - absl::Minutes(15);
  }
  // GET /api/v2/tickets.json?external_id=<delivery id> (msg_ and hex: nothing to escape).
  std::optional<OutboundRequest> LookupRequest(const DestinationView&, const DeliveryContext& context) const override {
    return GetRequest(absl::StrCat("/api/v2/tickets.json?external_id=", context.delivery_id));
  }
  // {"tickets":[{"id":N},...]}: the first.
  absl::StatusOr<std::optional<std::string>> FoundTicketId(absl::string_view answer) const override {
    return FirstIdOf(answer, "tickets");
  }

  // Unsolved tickets in the team's group: GET /api/v2/search/count?query=type:ticket
  // status<solved group_id:<id> (URL-encoded). The search index lags new tickets by minutes.
  std::optional<OutboundRequest> CountOpenRequest(const DestinationView& d, const std::string& team) const override {
    const std::optional<int64_t> group = d.GroupOf(team);
    if (!group) return std::nullopt;
    return GetRequest(absl::StrCat("/api/v2/search/count?query=type%3Aticket%20status%3Csolved%20group_id%3A", *group));
  }
  // {"count": N}
  absl::StatusOr<int64_t> OpenCount(absl::string_view answer) const override { return AnswerCount(answer, "count"); }
  // Zendesk search takes relative times ("solved>1hours": within the last hour); the unit on
  // `solved` is not confirmed in Zendesk's reference (../shared/reference/outbound-replies.md §4).
  std::optional<OutboundRequest> CountSolvedRequest(const DestinationView& d, const std::string& team) const override {
    const std::optional<int64_t> group = d.GroupOf(team);
    if (!group) return std::nullopt;
    return GetRequest(absl::StrCat("/api/v2/search/count?query=type%3Aticket%20solved%3E1hours%20group_id%3A", *group));
  }

  std::optional<std::string> TicketUrl(const Settings&, absl::string_view url, absl::string_view id) const override {
    return PageUrl(url, absl::StrCat("/agent/tickets/", id));
  }

  FeedbackAuth feedback_auth() const override {
    return {FeedbackAuth::Kind::kHmacTimestamped, "x-zendesk-webhook-signature",
            "x-zendesk-webhook-signature-timestamp"};
  }
  // urgent, high, normal, low.
  std::optional<Level> PriorityLevel(absl::string_view priority) const override { return LevelOfPriority(priority, {}); }
};

}  // namespace

const DestinationType& ZendeskDestinationType() {
  static const ZendeskDestination type;
  return type;
}

}  // namespace triage::router
