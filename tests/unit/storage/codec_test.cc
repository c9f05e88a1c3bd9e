#include "storage/codec.h"

#include <gtest/gtest.h>

namespace triage::storage {
namespace {

TEST(CodecTest, QueueKeysSortByDestinationThenLevelThenSequence) {
  const std::vector<std::string> ordered = {
      QueueKey("a", router::Level::kUrgent, 9), QueueKey("a", router::Level::kUrgent, 10),
      QueueKey("a", router::Level::kUrgent, 256), QueueKey("a", router::Level::kHigh, 1),
      QueueKey("a", router::Level::kLow, 0), QueueKey("ab", router::Level::kUrgent, 0),
      QueueKey("b", router::Level::kUrgent, 0),
  };
  for (size_t i = 1; i < ordered.size(); ++i) EXPECT_LT(ordered[i - 1], ordered[i]) << i;
}

TEST(CodecTest, QueueKeysRoundTrip) {
  const std::string key = QueueKey("zendesk-eu", router::Level::kHigh, 0x0102030405060708);
  const auto decoded = DecodeQueueKey(key);
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(decoded->destination, "zendesk-eu");
  EXPECT_EQ(decoded->level, router::Level::kHigh);
  EXPECT_EQ(decoded->seq, 0x0102030405060708u);
  EXPECT_FALSE(DecodeQueueKey("short").has_value());
  std::string bad_level = key;
  bad_level[bad_level.size() - 9] = 7;
  EXPECT_FALSE(DecodeQueueKey(bad_level).has_value());
}

TEST(CodecTest, EntriesRoundTripAndTruncationIsDetected) {
  QueueEntry e;
  e.message_key = MessageKey("generic", "id-1");
  e.team = "billing";
  e.owner = false;
  e.level = router::Level::kUrgent;
  e.attempts = 3;
  e.enqueued_unix_ms = 1772532131005;
  e.next_attempt_unix_ms = 1772532139999;
  e.last_error = "HTTP 503";
  e.ticket_json = R"({"x":1})";
  e.thread = MessageKey("generic", "conversation-9");
  e.sla_deadline_unix_ms = 1772535731005;
  const std::string encoded = EncodeEntry(e);
  const auto decoded = DecodeEntry(encoded);
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(decoded->message_key, e.message_key);
  EXPECT_EQ(decoded->team, "billing");
  EXPECT_FALSE(decoded->owner);
  EXPECT_EQ(decoded->level, router::Level::kUrgent);
  EXPECT_EQ(decoded->attempts, 3u);
  EXPECT_EQ(decoded->enqueued_unix_ms, e.enqueued_unix_ms);
  EXPECT_EQ(decoded->next_attempt_unix_ms, e.next_attempt_unix_ms);
  EXPECT_EQ(decoded->last_error, "HTTP 503");
  EXPECT_EQ(decoded->ticket_json, e.ticket_json);
  EXPECT_EQ(decoded->thread, e.thread);
  EXPECT_EQ(decoded->sla_deadline_unix_ms, e.sla_deadline_unix_ms);
  for (size_t cut = 0; cut < encoded.size(); ++cut) {
    EXPECT_FALSE(DecodeEntry(encoded.substr(0, cut)).has_value()) << cut;
  }
  EXPECT_FALSE(DecodeEntry(encoded + "x").has_value());
}

TEST(CodecTest, VersionOneEntriesReadBackWithTheMessageAsTheirThread) {
  QueueEntry e;
  e.message_key = MessageKey("generic", "id-1");
  e.team = "support";
  e.ticket_json = "{}";
  e.thread = "ignored";
  std::string encoded = EncodeEntry(e);
  encoded.resize(encoded.size() - 8 - 4 - e.thread.size());  // drop the version 2 and 3 fields
  encoded[0] = 1;
  const auto decoded = DecodeEntry(encoded);
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(decoded->thread, e.message_key);
  encoded[0] = 4;  // a future version is refused, not misread
  EXPECT_FALSE(DecodeEntry(encoded).has_value());
}

TEST(CodecTest, VersionTwoEntriesTakeTheirSlaDeadlineFromTheTicket) {
  QueueEntry e;
  e.message_key = MessageKey("generic", "id-1");
  e.team = "support";
  e.ticket_json = R"({"triage":{"sla_deadline":"2026-11-23T10:15:00Z"}})";
  e.sla_deadline_unix_ms = 1;  // dropped below with the version 3 field
  std::string encoded = EncodeEntry(e);
  encoded.resize(encoded.size() - 8);
  encoded[0] = 2;
  auto decoded = DecodeEntry(encoded);
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(decoded->sla_deadline_unix_ms,
            absl::ToUnixMillis(absl::FromCivil(absl::CivilMinute(2026, 11, 23, 10, 15), absl::UTCTimeZone())));
  e.ticket_json = "{}";  // no deadline known: none counted
  encoded = EncodeEntry(e);
  encoded.resize(encoded.size() - 8);
  encoded[0] = 2;
  decoded = DecodeEntry(encoded);
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(decoded->sla_deadline_unix_ms, 0);
}

TEST(CodecTest, MessageRecordsLeadWithTheirTime) {
  const std::string record = EncodeMessageRecord(1772532131005, "{}");
  EXPECT_EQ(MessageRecordTime(record), 1772532131005);
  EXPECT_FALSE(MessageRecordTime("1234567").has_value());
}

}  // namespace
TEST(CodecTest, ThreadTicketsRoundTripAndOlderRecordsAreTheIdAlone) {
  const ThreadTicket filed{"35436", router::Level::kHigh, "billing"};
  EXPECT_EQ(DecodeThreadTicket(EncodeThreadTicket(filed)), filed);
  const ThreadTicket unknown{"9", std::nullopt, "pr"};
  EXPECT_EQ(DecodeThreadTicket(EncodeThreadTicket(unknown)), unknown);
  EXPECT_EQ(DecodeThreadTicket("35436"), (ThreadTicket{"35436", std::nullopt, ""})) << "written before levels";
  EXPECT_EQ(DecodeThreadTicket(""), std::nullopt);
  EXPECT_EQ(DecodeThreadTicket(std::string("\x01\x01team-without-id", 18)), std::nullopt);
  EXPECT_EQ(DecodeThreadTicket(std::string("\x01\x01team\0", 7)), std::nullopt);
}

TEST(CodecTest, DeliveredRecordsRoundTripAndDamageIsRefused) {
  const DeliveredRecord owner{3, "billing", true, "35436"};
  EXPECT_EQ(DecodeDelivered(EncodeDelivered(owner)), owner);
  EXPECT_EQ(EncodeDelivered(owner), std::string("3\0billing\0owner\0" "35436", 21)) << "the format records have had";
  const DeliveredRecord informed{1, "pr", false, ""};
  EXPECT_EQ(DecodeDelivered(EncodeDelivered(informed)), informed);
  EXPECT_EQ(DecodeDelivered(std::string("x\0pr\0owner\0", 11)), std::nullopt);
  EXPECT_EQ(DecodeDelivered(std::string("1\0pr\0owner", 10)), std::nullopt);
  EXPECT_EQ(DecodeDelivered(std::string("1\0pr\0boss\0", 11)), std::nullopt);
}

TEST(CodecTest, ReplyEntriesAreVersionFourAndEveryOtherEntryStaysVersionThree) {
  QueueEntry ticket;
  ticket.message_key = MessageKey("generic", "m1");
  ticket.team = "support";
  ticket.thread = "t";
  ticket.ticket_json = "{}";
  QueueEntry reply = ticket;
  reply.reply = true;
  const std::string ticket_bytes = EncodeEntry(ticket), reply_bytes = EncodeEntry(reply);
  EXPECT_EQ(ticket_bytes[0], 3) << "a downgraded binary still reads tickets";
  EXPECT_EQ(reply_bytes[0], 4) << "and refuses replies rather than filing them as tickets";
  const std::optional<QueueEntry> read = DecodeEntry(reply_bytes);
  ASSERT_TRUE(read);
  EXPECT_TRUE(read->reply);
  EXPECT_TRUE(read->owner);
  EXPECT_FALSE(DecodeEntry(ticket_bytes)->reply);
  std::string damaged = ticket_bytes;
  damaged[1] = 2;  // the reply role in a version 3 record
  EXPECT_EQ(DecodeEntry(damaged), std::nullopt);
  const DeliveredRecord sent{1, "support", true, "wamid.X", true, "Thanks\0 for writing"};
  EXPECT_EQ(DecodeDelivered(EncodeDelivered(sent)), sent);
  EXPECT_EQ(EncodeDelivered(sent).substr(0, 30), std::string("1\0support\0reply\0wamid.X\0Thanks", 30));
  EXPECT_EQ(DecodeDelivered(std::string("1\0support\0reply\0wamid.X", 23)), std::nullopt) << "a reply has its text";
}

TEST(CodecTest, ConversationOwnersKeepTheirLevelAndOlderRecordsAreTheTeamAlone) {
  const router::ConversationOwner owner{"legal", router::Level::kUrgent};
  EXPECT_EQ(DecodeConversationOwner(EncodeConversationOwner(owner)), owner);
  EXPECT_EQ(DecodeConversationOwner("sales"), (router::ConversationOwner{"sales", std::nullopt}));
  EXPECT_EQ(DecodeConversationOwner(std::string("sales\0\x09", 7)), (router::ConversationOwner{"sales", std::nullopt}))
      << "not a level";
}

}  // namespace triage::storage
