// rt: Request Tracker 5's REST 2.0 API (RT::REST2, built into RT 5; the url is RT's
// $WebBaseURL, requests go to /REST/2.0/...).
//   - a new ticket: POST /REST/2.0/ticket {Queue, Subject, Content (text/plain), Priority,
//     CustomFields}; one queue per team: the queue named as the team, or the queue id
//     group_ids gives it. The answer is {"id":"N",...};
//   - RT has no idempotency key: the delivery id goes in a ticket custom field (free text, one
//     value, the admin creates it: `delivery_id_field`, TriagedDeliveryId by default), and every
//     retried creation first searches for it (GET /REST/2.0/tickets?query=CF.{field}='id');
//   - a follow-up: a comment (POST /REST/2.0/ticket/{id}/comment), never mailed to the
//     requestor; one that raises the ticket first sets its priority and queue
//     (PUT /REST/2.0/ticket/{id});
//   - open tickets of a team: the same search, Queue and Status '__Active__', its total;
//   - informed teams join the ticket: their `watchers` (RT user names or e-mails) are its
//     AdminCc, whom RT tells of every comment;
//   - the requester: `requester_email`, a template (RT's requestors are e-mail addresses; social
//     authors have none), else none (RT drops a requestor that is not an address).
// Auth: "Authorization: token <auth token>" (RT::Authen::Token, made in RT's web UI under
// Settings, Auth Tokens). RT checks the token with bcrypt on every request (about 0.25 s of
// CPU at RT's default cost 12), so 2 requests a second, one at a time, is the default.
// RT answers every request with Connection: close. It reports some failures of an update
// only in its 200 answer's messages; the priority and queue of a raise are such values.

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "router/destinations/destination_type.h"
#include "router/destinations/ticket_parts.h"
#include "router/json_writer.h"

