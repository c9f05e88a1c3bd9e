// Threads API (Meta) webhooks: replies on the brand's posts and mentions of it, one notification
// a request or several ({"values": {...}} or [...], or a top-level array), signed like Meta's
// Graph webhooks (X-Hub-Signature-256 with the Threads app secret), with Meta's subscription
// handshake. No DMs, no author ids (a username only), no follower counts. Facts:
// ../shared/reference/inbound-more.md, section 3.
#pragma once

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "router/source.h"

namespace triage::router {

absl::StatusOr<ParseResult> ParseThreadsWebhook(absl::string_view body, const ParseContext& context);

}  // namespace triage::router
