#include "router/destinations/ticket_parts.h"

#include <simdjson.h>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "router/json_util.h"
#include "router/json_writer.h"

namespace triage::router {

std::vector<std::string> TicketTags(const TicketView& t, const DeliveryContext& c, bool join_informed) {
  std::vector<std::string> tags = {"triaged", TagOf(t.platform), absl::StrCat("team_", TagOf(c.team)),
                                   absl::StrCat("level_", TagOf(t.level))};
  if (!c.owner) tags.push_back("informed");
  if (join_informed) {
    for (const std::string& team : t.informed) {
      if (team != c.team) tags.push_back(absl::StrCat("inform_", TagOf(team)));
    }
  }
  for (const std::string& category : t.categories) tags.push_back(TagOf(category));
  for (const std::string& tag : t.tags) tags.push_back(TagOf(tag));
  absl::flat_hash_set<std::string> seen;
  std::vector<std::string> out;
  for (std::string& tag : tags) {
    if (!tag.empty() && seen.insert(tag).second) out.push_back(std::move(tag));
  }
  return out;
}

std::string EventBody(const DeliveryContext& context) {
  JsonWriter w;
  w.BeginObject();
  const bool reply = context.reply_text.has_value();
  w.Key("type").String(reply ? "acknowledgement.sent" : context.owner ? "ticket.created" : "ticket.informed");
  w.Key("timestamp").Time(absl::FromUnixMillis(context.enqueued_unix_ms));
  w.Key("data").BeginObject();
  w.Key("delivery_id").String(context.delivery_id);
  w.Key("destination").String(context.destination);
  w.Key("team").String(context.team);
  w.Key("role").String(reply ? "reply" : context.owner ? "owner" : "informed");
  if (reply) w.Key("text").String(*context.reply_text);
  w.Key("ticket").Raw(context.ticket_json);
  w.EndObject();
  w.EndObject();
  return w.Take();
}

std::string RequesterName(const TicketView& ticket) {
  return ticket.author_name.empty() ? ticket.Author() : ticket.author_name;
}

DestinationDefaults HelpdeskDefaults(double rate) {
  return {.concurrency = 2,
          .rate = rate,
          .burst = rate,
          .subject_template = "[{{level}}] {{platform}} {{kind}} from {{author}}: {{text_short}}",
          .body_template =
              "{{text}}\n\n"
              "Author: {{author_full}}, followers: {{followers}}, verified: {{verified}}\n"
              "Link: {{url}}\n"
              "Triage: {{level}}, urgency {{urgency}}, reach {{reach}}, complaint: {{complaint}}\n"
              "Team: {{team}} ({{role}}), rule: {{rule}}, categories: {{categories}}\n"
              "Informed: {{informed}}\n"
              "Why:\n{{reasons}}\n",
          .follow_up_template =
              "{{text}}\n\n"
              "Follow-up from {{author_full}}: {{level}}, urgency {{urgency}}, complaint: {{complaint}}\n"
              "Link: {{url}}\n"};
}

std::string FollowUpNote(const DestinationView& d, const TicketView& ticket, const DeliveryContext& c,
                         Template::Escape escape) {
  std::string note;
  if (c.reply_text) {  // what the customer was told
    AppendEscaped(*c.reply_text, escape, &note);
    return note;
  }
  note = d.templates.follow_up.Render(ticket, c.team, c.owner, escape);
  if (!c.Escalates()) return note;
  std::vector<std::string> changes;
  if (c.ticket_level && c.level < *c.ticket_level) {
    changes.push_back(absl::StrCat("priority ", LevelName(*c.ticket_level), " -> ", LevelName(c.level)));
  } else if (!c.ticket_level) {
    changes.push_back(absl::StrCat("priority ", LevelName(c.level)));
  }
  if (!c.ticket_team.empty() && c.ticket_team != c.team) {
    changes.push_back(absl::StrCat("team ", c.ticket_team, " -> ", c.team));
  }
  std::string change = absl::StrCat("Raised by this follow-up: ", absl::StrJoin(changes, ", "));
  absl::StrAppend(&change, "\nWhy:");
  for (const std::string& reason : ticket.reasons) absl::StrAppend(&change, "\n- ", reason);
  if (!note.empty()) note.append(escape == Template::Escape::kHtml ? "<br>" : "\n");
  AppendEscaped(change, escape, &note);
  return note;
}

namespace {

std::optional<std::string> IdText(json::element object, const char* key = "id") {
  if (const std::optional<int64_t> number = json::Int(object, key)) return std::to_string(*number);
  std::string_view text;
  if (object[key].get(text) == simdjson::SUCCESS && !text.empty()) return std::string(text);
  return std::nullopt;
}

}  // namespace

std::optional<Level> LevelOfPriority(absl::string_view priority,
                                     std::initializer_list<std::pair<absl::string_view, Level>> names) {
  const std::string text = absl::AsciiStrToLower(absl::StripAsciiWhitespace(priority));
  for (const auto& [name, level] : names) {
    if (text == name) return level;
  }
  Level level;
  if (ParseLevel(text, &level)) return level;
  return std::nullopt;
}

absl::StatusOr<OutboundRequest> TicketingType::Render(const DestinationView& d, const TicketView* ticket,
                                                      const DeliveryContext& context) const {
  if (ticket == nullptr) return absl::InvalidArgumentError("no ticket to render");
  if (context.remote_ticket) {
    OutboundRequest note = Note(d, *ticket, context);
    if (context.Escalates()) {
      if (std::optional<OutboundRequest> raise = Raise(d, *ticket, context)) note.first.push_back(*std::move(raise));
    }
    return note;
  }
  OutboundRequest create = Create(d, *ticket, context);
  create.creates_ticket = true;
  return create;
}

std::string BasicAuthorization(absl::string_view user, absl::string_view password) {
  return absl::StrCat("Basic ", absl::Base64Escape(absl::StrCat(user, ":", password)));
}

std::string PageUrl(absl::string_view url, absl::string_view path) {
  return absl::StrCat(absl::StripSuffix(url, "/"), path);
}

OutboundRequest Request(HttpMethod method, std::string target, std::string body) {
  OutboundRequest request;
  request.method = method;
  request.target = std::move(target);
  request.body = std::move(body);
  return request;
}

OutboundRequest GetRequest(std::string target) { return Request(HttpMethod::kGet, std::move(target), ""); }

absl::StatusOr<std::string> AnswerId(absl::string_view answer, const char* holder, const char* key) {
  simdjson::dom::parser parser;
  json::element root;
  if (auto s = json::ParseDocument(parser, answer, 64, &root); !s.ok()) return s;
  std::optional<json::element> object = root;
  if (holder != nullptr) object = json::Get(root, holder);
  std::optional<std::string> id;
  if (object) id = IdText(*object, key);
  if (!id) {
    return absl::InvalidArgumentError(absl::StrCat("the answer names no ", holder == nullptr ? "" : holder, " ", key));
  }
  return *id;
}

absl::StatusOr<std::optional<std::string>> FirstIdOf(absl::string_view answer, const char* list, const char* key) {
  simdjson::dom::parser parser;
  json::element root;
  if (auto s = json::ParseDocument(parser, answer, 64, &root); !s.ok()) return s;
  const auto items = json::Get(root, list);
  if (!items || !items->is_array()) return absl::InvalidArgumentError(absl::StrCat("the answer has no ", list, " list"));
  for (const json::element item : json::AsArray(*items)) {
    if (std::optional<std::string> id = IdText(item, key)) return id;
  }
  return std::optional<std::string>();
}

absl::StatusOr<int64_t> AnswerCount(absl::string_view answer, const char* key) {
  simdjson::dom::parser parser;
  json::element root;
  if (auto s = json::ParseDocument(parser, answer, 64, &root); !s.ok()) return s;
  const std::optional<int64_t> count = json::Int(root, key);
  if (!count || *count < 0) return absl::InvalidArgumentError(absl::StrCat("the answer has no ", key));
  return *count;
}

}  // namespace triage::router
