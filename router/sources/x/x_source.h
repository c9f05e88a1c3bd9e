// X: Account Activity API (v1.1-shaped events), filtered-stream webhooks (v2 posts with
// includes.users) and the X Activity API (data.event_type + payload). Signed with
// X-Twitter-Webhooks-Signature (base64 HMAC with the consumer secret) or its -OAuth2 variant;
// the CRC handshake answers with the consumer (or OAuth 2.0 client) secret.
#pragma once

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "router/source.h"

namespace triage::router {

absl::StatusOr<ParseResult> ParseXPayload(absl::string_view body, const ParseContext& context);

}  // namespace triage::router
