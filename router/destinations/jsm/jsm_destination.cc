// jsm: Jira Service Management Cloud, its customer requests API
// (https://developer.atlassian.com/cloud/jira/service-desk/rest/) and, for what that API does
// not do (priority updates, searches), the Jira platform API v2/v3.
//   - a new request: POST /rest/servicedeskapi/request {serviceDeskId, requestTypeId (the
//     team's in group_ids, else `request_type_id`), requestFieldValues {summary, description,
//     priority {name}, labels}, raiseOnBehalfOf (`requester_email`)}. Priority and Labels must
//     be fields of the request types triaged uses (they may be hidden from the portal's form
//     only if the API may still set them: check one request by hand). The answer's issueKey
//     (HELP-1) is the ticket: every endpoint below takes it, and so does /browse/;
//   - teams are labels (team_<team>) as well as request types: queues filter on either. Jira has
//     no idempotency key, so the delivery id is a label too and every retried creation first
//     searches for it: GET /rest/api/3/search/jql?jql=labels = "<delivery id>";
//   - a follow-up: an internal comment (POST /rest/servicedeskapi/request/{id}/comment,
//     public false); one that raises the request first updates its priority and its level and
//     team labels (PUT /rest/api/2/issue/{id}). The request type stays: the API cannot change it;
//   - open requests of a team: POST /rest/api/3/search/approximate-count with labels =
//     team_<team> AND statusCategory != Done.
// Auth: Basic base64("{email}:{api_token}") of an agent. Atlassian publishes no fixed request
// rate for Cloud (cost-based limits, 429 with Retry-After); 3 a second is the default.

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "router/destinations/destination_type.h"
#include "router/destinations/ticket_parts.h"
#include "router/json_writer.h"

namespace triage::router {
namespace {

// Jira's default priority scheme: Highest, High, Medium, Low, Lowest.
constexpr PriorityScale<const char*> kPriority{"Highest", "High", "Medium", "Low"};

class JsmDestination : public TicketingType {
 public:
  std::string_view name() const override { return "jsm"; }
  std::vector<Setting> settings() const override {
    return {{.key = "email", .kind = Setting::Kind::kString, .required = true},
            {.key = "api_token", .kind = Setting::Kind::kSecret, .required = true},
            {.key = "service_desk_id", .kind = Setting::Kind::kString, .required = true},
            {.key = "request_type_id", .kind = Setting::Kind::kString, .required = true},
            {.key = "requester_email", .kind = Setting::Kind::kTemplate}};
  }
  DestinationDefaults defaults() const override { return HelpdeskDefaults(3); }
  std::string CustomFieldKeyProblem(absl::string_view key) const override {
    return absl::StartsWith(key, "customfield_") ? ""
                                                 : "a Jira custom field is named customfield_<id>";
  }
  std::string Authorization(const Settings& s) const override {
    return BasicAuthorization(s.Get("email"), s.Get("api_token"));
  }

  // An internal comment.
  OutboundRequest Note(const DestinationView& d, const TicketView& ticket,
                       const DeliveryContext& context) const override {
    JsonWriter w;
    w.BeginObject().Key("body").String(FollowUpNote(d, ticket, context, Template::Escape::kNone));
    w.Key("public").Bool(false).EndObject();
    return Request(
        HttpMethod::kPost,
        absl::StrCat("/rest/servicedeskapi/request/", *context.remote_ticket, "/comment"),
        w.Take());
  }

  OutboundRequest Create(const DestinationView& d, const TicketView& ticket,
                         const DeliveryContext& context) const override {
    OutboundRequest request;
    JsonWriter w;
    request.target = "/rest/servicedeskapi/request";
    w.BeginObject();
    w.Key("serviceDeskId").String(d.settings.Get("service_desk_id"));
    const std::optional<int64_t> type = d.GroupOf(context.team);
    w.Key("requestTypeId").String(type ? std::to_string(*type) : d.settings.Get("request_type_id"));
    w.Key("requestFieldValues").BeginObject();
    w.Key("summary").String(d.templates.subject.Render(ticket, context.team, context.owner));
    w.Key("description").String(d.templates.body.Render(ticket, context.team, context.owner));
    w.Key("priority").BeginObject().Key("name").String(kPriority.Of(ticket.level)).EndObject();
    w.Key("labels").BeginArray();
    for (const std::string& label : TicketTags(ticket, context, d.join_informed)) w.String(label);
    w.String(context.delivery_id);  // what a retry looks the request up by
    w.EndArray();
    for (const auto& [field, value] : d.templates.custom_fields) {
      const std::optional<std::string> text =
          value.RenderIfAny(ticket, context.team, context.owner);
      if (text) w.Key(field).String(*text);
    }
    w.EndObject();
    if (d.settings.Has("requester_email")) {
      w.Key("raiseOnBehalfOf")
          .String(d.templates.settings.at("requester_email")
                      .Render(ticket, context.team, context.owner));
    }
    w.EndObject();
    request.body = w.Take();
    return request;
  }

