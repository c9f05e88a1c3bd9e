// A destination type: one helpdesk's (or sink's) protocol behind one interface, in its own
// folder (router/destinations/<type>/), listed once in router/destinations/registry.cc. It says
// which settings its config block takes and its defaults, and renders what triaged sends:
// tickets, follow-ups, the lookup of a ticket an earlier attempt may have created, the count of
// open tickets in a group, and its authorization. Pure: the daemon carries the requests out
// (transport, pacing, retries, signatures) and never looks at which type a destination is.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "router/message.h"
#include "router/settings.h"
#include "router/ticket_template.h"

namespace triage::router {

enum class HttpMethod { kGet, kPost, kPut, kPatch };

// One request to a destination. `target` is appended to the destination URL's path (empty: the
// URL itself).
struct OutboundRequest {
  HttpMethod method = HttpMethod::kPost;
  std::string target;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  bool creates_ticket = false;  // a 2xx answer carries the id of a new ticket (CreatedTicketId)
  // Requests sent first, in order, each of which must succeed (a priority update before its
  // note). They are sent again when the attempt is retried, so they must be idempotent.
  std::vector<OutboundRequest> first;
};

// The compiled templates of one destination (checked when the config loaded).
struct TicketTemplates {
  Template subject, body, follow_up;
  std::vector<std::pair<std::string, Template>> custom_fields;  // helpdesk field -> value
  std::map<std::string, Template> settings;                     // the type's template settings
};

// What a type sees of one configured destination.
struct DestinationView {
  const Settings& settings;
  const TicketTemplates& templates;
  const std::map<std::string, int64_t>& group_ids;  // team -> the helpdesk group it works in
  // Informed teams join the owner's ticket (tagged inform_<team>) rather than getting their own.
  bool join_informed = true;
  // team -> the helpdesk users (ids or e-mail addresses) who follow a ticket their team joins.
  const std::map<std::string, std::vector<std::string>>* watchers = nullptr;

  std::optional<int64_t> GroupOf(const std::string& team) const;
  // The watchers of the teams a ticket informs (when they join it), each once, in order.
  std::vector<std::string> InformedWatchers(const TicketView& ticket, const std::string& owner_team) const;
};

// One delivery: who it is for, and what is already known about its thread.
struct DeliveryContext {
  std::string destination;
  std::string team;
  bool owner = true;
  Level level = Level::kLow;  // this delivery's
  std::string delivery_id;  // stable across retries
  int64_t enqueued_unix_ms = 0;
  absl::string_view ticket_json;              // the stored ticket, as TicketJson wrote it
  std::optional<std::string> remote_ticket;  // the thread's ticket here, when one exists
  // The level and owner team that ticket was last filed at (level unknown for tickets recorded
  // before triaged kept it).
  std::optional<Level> ticket_level;
  std::string ticket_team;
  std::string requester_id;  // the customer as the helpdesk's user, when RequesterRequest named one
  // The web address of the thread's ticket in the destination this one links to (ticket_link),
  // once that ticket exists.
  std::string linked_ticket_url;
  // A reply entry: the acknowledgement to send to the customer, composed by the daemon. At a
  // helpdesk that keeps tickets, the internal note on the thread's ticket that says what the
  // customer was told.
  std::optional<std::string> reply_text;

