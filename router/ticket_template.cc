#include "router/ticket_template.h"

#include <simdjson.h>

#include <array>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/match.h"
#include "router/json_util.h"

namespace triage::router {
namespace {

constexpr size_t kShortText = 80;

constexpr std::array<absl::string_view, 27> kFields = {
    "text",     "text_short", "author",    "author_name", "author_full", "author_id", "followers", "verified",
    "platform", "source",     "kind",      "channel",     "url",       "id",        "language",
    "created_at", "level",    "urgency",   "reach",       "complaint", "categories", "reasons",
    "rule",     "tags",       "sla_deadline", "team",     "role"};

bool KnownField(absl::string_view name) {
  return name == "informed" || std::find(kFields.begin(), kFields.end(), name) != kFields.end();
}

// The first `max` characters of UTF-8 `text` (never splitting a character), "…" when cut.
std::string Shorten(absl::string_view text, size_t max) {
  size_t chars = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) == 0x80) continue;  // continuation byte
    if (chars++ == max) return absl::StrCat(text.substr(0, i), "…");
  }
  return std::string(text);
}

}  // namespace

void AppendEscaped(absl::string_view value, Template::Escape escape, std::string* out) {
  for (const char c : value) {
    switch (escape) {
      case Template::Escape::kNone:
        out->push_back(c);
        break;
      case Template::Escape::kHtml:
        if (c == '&') out->append("&amp;");
        else if (c == '<') out->append("&lt;");
        else if (c == '>') out->append("&gt;");
        else if (c == '"') out->append("&quot;");
        else if (c == '\n') out->append("<br>");
        else out->push_back(c);
        break;
      case Template::Escape::kSlack:
        if (c == '&') out->append("&amp;");
        else if (c == '<') out->append("&lt;");
        else if (c == '>') out->append("&gt;");
        else out->push_back(c);
        break;
    }
  }
}

namespace {

std::vector<std::string> Strings(json::element parent, std::string_view key) {
  std::vector<std::string> out;
  if (const auto array = json::Get(parent, key)) {
    for (const json::element item : json::AsArray(*array)) {
      std::string_view s;
      if (item.get(s) == simdjson::SUCCESS) out.emplace_back(s);
    }
  }
  return out;
}

}  // namespace

std::string TicketView::Author() const {
  if (!author_handle.empty()) return absl::StrCat("@", author_handle);
  if (!author_name.empty()) return author_name;
  return author_id;
}

std::string TicketView::FullAuthor() const {
  if (!author_handle.empty() && !author_name.empty() && author_name != author_handle) {
    return absl::StrCat(author_name, " (@", author_handle, ")");
  }
  return Author();
}

std::optional<absl::Time> SlaDeadline(absl::string_view ticket_json) {
  simdjson::dom::parser parser;
  json::element root;
  if (!json::ParseDocument(parser, ticket_json, 64, &root).ok()) return std::nullopt;
  const auto triage = json::Get(root, "triage");
  if (!triage) return std::nullopt;
  const std::string text = json::Str(*triage, "sla_deadline");
  absl::Time deadline;
  std::string error;
  if (text.empty() || !absl::ParseTime(absl::RFC3339_full, text, &deadline, &error)) return std::nullopt;
  return deadline;
}

