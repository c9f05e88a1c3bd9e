#include <gtest/gtest.h>

#include "router/sources/meta/meta_source.h"
#include "tests/test_util.h"

namespace triage::router {
namespace {

using testing::ReadFixture;

ParseResult Parse(const std::string& fixture) {
  ParseContext context;
  context.source = "meta-acme";
  auto result = ParseMetaPayload(ReadFixture("inbound/" + fixture), context);
  EXPECT_TRUE(result.ok()) << fixture << ": " << result.status();
  return result.ok() ? *std::move(result) : ParseResult();
}

TEST(MetaSourceTest, PageFeedComment) {
  const ParseResult r = Parse("meta_page_feed_comment.json");
  ASSERT_EQ(r.messages.size(), 1u);
  const Message& m = r.messages[0];
  EXPECT_EQ(m.platform, "facebook");
  EXPECT_EQ(m.kind, "comment");
  EXPECT_EQ(m.channel, "public");
  EXPECT_EQ(m.id, "700000000000007_800000000000008");
  EXPECT_EQ(m.account_id, "500000000000001");
  EXPECT_EQ(m.author.id, "6000000000000006");
  EXPECT_EQ(m.author.name, "Alex Test");
  EXPECT_FALSE(m.author.followers.has_value()) << "Meta gives no follower counts";
  EXPECT_EQ(m.text, "Still no refund after 3 weeks. Very disappointed.");
  EXPECT_EQ(m.created_at, absl::FromUnixSeconds(1772530995));
  EXPECT_EQ(m.conversation_id, "500000000000001_700000000000007");
}

TEST(MetaSourceTest, MessengerTextDecodesEscapedUnicode) {
  const ParseResult r = Parse("meta_messenger_text.json");
  ASSERT_EQ(r.messages.size(), 1u);
  const Message& m = r.messages[0];
  EXPECT_EQ(m.platform, "messenger");
  EXPECT_EQ(m.kind, "direct_message");
  EXPECT_EQ(m.channel, "private");
  EXPECT_EQ(m.id, "m_TESTMID0000000000000000000000001");
  EXPECT_EQ(m.text, "Commande jamais re\xC3\xA7ue, tr\xC3\xA8s d\xC3\xA9\xC3\xA7u \xF0\x9F\x98\xA0");
  EXPECT_EQ(m.created_at, absl::FromUnixMillis(1772531234001));
  EXPECT_EQ(m.conversation_id, "dm:9000000000000009");
}

ParseResult ParseBody(const std::string& body) {
  ParseContext context;
  context.source = "meta-acme";
  auto result = ParseMetaPayload(body, context);
  EXPECT_TRUE(result.ok()) << result.status();
  return result.ok() ? *std::move(result) : ParseResult();
}

TEST(MetaSourceTest, NumericIdsAreIdsNotAbsences) {
  // Some Messenger payloads carry the ids as JSON numbers: the message is kept, not dropped.
  const ParseResult dm = ParseBody(R"({"object":"page","entry":[{"id":500000000000001,"time":1772531234001,
    "messaging":[{"sender":{"id":987654321432},"recipient":{"id":500000000000001},"timestamp":1772531234001,
    "message":{"mid":"m_NUMERIC","text":"where is my order"}}]}]})");
  ASSERT_EQ(dm.messages.size(), 1u);
  EXPECT_EQ(dm.messages[0].author.id, "987654321432");
  EXPECT_EQ(dm.messages[0].account_id, "500000000000001");
  EXPECT_EQ(dm.messages[0].conversation_id, "dm:987654321432");
  // Older Graph feed items name the author with sender_id (a number) and sender_name; the
  // Page's own item is recognised by it.
  const ParseResult feed = ParseBody(R"({"object":"page","entry":[{"id":"500000000000001","time":1772530995,
    "changes":[{"field":"feed","value":{"item":"comment","verb":"add","comment_id":"7_8","post_id":"7",
      "sender_id":6000000000000006,"sender_name":"Alex Test","message":"no refund yet","created_time":1772530995}},
     {"field":"feed","value":{"item":"comment","verb":"add","comment_id":"7_9","post_id":"7",
      "sender_id":500000000000001,"sender_name":"Acme","message":"we are on it","created_time":1772530996}}]}]})");
  ASSERT_EQ(feed.messages.size(), 1u);
  EXPECT_EQ(feed.messages[0].author.id, "6000000000000006");
  EXPECT_EQ(feed.messages[0].author.name, "Alex Test");
  EXPECT_EQ(feed.ignored.at("own_account"), 1);
}

