// Pieces the reply destinations (x, meta, whatsapp) share: text limits and the platforms'
// error shapes. Facts from ../shared/reference/outbound-replies.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "router/destinations/destination_type.h"

namespace triage::router {

// How a platform measures a text against its limit.
enum class TextMeasure {
  kCodePoints,  // Messenger (2,000), WhatsApp (4,096)
  kBytes,       // Instagram (1,000 bytes of UTF-8)
  kXWeighted,   // X posts (280): weight 1 for U+0000-U+10FF, U+2000-U+200D, U+2010-U+201F,
                // U+2032-U+2037, else 2 (CJK, emoji)
};
// The length of UTF-8 `text` as `measure` counts it.
int64_t MeasureText(absl::string_view text, TextMeasure measure);
// `text` within `limit`, cut at a character and ending in "…" when it was longer.
std::string FitText(absl::string_view text, int64_t limit, TextMeasure measure);

// A Graph API error answer ({"error": {"message", "type", "code", "error_subcode"}}, as
// Messenger, Instagram, Facebook comments and WhatsApp send it) classified by its code:
//   retry later: 1, 2, 1200, 131000 (temporary), 4, 613, 80007, 130429, 131056 (rate limits);
//   final for this message: 10 with the window message or subcode 2018278/2018065 and 131047
//   (the 24-hour window is closed), 551 and 131026 (the person cannot receive it), 100 with
//   subcode 2018001 (no such user), 131048 (spam limit), 368 and 131031 (account restricted);
//   credentials: 190 (token invalid or expired), 200-299 (permission), 10 otherwise.
// nullopt when the body is not a Graph error.
std::optional<AnswerClass> ClassifyGraphError(int status, absl::string_view body);

}  // namespace triage::router