absl::StatusOr<TicketView> ParseTicketView(absl::string_view ticket_json) {
  simdjson::dom::parser parser;
  json::element root;
  if (auto s = json::ParseDocument(parser, ticket_json, 64, &root); !s.ok()) return s;
  const auto triage = json::Get(root, "triage");
  const auto author = json::Get(root, "author");
  if (!root.is_object() || !triage || !author) {
    return absl::InvalidArgumentError("not a ticket: no author or triage object");
  }
  TicketView t;
  t.source = json::Str(root, "source");
  t.id = json::Str(root, "id");
  t.platform = json::Str(root, "platform");
  t.kind = json::Str(root, "kind");
  t.channel = json::Str(root, "channel");
  t.text = json::Str(root, "text");
  t.language = json::Str(root, "language");
  t.url = json::Str(root, "url");
  t.created_at = json::Str(root, "created_at");
  t.conversation_id = json::Str(root, "conversation_id");
  t.author_id = json::Str(*author, "id");
  t.author_handle = json::Str(*author, "handle");
  t.author_name = json::Str(*author, "name");
  t.followers = json::Int(*author, "followers");
  t.verified = json::Bool(*author, "verified");
  t.urgency = json::Int(*triage, "urgency").value_or(0);
  t.reach = json::Int(*triage, "reach");
  t.complaint = json::Bool(*triage, "complaint");
  t.dropped = json::Bool(*triage, "dropped");
  t.level = json::Str(*triage, "level");
  t.team = json::Str(*triage, "team");
  t.rule = json::Str(*triage, "rule");
  t.sla_deadline = json::Str(*triage, "sla_deadline");
  t.informed = Strings(*triage, "informed");
  t.tags = Strings(*triage, "tags");
  t.reasons = Strings(*triage, "reasons");
  if (const auto categories = json::Get(*triage, "categories")) {
    for (const json::element c : json::AsArray(*categories)) t.categories.push_back(json::Str(c, "name"));
  }
  return t;
}

absl::StatusOr<Template> Template::Parse(absl::string_view text) { return Parse(text, {}); }

bool Template::Uses(absl::string_view field) const {
  return std::any_of(parts_.begin(), parts_.end(), [&](const Part& p) { return p.field && p.text == field; });
}

absl::StatusOr<Template> Template::Parse(absl::string_view text, const std::vector<std::string>& extra_fields) {
  Template t;
  while (!text.empty()) {
    const size_t open = text.find("{{");
    if (open == absl::string_view::npos) {
      t.parts_.push_back({false, std::string(text)});
      break;
    }
    if (open > 0) t.parts_.push_back({false, std::string(text.substr(0, open))});
    const size_t close = text.find("}}", open + 2);
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat("unclosed {{ at offset ", open));
    }
    const std::string name(absl::StripAsciiWhitespace(text.substr(open + 2, close - open - 2)));
    if (!KnownField(name) && std::find(extra_fields.begin(), extra_fields.end(), name) == extra_fields.end()) {
      return absl::InvalidArgumentError(absl::StrCat("unknown field {{", name, "}} (known: ",
                                                     absl::StrJoin(extra_fields, ", "), extra_fields.empty() ? "" : ", ",
                                                     absl::StrJoin(kFields, ", "), ", informed)"));
    }
    t.parts_.push_back({true, name});
    text.remove_prefix(close + 2);
  }
  return t;
}

namespace {

// A field's value; nullopt when the ticket does not have it (an empty url, kind, name, language
// or list, an unknown follower count or reach).
std::optional<std::string> FieldValue(absl::string_view f, const TicketView& t, absl::string_view team, bool owner) {
  auto present = [](std::string value) -> std::optional<std::string> {
    if (value.empty()) return std::nullopt;
    return value;
  };
  auto number = [](const std::optional<int64_t>& value) -> std::optional<std::string> {
    if (!value) return std::nullopt;
    return std::to_string(*value);
  };
  if (f == "text") return present(t.text);
  if (f == "text_short") return present(Shorten(t.text, kShortText));
  if (f == "author") return present(t.Author());
  if (f == "author_name") return present(t.author_name);
  if (f == "author_full") return present(t.FullAuthor());
  if (f == "author_id") return present(t.author_id);
  if (f == "followers") return number(t.followers);
  if (f == "verified") return t.verified ? "yes" : "no";
  if (f == "platform") return present(t.platform);
  if (f == "source") return present(t.source);
  if (f == "kind") return present(t.kind);
  if (f == "channel") return present(t.channel);
  if (f == "url") return present(t.url);
  if (f == "id") return present(t.id);
  if (f == "language") return present(t.language);
  if (f == "created_at") return present(t.created_at);
  if (f == "level") return present(t.level);
  if (f == "urgency") return std::to_string(t.urgency);
  if (f == "reach") return number(t.reach);
  if (f == "complaint") return t.complaint ? "yes" : "no";
  if (f == "categories") return t.categories.empty() ? "none" : absl::StrJoin(t.categories, ", ");
  if (f == "reasons") {
    if (t.reasons.empty()) return std::nullopt;
    return absl::StrCat("- ", absl::StrJoin(t.reasons, "\n- "));
  }
  if (f == "rule") return t.rule.empty() ? "default" : t.rule;
  if (f == "tags") return present(absl::StrJoin(t.tags, ", "));
  if (f == "sla_deadline") return present(t.sla_deadline);
  if (f == "team") return present(std::string(team));
  if (f == "role") return owner ? "owner" : "informed";
  if (f == "informed") return present(absl::StrJoin(t.informed, ", "));
  return std::nullopt;
}

void TrimTrailingSpaces(std::string* line) {
  while (!line->empty() && line->back() == ' ') line->pop_back();
}

// What a missing field shows where it is kept: counts say "unknown", the rest nothing.
absl::string_view MissingText(absl::string_view f) {
  return f == "followers" || f == "reach" ? "unknown" : "";
}

}  // namespace