  // PUT /rest/api/2/issue/{id}: the priority, and the level and team labels swapped.
  std::optional<OutboundRequest> Raise(const DestinationView&, const TicketView& ticket,
                                       const DeliveryContext& context) const override {
    JsonWriter w;
    w.BeginObject().Key("fields").BeginObject();
    w.Key("priority").BeginObject().Key("name").String(kPriority.Of(ticket.level)).EndObject();
    w.EndObject();
    w.Key("update").BeginObject().Key("labels").BeginArray();
    auto label = [&w](const char* op, const std::string& value) {
      w.BeginObject().Key(op).String(value).EndObject();
    };
    label("add", absl::StrCat("level_", TagOf(ticket.level)));
    if (context.ticket_level && *context.ticket_level != context.level) {
      label("remove", absl::StrCat("level_", LevelName(*context.ticket_level)));
    }
    if (!context.ticket_team.empty() && context.ticket_team != context.team) {
      label("add", absl::StrCat("team_", TagOf(context.team)));
      label("remove", absl::StrCat("team_", TagOf(context.ticket_team)));
    }
    w.EndArray().EndObject().EndObject();
    return Request(HttpMethod::kPut, absl::StrCat("/rest/api/2/issue/", *context.remote_ticket),
                   w.Take());
  }

  // {"issueId":"107001","issueKey":"HELP-1",...}
  absl::StatusOr<std::string> CreatedTicketId(absl::string_view answer) const override {
    return AnswerId(answer, nullptr, "issueKey");
  }

  bool LookUpBeforeCreating(absl::Time, uint32_t attempts, absl::Time) const override {
    return attempts > 0;
  }
  std::optional<OutboundRequest> LookupRequest(const DestinationView&,
                                               const DeliveryContext& context) const override {
    return GetRequest(
        absl::StrCat("/rest/api/3/search/jql?maxResults=1&fields=key&jql=",
                     PercentEncode(absl::StrCat("labels = \"", context.delivery_id, "\""))));
  }
  // {"issues":[{"id":"107001","key":"HELP-1",...}],...}
  absl::StatusOr<std::optional<std::string>> FoundTicketId(
      absl::string_view answer) const override {
    return FirstIdOf(answer, "issues", "key");
  }

  std::optional<OutboundRequest> CountOpenRequest(const DestinationView&,
                                                  const std::string& team) const override {
    JsonWriter w;
    w.BeginObject().Key("jql").String(
        absl::StrCat("labels = \"team_", TagOf(team), "\" AND statusCategory != Done"));
    w.EndObject();
    return Request(HttpMethod::kPost, "/rest/api/3/search/approximate-count", w.Take());
  }
  // {"count": N}
  absl::StatusOr<int64_t> OpenCount(absl::string_view answer) const override {
    return AnswerCount(answer, "count");
  }

  // Ids are issue keys (HELP-1): what /browse/ takes.
  std::optional<std::string> TicketUrl(const Settings&, absl::string_view url,
                                       absl::string_view id) const override {
    return PageUrl(url, absl::StrCat("/browse/", id));
  }

  // Highest/High/Medium/Low/Lowest.
  std::optional<Level> PriorityLevel(absl::string_view text) const override {
    return LevelOfPriority(
        text, {{"highest", Level::kUrgent}, {"medium", Level::kNormal}, {"lowest", Level::kLow}});
  }
};

}  // namespace

const DestinationType& JsmDestinationType() {
  static const JsmDestination type;
  return type;
}

}  // namespace triage::router
