// Pieces several destination types share.
#pragma once

#include <initializer_list>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "router/destinations/destination_type.h"
#include "router/text.h"

namespace triage::router {

// triaged, the platform, team_<team>, level_<level>, the categories and the rules' tags, once
// each, in helpdesk tag form; "informed" for a team that is informed rather than owner, and
// inform_<team> for each informed team that joins this ticket (`join_informed`).
std::vector<std::string> TicketTags(const TicketView& ticket, const DeliveryContext& context, bool join_informed);

// The event a file line or a webhook carries (Standard Webhooks payload shape): type
// ticket.created, ticket.informed or acknowledgement.sent, timestamp, data {delivery_id,
// destination, team, role (owner, informed, reply), text (a reply's), ticket}.
std::string EventBody(const DeliveryContext& context);

// The customer as a helpdesk names them: the display name, else "@handle", else the id.
std::string RequesterName(const TicketView& ticket);

// The ticket keys of a helpdesk: subject, body, follow_up, group_ids, custom_fields.
inline constexpr TicketKeys kHelpdeskTicketKeys{
    .subject = true, .body = true, .follow_up = true, .group_ids = true, .custom_fields = true};

// A helpdesk that keeps tickets: a message opens one (Create), a follow-up adds a note to its
// thread's ticket (Note) and, when it escalates, first raises it (Raise: priority, group or
// queue), unless the note's own request raises it.
class TicketingType : public DestinationType {
 public:
  TicketKeys ticket_keys() const override { return kHelpdeskTicketKeys; }
  bool keeps_tickets() const final { return true; }
  absl::StatusOr<OutboundRequest> Render(const DestinationView& destination, const TicketView* ticket,
                                         const DeliveryContext& context) const final;

 protected:
  // The request that creates the ticket (creates_ticket is set by Render).
  virtual OutboundRequest Create(const DestinationView&, const TicketView&, const DeliveryContext&) const = 0;
  // The note a follow-up adds to context.remote_ticket.
  virtual OutboundRequest Note(const DestinationView&, const TicketView&, const DeliveryContext&) const = 0;
  // The update sent before the note of a follow-up that escalates (idempotent: it is sent again
  // when the note fails); nullopt when the note raises the ticket itself.
  virtual std::optional<OutboundRequest> Raise(const DestinationView&, const TicketView&,
                                               const DeliveryContext&) const {
    return std::nullopt;
  }
};

// "Basic " and base64 of "user:password".
std::string BasicAuthorization(absl::string_view user, absl::string_view password);

// A helpdesk's defaults: two requests in flight, `rate` a second, and the ticket subject and
// body every helpdesk type starts from.
DestinationDefaults HelpdeskDefaults(double rate);

// The note a follow-up adds to its thread's ticket: the destination's follow_up template (the
// new message, who wrote it and how it was triaged, not the whole block again) and, when it
// raises the ticket, what changed and why. For a reply entry, the daemon's note on what the
// customer was told (context.reply_text).
std::string FollowUpNote(const DestinationView& destination, const TicketView& ticket, const DeliveryContext& context,
                         Template::Escape escape);

// `url` (a destination's base, with or without a trailing slash) followed by `path`.
std::string PageUrl(absl::string_view url, absl::string_view path);

// A helpdesk's priority for each level (a ticket's level as TicketView spells it).
template <typename T>
struct PriorityScale {
  T urgent, high, normal, low;
  T Of(absl::string_view level) const {
    if (level == "urgent") return urgent;
    if (level == "high") return high;
    if (level == "normal") return normal;
    return low;
  }
};

// The level of a priority a helpdesk wrote (feedback): one of `names` (lower case), else a
// level's own name, case and spaces ignored; nullopt when neither.
std::optional<Level> LevelOfPriority(absl::string_view priority,
                                     std::initializer_list<std::pair<absl::string_view, Level>> names);

// A request of `method` to `target` with `body`; GetRequest: a GET (a lookup or a count).
OutboundRequest Request(HttpMethod method, std::string target, std::string body);
OutboundRequest GetRequest(std::string target);

// Reading helpdesk answers (JSON). Ids may be numbers or strings; InvalidArgument names what
// is missing.
// The id (or `key`) of the object under `holder` ("ticket", "user"), or of the root when
// `holder` is null.
absl::StatusOr<std::string> AnswerId(absl::string_view answer, const char* holder, const char* key = "id");
// The id (or `key`) of the first object of the array `list`; nullopt when it is empty.
absl::StatusOr<std::optional<std::string>> FirstIdOf(absl::string_view answer, const char* list,
                                                     const char* key = "id");
// The non-negative integer `key` of the root ("count", "total").
absl::StatusOr<int64_t> AnswerCount(absl::string_view answer, const char* key);

}  // namespace triage::router
