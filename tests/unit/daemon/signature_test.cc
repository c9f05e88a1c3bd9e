#include <gtest/gtest.h>

#include "absl/strings/escaping.h"
#include "daemon/crypto.h"
#include "daemon/ingest.h"
#include "router/sources/source_type.h"
#include "tests/test_util.h"

#include <simdjson.h>

namespace triage::daemon {
namespace {

using Check = router::SignatureCheck;

Request Post(std::string body, std::vector<std::pair<std::string, std::string>> headers) {
  Request request{http::verb::post, "/webhooks/s", 11};
  for (const auto& [name, value] : headers) request.set(name, value);
  request.body() = std::move(body);
  return request;
}

std::string Hex(const std::string& key, const std::string& body) { return absl::BytesToHexString(HmacSha256(key, body)); }
std::string Base64(const std::string& key, const std::string& body) { return absl::Base64Escape(HmacSha256(key, body)); }

TEST(SignatureTest, HexWithAnOptionalOrRequiredPrefix) {
  const std::vector<Check> optional = {{Check::Kind::kHmacSha256Hex, "X-Sig", "sha256=", false, false, "k"}};
  EXPECT_TRUE(SignatureValid(optional, Post("b", {{"X-Sig", "sha256=" + Hex("k", "b")}})));
  EXPECT_TRUE(SignatureValid(optional, Post("b", {{"X-Sig", Hex("k", "b")}})));
  EXPECT_FALSE(SignatureValid(optional, Post("b", {{"X-Sig", Hex("other", "b")}})));
  EXPECT_FALSE(SignatureValid(optional, Post("b", {})));
  const std::vector<Check> required = {{Check::Kind::kHmacSha256Hex, "X-Sig", "sha256=", true, false, "k"}};
  EXPECT_FALSE(SignatureValid(required, Post("b", {{"X-Sig", Hex("k", "b")}})));
}

TEST(SignatureTest, AnOnlyIfPresentCheckDecidesWhenItsHeaderIsThere) {
  const std::vector<Check> checks = {
      {Check::Kind::kHmacSha256Base64, "X-New", "sha256=", true, true, "new"},
      {Check::Kind::kHmacSha256Base64, "X-Old", "sha256=", true, false, "old"}};
  EXPECT_TRUE(SignatureValid(checks, Post("b", {{"X-Old", "sha256=" + Base64("old", "b")}})));
  EXPECT_TRUE(SignatureValid(checks, Post("b", {{"X-New", "sha256=" + Base64("new", "b")}})));
  // The new header is there and wrong: it decides, the old one is not consulted.
  EXPECT_FALSE(SignatureValid(checks, Post("b", {{"X-New", "sha256=" + Base64("old", "b")},
                                                 {"X-Old", "sha256=" + Base64("old", "b")}})));
  // Base64 without a prefix (LINE's form).
  const std::vector<Check> bare = {{Check::Kind::kHmacSha256Base64, "x-line-signature", "", false, false, "k"}};
  EXPECT_TRUE(SignatureValid(bare, Post("b", {{"x-line-signature", Base64("k", "b")}})));
  EXPECT_FALSE(SignatureValid(bare, Post("b", {{"x-line-signature", ""}})));
}

TEST(SignatureTest, ASharedTokenIsComparedWhole) {
  const std::vector<Check> token = {{Check::Kind::kSharedToken, "X-Token", "", false, false, "s3cr3t-t0ken"}};
  EXPECT_TRUE(SignatureValid(token, Post("anything", {{"X-Token", "s3cr3t-t0ken"}})));
  EXPECT_FALSE(SignatureValid(token, Post("anything", {{"X-Token", "s3cr3t"}})));
  EXPECT_FALSE(SignatureValid(token, Post("anything", {})));
  EXPECT_FALSE(SignatureValid({}, Post("anything", {{"X-Token", "s3cr3t-t0ken"}}))) << "no check: refused";
}

// LINE's published vectors (line-bot-sdk python, java and nodejs tests), through the LINE
// source type's own checks: the right signature passes, each test's wrong one does not.
TEST(SignatureTest, LinesPublishedVectorsPassTheLineSourcesChecks) {
  const router::SourceType* line = router::FindSourceType("line");
  ASSERT_NE(line, nullptr);
  simdjson::dom::parser parser;
  const std::string vectors = testing::ReadFixture("inbound-more/line/signature_vectors.json");
  int checked = 0;
  for (simdjson::dom::element v : parser.parse(vectors)["vectors"].get_array()) {
    router::Settings settings;
    settings.values["channel_secret"] = std::string(std::string_view(v["channel_secret"]));
    const std::vector<Check> checks = line->Signature(settings);
    const std::string body = testing::ReadFixture("inbound-more/line/" + std::string(std::string_view(v["body_file"])));
    EXPECT_TRUE(SignatureValid(checks, Post(body, {{"x-line-signature", std::string(std::string_view(v["x_line_signature"]))}})))
        << std::string_view(v["body_file"]);
    EXPECT_FALSE(SignatureValid(checks, Post(body, {{"x-line-signature", std::string(std::string_view(v["negative_example"]))}})));
    ++checked;
  }
  EXPECT_EQ(checked, 4);
}

}  // namespace
}  // namespace triage::daemon
