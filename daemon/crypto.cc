#include "daemon/crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

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

}  // namespace triage::daemon