  // An owner's follow-up more urgent than its ticket, or owned by another team now (a rule
  // moved the conversation): it raises the ticket (priority, tags, group) as well as adding
  // its note. A lower level never lowers a ticket.
  bool Escalates() const {
    return owner && remote_ticket && !reply_text &&
           ((ticket_level && level < *ticket_level) || (!ticket_team.empty() && ticket_team != team));
  }
};

// The defaults of a type's destinations, before the config's own values.
struct DestinationDefaults {
  // One delivery per message: informed teams join the owner's ticket (or alert). false: each
  // team gets its own (event streams, where the receiver routes by team).
  bool join_informed = true;
  int concurrency = 2;
  double rate = 0;  // requests a second; 0 for no limit
  double burst = 1;
  std::string subject_template, body_template, follow_up_template;
};

// Which ticket keys a type's config block takes besides its own settings.
struct TicketKeys {
  bool subject = false, body = false, follow_up = false, group_ids = false, custom_fields = false;
  bool ticket_link = false;  // ticket_link, ticket_link_wait: a link to another destination's ticket
  bool watchers = false;     // watchers: {team: [user, ...]}, who follows a ticket the team joins
};

// How each request of a destination is signed at the moment it is sent (the daemon owns the
// crypto and the clock).
struct RequestSigning {
  enum class Kind {
    kNone,
    kStandardWebhooks,  // webhook-id, webhook-timestamp, webhook-signature (v1, key "whsec_...")
    // Graph API: appsecret_proof = hex HMAC-SHA256 of the access token (`subject`) keyed by the
    // app secret (`key`), as a query parameter (some POST endpoints ignore it in a body).
    kAppSecretProof,
    // OAuth 1.0a user context (X): an Authorization header signed with HMAC-SHA1 over the
    // method, URL and query, a fresh nonce and the time. `parts`: consumer key, consumer
    // secret, token, token secret.
    kOAuth1,
  };
  Kind kind = Kind::kNone;
  std::string key;
  std::string subject;
  std::vector<std::string> parts;
};

// How a helpdesk's feedback webhook (POST /feedback/<name>) proves where it comes from.
struct FeedbackAuth {
  enum class Kind {
    kNone,             // the type sends no feedback
    kHmacTimestamped,  // base64 HMAC-SHA256 of timestamp + body, with a fresh timestamp
    kToken,            // a header holding a shared token
  };
  Kind kind = Kind::kNone;
  std::string signature_header, timestamp_header;  // kHmacTimestamped
};

// What a reply answers: where the customer wrote (Message::platform, kind, channel).
struct ReplyTarget {
  std::string platform, kind, channel;
};

// A type's reading of an answer that the generic rules (2xx delivered; 408, 425, 429, 5xx
// retried; the rest permanent) would misread: a Graph error in a 400 that is temporary, an X
// 403 that is final, a 200 that carries an error.
struct AnswerClass {
  enum class Kind { kDelivered, kRetry, kPermanent };
  Kind kind = Kind::kPermanent;
  bool throttled = false;                     // over a quota: the platform is up
  std::optional<absl::Duration> retry_after;  // when the quota resets
  // For the metrics and the dead letter: window_closed, duplicate, not_allowed, recipient,
  // credentials, rate_limited, temporary.
  std::string reason;
  std::string detail;  // in words, with the platform's code
};

// Reads one header of an answer; nullopt when it is absent.
using HeaderReader = std::function<std::optional<std::string>(absl::string_view name)>;

// How a destination's deliveries leave: appended to a file, or HTTP requests.
enum class Transport { kFile, kHttp };

class DestinationType {
 public:
  virtual ~DestinationType() = default;
  virtual std::string_view name() const = 0;
  virtual Transport transport() const { return Transport::kHttp; }
  // The type's own config keys (besides the transport, pacing and ticket keys).
  virtual std::vector<Setting> settings() const = 0;
  virtual DestinationDefaults defaults() const { return {}; }
  virtual TicketKeys ticket_keys() const { return {}; }
  // "" when `key` names a custom field of this helpdesk, else why not.
  virtual std::string CustomFieldKeyProblem(absl::string_view /*key*/) const { return ""; }
  // Checks across settings: (key, message) for each problem.
  virtual std::vector<std::pair<std::string, std::string>> Validate(const Settings&) const { return {}; }
  // The url is an API base (a trailing slash is dropped, targets are appended) rather than the
  // whole address of one endpoint.
  virtual bool url_is_base() const { return true; }

  // The Authorization header's value; empty for none.
  virtual std::string Authorization(const Settings&) const { return ""; }
  virtual RequestSigning Signing(const Settings&) const { return {}; }

  // Whether the type renders from the parsed ticket (TicketView); when false, Render gets
  // nullptr and works from the context's ticket_json.
  virtual bool reads_tickets() const { return true; }
  // Whether it creates tickets that follow-ups of their thread go to (the daemon then looks the
  // thread's ticket up before each delivery and records the one it creates).
  virtual bool keeps_tickets() const { return false; }
  // The request of one delivery: a new ticket, or a follow-up on the thread's ticket.
  // InvalidArgument when the ticket cannot be rendered (a permanent failure).
  virtual absl::StatusOr<OutboundRequest> Render(const DestinationView& destination, const TicketView* ticket,
                                                 const DeliveryContext& context) const = 0;
  // Before a ticket is created: the request that finds or makes the customer (the message's
  // author) as the helpdesk's user, so that one customer is one requester across tickets. Its
  // answer's id (RequesterId) reaches Render as context.requester_id. nullopt when none is needed.
  virtual std::optional<OutboundRequest> RequesterRequest(const DestinationView&, const TicketView&,
                                                          const DeliveryContext&) const {
    return std::nullopt;
  }
  virtual absl::StatusOr<std::string> RequesterId(absl::string_view /*answer*/) const {
    return absl::UnimplementedError("this destination names no requesters");
  }
  // The new ticket's id in a 2xx answer to a creating request.
  virtual absl::StatusOr<std::string> CreatedTicketId(absl::string_view /*answer*/) const {
    return absl::UnimplementedError("this destination creates no tickets");
  }

