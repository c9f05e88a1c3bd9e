#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "config/config.h"
#include "daemon/http.h"
#include "daemon/metrics.h"
#include "router/message.h"
#include "storage/store.h"

namespace triage::daemon {

// What a helpdesk's webhook says about one ticket: the body an admin sets up in a Zendesk
// trigger or a Freshdesk automation (README, "Labels from where agents work"). Ids may be
// numbers or strings; tags an array or one space- or comma-separated string.
struct TicketUpdate {
  std::string ticket;                  // the helpdesk's ticket id
  std::optional<router::Level> level;  // from its priority
  std::optional<int64_t> group_id;
  std::string group;                   // a group name, when sent instead of its id
  std::vector<std::string> tags;
};
// The priority is read as the destination type writes it (the type's PriorityLevel).
// InvalidArgument names the field at fault.
absl::StatusOr<TicketUpdate> ParseTicketUpdate(const router::DestinationType& type, absl::string_view body);

// What an agent decided, as labels of the message that created the ticket.
struct AgentLabel {
  std::optional<bool> complaint;       // from the feedback's complaint tags
  std::string team;                    // from the group (the destination's group_ids, or a team name)
  std::optional<router::Level> level;  // from the priority
  bool empty() const { return !complaint && team.empty() && !level; }
};
AgentLabel DeriveLabel(const TicketUpdate& update, const config::FeedbackOptions& feedback,
                       const config::DestinationOptions& destination,
                       const std::vector<std::string>& teams);

// The stored label record, one JSON line in the shape `triagectl train` reads: the message as
// `route` takes it (source, id, platform, text, author, ...), the labels (complaint, team,
// level), and where they came from (feedback, ticket, labelled_at) beside what triaged had
// decided ("triaged": complaint, team, level).
absl::StatusOr<std::string> LabelRecord(absl::string_view ticket_json, const AgentLabel& label,
                                        absl::string_view feedback, absl::string_view ticket,
                                        absl::Time labelled_at);

// Serves POST /feedback/<name> on the ingest listener: checks the helpdesk's signature
// (router::FeedbackAuth: Zendesk's base64 HMAC-SHA256 of timestamp + body in
// X-Zendesk-Webhook-Signature, with a fresh X-Zendesk-Webhook-Signature-Timestamp) or token (a
// header compared in constant time), finds the message whose delivery created the ticket, and stores the agent's
// decision as its label (synced). A ticket triaged did not create is answered 200 and counted,
// so the helpdesk does not retry. Thread-safe; the options swap whole on reload.
class Feedback {
 public:
  struct Options {
    std::vector<config::FeedbackOptions> feedback;
    std::vector<config::DestinationOptions> destinations;
    std::vector<std::string> teams;
  };
  Feedback(std::shared_ptr<const Options> options, storage::Store& store, Metrics& metrics);
  static std::shared_ptr<const Options> FromConfig(const config::Config& config);

  // `path` is what follows /feedback/.
  Response Handle(absl::string_view path, const Request& request);
  void Swap(std::shared_ptr<const Options> options) { options_.store(std::move(options)); }

 private:
  Response Answer(absl::string_view name, http::status status, std::string body);
  bool Authentic(const config::FeedbackOptions& feedback, const Request& request) const;

  std::atomic<std::shared_ptr<const Options>> options_;
  storage::Store& store_;
  Metrics& metrics_;
};

}  // namespace triage::daemon