namespace triage::router {
namespace {

// RT's priorities are numbers; RT 5 names 0 Low, 50 Medium and 100 High (%PriorityAsString).
constexpr PriorityScale<int> kPriority{100, 75, 50, 0};

// The queue of a team: its id in group_ids, else the queue named as the team.
void WriteQueue(JsonWriter& w, const DestinationView& d, const std::string& team) {
  w.Key("Queue");
  if (const auto id = d.GroupOf(team)) {
    w.Int(*id);
  } else {
    w.String(team);
  }
}

// A TicketSQL string literal: RT's parser takes \' and \\ inside single quotes.
std::string SqlString(absl::string_view value) {
  std::string out = "'";
  for (const char c : value) {
    if (c == '\'' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('\'');
  return out;
}

OutboundRequest Search(const std::string& query) {
  return GetRequest(absl::StrCat("/REST/2.0/tickets?per_page=1&query=", PercentEncode(query)));
}

class RtDestination : public TicketingType {
 public:
  std::string_view name() const override { return "rt"; }
  std::vector<Setting> settings() const override {
    return {{.key = "token", .kind = Setting::Kind::kSecret, .required = true},
            {.key = "delivery_id_field",
             .kind = Setting::Kind::kString,
             .default_value = "TriagedDeliveryId"},
            {.key = "requester_email", .kind = Setting::Kind::kTemplate}};
  }
  DestinationDefaults defaults() const override {
    DestinationDefaults defaults = HelpdeskDefaults(2);
    defaults.concurrency = 1;
    return defaults;
  }
  TicketKeys ticket_keys() const override {
    TicketKeys keys = kHelpdeskTicketKeys;
    keys.watchers = true;
    return keys;
  }
  // Custom fields are named as in RT (CF.{Name} in its searches: no braces).
  std::string CustomFieldKeyProblem(absl::string_view key) const override {
    if (key.empty()) return "an RT custom field needs a name";
    if (key.find_first_of("{}'") != absl::string_view::npos)
      return "an RT custom field name has no braces or quotes";
    return "";
  }
  std::vector<std::pair<std::string, std::string>> Validate(const Settings& s) const override {
    const std::string problem = CustomFieldKeyProblem(s.Get("delivery_id_field"));
    if (!problem.empty()) return {{"delivery_id_field", problem}};
    return {};
  }
  std::string Authorization(const Settings& s) const override {
    return absl::StrCat("token ", s.Get("token"));
  }

  // A comment (RT mails it to the AdminCc, never to the requestor).
  OutboundRequest Note(const DestinationView& d, const TicketView& ticket,
                       const DeliveryContext& context) const override {
    JsonWriter w;
    w.BeginObject().Key("Content").String(
        FollowUpNote(d, ticket, context, Template::Escape::kNone));
    w.Key("ContentType").String("text/plain").EndObject();
    return Request(HttpMethod::kPost,
                   absl::StrCat("/REST/2.0/ticket/", *context.remote_ticket, "/comment"), w.Take());
  }
  // PUT /REST/2.0/ticket/{id}: the priority, and the queue of a new owner team.
  std::optional<OutboundRequest> Raise(const DestinationView& d, const TicketView& ticket,
                                       const DeliveryContext& context) const override {
    JsonWriter w;
    w.BeginObject().Key("Priority").Int(kPriority.Of(ticket.level));
    if (context.ticket_team != context.team) WriteQueue(w, d, context.team);
    w.EndObject();
    return Request(HttpMethod::kPut, absl::StrCat("/REST/2.0/ticket/", *context.remote_ticket),
                   w.Take());
  }

  OutboundRequest Create(const DestinationView& d, const TicketView& ticket,
                         const DeliveryContext& context) const override {
    OutboundRequest request;
    JsonWriter w;
    request.target = "/REST/2.0/ticket";
    w.BeginObject();
    WriteQueue(w, d, context.team);
    w.Key("Subject").String(d.templates.subject.Render(ticket, context.team, context.owner));
    w.Key("Content").String(d.templates.body.Render(ticket, context.team, context.owner));
    w.Key("ContentType").String("text/plain");
    w.Key("Priority").Int(kPriority.Of(ticket.level));
    if (d.settings.Has("requester_email")) {
      w.Key("Requestor")
          .String(d.templates.settings.at("requester_email")
                      .Render(ticket, context.team, context.owner));
    }
    if (const std::vector<std::string> users = d.InformedWatchers(ticket, context.team);
        !users.empty()) {
      w.Key("AdminCc").BeginArray();
      for (const std::string& user : users) w.String(user);
      w.EndArray();
    }
    w.Key("CustomFields").BeginObject();
    w.Key(d.settings.Get("delivery_id_field")).String(context.delivery_id);
    for (const auto& [field, value] : d.templates.custom_fields) {
      const std::optional<std::string> text =
          value.RenderIfAny(ticket, context.team, context.owner);
      if (text) w.Key(field).String(*text);
    }
    w.EndObject();
    w.EndObject();
    request.body = w.Take();
    return request;
  }

  // {"_url":"...","id":"N","type":"ticket"}
  absl::StatusOr<std::string> CreatedTicketId(absl::string_view answer) const override {
    return AnswerId(answer, nullptr);
  }

  bool LookUpBeforeCreating(absl::Time, uint32_t attempts, absl::Time) const override {
    return attempts > 0;
  }
  std::optional<OutboundRequest> LookupRequest(const DestinationView& d,
                                               const DeliveryContext& context) const override {
    return Search(absl::StrCat("CF.{", d.settings.Get("delivery_id_field"),
                               "} = ", SqlString(context.delivery_id)));
  }
  // {"count":1,"total":1,"items":[{"id":"N","type":"ticket",...}],...}
  absl::StatusOr<std::optional<std::string>> FoundTicketId(
      absl::string_view answer) const override {
    return FirstIdOf(answer, "items");
  }

  std::optional<OutboundRequest> CountOpenRequest(const DestinationView& d,
                                                  const std::string& team) const override {
    const std::optional<int64_t> id = d.GroupOf(team);
    return Search(absl::StrCat("Queue = ", id ? std::to_string(*id) : SqlString(team),
                               " AND Status = '__Active__'"));
  }
  absl::StatusOr<int64_t> OpenCount(absl::string_view answer) const override {
    return AnswerCount(answer, "total");
  }
  // RT's TicketSQL takes relative dates (RT::Date, tried against RT 5): no time zone involved.
  std::optional<OutboundRequest> CountSolvedRequest(const DestinationView& d, const std::string& team) const override {
    const std::optional<int64_t> id = d.GroupOf(team);
    return Search(absl::StrCat("Queue = ", id ? std::to_string(*id) : SqlString(team),
                               " AND Status = 'resolved' AND Resolved > '1 hour ago'"));
  }

  std::optional<std::string> TicketUrl(const Settings&, absl::string_view url,
                                       absl::string_view id) const override {
    return PageUrl(url, absl::StrCat("/Ticket/Display.html?id=", id));
  }

  // A number (at or above a level's on kPriority's scale), or Low/Medium/High.
  std::optional<Level> PriorityLevel(absl::string_view text) const override {
    int number = 0;
    if (absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &number)) {
      if (number >= kPriority.urgent) return Level::kUrgent;
      if (number >= kPriority.high) return Level::kHigh;
      if (number >= kPriority.normal) return Level::kNormal;
      return Level::kLow;
    }
    return LevelOfPriority(text, {{"medium", Level::kNormal}});
  }
};

}  // namespace

const DestinationType& RtDestinationType() {
  static const RtDestination type;
  return type;
}

}  // namespace triage::router