std::optional<std::string> Template::RenderIfAny(const TicketView& t, absl::string_view team, bool owner,
                                                 Escape escape) const {
  bool any_field = false, any_present = false;
  std::string out = Render(t, team, owner, escape, nullptr, &any_field, &any_present);
  if (any_field && !any_present) return std::nullopt;
  return out;
}

std::string Template::Render(const TicketView& t, absl::string_view team, bool owner, Escape escape,
                             const Values* values) const {
  bool any_field = false, any_present = false;
  return Render(t, team, owner, escape, values, &any_field, &any_present);
}

std::string Template::Render(const TicketView& t, absl::string_view team, bool owner, Escape escape,
                             const Values* values, bool* any_field, bool* any_present) const {
  const absl::string_view newline = escape == Escape::kHtml ? "<br>" : "\n";
  std::string out;
  // The line being rendered: kept only if it has no field, or at least one present.
  std::string line;
  bool line_fields = false, line_present = false;
  bool after_missing = false;  // the last part was a missing field that showed nothing
  auto end_line = [&](bool with_newline) {
    if (!line_fields || line_present) {
      out += line;
      if (with_newline) out.append(newline.data(), newline.size());
    }
    line.clear();
    line_fields = line_present = false;
  };
  for (const Part& part : parts_) {
    if (!part.field) {
      absl::string_view text = part.text;
      // A missing field between two spaces leaves one ("[urgent] x from", not "x  from").
      if (after_missing && absl::StartsWith(text, " ") && (line.empty() || line.back() == ' ')) text.remove_prefix(1);
      for (size_t nl; (nl = text.find('\n')) != absl::string_view::npos; text.remove_prefix(nl + 1)) {
        line.append(text.data(), nl);  // the template's own markup is kept as written
        if (nl == 0 && after_missing) TrimTrailingSpaces(&line);  // nor at the end of a line
        after_missing = false;
        end_line(true);
      }
      after_missing = false;
      line.append(text.data(), text.size());
      continue;
    }
    line_fields = true;
    *any_field = true;
    std::optional<std::string> value;
    if (const auto given = values == nullptr ? Values::const_iterator() : values->find(part.text);
        values != nullptr && given != values->end()) {
      value = given->second;
    } else if (KnownField(part.text)) {
      value = FieldValue(part.text, t, team, owner);
    }
    if (value) {
      line_present = true;
      *any_present = true;
      AppendEscaped(*value, escape, &line);
    } else {
      const absl::string_view missing = MissingText(part.text);
      line.append(missing.data(), missing.size());
      after_missing = missing.empty();
    }
  }
  if (after_missing) TrimTrailingSpaces(&line);
  end_line(false);
  return out;
}

std::string TagOf(absl::string_view word) {
  std::string tag;
  tag.reserve(word.size());
  for (const char c : word) {
    const char lower = absl::ascii_tolower(static_cast<unsigned char>(c));
    tag.push_back(absl::ascii_isalnum(static_cast<unsigned char>(lower)) || lower == '_' || lower == '-'
                      ? lower
                      : '_');
  }
  return tag;
}

}  // namespace triage::router