TEST(MetaSourceTest, MessagingUnderAnUnknownObjectIsNotReadAsMessenger) {
  const ParseResult r = ParseBody(R"({"object":"user","entry":[{"id":"1","time":1772531234,
    "messaging":[{"sender":{"id":"2"},"recipient":{"id":"1"},"message":{"mid":"m_X","text":"hi"}}]}]})");
  EXPECT_TRUE(r.messages.empty());
  EXPECT_EQ(r.ignored.at("could_not_read"), 1);
}

TEST(MetaSourceTest, MixedBatchRoutesCustomersAndCountsTheRest) {
  const ParseResult r = Parse("meta_batch_mixed.json");
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[0].kind, "comment");
  EXPECT_EQ(r.messages[0].author.name, "Jos\xC3\xA9 Mart\xC3\xADnez");
  EXPECT_EQ(r.messages[0].url, "https://www.facebook.com/500000000000001/posts/700000000000007");
  EXPECT_EQ(r.messages[1].kind, "direct_message");
  EXPECT_EQ(r.messages[1].id, "m_TESTMID0000000000000000000000002");
  EXPECT_EQ(r.ignored.at("own_account"), 2);  // the Page's own comment and the echo
  EXPECT_EQ(r.ignored.at("not_a_message"), 2);  // the reaction and the read receipt
  EXPECT_EQ(r.events.at("read"), 1);
  EXPECT_EQ(r.events.at("reaction"), 1);
  EXPECT_EQ(r.events.at("echo"), 1);
}

TEST(MetaSourceTest, InstagramDmAndCommentAndMentionWithoutText) {
  const ParseResult r = Parse("meta_instagram_dm_and_comment.json");
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[0].platform, "instagram");
  EXPECT_EQ(r.messages[0].kind, "direct_message");
  EXPECT_EQ(r.messages[0].text, "The serum gave me an allergic reaction, my face is swollen");
  EXPECT_EQ(r.messages[1].kind, "comment");
  EXPECT_EQ(r.messages[1].author.handle, "glow_fan");
  EXPECT_EQ(r.messages[1].conversation_id, "17900000000000003");
  EXPECT_EQ(r.messages[1].created_at, absl::FromUnixSeconds(1772532001));  // entry.time in s
  EXPECT_EQ(r.ignored.at("no_content"), 1);
}

TEST(MetaSourceTest, WhatsAppMessagesStatusesAndUsernames) {
  const ParseResult r = Parse("whatsapp_cloud_text.json");
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].platform, "whatsapp");
  EXPECT_EQ(r.messages[0].id, "wamid.TEST0000000000000000000000000000000001");
  EXPECT_EQ(r.messages[0].author.id, "15550002222");
  EXPECT_EQ(r.messages[0].author.name, "Jordan Placeholder");
  EXPECT_EQ(r.messages[0].account_id, "110000000000011");
  EXPECT_EQ(r.messages[0].created_at, absl::FromUnixSeconds(1772531500));

  const ParseResult mixed = Parse("whatsapp_message_and_status.json");
  ASSERT_EQ(mixed.messages.size(), 2u);
  EXPECT_EQ(mixed.messages[0].text, "This is what arrived. Broken.");  // image caption
  EXPECT_EQ(mixed.messages[0].author.name, "Mar\xC3\xAD" "a");
  EXPECT_EQ(mixed.messages[0].author.handle, "maria.s");
  // A username user with no phone number: keyed on the business-scoped user id.
  EXPECT_EQ(mixed.messages[1].author.id, "US.1349000000000002");
  EXPECT_EQ(mixed.messages[1].author.name, "Neo Username");
  EXPECT_EQ(mixed.messages[1].conversation_id, "wa:US.1349000000000002");
  EXPECT_EQ(mixed.events.at("status"), 2);
  EXPECT_EQ(mixed.events.at("reaction"), 1);
}

TEST(MetaSourceTest, HostileShapesAreSkippedNotFatal) {
  const ParseResult r = Parse("meta_hostile_shapes.json");
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].text, "[image] [audio]");
}

