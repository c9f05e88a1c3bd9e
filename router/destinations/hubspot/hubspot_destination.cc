// hubspot: tickets in HubSpot's CRM v3 API (https://developers.hubspot.com/docs/api/crm/tickets).
//   - a new ticket: POST /crm/v3/objects/tickets {"properties": {subject, content,
//     hs_pipeline, hs_pipeline_stage, hs_ticket_priority, hubspot_owner_id, <delivery id
//     property>}}; the answer's "id" (a string) is the ticket;
//   - a follow-up: a note associated with the ticket (POST /crm/v3/objects/notes,
//     association type 228, note to ticket); one that raises the ticket first PATCHes its
//     priority and owner (/crm/v3/objects/tickets/{id});
//   - HubSpot has no idempotency key: the delivery id goes in a ticket property (a single-line
//     text property the admin creates, `delivery_id_property`, triaged_delivery_id by default),
//     and every retried creation first searches for it (POST /crm/v3/objects/tickets/search);
//   - open tickets of a team: the same search, owner = the team's, stage not `closed_stage`.
// Auth: a private app's access token, Bearer. Private apps get 100 (Free, Starter) to 190
// (Enterprise) requests per 10 s, and the search endpoints 5 a second per account: 5 a second
// with a burst of 5 stays inside both. Teams map to owners (group_ids: team -> owner id).
// Links to tickets (a Slack alert's ticket_link) need the account's `portal_id`.

#include "absl/strings/str_cat.h"
#include "router/destinations/destination_type.h"
#include "router/destinations/ticket_parts.h"
#include "router/json_writer.h"

namespace triage::router {
namespace {

constexpr PriorityScale<const char*> kPriority{"URGENT", "HIGH", "MEDIUM", "LOW"};

// The search body of tickets whose `property` equals `value` (and, with `stage`, whose stage
// is not it); `limit` results at most.
std::string SearchBody(const std::vector<std::tuple<std::string, const char*, std::string>>& filters, int limit) {
  JsonWriter w;
  w.BeginObject().Key("filterGroups").BeginArray().BeginObject().Key("filters").BeginArray();
  for (const auto& [property, op, value] : filters) {
    w.BeginObject().Key("propertyName").String(property).Key("operator").String(op).Key("value").String(value);
    w.EndObject();
  }
  w.EndArray().EndObject().EndArray();
  w.Key("properties").BeginArray().String("hs_object_id").EndArray();
  w.Key("limit").Int(limit);
  w.EndObject();
  return w.Take();
}

class HubSpotDestination : public TicketingType {
 public:
  std::string_view name() const override { return "hubspot"; }
  std::vector<Setting> settings() const override {
    return {{.key = "access_token", .kind = Setting::Kind::kSecret, .required = true},
            {.key = "pipeline", .kind = Setting::Kind::kString, .default_value = "0"},
            {.key = "stage", .kind = Setting::Kind::kString, .default_value = "1"},
            {.key = "closed_stage", .kind = Setting::Kind::kString, .default_value = "4"},
            {.key = "delivery_id_property", .kind = Setting::Kind::kString, .default_value = "triaged_delivery_id"},
            {.key = "portal_id", .kind = Setting::Kind::kString}};
  }
  DestinationDefaults defaults() const override { return HelpdeskDefaults(5); }
  // Custom fields are ticket properties by internal name; anything else HubSpot refuses.
  std::string CustomFieldKeyProblem(absl::string_view key) const override {
    for (const char c : key) {
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) {
        return "a HubSpot property is named by its internal name: lower case, digits and _";
      }
    }
    return key.empty() ? "a HubSpot property needs a name" : "";
  }
  std::string Authorization(const Settings& s) const override { return absl::StrCat("Bearer ", s.Get("access_token")); }