  // Before a creation is retried, may an earlier attempt have created the ticket without the
  // helpdesk's own idempotency covering it? Then the daemon looks it up first.
  virtual bool LookUpBeforeCreating(absl::Time /*enqueued*/, uint32_t /*attempts*/, absl::Time /*now*/) const {
    return false;
  }
  virtual std::optional<OutboundRequest> LookupRequest(const DestinationView&, const DeliveryContext&) const {
    return std::nullopt;
  }
  // The ticket a lookup found; nullopt when none; InvalidArgument when the answer is unreadable.
  virtual absl::StatusOr<std::optional<std::string>> FoundTicketId(absl::string_view /*answer*/) const {
    return std::optional<std::string>();
  }

  // The request that counts the open tickets in a team's group; nullopt when the type cannot
  // count or the team has no group here.
  virtual std::optional<OutboundRequest> CountOpenRequest(const DestinationView&, const std::string& /*team*/) const {
    return std::nullopt;
  }
  virtual absl::StatusOr<int64_t> OpenCount(absl::string_view /*answer*/) const {
    return absl::UnimplementedError("this destination cannot count tickets");
  }
  // The request that counts the tickets of a team's group solved in the last hour (the pace
  // agents work at), answered like CountOpenRequest; nullopt when the type cannot tell.
  virtual std::optional<OutboundRequest> CountSolvedRequest(const DestinationView&, const std::string& /*team*/) const {
    return std::nullopt;
  }

  // Where an agent opens ticket `id` in a browser, given the destination's settings and url;
  // nullopt when the type has no such page (or lacks the setting that names it).
  virtual std::optional<std::string> TicketUrl(const Settings&, absl::string_view /*url*/,
                                               absl::string_view /*id*/) const {
    return std::nullopt;
  }

  // Replies (acknowledgements to the customer on the platform they wrote from): "" when the
  // type can answer a message of this platform, kind and channel, else why not. A reply entry
  // reaches Render with context.reply_text set.
  virtual std::string ReplyProblem(const ReplyTarget& /*target*/) const { return "it sends no replies"; }
  // It sends nothing but replies (a platform's API): no team delivers tickets to it.
  virtual bool replies_only() const { return false; }
  // It can carry replies (acknowledge.via may name it).
  virtual bool sends_replies() const { return replies_only(); }
  // The platform's id of the reply sent, in a 2xx answer.
  virtual absl::StatusOr<std::string> ReplyId(absl::string_view /*answer*/) const {
    return absl::UnimplementedError("this destination sends no replies");
  }
  // The type's own reading of an answer (status, body, headers at `now`); nullopt when the
  // generic rules hold.
  virtual std::optional<AnswerClass> ClassifyAnswer(int /*status*/, absl::string_view /*body*/,
                                                    const HeaderReader& /*header*/, absl::Time /*now*/) const {
    return std::nullopt;
  }

  // Feedback from the helpdesk's own webhooks (README, "Labels from where agents work").
  virtual FeedbackAuth feedback_auth() const { return {}; }
  // A ticket priority as the helpdesk writes it, as a level; nullopt when unknown.
  virtual std::optional<Level> PriorityLevel(absl::string_view /*priority*/) const { return std::nullopt; }
};

// The registry: every destination type, and one by its name (nullptr when unknown).
const std::vector<const DestinationType*>& DestinationTypes();
const DestinationType* FindDestinationType(std::string_view name);
// "file, webhook, ...": for error messages.
std::string DestinationTypeNames(bool (*filter)(const DestinationType&) = nullptr);

// Compiles a destination's templates; InvalidArgument names the one at fault.
absl::StatusOr<TicketTemplates> CompileTemplates(const std::string& subject, const std::string& body,
                                                 const std::string& follow_up,
                                                 const std::vector<std::pair<std::string, std::string>>& custom_fields,
                                                 const DestinationType& type, const Settings& settings);

}  // namespace triage::router
