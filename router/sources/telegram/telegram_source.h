// Telegram Bot API webhooks: one Update a request, authenticated by the secret token set with
// setWebhook (X-Telegram-Bot-Api-Secret-Token; no body signature), no handshake. Facts:
// ../shared/reference/inbound-more.md, section 1.
#pragma once

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "router/source.h"

namespace triage::router {

absl::StatusOr<ParseResult> ParseTelegramUpdate(absl::string_view body, const ParseContext& context);

}  // namespace triage::router
