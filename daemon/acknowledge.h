// Acknowledgements: the automated reply that tells a customer their message arrived, where they
// stand in line and how long the answer should take (teams.<team>.acknowledge).
//
// Ingest decides whether a message gets one (WhichReplyDestination) and queues a reply entry
// for it in the same write as its ticket. The reply destination's dispatcher asks the
// Acknowledger, just before sending, what to say (Compose): the figures are read then, from
// triaged's own queue and the helpdesk's last count, never on the path of a webhook.
#pragma once

#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "config/config.h"
#include "router/message.h"
#include "router/ticket_template.h"
#include "storage/store.h"

namespace triage::daemon {

class Dispatchers;

// The reply destination that acknowledges `message` for its owner team, or nullptr when none
// does: the team has no acknowledge block, a rule said not to (Triage::acknowledge), the
// message misses the block's conditions (level, complaint, channel, platform: unless a rule
// said to acknowledge it), its author is the brand, or no `via` destination can answer it (its
// type's ReplyProblem).
const config::DestinationOptions* WhichReplyDestination(
    const config::AcknowledgeOptions& acknowledge, const std::vector<const config::DestinationOptions*>& via,
    const router::RoutedMessage& message, const std::vector<std::string>& brand_ids);

// "within 15 minutes", "in about 40 minutes", "in about an hour", "within 3 hours", "within 2
// days": a wait rounded for people, never more precise than the estimate.
std::string WaitInWords(absl::Duration wait);
// When `hours` next opens after `now`, in its zone: "09:00 CET" the same day, else "Monday
// 09:00 CET".
std::string OpensAt(const router::TimeWindow& hours, absl::Time now);

class Acknowledger {
 public:
  Acknowledger(storage::Store& store, const Dispatchers& dispatchers);

  // The teams' acknowledge blocks and destinations, at start and on each reload. Any thread.
  void Update(const config::Config& config);

  // A ticket of `team` left triaged for `destination`: the throughput that estimates the wait
  // when the helpdesk does not say. Any thread.
  void Delivered(const std::string& destination, const std::string& team, absl::Time at);

  // What one reply entry says, or why it is not sent.
  struct Plan {
    std::optional<std::string> text;  // send this
    // Otherwise: off, too_late, already_acknowledged, unreadable (the metrics' outcome).
    std::string skipped;
    std::string detail;    // in words, for the log and the delivery record
    std::string platform;  // the message's
  };
  // `last_reply`: the conversation's last acknowledgement at this destination, if any. Reads
  // the store: call it off the I/O threads.
  Plan Compose(const storage::Lease& lease, const std::optional<storage::ThreadTicket>& last_reply,
               absl::Time now) const;

 private:
  struct Team {
    config::AcknowledgeOptions options;
    router::Template text, closed_text, fallback;
    // The destination whose queue and helpdesk the customer waits in: the team's first that
    // keeps tickets, else its first.
    std::string ticket_destination;
    bool counts = false;  // that destination counts its open tickets (count_interval)
    absl::Duration count_max_age;
  };

  storage::Store& store_;
  const Dispatchers& dispatchers_;
  std::atomic<bool> any_team_{false};  // some team acknowledges: Delivered takes the lock
  mutable absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<const Team>> teams_ ABSL_GUARDED_BY(mu_);
  // team -> when its tickets left triaged, the last hour's.
  mutable std::map<std::string, std::deque<absl::Time>> delivered_ ABSL_GUARDED_BY(mu_);

  std::shared_ptr<const Team> FindTeam(const std::string& team) const;
  // The figures of Compose: entries ahead of this message's ticket (triaged's queue plus the
  // helpdesk's open tickets) and tickets the team answers an hour; nullopt when unknown.
  std::optional<int64_t> Ahead(const std::string& team, const std::string& message_key, absl::Time now) const;
  std::optional<double> TicketsPerHour(const std::string& team, absl::Time now) const;
};

}  // namespace triage::daemon
