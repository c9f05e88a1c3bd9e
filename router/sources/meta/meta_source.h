// Meta: Page feed comments and posts, Messenger, Instagram comments and DMs, WhatsApp Cloud API
// messages, under one app. Signed with X-Hub-Signature-256 (hex HMAC with the app secret); the
// subscription handshake echoes hub.challenge for the right hub.verify_token.
#pragma once

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "router/source.h"

namespace triage::router {

absl::StatusOr<ParseResult> ParseMetaPayload(absl::string_view body, const ParseContext& context);

}  // namespace triage::router
