#include <gtest/gtest.h>

#include "router/sources/telegram/telegram_source.h"
#include "tests/test_util.h"

namespace triage::router {
namespace {

ParseResult ParseBody(const std::string& body, std::vector<std::string> bots = {}) {
  ParseContext context;
  context.source = "telegram";
  context.brand_ids = std::move(bots);
  auto result = ParseTelegramUpdate(body, context);
  EXPECT_TRUE(result.ok()) << result.status();
  return result.ok() ? *std::move(result) : ParseResult();
}

ParseResult Parse(const std::string& fixture) {
  return ParseBody(testing::ReadFixture("inbound-more/telegram/" + fixture));
}

TEST(TelegramSourceTest, APrivateTextIsADirectMessageKeyedByChatAndMessage) {
  const ParseResult r = Parse("nutgram_private_text.json");
  ASSERT_EQ(r.messages.size(), 1u);
  const Message& m = r.messages[0];
  EXPECT_EQ(m.platform, "telegram");
  EXPECT_EQ(m.id, "12345678:123456");
  EXPECT_EQ(m.kind, "direct_message");
  EXPECT_EQ(m.channel, "private");
  EXPECT_EQ(m.author.id, "12345678");
  EXPECT_EQ(m.author.handle, "MarioLovesPeach");
  EXPECT_EQ(m.author.name, "Mario Bros");
  EXPECT_EQ(m.text, "aaaaaaaaaa");
  EXPECT_EQ(m.created_at, absl::FromUnixSeconds(1631818904));
  EXPECT_EQ(m.conversation_id, "12345678");
  EXPECT_EQ(m.language, "it");
  EXPECT_TRUE(m.url.empty()) << "a private chat has no public link";
}

TEST(TelegramSourceTest, AForumReplyInASupergroupKeepsItsTopicAndLink) {
  const ParseResult r = Parse("nutgram_supergroup_forum_reply.json");
  ASSERT_EQ(r.messages.size(), 1u);
  const Message& m = r.messages[0];
  EXPECT_EQ(m.id, "-1001234567489:72") << "negative chat ids are ids";
  EXPECT_EQ(m.conversation_id, "-1001234567489:33");
  EXPECT_EQ(m.channel, "public");
  EXPECT_EQ(m.kind, "comment") << "a reply to a person, not to the bot";
  EXPECT_EQ(m.url, "https://t.me/testing/72");
  EXPECT_EQ(m.text, "bbbb");
}

TEST(TelegramSourceTest, BusinessMessagesReactionsAndMembershipChanges) {
  ParseResult r = Parse("nutgram_business_message.json");
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].text, "Ciao");
  r = Parse("nutgram_message_reaction.json");
  EXPECT_TRUE(r.messages.empty());
  EXPECT_EQ(r.ignored.at("not_a_message"), 1);
  EXPECT_TRUE(r.complete());
  r = ParseBody(R"({"update_id":5,"my_chat_member":{"chat":{"id":7,"type":"private"},"from":{"id":7},"date":1,
    "old_chat_member":{"status":"member"},"new_chat_member":{"status":"kicked"}}})");
  EXPECT_TRUE(r.messages.empty());
  EXPECT_EQ(r.ignored.at("not_a_message"), 1);
  // A business message names its connection: a key space of its own.
  r = ParseBody(R"({"update_id":6,"business_message":{"business_connection_id":"bc1","message_id":9,
    "from":{"id":456,"first_name":"Mario"},"chat":{"id":456,"type":"private"},"date":1684984664,"text":"Ciao"}})");
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].id, "bc1:456:9");
}

TEST(TelegramSourceTest, CaptionsMediaChannelPostsEditsAndMentions) {
  ParseResult r = ParseBody(R"({"update_id":10,"message":{"message_id":3,"from":{"id":8,"first_name":"Ana"},
    "chat":{"id":8,"type":"private"},"date":1700000000,"photo":[{"file_id":"f"}],"caption":"my parcel arrived broken"}})");
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].text, "my parcel arrived broken");
  r = ParseBody(R"({"update_id":11,"message":{"message_id":4,"from":{"id":8},"chat":{"id":8,"type":"private"},
    "date":1700000000,"voice":{"file_id":"v"}}})");
  EXPECT_EQ(r.messages.at(0).text, "[voice]");
  // A channel post without from: the channel is the author.
  r = ParseBody(R"({"update_id":12,"channel_post":{"message_id":5,"chat":{"id":-1009,"title":"Deals","username":"deals",
    "type":"channel"},"date":1700000000,"text":"Acme sold us broken chargers"}})");
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].author.id, "-1009");
  EXPECT_EQ(r.messages[0].author.name, "Deals");
  EXPECT_EQ(r.messages[0].kind, "comment");
  // An edit is a new event on the same message.
  r = ParseBody(R"({"update_id":13,"edited_message":{"message_id":3,"from":{"id":8},"chat":{"id":8,"type":"private"},
    "date":1700000000,"edit_date":1700000100,"text":"my parcel arrived broken, twice"}})");
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].id, "8:3");
  EXPECT_EQ(r.messages[0].dedup_id(), "8:3/edited/1700000100");
  EXPECT_EQ(r.messages[0].created_at, absl::FromUnixSeconds(1700000100));
  // In a group: a mention of the bot, and a reply to the bot.
  r = ParseBody(R"({"update_id":14,"message":{"message_id":6,"from":{"id":8},"chat":{"id":-55,"type":"group"},
    "date":1700000000,"text":"@acme_bot help","entities":[{"type":"mention","offset":0,"length":9}]}})");
  EXPECT_EQ(r.messages.at(0).kind, "mention");
  r = ParseBody(R"({"update_id":15,"message":{"message_id":7,"from":{"id":8},"chat":{"id":-55,"type":"group"},
    "date":1700000000,"text":"still broken","reply_to_message":{"message_id":2,"from":{"id":999,"is_bot":true},
    "chat":{"id":-55,"type":"group"},"date":1}}})");
  EXPECT_EQ(r.messages.at(0).kind, "reply");
}

TEST(TelegramSourceTest, TheBotsOwnServiceAndUnknownUpdates) {
  ParseResult r = ParseBody(R"({"update_id":20,"message":{"message_id":1,"from":{"id":999,"is_bot":true},
    "chat":{"id":-55,"type":"group"},"date":1,"text":"Welcome!"}})", {"999"});
  EXPECT_TRUE(r.messages.empty());
  EXPECT_EQ(r.ignored.at("own_account"), 1);
  r = ParseBody(R"({"update_id":21,"message":{"message_id":2,"from":{"id":8},"chat":{"id":-55,"type":"group"},
    "date":1,"new_chat_members":[{"id":8}]}})");
  EXPECT_TRUE(r.messages.empty());
  EXPECT_EQ(r.ignored.at("not_a_message"), 1);
  r = ParseBody(R"({"update_id":22,"hologram_message":{"message_id":1}})");
  EXPECT_FALSE(r.complete()) << "a kind this version does not know is quarantined";
  ParseContext context;
  EXPECT_FALSE(ParseTelegramUpdate(R"({"message":{}})", context).ok());
  EXPECT_FALSE(ParseTelegramUpdate("[]", context).ok());
}

}  // namespace
}  // namespace triage::router
