#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace triage::daemon {

// HMAC-SHA256 of `data` under `key`: 32 raw bytes.
std::string HmacSha256(absl::string_view key, absl::string_view data);
// SHA-256 digest: 32 raw bytes.
std::string Sha256(absl::string_view data);

// Compares in time that depends only on the lengths, never on where the bytes differ.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

// Checks a hex HMAC-SHA256 signature header of the raw body: "<prefix><hex>" or bare "<hex>",
// hex in either case. Returns false on any malformed header; never throws, never logs.
bool VerifyHexHmacSha256(absl::string_view secret, absl::string_view body,
                         absl::string_view header_value, absl::string_view prefix = "sha256=");

// X: "sha256=<base64 HMAC-SHA256(secret, data)>", the form of both the CRC response_token and
// the X-Twitter-Webhooks-Signature header.
std::string XSignature(absl::string_view secret, absl::string_view data);
// Checks a "<prefix><base64 HMAC-SHA256(secret, body)>" header (X's with "sha256=", LINE's
// with none) against the raw body, in constant time.
bool VerifyBase64HmacSha256(absl::string_view secret, absl::string_view body, absl::string_view header,
                            absl::string_view prefix);

// Standard Webhooks (v1, symmetric): the signing key of a "whsec_<base64>" (or bare base64)
// secret, and the "v1,<base64>" signature of "{id}.{timestamp}.{body}".
absl::StatusOr<std::string> StandardWebhooksKey(absl::string_view secret);
std::string StandardWebhooksSignature(absl::string_view key, absl::string_view id,
                                      int64_t timestamp, absl::string_view body);

// OAuth 1.0a (RFC 5849, HMAC-SHA1), as X signs user-context requests: the Authorization header
// of `method` to `url` (scheme, host, port when not the default, path; no query) with the
// query's (decoded) `params`; a JSON body is not signed. `nonce` is fresh for every request.
struct OAuth1Credentials {
  std::string consumer_key, consumer_secret, token, token_secret;
};
std::string OAuth1Authorization(absl::string_view method, absl::string_view url,
                                const std::vector<std::pair<std::string, std::string>>& params,
                                const OAuth1Credentials& credentials, absl::string_view nonce, int64_t timestamp);
// `bytes` random bytes from OpenSSL's generator, as hex.
std::string RandomHex(size_t bytes);

}  // namespace triage::daemon
