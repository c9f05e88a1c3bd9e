#pragma once

#include "absl/strings/string_view.h"

#include <cstddef>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "router/message.h"

#include "router/source.h"

namespace triage::router {

// Parses the body of a `generic` source request: one message object or an array of them.
//
//   {"id": "...", "platform": "x", "text": "...", "created_at": "2026-03-03T10:02:11Z",
//    "author": {"id": "...", "handle": "...", "name": "...", "followers": 120, "verified": false},
//    "conversation_id": "...", "url": "...", "kind": "direct_message", "channel": "private"}
//
// Required: id, platform, text, created_at (RFC 3339 string or integer epoch milliseconds),
// author.id. kind and channel (public or private) are optional. Unknown fields are ignored. The whole body is validated before anything is
// returned, so a request is accepted whole or rejected whole. Errors are InvalidArgument with
// the JSON path of the first problem ("[2].author.followers: must be a non-negative integer").
absl::StatusOr<std::vector<Message>> ParseGenericPayload(absl::string_view body,
                                                         absl::string_view source,
                                                         const PayloadLimits& limits);

// The same shape for offline tools (triagectl route): only `text` is required; a missing id,
// platform, created_at or author is left empty (platform "unknown").
absl::StatusOr<Message> ParseLooseMessage(absl::string_view json, absl::string_view source,
                                          const PayloadLimits& limits);

}  // namespace triage::router
