#include "router/text.h"

#include <array>
#include <cstdint>

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"

namespace triage::router {
namespace {

// Base letters of U+00C0..U+017F (Latin-1 Supplement letters and Latin Extended-A), lower case;
// 0 where the code point is not a letter with an ASCII base (×, ÷, Æ, ß, ...).
constexpr char kLatinBase[] =
    // U+00C0..U+00FF
    "aaaaaa\0ceeeeiiii"
    "dnooooo\0ouuuuyt\0"
    "aaaaaa\0ceeeeiiii"
    "dnooooo\0ouuuuyty"
    // U+0100..U+017F
    "aaaaaaccccccccdd"
    "ddeeeeeeeeeegggg"
    "gggghhhhiiiiiiii"
    "ii\0\0jjkkklllllll"
    "lllnnnnnnnnnoooo"
    "oo\0\0rrrrrrssssss"
    "sstttt\0\0uuuuuuuu"
    "uuuuwwyyyzzzzzzs";

bool IsUpper(unsigned char c) { return c >= 'A' && c <= 'Z'; }

}  // namespace

void FoldForMatching(absl::string_view text, std::string* out) {
  out->clear();
  out->reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      if (c == '\'') continue;
      if (absl::ascii_isspace(c)) {
        if (out->empty() || out->back() != ' ') out->push_back(' ');
        continue;
      }
      out->push_back(absl::ascii_tolower(c));
      continue;
    }
    // Two-byte sequences C3 xx, C4 xx, C5 xx cover U+00C0..U+017F.
    if ((c == 0xC3 || c == 0xC4 || c == 0xC5) && i + 1 < text.size()) {
      const auto next = static_cast<unsigned char>(text[i + 1]);
      const uint32_t code = ((c & 0x1F) << 6) | (next & 0x3F);
      if ((next & 0xC0) == 0x80 && code >= 0xC0 && code <= 0x17F) {
        const char base = kLatinBase[code - 0xC0];
        if (base != '\0') {
          out->push_back(base);
          ++i;
          continue;
        }
      }
    }
    // U+2018/U+2019 (single quotes) are dropped like ', U+201C/U+201D become ".
    if (c == 0xE2 && i + 2 < text.size() && static_cast<unsigned char>(text[i + 1]) == 0x80) {
      const auto last = static_cast<unsigned char>(text[i + 2]);
      if (last == 0x98 || last == 0x99) {
        i += 2;
        continue;
      }
      if (last == 0x9C || last == 0x9D) {
        out->push_back('"');
        i += 2;
        continue;
      }
    }
    out->push_back(static_cast<char>(c));
  }
}

TextSignals ReadSignals(absl::string_view text) {
  static constexpr std::array<absl::string_view, 9> kAngry = {
      "\xF0\x9F\x98\xA1", "\xF0\x9F\x98\xA0", "\xF0\x9F\xA4\xAC", "\xF0\x9F\x91\x8E",
      "\xF0\x9F\x98\xA4", "\xF0\x9F\x99\x84", "\xF0\x9F\x92\xA9", "\xF0\x9F\x98\x92",
      "\xF0\x9F\x96\x95"};
  TextSignals signals;
  int letters = 0, capitals = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (absl::ascii_isalpha(c)) {
      ++letters;
      if (IsUpper(c)) ++capitals;
      continue;
    }
    if (c == '!' || c == '?') {
      size_t j = i;
      bool bang = false, question = false;
      while (j < text.size() && (text[j] == '!' || text[j] == '?')) {
        bang |= text[j] == '!';
        question |= text[j] == '?';
        ++j;
      }
      if (j - i >= 2) {
        if (bang) {
          ++signals.exclamation_runs;
        } else if (question) {
          ++signals.question_runs;
        }
      }
      i = j - 1;
      continue;
    }
    if (c == 0xF0 && i + 3 < text.size() + 0) {
      const absl::string_view four = text.substr(i, 4);
      for (absl::string_view emoji : kAngry) {
        if (four == emoji) {
          ++signals.angry_emoji;
          break;
        }
      }
    }
  }
  // Words like "I", "OK", "USA" make a few capitals normal; shouting is most of a real text.
  signals.shouting = letters >= 12 && capitals * 10 >= letters * 7;
  return signals;
}

std::string PercentEncode(absl::string_view in) {
  std::string out;
  for (const char c : in) {
    const auto b = static_cast<unsigned char>(c);
    if (absl::ascii_isalnum(b) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(c);
    } else {
      absl::StrAppendFormat(&out, "%%%02X", b);
    }
  }
  return out;
}

}  // namespace triage::router
