#include <gtest/gtest.h>

#include "router/sources/threads/threads_source.h"
#include "tests/test_util.h"

namespace triage::router {
namespace {

ParseResult ParseBody(const std::string& body, std::vector<std::string> brands = {}) {
  ParseContext context;
  context.source = "threads";
  context.brand_ids = std::move(brands);
  auto result = ParseThreadsWebhook(body, context);
  EXPECT_TRUE(result.ok()) << result.status();
  return result.ok() ? *std::move(result) : ParseResult();
}

ParseResult Parse(const std::string& fixture, std::vector<std::string> brands = {}) {
  return ParseBody(testing::ReadFixture("inbound-more/threads/" + fixture), std::move(brands));
}

TEST(ThreadsSourceTest, AReplyWithValuesAsAnObject) {
  const ParseResult r = Parse("threads_replies_values_object.json");
  ASSERT_EQ(r.messages.size(), 1u);
  const Message& m = r.messages[0];
  EXPECT_EQ(m.platform, "threads");
  EXPECT_EQ(m.id, "17890000000000101");
  EXPECT_EQ(m.kind, "reply");
  EXPECT_EQ(m.channel, "public");
  EXPECT_EQ(m.author.id, "dana.example") << "Threads delivers a username only";
  EXPECT_EQ(m.author.handle, "dana.example");
  EXPECT_TRUE(m.author.verified);
  EXPECT_EQ(m.conversation_id, "17890000000000001") << "the root post";
  EXPECT_EQ(m.url, "https://www.threads.net/@dana.example/post/AbC1");
  EXPECT_EQ(m.created_at, absl::FromCivil(absl::CivilSecond(2026, 3, 3, 10, 2, 11), absl::UTCTimeZone()));
}

TEST(ThreadsSourceTest, ValuesAsAnArrayAndTheBrandsOwnReply) {
  const ParseResult r = Parse("threads_replies_values_array.json");
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].author.handle, "dana.example");
  EXPECT_EQ(r.ignored.at("own_account"), 1) << "the root post's owner replying is the brand";
}

TEST(ThreadsSourceTest, MentionsDeletesPublishesAndUnknownFields) {
  ParseResult r = Parse("threads_mentions.json");
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].kind, "mention");
  EXPECT_EQ(r.messages[0].conversation_id, "17890000000000201") << "no root post: its own thread";
  EXPECT_EQ(r.messages[0].url, "https://www.threads.com/@sam.p/post/XyZ9");
  // A top-level array of notifications.
  r = Parse("threads_delete_and_publish.json");
  EXPECT_TRUE(r.messages.empty());
  EXPECT_EQ(r.ignored.at("not_a_message"), 1);
  EXPECT_EQ(r.ignored.at("own_account"), 1);
  EXPECT_TRUE(r.complete());
  // A configured brand username is the brand's, whatever the thread.
  r = Parse("threads_mentions.json", {"Sam.P"});
  EXPECT_TRUE(r.messages.empty());
  r = ParseBody(R"({"time":1,"values":{"field":"quotes","value":{"id":"1","username":"x"}}})");
  EXPECT_FALSE(r.complete());
  EXPECT_EQ(r.unreadable.at(0), "Threads field 'quotes'");
  ParseContext context;
  EXPECT_FALSE(ParseThreadsWebhook(R"({"object":"page","entry":[]})", context).ok());
}

}  // namespace
}  // namespace triage::router
