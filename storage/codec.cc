#include "storage/codec.h"

#include <cstring>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

#include "router/ticket_template.h"

namespace triage::storage {
namespace {

// Version 2 added the thread; version 1 records read back with the message as their thread.
// Version 3 added the SLA deadline; older records take it from their ticket JSON.
// Version 4 is version 3 with a role byte that may also say "reply" (2). Only reply entries
// are written as version 4, so a downgraded binary refuses them rather than filing a reply as
// a ticket, and reads every other entry.
constexpr uint8_t kEntryVersion = 4;
constexpr uint8_t kRoleReply = 2;
constexpr uint8_t kQuarantineVersion = 1;

void PutFixed64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void PutFixed32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void PutString(std::string* out, absl::string_view s) {
  PutFixed32(out, static_cast<uint32_t>(s.size()));
  out->append(s.data(), s.size());
}

// Reads little-endian fixed-width integers and length-prefixed strings; any overrun fails.
class Reader {
 public:
  explicit Reader(absl::string_view in) : in_(in) {}
  bool Fixed64(uint64_t* v) {
    if (in_.size() < 8) return false;
    *v = 0;
    for (int i = 0; i < 8; ++i) *v |= static_cast<uint64_t>(static_cast<uint8_t>(in_[i])) << (8 * i);
    in_.remove_prefix(8);
    return true;
  }
  bool Fixed32(uint32_t* v) {
    if (in_.size() < 4) return false;
    *v = 0;
    for (int i = 0; i < 4; ++i) *v |= static_cast<uint32_t>(static_cast<uint8_t>(in_[i])) << (8 * i);
    in_.remove_prefix(4);
    return true;
  }
  bool Byte(uint8_t* v) {
    if (in_.empty()) return false;
    *v = static_cast<uint8_t>(in_[0]);
    in_.remove_prefix(1);
    return true;
  }
  bool String(absl::string_view* s) {
    uint32_t n = 0;
    if (!Fixed32(&n) || in_.size() < n) return false;
    *s = in_.substr(0, n);
    in_.remove_prefix(n);
    return true;
  }
  bool done() const { return in_.empty(); }

