#include "daemon/crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/time/clock.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "router/text.h"

namespace triage::daemon {

std::string HmacSha256(absl::string_view key, absl::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &length);
  return std::string(reinterpret_cast<const char*>(out), length);
}

std::string Sha256(absl::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(data.data(), data.size(), out, &length, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<const char*>(out), length);
}

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

bool VerifyHexHmacSha256(absl::string_view secret, absl::string_view body,
                         absl::string_view header_value, absl::string_view prefix) {
  absl::string_view hex = absl::StripAsciiWhitespace(header_value);
  absl::ConsumePrefix(&hex, prefix);
  if (hex.size() != 64) return false;
  for (const char c : hex) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return false;
  }
  const std::string given = absl::HexStringToBytes(hex);
  return ConstantTimeEquals(HmacSha256(secret, body), given);
}

std::string XSignature(absl::string_view secret, absl::string_view data) {
  return absl::StrCat("sha256=", absl::Base64Escape(HmacSha256(secret, data)));
}

bool VerifyBase64HmacSha256(absl::string_view secret, absl::string_view body, absl::string_view header,
                            absl::string_view prefix) {
  header = absl::StripAsciiWhitespace(header);
  if (!absl::ConsumePrefix(&header, prefix) || header.empty()) return false;
  return ConstantTimeEquals(absl::Base64Escape(HmacSha256(secret, body)), header);
}

absl::StatusOr<std::string> StandardWebhooksKey(absl::string_view secret) {
  absl::ConsumePrefix(&secret, "whsec_");
  std::string key;
  if (secret.empty() || !absl::Base64Unescape(secret, &key) || key.empty()) {
    return absl::InvalidArgumentError("the secret must be whsec_ followed by base64");
  }
  return key;
}

std::string StandardWebhooksSignature(absl::string_view key, absl::string_view id,
                                      int64_t timestamp, absl::string_view body) {
  const std::string content = absl::StrCat(id, ".", timestamp, ".", body);
  return absl::StrCat("v1,", absl::Base64Escape(HmacSha256(key, content)));
}

std::string OAuth1Authorization(absl::string_view method, absl::string_view url,
                                const std::vector<std::pair<std::string, std::string>>& params,
                                const OAuth1Credentials& credentials, absl::string_view nonce, int64_t timestamp) {
  using router::PercentEncode;
  const std::vector<std::pair<std::string, std::string>> oauth = {
      {"oauth_consumer_key", credentials.consumer_key},
      {"oauth_nonce", std::string(nonce)},
      {"oauth_signature_method", "HMAC-SHA1"},
      {"oauth_timestamp", std::to_string(timestamp)},
      {"oauth_token", credentials.token},
      {"oauth_version", "1.0"}};
  // Every parameter encoded, sorted by name then value, joined as name=value&...
  std::vector<std::pair<std::string, std::string>> encoded;
  for (const auto* list : {&params, &oauth}) {
    for (const auto& [name, value] : *list) encoded.emplace_back(PercentEncode(name), PercentEncode(value));
  }
  std::sort(encoded.begin(), encoded.end());
  const std::string parameters =
      absl::StrJoin(encoded, "&", [](std::string* out, const auto& p) { absl::StrAppend(out, p.first, "=", p.second); });
  const std::string base = absl::StrCat(absl::AsciiStrToUpper(method), "&", PercentEncode(url), "&",
                                        PercentEncode(parameters));
  const std::string key =
      absl::StrCat(PercentEncode(credentials.consumer_secret), "&", PercentEncode(credentials.token_secret));
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha1(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(base.data()),
       base.size(), digest, &length);
  const std::string signature =
      absl::Base64Escape(absl::string_view(reinterpret_cast<const char*>(digest), length));
  std::string header = "OAuth ";
  bool first = true;
  auto add = [&](absl::string_view name, absl::string_view value) {
    absl::StrAppend(&header, first ? "" : ", ", name, "=\"", PercentEncode(value), "\"");
    first = false;
  };
  for (const auto& [name, value] : oauth) {
    if (name == "oauth_signature_method") add("oauth_signature", signature);
    add(name, value);
  }
  return header;
}

std::string RandomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) != 1) {
    // OpenSSL's generator failed (no entropy): a nonce must still differ per request.
    raw = absl::StrCat(absl::ToUnixNanos(absl::Now()), ":", reinterpret_cast<uintptr_t>(&raw));
  }
  return absl::BytesToHexString(raw);
}

}  // namespace triage::daemon