  // A note associated with the ticket (type 228, note to ticket).
  OutboundRequest Note(const DestinationView& d, const TicketView& ticket, const DeliveryContext& context) const override {
    JsonWriter w;
    w.BeginObject().Key("properties").BeginObject();
    w.Key("hs_note_body").String(FollowUpNote(d, ticket, context, Template::Escape::kHtml));
    w.Key("hs_timestamp").Time(absl::FromUnixMillis(context.enqueued_unix_ms));
    w.EndObject();
    w.Key("associations").BeginArray().BeginObject();
    w.Key("to").BeginObject().Key("id").String(*context.remote_ticket).EndObject();
    w.Key("types").BeginArray().BeginObject();
    w.Key("associationCategory").String("HUBSPOT_DEFINED").Key("associationTypeId").Int(228);
    w.EndObject().EndArray();
    w.EndObject().EndArray().EndObject();
    return Request(HttpMethod::kPost, "/crm/v3/objects/notes", w.Take());
  }
  // PATCH /crm/v3/objects/tickets/{id}: the priority, and the owner of a new owner team.
  std::optional<OutboundRequest> Raise(const DestinationView& d, const TicketView& ticket,
                                       const DeliveryContext& context) const override {
    JsonWriter w;
    w.BeginObject().Key("properties").BeginObject().Key("hs_ticket_priority").String(kPriority.Of(ticket.level));
    if (context.ticket_team != context.team) {
      if (const auto owner = d.GroupOf(context.team)) w.Key("hubspot_owner_id").String(std::to_string(*owner));
    }
    w.EndObject().EndObject();
    return Request(HttpMethod::kPatch, absl::StrCat("/crm/v3/objects/tickets/", *context.remote_ticket), w.Take());
  }

  OutboundRequest Create(const DestinationView& d, const TicketView& ticket,
                         const DeliveryContext& context) const override {
    OutboundRequest request;
    JsonWriter w;
    request.target = "/crm/v3/objects/tickets";
    w.BeginObject().Key("properties").BeginObject();
    w.Key("subject").String(d.templates.subject.Render(ticket, context.team, context.owner));
    w.Key("content").String(d.templates.body.Render(ticket, context.team, context.owner));
    w.Key("hs_pipeline").String(d.settings.Get("pipeline"));
    w.Key("hs_pipeline_stage").String(d.settings.Get("stage"));
    w.Key("hs_ticket_priority").String(kPriority.Of(ticket.level));
    if (const auto owner = d.GroupOf(context.team)) w.Key("hubspot_owner_id").String(std::to_string(*owner));
    w.Key(d.settings.Get("delivery_id_property")).String(context.delivery_id);
    for (const auto& [property, value] : d.templates.custom_fields) {
      const std::optional<std::string> text = value.RenderIfAny(ticket, context.team, context.owner);
      if (text) w.Key(property).String(*text);
    }
    w.EndObject().EndObject();
    request.body = w.Take();
    return request;
  }

  // {"id":"512","properties":{...}}
  absl::StatusOr<std::string> CreatedTicketId(absl::string_view answer) const override { return AnswerId(answer, nullptr); }

  bool LookUpBeforeCreating(absl::Time, uint32_t attempts, absl::Time) const override { return attempts > 0; }
  std::optional<OutboundRequest> LookupRequest(const DestinationView& d, const DeliveryContext& context) const override {
    OutboundRequest request;
    request.target = "/crm/v3/objects/tickets/search";
    request.body = SearchBody({{d.settings.Get("delivery_id_property"), "EQ", context.delivery_id}}, 1);
    return request;
  }
  absl::StatusOr<std::optional<std::string>> FoundTicketId(absl::string_view answer) const override {
    return FirstIdOf(answer, "results");
  }

  std::optional<OutboundRequest> CountOpenRequest(const DestinationView& d, const std::string& team) const override {
    const std::optional<int64_t> owner = d.GroupOf(team);
    if (!owner) return std::nullopt;
    OutboundRequest request;
    request.target = "/crm/v3/objects/tickets/search";
    request.body = SearchBody({{"hubspot_owner_id", "EQ", std::to_string(*owner)},
                               {"hs_pipeline", "EQ", d.settings.Get("pipeline")},
                               {"hs_pipeline_stage", "NEQ", d.settings.Get("closed_stage")}},
                              1);
    return request;
  }
  absl::StatusOr<int64_t> OpenCount(absl::string_view answer) const override { return AnswerCount(answer, "total"); }

  // The ticket's record page in HubSpot's app (object type 0-5 is tickets); it needs the
  // account's id (`portal_id`, the Hub ID in the account menu).
  std::optional<std::string> TicketUrl(const Settings& s, absl::string_view, absl::string_view id) const override {
    if (!s.Has("portal_id")) return std::nullopt;
    return absl::StrCat("https://app.hubspot.com/contacts/", s.Get("portal_id"), "/record/0-5/", id);
  }
};

}  // namespace

const DestinationType& HubSpotDestinationType() {
  static const HubSpotDestination type;
  return type;
}

}  // namespace triage::router
