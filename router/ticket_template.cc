#include "router/ticket_template.h"

#include <simdjson.h>

#include <array>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "router/json_util.h"

namespace triage::router {
namespace {

constexpr size_t kShortText = 80;

constexpr std::array<absl::string_view, 26> kFields = {
    "text",     "text_short", "author",    "author_name", "author_id", "followers", "verified",
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

std::string Optional(const std::optional<int64_t>& value) {
  return value ? std::to_string(*value) : "unknown";
}

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

absl::StatusOr<Template> Template::Parse(absl::string_view text) {
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
    if (!KnownField(name)) {
      return absl::InvalidArgumentError(absl::StrCat("unknown field {{", name, "}} (known: ",
                                                     absl::StrJoin(kFields, ", "), ", informed)"));
    }
    t.parts_.push_back({true, name});
    text.remove_prefix(close + 2);
  }
  return t;
}

std::string Template::Render(const TicketView& t, absl::string_view team, bool owner,
                             Escape escape) const {
  std::string out;
  for (const Part& part : parts_) {
    if (!part.field) {
      if (escape == Escape::kHtml) {
        // The template's own line breaks must show in HTML too; its markup is kept.
        out.append(absl::StrReplaceAll(part.text, {{"\n", "<br>"}}));
      } else {
        out.append(part.text);
      }
      continue;
    }
    const std::string& f = part.text;
    std::string value;
    if (f == "text") value = t.text;
    else if (f == "text_short") value = Shorten(t.text, kShortText);
    else if (f == "author") value = t.Author();
    else if (f == "author_name") value = t.author_name;
    else if (f == "author_id") value = t.author_id;
    else if (f == "followers") value = Optional(t.followers);
    else if (f == "verified") value = t.verified ? "yes" : "no";
    else if (f == "platform") value = t.platform;
    else if (f == "source") value = t.source;
    else if (f == "kind") value = t.kind;
    else if (f == "channel") value = t.channel;
    else if (f == "url") value = t.url;
    else if (f == "id") value = t.id;
    else if (f == "language") value = t.language;
    else if (f == "created_at") value = t.created_at;
    else if (f == "level") value = t.level;
    else if (f == "urgency") value = std::to_string(t.urgency);
    else if (f == "reach") value = Optional(t.reach);
    else if (f == "complaint") value = t.complaint ? "yes" : "no";
    else if (f == "categories") value = t.categories.empty() ? "none" : absl::StrJoin(t.categories, ", ");
    else if (f == "reasons") value = absl::StrCat("- ", absl::StrJoin(t.reasons, "\n- "));
    else if (f == "rule") value = t.rule.empty() ? "default" : t.rule;
    else if (f == "tags") value = absl::StrJoin(t.tags, ", ");
    else if (f == "sla_deadline") value = t.sla_deadline;
    else if (f == "team") value = std::string(team);
    else if (f == "role") value = owner ? "owner" : "informed";
    else if (f == "informed") value = absl::StrJoin(t.informed, ", ");
    AppendEscaped(value, escape, &out);
  }
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
