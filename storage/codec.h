#pragma once

#include "absl/strings/string_view.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "router/message.h"
#include "router/router.h"

namespace triage::storage {

// A delivery waiting in a destination's queue: the value of a `queue` (or `dead`) record.
struct QueueEntry {
  std::string message_key;  // key of the message record (source, id)
  std::string team;
  // The ticket thread: one author's conversation (or the message itself). Entries of one
  // (team, thread) leave a destination's queue in arrival order, and share a remote ticket.
  std::string thread;
  bool owner = true;  // the owner team's entry is the ticket; the others inform
  // The acknowledgement sent to the customer (an owner entry at a reply destination), not a
  // ticket.
  bool reply = false;
  router::Level level = router::Level::kLow;
  uint32_t attempts = 0;
  int64_t enqueued_unix_ms = 0;
  int64_t next_attempt_unix_ms = 0;  // 0: ready now
  // When the ticket is due (received + its level's SLA); it binds the owner team only. 0 when
  // unknown.
  int64_t sla_deadline_unix_ms = 0;
  std::string last_error;
  std::string ticket_json;  // what the destination receives
};

// Queue keys sort by destination, then level (urgent first), then arrival sequence, so a scan
// of one destination's prefix sees its entries in delivery order:
//   destination '\0' level:u8 seq:u64 big-endian
std::string QueueKey(absl::string_view destination, router::Level level, uint64_t seq);
struct DecodedQueueKey {
  std::string destination;
  router::Level level;
  uint64_t seq;
};
std::optional<DecodedQueueKey> DecodeQueueKey(absl::string_view key);

// `a` '\0' `b`: how every composite key is built (JoinKey(a, "") is the prefix of a's keys).
std::string JoinKey(absl::string_view a, absl::string_view b);

// Message records (the dedup index) are keyed by source '\0' platform id.
std::string MessageKey(absl::string_view source, absl::string_view id);

std::string EncodeEntry(const QueueEntry& entry);
std::optional<QueueEntry> DecodeEntry(absl::string_view value);

// A queue record's fields without copies: the strings point into the decoded value. What a
// scan of every entry (recovery) reads.
struct QueueEntryView {
  absl::string_view message_key;
  absl::string_view team;
  absl::string_view thread;  // the message key when the record has none
  bool owner = true;
  bool reply = false;
  router::Level level = router::Level::kLow;
  uint32_t attempts = 0;
  int64_t enqueued_unix_ms = 0;
  int64_t next_attempt_unix_ms = 0;
  int64_t sla_deadline_unix_ms = 0;
  absl::string_view last_error;
  absl::string_view ticket_json;
};
std::optional<QueueEntryView> DecodeEntryView(absl::string_view value);

// Message record value: received time (fixed64 little-endian ms) followed by the ticket JSON.
// The time leads so the dedup expiry can read it without parsing JSON.
std::string EncodeMessageRecord(int64_t received_unix_ms, absl::string_view ticket_json);
std::optional<int64_t> MessageRecordTime(absl::string_view value);

// A thread's ticket at one helpdesk (the `tickets` record after its time): its id, and the
// level and owner team it was last filed at, so a more urgent follow-up can raise it. Encoded
// v1 '\x01' level:u8 team '\0' id; records written before hold the id alone (level unknown).
struct ThreadTicket {
  std::string id;
  std::optional<router::Level> level;
  std::string team;
  // When it was recorded (the record's time, read by the store; not part of the encoding nor
  // of equality). At a reply destination: when the conversation was last acknowledged.
  absl::Time recorded_at = absl::InfinitePast();
  bool operator==(const ThreadTicket& o) const { return id == o.id && level == o.level && team == o.team; }
};
std::string EncodeThreadTicket(const ThreadTicket& ticket);
std::optional<ThreadTicket> DecodeThreadTicket(absl::string_view value);

// A delivery record (the `delivered` record after its time): the attempts it took, its team
// and role, and the ticket it created or raised (empty for none; for a reply, the platform's
// message id). Encoded as text fields joined by '\0': attempts (decimal), team, "owner",
// "informed" or "reply", ticket, and for a reply its text. A later version would start with a
// byte below '0'.
struct DeliveredRecord {
  uint32_t attempts = 0;
  std::string team;
  bool owner = true;
  std::string remote_ticket;
  bool reply = false;
  std::string text;  // a reply's: what the customer was told
  bool operator==(const DeliveredRecord&) const = default;
};
std::string EncodeDelivered(const DeliveredRecord& record);
std::optional<DeliveredRecord> DecodeDelivered(absl::string_view value);

// A conversation record (after its time): the owner team, then '\0' and the level (u8) since
// triaged keeps it; records written before hold the team alone (level unknown).
std::string EncodeConversationOwner(const router::ConversationOwner& owner);
router::ConversationOwner DecodeConversationOwner(absl::string_view value);

// A request triaged could not read, all or part of it, kept raw so that a later version can
// replay it. The value leads with the received time, like a message record, so the same kind
// of expiry filter drops it after the retention.
struct QuarantineRecord {
  int64_t received_unix_ms = 0;
  std::string source;  // the configured source name
  std::string reason;  // could_not_read
  std::string detail;  // what could not be read, in words
  std::string body;    // the request body, byte for byte
};
std::string EncodeQuarantine(const QuarantineRecord& record);
std::optional<QuarantineRecord> DecodeQuarantine(absl::string_view value);

}  // namespace triage::storage
