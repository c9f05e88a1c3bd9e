// LINE Messaging API webhooks: {"destination", "events": [...]}, signed with x-line-signature
// (base64 HMAC-SHA256 of the raw body with the channel secret, no prefix). The console's Verify
// button posts a signed body with no events: answered 200. Facts:
// ../shared/reference/inbound-more.md, section 2.
#pragma once

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "router/source.h"

namespace triage::router {

absl::StatusOr<ParseResult> ParseLineWebhook(absl::string_view body, const ParseContext& context);

}  // namespace triage::router
