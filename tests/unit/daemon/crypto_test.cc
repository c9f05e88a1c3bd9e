#include "daemon/crypto.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include "absl/strings/escaping.h"

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