TEST(MetaSourceTest, RejectsWhatIsNotAMetaEnvelopeAndOversizedBatches) {
  ParseContext context;
  EXPECT_FALSE(ParseMetaPayload(R"({"entry":[]})", context).ok());
  EXPECT_FALSE(ParseMetaPayload(R"({"object":"page"})", context).ok());
  context.limits.max_messages = 2;
  EXPECT_EQ(ParseMetaPayload(ReadFixture("inbound/meta_batch_mixed.json"), context).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(MetaSourceTest, AnEditIsANewEventOnTheSameComment) {
  ParseContext context;
  const auto edited = ParseMetaPayload(
      R"({"object":"page","entry":[{"id":"1","time":1,"changes":[{"field":"feed","value":{"from":{"id":"2"},"item":"comment","verb":"edited","comment_id":"c1","post_id":"p1","message":"edited text","created_time":1772531000}}]}]})",
      context);
  ASSERT_TRUE(edited.ok());
  ASSERT_EQ(edited->messages.size(), 1u);
  EXPECT_EQ(edited->messages[0].id, "c1");
  EXPECT_EQ(edited->messages[0].dedup_id(), "c1/edited/1772531000");
}

// One fixture per class of body the parser once got wrong (issue: never lose what a customer
// wrote).
TEST(MetaSourceTest, AWhatsAppRevokeIsADeleteNotATicket) {
  const ParseResult r = Parse("whatsapp_class_revoke.json");
  EXPECT_TRUE(r.messages.empty());
  EXPECT_EQ(r.ignored.at("not_a_message"), 1);
  EXPECT_EQ(r.events.at("message_deleted"), 1);
  EXPECT_TRUE(r.complete());
}

TEST(MetaSourceTest, AWhatsAppEditCarriesItsNewWordsAndTheOriginalsId) {
  const ParseResult r = Parse("whatsapp_class_edit.json");
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].text, "my shop opens in 30 minutes now, please hurry");
  EXPECT_EQ(r.messages[0].id, "wamid.TEST0000000000000000000000000000000001");
  EXPECT_EQ(r.messages[0].dedup_id(), "wamid.TEST0000000000000000000000000000000001/edited/wamid.EDIT0001")
      << "a new event, not a duplicate of the original";
  EXPECT_EQ(r.messages[0].conversation_id, "wa:15550002222");
}

TEST(MetaSourceTest, WhatsAppInteractiveRepliesCarryTheirWordsOrAreNotMessages) {
  const ParseResult r = Parse("whatsapp_class_interactive.json");
  ASSERT_EQ(r.messages.size(), 3u);
  EXPECT_EQ(r.messages[0].text, "I want a refund");
  EXPECT_EQ(r.messages[1].text, "Late delivery: order not arrived");
  EXPECT_EQ(r.messages[2].text, "Sent");
  EXPECT_EQ(r.ignored.at("not_a_message"), 1) << "the call permission reply has no words";
  EXPECT_EQ(r.events.at("interactive"), 1);
}

TEST(MetaSourceTest, AWhatsAppMessageWithoutFromTakesItsAuthorFromTheContact) {
  const ParseResult r = Parse("whatsapp_class_no_from.json");
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].author.id, "US.1349000000000001");
  EXPECT_EQ(r.messages[0].author.name, "Sam Placeholder");
  EXPECT_EQ(r.messages[0].author.handle, "sam.p");
  EXPECT_EQ(r.messages[0].text, "where is my parcel?");
}

TEST(MetaSourceTest, AnUnknownWhatsAppTypeIsNotGuessedAtButMarkedUnreadable) {
  const ParseResult r = Parse("whatsapp_class_unknown_type.json");
  EXPECT_TRUE(r.messages.empty());
  EXPECT_FALSE(r.complete());
  EXPECT_EQ(r.ignored.at("could_not_read"), 1);
  ASSERT_EQ(r.unreadable.size(), 1u);
  EXPECT_EQ(r.unreadable[0], "WhatsApp message type 'hologram'");
}

TEST(MetaSourceTest, AccountAndTemplateNotificationsAndAppEchoesAreRoutineNotUnreadable) {
  const ParseResult r = Parse("whatsapp_class_notifications.json");
  EXPECT_TRUE(r.messages.empty());
  EXPECT_TRUE(r.complete());
  EXPECT_EQ(r.ignored.at("not_a_message"), 2);
  EXPECT_EQ(r.ignored.at("own_account"), 1);
}

TEST(MetaSourceTest, AnUnknownObjectIsUnreadable) {
  const ParseResult r = Parse("meta_class_unknown_object.json");
  EXPECT_TRUE(r.messages.empty());
  EXPECT_FALSE(r.complete());
  ASSERT_EQ(r.unreadable.size(), 1u);
  EXPECT_EQ(r.unreadable[0], "marketplace change 'listings'");
}

}  // namespace
}  // namespace triage::router
