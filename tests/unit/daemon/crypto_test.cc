#include "daemon/crypto.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "tests/test_util.h"

namespace triage::daemon {
namespace {

TEST(CryptoTest, HmacSha256MatchesRfc4231) {
  // RFC 4231 test case 2.
  EXPECT_EQ(absl::BytesToHexString(HmacSha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(CryptoTest, HexSignatureHeaderVerification) {
  const std::string body = R"({"id":"1"})";
  const std::string hex = absl::BytesToHexString(HmacSha256("secret", body));
  EXPECT_TRUE(VerifyHexHmacSha256("secret", body, "sha256=" + hex));
  EXPECT_TRUE(VerifyHexHmacSha256("secret", body, hex));
  std::string upper = hex;
  for (char& c : upper) c = static_cast<char>(std::toupper(c));
  EXPECT_TRUE(VerifyHexHmacSha256("secret", body, "sha256=" + upper));
  EXPECT_FALSE(VerifyHexHmacSha256("other", body, "sha256=" + hex));
  EXPECT_FALSE(VerifyHexHmacSha256("secret", body + " ", "sha256=" + hex));
  EXPECT_FALSE(VerifyHexHmacSha256("secret", body, ""));
  EXPECT_FALSE(VerifyHexHmacSha256("secret", body, "sha256="));
  EXPECT_FALSE(VerifyHexHmacSha256("secret", body, "sha256=" + hex.substr(2)));
  EXPECT_FALSE(VerifyHexHmacSha256("secret", body, "sha256=" + hex.substr(0, 62) + "zz"));
}

TEST(CryptoTest, ConstantTimeEqualsComparesLengthAndBytes) {
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "ab"));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
}

// The signing vectors of the Standard Webhooks reference libraries (tests/fixtures, copied
// from the shared reference).
TEST(CryptoTest, StandardWebhooksSignaturesMatchTheReferenceVectors) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  ASSERT_EQ(parser.load(TRIAGE_FIXTURES "/standard-webhooks-vectors.json").get(root), simdjson::SUCCESS);
  int checked = 0;
  for (simdjson::dom::element vector : root["sign_vectors"].get_array()) {
    auto text = [&](const char* field) { return std::string(std::string_view(vector[field])); };
    const std::string secret = text("secret");
    const std::string id = text("msg_id");
    const int64_t timestamp = int64_t(vector["timestamp"]);
    const std::string payload = text("payload");
    const std::string expected = text("expected_signature");
    const auto key = StandardWebhooksKey(secret);
    ASSERT_TRUE(key.ok());
    EXPECT_EQ(StandardWebhooksSignature(*key, id, timestamp, payload), expected)
        << text("name");
    ++checked;
  }
  EXPECT_EQ(checked, 4);
}

TEST(CryptoTest, StandardWebhooksKeyPrefixIsOptionalAndEmptyIsRefused) {
  const auto with = StandardWebhooksKey("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
  const auto without = StandardWebhooksKey("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
  ASSERT_TRUE(with.ok());
  ASSERT_TRUE(without.ok());
  EXPECT_EQ(*with, *without);
  EXPECT_EQ(with->size(), 24u);
  EXPECT_FALSE(StandardWebhooksKey("").ok());
  EXPECT_FALSE(StandardWebhooksKey("whsec_").ok());
}

}  // namespace
}  // namespace triage::daemon

namespace triage::daemon {
namespace {

// Published by xdevplatform/autohook (test/signature.js) and computed for the shared reference.
TEST(XSignatureTest, MatchesPublishedAndReferenceVectors) {
  EXPECT_EQ(XSignature("test", "test=1&other_test=2"), "sha256=25Cu3iwbbiqBTwQRzcKJZwisjf736V2Q8UaTlkfLSoc=");
  EXPECT_EQ(XSignature("test", R"({"test_number":1,"test_string":"two"})"),
            "sha256=YWHphPn/JFq43jkF0y4/w8R/SelmLjvpunhVFY8JhlI=");
  EXPECT_EQ(XSignature("test", "foo"), "sha256=HlU5y5rWhNi1SHftUCyOxuT6JRuDqeVBKWp1yvldR04=");
  EXPECT_EQ(XSignature("x-test-consumer-secret", "challenge_string"),
            "sha256=0GIgPlq9JK2TfmSvw5SkBen6/tBjvxWsMWX3BL1UmKY=");
}

TEST(XSignatureTest, VerifiesFixtureBytesExactly) {
  const std::string body = testing::ReadFixture("inbound/x_aaa_tweet_create_mention.json");
  ASSERT_EQ(body.size(), 2961u);
  const std::string header = "sha256=4T0hCaDMskJtoBqlz3dYgUbr/YWcGAPi302GnOfzgLk=";
  EXPECT_TRUE(VerifyBase64HmacSha256("x-test-consumer-secret", body, header, "sha256="));
  EXPECT_FALSE(VerifyBase64HmacSha256("x-test-consumer-secret", body.substr(0, body.size() - 1), header, "sha256="));
  EXPECT_FALSE(VerifyBase64HmacSha256("other", body, header, "sha256="));
  EXPECT_FALSE(VerifyBase64HmacSha256("x-test-consumer-secret", body, "", "sha256="));
  EXPECT_FALSE(VerifyBase64HmacSha256("x-test-consumer-secret", body, "sha256=", "sha256="));
}

TEST(MetaSignatureTest, VerifiesTheRawEscapedBytesNotADecodedCopy) {
  const std::string body = testing::ReadFixture("inbound/meta_messenger_text.json");
  ASSERT_EQ(body.size(), 318u);
  EXPECT_TRUE(VerifyHexHmacSha256(
      "meta-test-app-secret", body,
      "sha256=b0419df7c72153cb3ff30c103d6fb9cdeac7314d036ae08e1bd31187f589b62e"));
  EXPECT_TRUE(VerifyHexHmacSha256(
      "meta-test-app-secret", body.substr(0, 317),
      "sha256=f6185328ba606fe2d001572587bd5325b241d4e8cf42e98eb66e4dd7bbd1ccdb"));
  EXPECT_TRUE(VerifyHexHmacSha256(
      "meta-test-app-secret", testing::ReadFixture("inbound/whatsapp_cloud_text.json"),
      "sha256=0e6deecb364a2499560cf7a1920f14edc81e62a2c0fcfcd67a0f3f117056a797"));
  // The same text decoded to UTF-8 no longer matches.
  std::string decoded = body;
  decoded.replace(decoded.find("\\u00e7"), 6, "\xC3\xA7");
  EXPECT_FALSE(VerifyHexHmacSha256(
      "meta-test-app-secret", decoded,
      "sha256=b0419df7c72153cb3ff30c103d6fb9cdeac7314d036ae08e1bd31187f589b62e"));
}

// X's (Twitter's) documented example of signing a request with OAuth 1.0a: its parameters,
// keys, nonce and timestamp give its published signature.
TEST(CryptoTest, OAuth1SignatureMatchesTheDocumentedExample) {
  const OAuth1Credentials credentials{"xvz1evFS4wEEPTGEFPHBog", "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw",
                                      "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb",
                                      "LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE"};
  const std::string header = OAuth1Authorization(
      "post", "https://api.twitter.com/1.1/statuses/update.json",
      {{"include_entities", "true"}, {"status", "Hello Ladies + Gentlemen, a signed OAuth request!"}}, credentials,
      "kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg", 1318622958);
  EXPECT_TRUE(absl::StrContains(header, R"(oauth_signature="hCtSmYh%2BiHYCEqBWrE7C7hYmtUk%3D")")) << header;
  EXPECT_TRUE(absl::StartsWith(header, R"(OAuth oauth_consumer_key="xvz1evFS4wEEPTGEFPHBog", oauth_nonce=")")) << header;
  EXPECT_TRUE(absl::StrContains(header, R"(oauth_token="370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb")")) << header;
  EXPECT_NE(RandomHex(16), RandomHex(16));
  EXPECT_EQ(RandomHex(16).size(), 32u);
}

}  // namespace
}  // namespace triage::daemon
