#include "router/sources/generic/generic_source.h"

#include <gtest/gtest.h>

#include "router/json_writer.h"

namespace triage::router {
namespace {

constexpr char kOne[] =
    R"({"id":"m1","platform":"x","text":"caf\u00e9 down","created_at":"2026-03-03T10:02:11Z",)"
    R"("author":{"id":"a1","handle":"dana","name":"Dana","followers":120,"verified":true},)"
    R"("conversation_id":"c1","url":"https://x.com/dana/status/1","extra":{"ignored":[1,2]}})";

TEST(GenericSourceTest, ParsesOneMessageWithEveryField) {
  const auto messages = ParseGenericPayload(kOne, "generic", PayloadLimits());
  ASSERT_TRUE(messages.ok()) << messages.status();
  ASSERT_EQ(messages->size(), 1u);
  const Message& m = (*messages)[0];
  EXPECT_EQ(m.source, "generic");
  EXPECT_EQ(m.id, "m1");
  EXPECT_EQ(m.platform, "x");
  EXPECT_EQ(m.text, "caf\xc3\xa9 down");
  EXPECT_EQ(m.created_at, absl::FromUnixSeconds(1772532131));
  EXPECT_EQ(m.author.id, "a1");
  EXPECT_EQ(m.author.handle, "dana");
  EXPECT_EQ(m.author.followers, 120);
  EXPECT_TRUE(m.author.verified);
  EXPECT_EQ(m.conversation_id, "c1");
  EXPECT_EQ(m.url, "https://x.com/dana/status/1");
}

TEST(GenericSourceTest, ParsesArraysAndEpochMillis) {
  const auto messages = ParseGenericPayload(
      R"([{"id":"1","platform":"x","text":"a","created_at":1772532131000,"author":{"id":"u"}},)"
      R"( {"id":"2","platform":"x","text":"b","created_at":1772532131000,"author":{"id":"u","followers":null}}])",
      "s", PayloadLimits());
  ASSERT_TRUE(messages.ok()) << messages.status();
  ASSERT_EQ(messages->size(), 2u);
  EXPECT_EQ((*messages)[1].id, "2");
  EXPECT_EQ((*messages)[0].created_at, absl::FromUnixMillis(1772532131000));
  EXPECT_FALSE((*messages)[1].author.followers.has_value());
}

struct BadCase {
  std::string body;
  std::string error;
};

TEST(GenericSourceTest, RejectsBadPayloadsWithThePathOfTheProblem) {
  const std::string ok_tail = R"("created_at":"2026-03-03T10:02:11Z","author":{"id":"u"})";
  const std::vector<BadCase> cases = {
      {"", "malformed JSON"},
      {"{", "malformed JSON"},
      {"[]", "the array holds no message"},
      {"42", ": must be an object"},
      {R"({"platform":"x","text":"t",)" + ok_tail + "}", "id: is required"},
      {R"({"id":"","platform":"x","text":"t",)" + ok_tail + "}", "id: must not be empty"},
      {R"({"id":7,"platform":"x","text":"t",)" + ok_tail + "}", "id: must be a string"},
      {R"({"id":"1","platform":"x",)" + ok_tail + "}", "text: is required"},
      {R"({"id":"1","platform":"x","text":"t","author":{"id":"u"}})", "created_at: is required"},
      {R"({"id":"1","platform":"x","text":"t","created_at":"yesterday","author":{"id":"u"}})",
       "created_at: must be an RFC 3339 time or integer epoch milliseconds"},
      {R"({"id":"1","platform":"x","text":"t","created_at":9223372036854775807,"author":{"id":"u"}})",
       "created_at: must be within the years 1 to 9999"},
      {R"({"id":"1","platform":"x","text":"t","created_at":-9223372036854775807,"author":{"id":"u"}})",
       "created_at: must be within the years 1 to 9999"},
      {R"({"id":"1","platform":"x","text":"t","created_at":"10000-01-01T00:00:00Z","author":{"id":"u"}})",
       "created_at: must be within the years 1 to 9999"},
      {R"({"id":"1","platform":"x","text":"t","created_at":1})", "author: is required"},
      {R"({"id":"1","platform":"x","text":"t","created_at":1,"author":{"id":"u","followers":-1}})",
       "author.followers: must be a non-negative integer"},
      {R"({"id":"1","platform":"x","text":"t","created_at":1,"author":{"id":"u","verified":"yes"}})",
       "author.verified: must be true or false"},
      {R"([{"id":"1","platform":"x","text":"t","created_at":1,"author":{"id":"u"}},{"id":"2"}])",
       "[1].platform: is required"},
      {R"({"id":"a\u0001b","platform":"x","text":"t","created_at":1,"author":{"id":"u"}})",
       "id: must not contain control characters"},
  };
  for (const BadCase& c : cases) {
    const auto result = ParseGenericPayload(c.body, "s", PayloadLimits());
    ASSERT_FALSE(result.ok()) << c.body;
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(std::string(result.status().message()).find(c.error), std::string::npos)
        << c.body << " -> " << result.status().message();
  }
}

TEST(GenericSourceTest, EnforcesLimits) {
  PayloadLimits limits;
  limits.max_messages = 2;
  limits.max_depth = 4;
  limits.max_text_bytes = 5;
  const std::string one = R"({"id":"1","platform":"x","text":"t","created_at":1,"author":{"id":"u"}})";
  EXPECT_TRUE(ParseGenericPayload("[" + one + "," + one + "]", "s", limits).ok());
  EXPECT_NE(std::string(ParseGenericPayload("[" + one + "," + one + "," + one + "]", "s", limits)
                            .status()
                            .message())
                .find("more than 2 messages"),
            std::string::npos);
  EXPECT_NE(std::string(ParseGenericPayload(R"({"a":[[[[[[1]]]]]]})", "s", limits).status().message())
                .find("nested deeper than 4"),
            std::string::npos);
  EXPECT_FALSE(ParseGenericPayload(
                   R"({"id":"1","platform":"x","text":"toolong","created_at":1,"author":{"id":"u"}})",
                   "s", limits)
                   .ok());
}

TEST(JsonWriterTest, TimesOutsideFourDigitYearsAreNull) {
  JsonWriter w;
  w.BeginArray().Time(absl::FromUnixMillis(9999999999999999)).Time(absl::InfinitePast());
  w.Time(absl::FromUnixMillis(-1)).Time(absl::FromUnixMillis(253402300799999)).EndArray();
  EXPECT_EQ(w.str(), R"([null,null,"1969-12-31T23:59:59.999Z","9999-12-31T23:59:59.999Z"])");
}

TEST(JsonWriterTest, EscapesStringsAndPlacesCommas) {
  JsonWriter w;
  w.BeginObject().Key("a\"b").String("line\nnext\x01").Key("n").Int(-3).Key("l").BeginArray();
  w.Bool(true).Null().EndArray().Key("t").Time(absl::FromUnixMillis(1772532131005)).EndObject();
  EXPECT_EQ(w.str(),
            R"({"a\"b":"line\nnext\u0001","n":-3,"l":[true,null],"t":"2026-03-03T10:02:11.005Z"})");
}

}  // namespace
}  // namespace triage::router
