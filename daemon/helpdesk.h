#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "config/config.h"
#include "daemon/http.h"
#include "router/ticket_template.h"

// What triaged sends to Zendesk, Freshdesk and Slack, rendered from a stored ticket. Pure
// functions: the senders in delivery.cc add transport, auth and outcome handling.
namespace triage::daemon {

// One request to a destination: appended to the destination URL's path.
struct OutboundRequest {
  http::verb method = http::verb::post;
  std::string target;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  bool creates_ticket = false;  // a 2xx answer carries the id of a new ticket
};

// The compiled templates of one destination (validated when the config loaded).
struct TicketTemplates {
  static absl::StatusOr<TicketTemplates> Compile(const config::DestinationOptions& options);

  router::Template subject, body, requester_email;
  std::vector<std::pair<std::string, router::Template>> custom_fields;
};

// Who a delivery is for, and what is already known about its thread.
struct DeliveryContext {
  std::string team;
  bool owner = true;
  std::string delivery_id;    // stable across retries (DeliveryId)
  std::optional<std::string> remote_ticket;  // the thread's ticket, when one exists
};

// Zendesk: a new ticket (POST /api/v2/tickets.json with Idempotency-Key and external_id set to
// the delivery id), or, when the thread has a ticket, an internal comment on it
// (PUT /api/v2/tickets/{id}.json). Comments are internal (public: false): nothing reaches the
// customer unless an agent answers.
OutboundRequest ZendeskRequest(const config::DestinationOptions& options,
                               const TicketTemplates& templates, const router::TicketView& ticket,
                               const DeliveryContext& context);
// Freshdesk: a new ticket (POST /api/v2/tickets, status open, priority 1-4) or a private note on
// the thread's ticket (POST /api/v2/tickets/{id}/notes). The requester is the X handle
// (twitter_id) when there is one, else a unique_external_id "<platform>:<author id>".
OutboundRequest FreshdeskRequest(const config::DestinationOptions& options,
                                 const TicketTemplates& templates, const router::TicketView& ticket,
                                 const DeliveryContext& context);
// Slack incoming webhook: {"text": body} in mrkdwn, at most 3000 characters, links unfurled
// by nobody.
OutboundRequest SlackRequest(const TicketTemplates& templates, const router::TicketView& ticket,
                             const DeliveryContext& context);

// The new ticket's id in a create answer: Zendesk {"ticket":{"id":N}}, Freshdesk {"id":N}.
absl::StatusOr<std::string> CreatedTicketId(config::DestinationType type, absl::string_view body);

// Zendesk keeps an Idempotency-Key for 2 hours. A creation retried after that could open a
// second ticket if an earlier attempt's answer was lost, so such a retry first looks the
// delivery up by external_id. True when the entry (enqueued at `enqueued`, tried `attempts`
// times) may be older than the key at `now` (checked with 15 minutes to spare).
bool ZendeskKeyMayHaveExpired(absl::Time enqueued, uint32_t attempts, absl::Time now);
// GET /api/v2/tickets.json?external_id=<delivery id>
OutboundRequest ZendeskLookupRequest(absl::string_view delivery_id);
// The first ticket id in a lookup answer {"tickets":[{"id":N},...]}; nullopt when it lists
// none; InvalidArgument when the answer is not a ticket list.
absl::StatusOr<std::optional<std::string>> FoundTicketId(absl::string_view body);

// The Authorization header of a helpdesk: Zendesk "Basic base64(email/token:api_token)" or
// "Bearer <oauth_token>", Freshdesk "Basic base64(api_key:X)"; empty for the others.
std::string AuthorizationHeader(const config::DestinationOptions& options);

}  // namespace triage::daemon
