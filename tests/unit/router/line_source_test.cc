#include <gtest/gtest.h>

#include "router/sources/line/line_source.h"
#include "tests/test_util.h"

namespace triage::router {
namespace {

ParseResult Parse(const std::string& fixture) {
  ParseContext context;
  context.source = "line";
  auto result = ParseLineWebhook(testing::ReadFixture("inbound-more/line/" + fixture), context);
  EXPECT_TRUE(result.ok()) << fixture << ": " << result.status();
  return result.ok() ? *std::move(result) : ParseResult();
}

TEST(LineSourceTest, AOneToOneTextIsADirectMessage) {
  const ParseResult r = Parse("java_callback_text_user.json");
  ASSERT_EQ(r.messages.size(), 1u);
  const Message& m = r.messages[0];
  EXPECT_EQ(m.platform, "line");
  EXPECT_EQ(m.id, "325708");
  EXPECT_EQ(m.kind, "direct_message");
  EXPECT_EQ(m.channel, "private");
  EXPECT_EQ(m.author.id, "u206d25c2ea6bd87c17655609a1c37cb8");
  EXPECT_EQ(m.conversation_id, "u206d25c2ea6bd87c17655609a1c37cb8");
  EXPECT_EQ(m.text, "Hello, world");
  EXPECT_EQ(m.created_at, absl::FromUnixMillis(1462629479859));
}

TEST(LineSourceTest, AGroupMessageWithoutItsUserIsFiledAgainstTheGroup) {
  const ParseResult r = Parse("java_callback_text_group.json");
  ASSERT_EQ(r.messages.size(), 1u) << "standby mode: still filed";
  const Message& m = r.messages[0];
  EXPECT_EQ(m.channel, "public");
  EXPECT_EQ(m.kind, "comment");
  EXPECT_TRUE(m.author.id.empty()) << "never merged into one made-up customer";
  EXPECT_EQ(m.author.name, "unknown member");
  EXPECT_EQ(m.conversation_id, "u206d25c2ea6bd87c17655609a1c37cb8");
}

TEST(LineSourceTest, EditsRedeliveriesAndEveryEventType) {
  ParseResult r = Parse("java_callback_message_edited.json");
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].text, "Hello, edited world");
  EXPECT_EQ(r.messages[0].dedup_id(), "325708/edited/1462629479859");
  // A redelivery is the same message: the same dedup key as the first delivery.
  const ParseResult first = Parse("java_callback_text_user.json");
  r = Parse("java_callback_webhook_redelivery.json");
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].dedup_id(), first.messages[0].dedup_id());
  // 28 events of every type: 12 messages (one an edit), 14 lifecycle and button events and an
  // unsend counted, and the "undefined" type marked unreadable.
  r = Parse("python_v3_webhook_all_event_types.json");
  EXPECT_EQ(r.messages.size(), 12u);
  EXPECT_EQ(r.ignored.at("not_a_message"), 15);
  EXPECT_EQ(r.ignored.at("could_not_read"), 1);
  EXPECT_EQ(r.unreadable.at(0), "LINE event type 'undefined'");
  for (const Message& m : r.messages) EXPECT_FALSE(m.text.empty()) << m.id;
}

TEST(LineSourceTest, TheVerifyButtonsEmptyBatchAndWhatIsNotLine) {
  ParseContext context;
  const auto empty = ParseLineWebhook(R"({"destination":"Uab0","events":[]})", context);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->messages.empty());
  EXPECT_TRUE(empty->complete());
  EXPECT_FALSE(ParseLineWebhook(R"({"destination":"Uab0"})", context).ok());
  EXPECT_FALSE(ParseLineWebhook("[]", context).ok());
}

}  // namespace
}  // namespace triage::router
