#include "daemon/helpdesk.h"

#include <simdjson.h>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "router/json_util.h"
#include "router/json_writer.h"

namespace triage::daemon {
namespace {

using router::Template;

constexpr size_t kSlackTextMax = 3000;  // Slack's limit for a section's text

const char* ZendeskPriority(absl::string_view level) {
  if (level == "urgent") return "urgent";
  if (level == "high") return "high";
  if (level == "normal") return "normal";
  return "low";
}

int FreshdeskPriority(absl::string_view level) {  // 1 low, 2 medium, 3 high, 4 urgent
  if (level == "urgent") return 4;
  if (level == "high") return 3;
  if (level == "normal") return 2;
  return 1;
}

// triaged, the platform, team_<team>, level_<level>, the categories and the rules' tags, once
// each, in helpdesk tag form; "informed" for a team that is informed rather than owner.
std::vector<std::string> Tags(const router::TicketView& t, const DeliveryContext& c) {
  std::vector<std::string> tags = {"triaged", router::TagOf(t.platform),
                                   absl::StrCat("team_", router::TagOf(c.team)),
                                   absl::StrCat("level_", router::TagOf(t.level))};
  if (!c.owner) tags.push_back("informed");
  for (const std::string& category : t.categories) tags.push_back(router::TagOf(category));
  for (const std::string& tag : t.tags) tags.push_back(router::TagOf(tag));
  absl::flat_hash_set<std::string> seen;
  std::vector<std::string> out;
  for (std::string& tag : tags) {
    if (!tag.empty() && seen.insert(tag).second) out.push_back(std::move(tag));
  }
  return out;
}

void WriteTags(router::JsonWriter& w, const router::TicketView& t, const DeliveryContext& c) {
  w.Key("tags").BeginArray();
  for (const std::string& tag : Tags(t, c)) w.String(tag);
  w.EndArray();
}

std::optional<int64_t> GroupOf(const config::DestinationOptions& options, const std::string& team) {
  const auto found = options.group_ids.find(team);
  if (found == options.group_ids.end()) return std::nullopt;
  return found->second;
}

}  // namespace

absl::StatusOr<TicketTemplates> TicketTemplates::Compile(const config::DestinationOptions& options) {
  TicketTemplates t;
  auto compile = [](const std::string& text, Template* out) -> absl::Status {
    absl::StatusOr<Template> parsed = Template::Parse(text);
    if (!parsed.ok()) return parsed.status();
    *out = *std::move(parsed);
    return absl::OkStatus();
  };
  if (auto s = compile(options.subject_template, &t.subject); !s.ok()) return s;
  if (auto s = compile(options.body_template, &t.body); !s.ok()) return s;
  if (auto s = compile(options.requester_email, &t.requester_email); !s.ok()) return s;
  for (const auto& [key, text] : options.custom_fields) {
    Template field;
    if (auto s = compile(text, &field); !s.ok()) return s;
    t.custom_fields.emplace_back(key, std::move(field));
  }
  return t;
}

OutboundRequest ZendeskRequest(const config::DestinationOptions& options,
                               const TicketTemplates& templates, const router::TicketView& ticket,
                               const DeliveryContext& context) {
  OutboundRequest request;
  router::JsonWriter w;
  const std::string body = templates.body.Render(ticket, context.team, context.owner);
  if (context.remote_ticket) {
    request.method = http::verb::put;
    request.target = absl::StrCat("/api/v2/tickets/", *context.remote_ticket, ".json");
    w.BeginObject().Key("ticket").BeginObject();
    w.Key("comment").BeginObject().Key("body").String(body).Key("public").Bool(false).EndObject();
    w.EndObject().EndObject();
    request.body = w.Take();
    return request;
  }
  request.target = "/api/v2/tickets.json";
  request.creates_ticket = true;
  // Zendesk replays the first answer for a key it has seen (2 hours): a retry after a lost
  // answer cannot open a second ticket. The body is rendered from stored data only, so it is
  // byte-identical on every retry, as Zendesk requires.
  request.headers.emplace_back("Idempotency-Key", context.delivery_id);
  w.BeginObject().Key("ticket").BeginObject();
  w.Key("subject").String(templates.subject.Render(ticket, context.team, context.owner));
  w.Key("comment").BeginObject().Key("body").String(body).Key("public").Bool(false).EndObject();
  w.Key("priority").String(ZendeskPriority(ticket.level));
  w.Key("status").String("new");
  WriteTags(w, ticket, context);
  w.Key("external_id").String(context.delivery_id);
  if (const auto group = GroupOf(options, context.team)) w.Key("group_id").Int(*group);
  if (!options.requester_email.empty()) {
    w.Key("requester").BeginObject();
    w.Key("name").String(ticket.author_name.empty() ? ticket.Author() : ticket.author_name);
    w.Key("email").String(templates.requester_email.Render(ticket, context.team, context.owner));
    w.EndObject();
  }
  if (!templates.custom_fields.empty()) {
    w.Key("custom_fields").BeginArray();
    for (const auto& [id, value] : templates.custom_fields) {
      int64_t numeric = 0;
      (void)absl::SimpleAtoi(id, &numeric);  // checked numeric when the config loaded
      w.BeginObject().Key("id").Int(numeric);
      w.Key("value").String(value.Render(ticket, context.team, context.owner)).EndObject();
    }
    w.EndArray();
  }
  w.EndObject().EndObject();
  request.body = w.Take();
  return request;
}

OutboundRequest FreshdeskRequest(const config::DestinationOptions& options,
                                 const TicketTemplates& templates, const router::TicketView& ticket,
                                 const DeliveryContext& context) {
  OutboundRequest request;
  router::JsonWriter w;
  const std::string html =
      templates.body.Render(ticket, context.team, context.owner, Template::Escape::kHtml);
  if (context.remote_ticket) {
    request.target = absl::StrCat("/api/v2/tickets/", *context.remote_ticket, "/notes");
    w.BeginObject().Key("body").String(html).Key("private").Bool(true).EndObject();
    request.body = w.Take();
    return request;
  }
  request.target = "/api/v2/tickets";
  request.creates_ticket = true;
  w.BeginObject();
  w.Key("subject").String(templates.subject.Render(ticket, context.team, context.owner));
  w.Key("description").String(html);
  w.Key("status").Int(2);  // open
  w.Key("priority").Int(FreshdeskPriority(ticket.level));
  w.Key("source").Int(options.freshdesk_source);
  WriteTags(w, ticket, context);
  if (const auto group = GroupOf(options, context.team)) w.Key("group_id").Int(*group);
  w.Key("name").String(ticket.author_name.empty() ? ticket.Author() : ticket.author_name);
  if (ticket.platform == "x" && !ticket.author_handle.empty()) {
    w.Key("twitter_id").String(ticket.author_handle);
  } else {
    w.Key("unique_external_id").String(absl::StrCat(ticket.platform, ":", ticket.author_id));
  }
  if (!templates.custom_fields.empty()) {
    w.Key("custom_fields").BeginObject();
    for (const auto& [name, value] : templates.custom_fields) {
      w.Key(name).String(value.Render(ticket, context.team, context.owner));
    }
    w.EndObject();
  }
  w.EndObject();
  request.body = w.Take();
  return request;
}

OutboundRequest SlackRequest(const TicketTemplates& templates, const router::TicketView& ticket,
                             const DeliveryContext& context) {
  std::string text = templates.body.Render(ticket, context.team, context.owner, Template::Escape::kSlack);
  if (text.size() > kSlackTextMax) {
    size_t cut = kSlackTextMax - 3;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
    text = absl::StrCat(text.substr(0, cut), "…");
  }
  router::JsonWriter w;
  w.BeginObject().Key("text").String(text).Key("unfurl_links").Bool(false).EndObject();
  OutboundRequest request;
  request.body = w.Take();
  return request;
}

absl::StatusOr<std::string> CreatedTicketId(config::DestinationType type, absl::string_view body) {
  simdjson::dom::parser parser;
  router::json::element root;
  if (auto s = router::json::ParseDocument(parser, body, 64, &root); !s.ok()) return s;
  std::optional<router::json::element> holder = root;
  if (type == config::DestinationType::kZendesk) holder = router::json::Get(root, "ticket");
  std::optional<int64_t> id;
  if (holder) id = router::json::Int(*holder, "id");
  if (!id) return absl::InvalidArgumentError("the answer names no ticket id");
  return std::to_string(*id);
}

bool ZendeskKeyMayHaveExpired(absl::Time enqueued, uint32_t attempts, absl::Time now) {
  // The first attempt came after the enqueue, so the key is younger than now - enqueued.
  return attempts > 0 && now - enqueued >= absl::Hours(2) - absl::Minutes(15);
}

OutboundRequest ZendeskLookupRequest(absl::string_view delivery_id) {
  OutboundRequest request;
  request.method = http::verb::get;
  // Delivery ids are msg_ and hex digits: nothing to escape in a query.
  request.target = absl::StrCat("/api/v2/tickets.json?external_id=", delivery_id);
  return request;
}

absl::StatusOr<std::optional<std::string>> FoundTicketId(absl::string_view body) {
  simdjson::dom::parser parser;
  router::json::element root;
  if (auto s = router::json::ParseDocument(parser, body, 64, &root); !s.ok()) return s;
  const auto tickets = router::json::Get(root, "tickets");
  if (!tickets || !tickets->is_array()) return absl::InvalidArgumentError("the answer lists no tickets");
  for (const router::json::element ticket : router::json::AsArray(*tickets)) {
    if (const std::optional<int64_t> id = router::json::Int(ticket, "id")) return std::to_string(*id);
  }
  return std::optional<std::string>();
}

std::string AuthorizationHeader(const config::DestinationOptions& options) {
  switch (options.type) {
    case config::DestinationType::kZendesk:
      if (!options.oauth_token.empty()) return absl::StrCat("Bearer ", options.oauth_token);
      return absl::StrCat("Basic ",
                          absl::Base64Escape(absl::StrCat(options.email, "/token:", options.api_token)));
    case config::DestinationType::kFreshdesk:
      return absl::StrCat("Basic ", absl::Base64Escape(absl::StrCat(options.api_key, ":X")));
    default:
      return "";
  }
}

}  // namespace triage::daemon
