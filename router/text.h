#pragma once

#include <string>

#include "absl/strings/string_view.h"

namespace triage::router {

// Folds text for matching: ASCII letters to lower case, accented Latin letters (U+00C0..U+017F)
// to their unaccented lower-case base, apostrophes (' and U+2018/U+2019) dropped, typographic
// double quotes to ", runs of white space to one space; every other byte is kept.
// "Remboursement  REFUSÉ, c’est nul" -> "remboursement refuse, cest nul". Terms are folded the
// same way, so each compiles to a plain literal: the fastest kind of Hyperscan pattern.
// Appends to `out` (cleared first) so callers can reuse its buffer.
void FoldForMatching(absl::string_view text, std::string* out);

// Signals in how a text is written, beyond its words.
struct TextSignals {
  bool shouting = false;          // at least 12 letters, 70% or more of them capitals
  int exclamation_runs = 0;       // runs of 2+ '!' or mixed "?!"
  int question_runs = 0;          // runs of 2+ '?'
  int angry_emoji = 0;            // 😡 😠 🤬 👎 😤 🙄 💩 😒 🖕
};
TextSignals ReadSignals(absl::string_view text);

// Every byte but RFC 3986's unreserved ones as %XX (a URL path segment or query value).
std::string PercentEncode(absl::string_view in);

}  // namespace triage::router