 private:
  absl::string_view in_;
};

}  // namespace

std::string QueueKey(absl::string_view destination, router::Level level, uint64_t seq) {
  std::string key;
  key.reserve(destination.size() + 10);
  key.append(destination.data(), destination.size());
  key.push_back('\0');
  key.push_back(static_cast<char>(level));
  for (int i = 7; i >= 0; --i) key.push_back(static_cast<char>((seq >> (8 * i)) & 0xff));
  return key;
}

std::optional<DecodedQueueKey> DecodeQueueKey(absl::string_view key) {
  if (key.size() < 10 || key[key.size() - 10] != '\0') return std::nullopt;
  const auto level = static_cast<uint8_t>(key[key.size() - 9]);
  if (level >= router::kLevelCount) return std::nullopt;
  uint64_t seq = 0;
  for (size_t i = key.size() - 8; i < key.size(); ++i) seq = (seq << 8) | static_cast<uint8_t>(key[i]);
  return DecodedQueueKey{std::string(key.substr(0, key.size() - 10)),
                         static_cast<router::Level>(level), seq};
}

std::string JoinKey(absl::string_view a, absl::string_view b) {
  std::string key;
  key.reserve(a.size() + 1 + b.size());
  key.append(a.data(), a.size());
  key.push_back('\0');
  key.append(b.data(), b.size());
  return key;
}

std::string MessageKey(absl::string_view source, absl::string_view id) { return JoinKey(source, id); }

std::string EncodeEntry(const QueueEntry& e) {
  std::string out;
  out.reserve(64 + e.message_key.size() + e.team.size() + e.last_error.size() + e.ticket_json.size());
  out.push_back(static_cast<char>(e.reply ? kEntryVersion : 3));
  out.push_back(static_cast<char>(e.reply ? kRoleReply : e.owner ? 1 : 0));
  out.push_back(static_cast<char>(e.level));
  PutFixed32(&out, e.attempts);
  PutFixed64(&out, static_cast<uint64_t>(e.enqueued_unix_ms));
  PutFixed64(&out, static_cast<uint64_t>(e.next_attempt_unix_ms));
  PutString(&out, e.message_key);
  PutString(&out, e.team);
  PutString(&out, e.last_error);
  PutString(&out, e.ticket_json);
  PutString(&out, e.thread);
  PutFixed64(&out, static_cast<uint64_t>(e.sla_deadline_unix_ms));
  return out;
}

std::optional<QueueEntryView> DecodeEntryView(absl::string_view value) {
  Reader r(value);
  QueueEntryView e;
  uint8_t version = 0, owner = 0, level = 0;
  uint64_t enqueued = 0, next = 0, deadline = 0;
  if (!r.Byte(&version) || version < 1 || version > kEntryVersion || !r.Byte(&owner) ||
      owner > (version >= 4 ? kRoleReply : 1) || !r.Byte(&level) || level >= router::kLevelCount || !r.Fixed32(&e.attempts) ||
      !r.Fixed64(&enqueued) || !r.Fixed64(&next) || !r.String(&e.message_key) ||
      !r.String(&e.team) || !r.String(&e.last_error) || !r.String(&e.ticket_json) ||
      (version >= 2 && !r.String(&e.thread)) || (version >= 3 && !r.Fixed64(&deadline)) ||
      !r.done()) {
    return std::nullopt;
  }
  e.sla_deadline_unix_ms = static_cast<int64_t>(deadline);
  if (version < 3) {
    const std::optional<absl::Time> from_ticket = router::SlaDeadline(e.ticket_json);
    e.sla_deadline_unix_ms = from_ticket ? absl::ToUnixMillis(*from_ticket) : 0;
  }
  if (e.thread.empty()) e.thread = e.message_key;
  e.owner = owner != 0;
  e.reply = owner == kRoleReply;
  e.level = static_cast<router::Level>(level);
  e.enqueued_unix_ms = static_cast<int64_t>(enqueued);
  e.next_attempt_unix_ms = static_cast<int64_t>(next);
  return e;
}

std::optional<QueueEntry> DecodeEntry(absl::string_view value) {
  const std::optional<QueueEntryView> v = DecodeEntryView(value);
  if (!v) return std::nullopt;
  QueueEntry e;
  e.message_key = std::string(v->message_key);
  e.team = std::string(v->team);
  e.thread = std::string(v->thread);
  e.owner = v->owner;
  e.reply = v->reply;
  e.level = v->level;
  e.attempts = v->attempts;
  e.enqueued_unix_ms = v->enqueued_unix_ms;
  e.next_attempt_unix_ms = v->next_attempt_unix_ms;
  e.sla_deadline_unix_ms = v->sla_deadline_unix_ms;
  e.last_error = std::string(v->last_error);
  e.ticket_json = std::string(v->ticket_json);
  return e;
}

std::string EncodeMessageRecord(int64_t received_unix_ms, absl::string_view ticket_json) {
  std::string out;
  out.reserve(8 + ticket_json.size());
  PutFixed64(&out, static_cast<uint64_t>(received_unix_ms));
  out.append(ticket_json.data(), ticket_json.size());
  return out;
}

std::optional<int64_t> MessageRecordTime(absl::string_view value) {
  Reader r(value);
  uint64_t t = 0;
  if (!r.Fixed64(&t)) return std::nullopt;
  return static_cast<int64_t>(t);
}

namespace {
constexpr char kThreadTicketVersion = '\x01';
}  // namespace

std::string EncodeThreadTicket(const ThreadTicket& ticket) {
  std::string out;
  out.push_back(kThreadTicketVersion);
  out.push_back(static_cast<char>(ticket.level ? static_cast<uint8_t>(*ticket.level) : 0xff));
  out.append(ticket.team);
  out.push_back('\0');
  out.append(ticket.id);
  return out;
}

std::optional<ThreadTicket> DecodeThreadTicket(absl::string_view value) {
  if (value.empty()) return std::nullopt;
  if (value[0] != kThreadTicketVersion) return ThreadTicket{std::string(value), std::nullopt, ""};  // an id alone
  if (value.size() < 3) return std::nullopt;
  ThreadTicket ticket;
  const uint8_t level = static_cast<uint8_t>(value[1]);
  if (level < router::kLevelCount) ticket.level = static_cast<router::Level>(level);
  const absl::string_view rest = value.substr(2);
  const size_t zero = rest.find('\0');
  if (zero == absl::string_view::npos || zero + 1 == rest.size()) return std::nullopt;
  ticket.team = std::string(rest.substr(0, zero));
  ticket.id = std::string(rest.substr(zero + 1));
  return ticket;
}

std::string EncodeDelivered(const DeliveredRecord& record) {
  const absl::string_view zero("\0", 1);
  return absl::StrCat(record.attempts, zero, record.team, zero, record.reply ? "reply" : record.owner ? "owner" : "informed", zero,
                      record.remote_ticket, record.reply ? zero : "", record.reply ? record.text : "");
}

std::optional<DeliveredRecord> DecodeDelivered(absl::string_view value) {
  const std::vector<absl::string_view> fields = absl::StrSplit(value, absl::MaxSplits('\0', 3));
  DeliveredRecord record;
  if (fields.size() != 4 || !absl::SimpleAtoi(fields[0], &record.attempts)) return std::nullopt;
  if (fields[2] != "owner" && fields[2] != "informed" && fields[2] != "reply") return std::nullopt;
  record.team = std::string(fields[1]);
  record.owner = fields[2] != "informed";
  record.reply = fields[2] == "reply";
  if (record.reply) {
    const size_t end = fields[3].find('\0');
    if (end == absl::string_view::npos) return std::nullopt;
    record.remote_ticket = std::string(fields[3].substr(0, end));
    record.text = std::string(fields[3].substr(end + 1));
    return record;
  }
  record.remote_ticket = std::string(fields[3]);
  return record;
}

std::string EncodeConversationOwner(const router::ConversationOwner& owner) {
  std::string out = owner.team;
  if (owner.level) {
    out.push_back('\0');
    out.push_back(static_cast<char>(static_cast<uint8_t>(*owner.level)));
  }
  return out;
}

router::ConversationOwner DecodeConversationOwner(absl::string_view value) {
  router::ConversationOwner owner;
  const size_t zero = value.find('\0');
  owner.team = std::string(value.substr(0, zero));
  if (zero != absl::string_view::npos && zero + 2 == value.size() &&
      static_cast<uint8_t>(value[zero + 1]) < router::kLevelCount) {
    owner.level = static_cast<router::Level>(static_cast<uint8_t>(value[zero + 1]));
  }
  return owner;
}

std::string EncodeQuarantine(const QuarantineRecord& record) {
  std::string out;
  out.reserve(32 + record.source.size() + record.reason.size() + record.detail.size() + record.body.size());
  PutFixed64(&out, static_cast<uint64_t>(record.received_unix_ms));
  out.push_back(static_cast<char>(kQuarantineVersion));
  PutString(&out, record.source);
  PutString(&out, record.reason);
  PutString(&out, record.detail);
  PutString(&out, record.body);
  return out;
}

std::optional<QuarantineRecord> DecodeQuarantine(absl::string_view value) {
  Reader r(value);
  uint64_t received = 0;
  uint8_t version = 0;
  absl::string_view source, reason, detail, body;
  if (!r.Fixed64(&received) || !r.Byte(&version) || version != kQuarantineVersion || !r.String(&source) ||
      !r.String(&reason) || !r.String(&detail) || !r.String(&body) || !r.done()) {
    return std::nullopt;
  }
  return QuarantineRecord{static_cast<int64_t>(received), std::string(source), std::string(reason),
                          std::string(detail), std::string(body)};
}

}  // namespace triage::storage
