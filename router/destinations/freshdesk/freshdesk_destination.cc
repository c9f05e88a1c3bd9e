// freshdesk: the API v2 (https://developer.freshdesk.com/api/).
//   - a new ticket: POST /api/v2/tickets (status 2 open, priority 1-4, an HTML description),
//     the customer as its requester (Requester below), source 7 (Chat) for a private
//     conversation and 2 (Portal) for a public post: the social source codes Freshdesk shows on
//     conversations are not documented as accepted on creation (`source` overrides);
//   - a retry of a creation first searches for the delivery id, one of its tags;
//   - a follow-up: a private note on the thread's ticket (POST /api/v2/tickets/{id}/notes); a
//     more urgent one first raises its priority (and group) with PUT /api/v2/tickets/{id}. The
//     `watchers` (agent e-mails) of the teams a follow-up informs are notified of its note
//     (notify_emails); Freshdesk has no watchers on creation: a ticket's inform_<team> tag is
//     what an automation rule notifies the team by.
// Auth: Basic base64("{api_key}:X"). Rate limits are account-wide per plan and invalid requests
// count; 3 ticket creations a second stays well inside them.

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "router/destinations/destination_type.h"
#include "router/destinations/ticket_parts.h"
#include "router/json_writer.h"

namespace triage::router {
namespace {

constexpr PriorityScale<int> kPriority{4, 3, 2, 1};  // urgent, high, medium, low

// The customer as Freshdesk finds a contact: twitter_id (the X handle), facebook_id (the user
// id), phone (WhatsApp's wa_id is the number), else unique_external_id "<platform>:<author id>".
std::pair<const char*, std::string> Requester(const TicketView& t) {
  if (t.platform == "x" && !t.author_handle.empty()) return {"twitter_id", t.author_handle};
  if ((t.platform == "facebook" || t.platform == "messenger") && !t.author_id.empty()) {
    return {"facebook_id", t.author_id};
  }
  if (t.platform == "whatsapp" && !t.author_id.empty()) return {"phone", "+" + t.author_id};
  return {"unique_external_id", absl::StrCat(t.platform, ":", t.author_id)};
}

class FreshdeskDestination : public TicketingType {
 public:
  std::string_view name() const override { return "freshdesk"; }
  std::vector<Setting> settings() const override {
    return {{.key = "api_key", .kind = Setting::Kind::kSecret, .required = true},
            {.key = "source", .kind = Setting::Kind::kInteger, .min = 1, .max = 100}};
  }
  DestinationDefaults defaults() const override { return HelpdeskDefaults(3); }
  TicketKeys ticket_keys() const override {
    TicketKeys keys = kHelpdeskTicketKeys;
    keys.watchers = true;
    return keys;
  }
  std::string CustomFieldKeyProblem(absl::string_view key) const override {
    return absl::StartsWith(key, "cf_") ? "" : "a Freshdesk custom field name starts with cf_";
  }
  std::string Authorization(const Settings& s) const override {
    return BasicAuthorization(s.Get("api_key"), "X");
  }

  // A private note; the watchers of the teams it informs are notified of it (notify_emails).
  OutboundRequest Note(const DestinationView& d, const TicketView& ticket, const DeliveryContext& context) const override {
    JsonWriter w;
    w.BeginObject().Key("body").String(FollowUpNote(d, ticket, context, Template::Escape::kHtml));
    w.Key("private").Bool(true);
    if (const std::vector<std::string> users = d.InformedWatchers(ticket, context.team); !users.empty()) {
      w.Key("notify_emails").BeginArray();
      for (const std::string& user : users) w.String(user);
      w.EndArray();
    }
    w.EndObject();
    return Request(HttpMethod::kPost, absl::StrCat("/api/v2/tickets/", *context.remote_ticket, "/notes"), w.Take());
  }
  // PUT /api/v2/tickets/{id}: the priority, and the group of a new owner.
  std::optional<OutboundRequest> Raise(const DestinationView& d, const TicketView& ticket,
                                       const DeliveryContext& context) const override {
    JsonWriter w;
    w.BeginObject().Key("priority").Int(kPriority.Of(ticket.level));
    if (context.ticket_team != context.team) {
      if (const auto group = d.GroupOf(context.team)) w.Key("group_id").Int(*group);
    }
    w.EndObject();
    return Request(HttpMethod::kPut, absl::StrCat("/api/v2/tickets/", *context.remote_ticket), w.Take());
  }

