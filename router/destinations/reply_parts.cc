#include "router/destinations/reply_parts.h"

#include <simdjson.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "router/json_util.h"

namespace triage::router {
namespace {

// The code point starting at text[i] and its length in bytes (a stray byte counts as one).
std::pair<uint32_t, size_t> CodePointAt(absl::string_view text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<uint8_t>(text[k]); };
  const uint8_t lead = byte(i);
  size_t length = lead < 0x80 ? 1 : (lead >> 5) == 0x6 ? 2 : (lead >> 4) == 0xE ? 3 : (lead >> 3) == 0x1E ? 4 : 1;
  if (i + length > text.size()) length = 1;
  uint32_t cp = length == 1 ? lead : length == 2 ? lead & 0x1F : length == 3 ? lead & 0x0F : lead & 0x07;
  for (size_t k = 1; k < length; ++k) cp = (cp << 6) | (byte(i + k) & 0x3F);
  return {cp, length};
}

int64_t Weight(uint32_t cp, size_t bytes, TextMeasure measure) {
  switch (measure) {
    case TextMeasure::kCodePoints:
      return 1;
    case TextMeasure::kBytes:
      return static_cast<int64_t>(bytes);
    case TextMeasure::kXWeighted:
      return cp <= 0x10FF || (cp >= 0x2000 && cp <= 0x200D) || (cp >= 0x2010 && cp <= 0x201F) ||
                     (cp >= 0x2032 && cp <= 0x2037)
                 ? 1
                 : 2;
  }
  return 2;  // unreachable: the switch names every measure
}

}  // namespace

int64_t MeasureText(absl::string_view text, TextMeasure measure) {
  int64_t total = 0;
  for (size_t i = 0; i < text.size();) {
    const auto [cp, length] = CodePointAt(text, i);
    total += Weight(cp, length, measure);
    i += length;
  }
  return total;
}

std::string FitText(absl::string_view text, int64_t limit, TextMeasure measure) {
  if (MeasureText(text, measure) <= limit) return std::string(text);
  const absl::string_view ellipsis = "…";
  const int64_t room = limit - MeasureText(ellipsis, measure);
  int64_t used = 0;
  size_t end = 0;
  while (end < text.size()) {
    const auto [cp, length] = CodePointAt(text, end);
    const int64_t weight = Weight(cp, length, measure);
    if (used + weight > room) break;
    used += weight;
    end += length;
  }
  return absl::StrCat(text.substr(0, end), ellipsis);
}

std::optional<AnswerClass> ClassifyGraphError(int status, absl::string_view body) {
  simdjson::dom::parser parser;
  json::element root;
  if (!json::ParseDocument(parser, body, 16, &root).ok()) return std::nullopt;
  const std::optional<json::element> error = json::Get(root, "error");
  if (!error || !error->is_object()) return std::nullopt;
  const int64_t code = json::Int(*error, "code").value_or(0);
  const int64_t subcode = json::Int(*error, "error_subcode").value_or(0);
  std::string message = json::Str(*error, "message");
  if (const std::optional<json::element> data = json::Get(*error, "error_data")) {
    if (const std::string details = json::Str(*data, "details"); !details.empty()) message += " " + details;
  }
  AnswerClass out;
  out.detail = absl::StrCat("HTTP ", status, ", Graph error ", code, subcode != 0 ? absl::StrCat("/", subcode) : "",
                            ": ", message.substr(0, 200));
  const bool window = (code == 10 && (subcode == 2018278 || subcode == 2018065 ||
                                      absl::StrContains(absl::AsciiStrToLower(message), "outside of allowed window"))) ||
                      code == 131047;
  if (window) {
    out.reason = "window_closed";
  } else if (code == 1 || code == 2 || code == 1200 || code == 131000) {
    out.kind = AnswerClass::Kind::kRetry;
    out.reason = "temporary";
  } else if (code == 4 || code == 613 || code == 80007 || code == 130429 || code == 131056) {
    out.kind = AnswerClass::Kind::kRetry;
    out.throttled = true;
    out.reason = "rate_limited";
  } else if (code == 551 || code == 131026 || (code == 100 && subcode == 2018001)) {
    out.reason = "recipient";
  } else if (code == 131048 || code == 368 || code == 131031) {
    out.reason = "not_allowed";
  } else if (code == 190 || code == 10 || (code >= 200 && code < 300)) {
    out.reason = "credentials";
  } else {
    out.reason = status >= 500 ? "temporary" : "refused";
    out.kind = status >= 500 ? AnswerClass::Kind::kRetry : AnswerClass::Kind::kPermanent;
  }
  return out;
}

}  // namespace triage::router