  OutboundRequest Create(const DestinationView& d, const TicketView& ticket,
                         const DeliveryContext& context) const override {
    OutboundRequest request;
    JsonWriter w;
    request.target = "/api/v2/tickets";
    const std::string html = d.templates.body.Render(ticket, context.team, context.owner, Template::Escape::kHtml);
    w.BeginObject();
    w.Key("subject").String(d.templates.subject.Render(ticket, context.team, context.owner));
    w.Key("description").String(html);
    w.Key("status").Int(2);  // open
    w.Key("priority").Int(kPriority.Of(ticket.level));
    const auto source = d.settings.integers.find("source");
    w.Key("source").Int(source != d.settings.integers.end() ? source->second : ticket.channel == "private" ? 7 : 2);
    w.Key("tags").BeginArray();
    for (const std::string& tag : TicketTags(ticket, context, d.join_informed)) w.String(tag);
    w.String(context.delivery_id);  // what a retry looks the ticket up by
    w.EndArray();
    if (const auto group = d.GroupOf(context.team)) w.Key("group_id").Int(*group);
    w.Key("name").String(RequesterName(ticket));
    const auto [identity, value] = Requester(ticket);
    w.Key(identity).String(value);
    if (!d.templates.custom_fields.empty()) {
      w.Key("custom_fields").BeginObject();
      for (const auto& [name, value] : d.templates.custom_fields) {
        const std::optional<std::string> text = value.RenderIfAny(ticket, context.team, context.owner);
        if (text) w.Key(name).String(*text);  // else the field keeps its default
      }
      w.EndObject();
    }
    w.EndObject();
    request.body = w.Take();
    return request;
  }

  // {"id":N,...}
  absl::StatusOr<std::string> CreatedTicketId(absl::string_view answer) const override { return AnswerId(answer, nullptr); }

  // Freshdesk has no idempotency key: every retry of a creation first searches for the
  // delivery id, a tag of the ticket. (Freshdesk's search index may lag a creation by a few
  // seconds; the retry's back-off usually covers it.)
  bool LookUpBeforeCreating(absl::Time, uint32_t attempts, absl::Time) const override { return attempts > 0; }
  // GET /api/v2/search/tickets?query="tag:'<delivery id>'" (msg_ and hex: nothing to escape).
  std::optional<OutboundRequest> LookupRequest(const DestinationView&, const DeliveryContext& context) const override {
    return GetRequest(absl::StrCat("/api/v2/search/tickets?query=%22tag:%27", context.delivery_id, "%27%22"));
  }
  // {"results":[{"id":N,...}],"total":N}: the first.
  absl::StatusOr<std::optional<std::string>> FoundTicketId(absl::string_view answer) const override {
    return FirstIdOf(answer, "results");
  }

  // Open and pending tickets in the team's group: GET /api/v2/search/tickets?query="group_id:G
  // AND (status:2 OR status:3)" (URL-encoded); the answer's total. Archived tickets are not
  // counted and the index lags minutes.
  std::optional<OutboundRequest> CountOpenRequest(const DestinationView& d, const std::string& team) const override {
    const std::optional<int64_t> group = d.GroupOf(team);
    if (!group) return std::nullopt;
    return GetRequest(absl::StrCat("/api/v2/search/tickets?query=%22group_id:", *group,
                                   "%20AND%20(status:2%20OR%20status:3)%22"));
  }
  // {"results":[...],"total":N}
  absl::StatusOr<int64_t> OpenCount(absl::string_view answer) const override { return AnswerCount(answer, "total"); }

  std::optional<std::string> TicketUrl(const Settings&, absl::string_view url, absl::string_view id) const override {
    return PageUrl(url, absl::StrCat("/a/tickets/", id));
  }

  FeedbackAuth feedback_auth() const override { return {FeedbackAuth::Kind::kToken}; }
  // 4/3/2/1 or Urgent/High/Medium/Low.
  std::optional<Level> PriorityLevel(absl::string_view text) const override {
    return LevelOfPriority(text, {{"4", Level::kUrgent}, {"3", Level::kHigh}, {"2", Level::kNormal},
                                  {"medium", Level::kNormal}, {"1", Level::kLow}});
  }
};

}  // namespace

const DestinationType& FreshdeskDestinationType() {
  static const FreshdeskDestination type;
  return type;
}

}  // namespace triage::router
