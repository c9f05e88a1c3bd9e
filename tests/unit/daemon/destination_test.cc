// Requests the destination types (router/destinations/<type>/) render, from a destination
// loaded by the config: compared byte for byte with reviewed fixtures
// (tests/fixtures/helpdesk/), and checked against the documented schemas.
#include "router/destinations/destination_type.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <cstdlib>
#include <fstream>
#include <set>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "config/config.h"
#include "router/ticket_json.h"
#include "tests/test_util.h"

namespace triage::router {
namespace {

// A complaint on X from a verified author, with characters every target must escape.
std::string TicketJson() {
  RoutedMessage r;
  Message& m = r.message;
  m.source = "x";
  m.id = "1790000000000000001";
  m.platform = "x";
  m.kind = "mention";
  m.channel = "public";
  m.account_id = "42";
  m.author.id = "2244994945";
  m.author.handle = "dana_ops";
  m.author.name = "Dana <Ops> & \"Co\"";
  m.author.followers = 48200;
  m.author.verified = true;
  m.text = "@acme app DOWN since 9am, charged twice & no refund <again>!!";
  m.language = "en";
  m.created_at = absl::FromUnixSeconds(1795000000);
  m.conversation_id = "1790000000000000001";
  m.url = "https://x.com/dana_ops/status/1790000000000000001";
  r.received_at = absl::FromUnixSeconds(1795000002);
  Triage& t = r.triage;
  t.urgency = 85;
  t.complaint = true;
  t.reach = 64;
  t.reach_known = true;
  t.priority = 80;
  t.level = Level::kUrgent;
  t.sla_deadline = absl::FromUnixSeconds(1795000902);
  t.categories = {{"outage", {"down"}, 50}, {"billing", {"charged twice", "refund"}, 30}};
  t.team = "billing";
  t.informed = {"pr"};
  t.rule = "billing";
  t.tags = {"Double Charge"};
  t.reasons = {"outage: down (+50)", "billing: charged twice, refund (+30)", "verified author"};
  return TicketJson(r);
}

config::DestinationOptions Destination(const std::string& yaml_body) {
  const std::string yaml = "destinations:\n  helpdesk:\n" + yaml_body +
                           "teams:\n  billing: {destinations: [helpdesk]}\n  pr: {destinations: [helpdesk]}\n"
                           "routing: {default_team: billing}\n"
                           "sources: {generic: {type: generic, secret: s}}\n";
  absl::StatusOr<config::Config> config = config::LoadConfigString(yaml, "test.yaml");
  EXPECT_TRUE(config.ok()) << config.status().message();
  return config.ok() ? config->destinations.at(0) : config::DestinationOptions();
}

const char kZendesk[] = R"(    type: zendesk
    url: https://acme.zendesk.com/
    email: bot@acme.example
    api_token: {value: "abc123"}
    group_ids: {billing: 360001, pr: 360002}
    watchers: {pr: ["361000", pr-lead@acme.example], billing: ["362000"]}
    custom_fields: {"25356371": "{{platform}}", "25356372": "{{reach}}"}
)";
const char kFreshdesk[] = R"(    type: freshdesk
    url: https://acme.freshdesk.com
    api_key: {value: "fd-key"}
    group_ids: {billing: 7000}
    watchers: {pr: [pr-lead@acme.example]}
    custom_fields: {cf_platform: "{{platform}}"}
)";

const char kHubSpot[] = R"(    type: hubspot
    url: https://api.hubapi.com
    access_token: {value: "pat-na1-abc"}
    group_ids: {billing: 51234567, pr: 51234568}
    custom_fields: {triaged_platform: "{{platform}}"}
)";

const char kRt[] = R"(    type: rt
    url: https://rt.example.com/
    token: {value: "1-35-7ba9e790"}
    group_ids: {pr: 4}
    requester_email: "{{platform}}-{{author_id}}@customers.invalid"
    custom_fields: {Platform: "{{platform}}"}
)";

const char kJsm[] = R"(    type: jsm
    url: https://acme.atlassian.net
    email: agent@acme.example
    api_token: {value: "atl-token"}
    service_desk_id: "4"
    request_type_id: "31"
    group_ids: {pr: 32}
    custom_fields: {customfield_10050: "{{reach}}"}
)";

struct Rendered {
  OutboundRequest request;
  std::string ticket_json;
};

TicketTemplates Templates(const config::DestinationOptions& options) {
  absl::StatusOr<TicketTemplates> templates = CompileTemplates(
      options.subject_template, options.body_template, options.follow_up_template, options.custom_fields, *options.type, options.settings);
  EXPECT_TRUE(templates.ok()) << templates.status();
  return templates.ok() ? *std::move(templates) : TicketTemplates();
}

OutboundRequest Render(const config::DestinationOptions& options, const TicketView& ticket,
                       const DeliveryContext& context) {
  const TicketTemplates templates = Templates(options);
  absl::StatusOr<OutboundRequest> request =
      options.type->Render(
          DestinationView{options.settings, templates, options.group_ids, options.join_informed, &options.watchers},
          &ticket, context);
  EXPECT_TRUE(request.ok()) << request.status();
  return request.ok() ? *std::move(request) : OutboundRequest();
}

OutboundRequest Render(const config::DestinationOptions& options, bool owner,
                       std::optional<std::string> remote_ticket) {
  absl::StatusOr<TicketView> view = ParseTicketView(TicketJson());
  EXPECT_TRUE(view.ok()) << view.status();
  const std::string json = TicketJson();
  return Render(options, *view,
                DeliveryContext{.destination = "helpdesk",
                                .team = owner ? "billing" : "pr",
                                .owner = owner,
                                .delivery_id = "msg_0123456789abcdef",
                                .ticket_json = json,
                                .remote_ticket = std::move(remote_ticket)});
}

const DestinationType& Type(const char* name) {
  const DestinationType* type = FindDestinationType(name);
  EXPECT_NE(type, nullptr) << name;
  return *type;
}

// TRIAGE_UPDATE_FIXTURES=1 rewrites the fixtures from what is rendered now: review the diff.
void ExpectFixture(const std::string& body, const std::string& name) {
  if (std::getenv("TRIAGE_UPDATE_FIXTURES") != nullptr) {
    std::ofstream(std::string(TRIAGE_FIXTURES) + "/helpdesk/" + name) << body << "\n";
  }
  std::string expected = testing::ReadFixture("helpdesk/" + name);
  while (!expected.empty() && expected.back() == '\n') expected.pop_back();
  EXPECT_EQ(body, expected) << name;
}

simdjson::dom::element Parse(simdjson::dom::parser& parser, const std::string& body) {
  simdjson::dom::element root;
  EXPECT_EQ(parser.parse(body).get(root), simdjson::SUCCESS) << body;
  return root;
}

// The parts of Zendesk's TicketCreateInput that triaged writes: comment is required, priority
// and status are enums, custom_fields items are {id: integer, value}, tags strings.
void ExpectZendeskCreateSchema(const std::string& body) {
  simdjson::dom::parser parser;
  simdjson::dom::object ticket = Parse(parser, body)["ticket"].get_object();
  ASSERT_TRUE(ticket["comment"]["body"].is_string());
  EXPECT_TRUE(ticket["comment"]["public"].is_bool());
  const std::set<std::string> priorities = {"urgent", "high", "normal", "low"};
  EXPECT_TRUE(priorities.contains(std::string(std::string_view(ticket["priority"]))));
  const std::set<std::string> statuses = {"new", "open", "pending", "hold", "solved", "closed"};
  EXPECT_TRUE(statuses.contains(std::string(std::string_view(ticket["status"]))));
  for (simdjson::dom::element tag : ticket["tags"].get_array()) {
    const std::string_view text(tag);
    EXPECT_EQ(text.find_first_of(" ,"), std::string_view::npos) << text;
  }
  for (simdjson::dom::element field : ticket["custom_fields"].get_array()) {
    EXPECT_TRUE(field["id"].is_int64());
    EXPECT_FALSE(field["value"].error());
  }
  EXPECT_TRUE(ticket["group_id"].is_int64());
  EXPECT_LE(std::string_view(ticket["external_id"]).size(), 255u);
  // Followers: {user_id | user_email, action: put | delete}.
  for (simdjson::dom::element follower : ticket["followers"].get_array()) {
    EXPECT_TRUE(follower["user_id"].is_string() || follower["user_email"].is_string());
    EXPECT_EQ(std::string_view(follower["action"]), "put");
  }
}

// Freshdesk's create: subject, description, status 2-5, priority 1-4, one requester identity.
void ExpectFreshdeskCreateSchema(const std::string& body) {
  simdjson::dom::parser parser;
  simdjson::dom::object ticket = Parse(parser, body).get_object();
  EXPECT_TRUE(ticket["subject"].is_string());
  EXPECT_TRUE(ticket["description"].is_string());
  const int64_t status = ticket["status"], priority = ticket["priority"];
  EXPECT_TRUE(status >= 2 && status <= 5);
  EXPECT_TRUE(priority >= 1 && priority <= 4);
  int identities = 0;
  for (const char* key : {"requester_id", "email", "phone", "facebook_id", "twitter_id",
                          "unique_external_id"}) {
    identities += ticket[key].error() ? 0 : 1;
  }
  EXPECT_EQ(identities, 1);
  for (simdjson::dom::key_value_pair field : ticket["custom_fields"].get_object()) {
    EXPECT_EQ(field.key.substr(0, 3), "cf_");
  }
}

TEST(HelpdeskTest, ZendeskCreateIsIdempotentAndFollowsTheSchema) {
  const OutboundRequest r = Render(Destination(kZendesk), true, std::nullopt);
  EXPECT_EQ(r.method, HttpMethod::kPost);
  EXPECT_EQ(r.target, "/api/v2/tickets.json");
  EXPECT_TRUE(r.creates_ticket);
  ASSERT_EQ(r.headers.size(), 1u);
  EXPECT_EQ(r.headers[0].first, "Idempotency-Key");
  EXPECT_EQ(r.headers[0].second, "msg_0123456789abcdef");
  ExpectFixture(r.body, "zendesk-create.json");
  ExpectZendeskCreateSchema(r.body);
  // Rendering is deterministic: a retry sends the byte-identical body Zendesk requires.
  EXPECT_EQ(Render(Destination(kZendesk), true, std::nullopt).body, r.body);
}

TEST(HelpdeskTest, ZendeskFollowUpIsAnInternalCommentOnTheThreadTicket) {
  const OutboundRequest r = Render(Destination(kZendesk), true, "35436");
  EXPECT_EQ(r.method, HttpMethod::kPut);
  EXPECT_EQ(r.target, "/api/v2/tickets/35436.json");
  EXPECT_FALSE(r.creates_ticket);
  EXPECT_TRUE(r.headers.empty());
  ExpectFixture(r.body, "zendesk-comment.json");
}

TEST(HelpdeskTest, ZendeskInformedTeamGetsItsGroupAndTheInformedTag) {
  const OutboundRequest r = Render(Destination(kZendesk), false, std::nullopt);
  simdjson::dom::parser parser;
  simdjson::dom::element ticket = Parse(parser, r.body)["ticket"];
  EXPECT_EQ(int64_t(ticket["group_id"]), 360002);
  std::set<std::string> tags;
  for (simdjson::dom::element tag : ticket["tags"].get_array()) tags.emplace(std::string_view(tag));
  EXPECT_TRUE(tags.contains("informed"));
  EXPECT_TRUE(tags.contains("team_pr"));
}

TEST(HelpdeskTest, FreshdeskCreateAndNoteFollowTheSchema) {
  const OutboundRequest create = Render(Destination(kFreshdesk), true, std::nullopt);
  EXPECT_EQ(create.method, HttpMethod::kPost);
  EXPECT_EQ(create.target, "/api/v2/tickets");
  EXPECT_TRUE(create.creates_ticket);
  EXPECT_TRUE(create.headers.empty()) << "Freshdesk has no idempotency key";
  ExpectFixture(create.body, "freshdesk-create.json");
  ExpectFreshdeskCreateSchema(create.body);

  const OutboundRequest note = Render(Destination(kFreshdesk), true, "9001");
  EXPECT_EQ(note.target, "/api/v2/tickets/9001/notes");
  EXPECT_FALSE(note.creates_ticket);
  ExpectFixture(note.body, "freshdesk-note.json");
}

// A follow-up more urgent than its ticket (filed low, for pr) raises it in the same request.
TEST(HelpdeskTest, AMoreUrgentFollowUpRaisesTheTicketAndSaysWhatChangedAndWhy) {
  const std::string json = TicketJson();  // urgent, billing
  const TicketView view = *ParseTicketView(json);
  DeliveryContext context{.destination = "helpdesk",
                          .team = "billing",
                          .owner = true,
                          .level = Level::kUrgent,
                          .delivery_id = "msg_0123456789abcdef",
                          .ticket_json = json,
                          .remote_ticket = "35436",
                          .ticket_level = Level::kLow,
                          .ticket_team = "pr"};
  ASSERT_TRUE(context.Escalates());
  const OutboundRequest zendesk = Render(Destination(kZendesk), view, context);
  EXPECT_EQ(zendesk.method, HttpMethod::kPut);
  EXPECT_EQ(zendesk.target, "/api/v2/tickets/35436.json");
  EXPECT_TRUE(zendesk.first.empty());
  ExpectFixture(zendesk.body, "zendesk-escalation.json");

  const OutboundRequest freshdesk = Render(Destination(kFreshdesk), view, context);
  EXPECT_EQ(freshdesk.target, "/api/v2/tickets/35436/notes");
  ASSERT_EQ(freshdesk.first.size(), 1u) << "the priority goes up before the note";
  EXPECT_EQ(freshdesk.first[0].method, HttpMethod::kPut);
  EXPECT_EQ(freshdesk.first[0].target, "/api/v2/tickets/35436");
  EXPECT_EQ(freshdesk.first[0].body, R"({"priority":4,"group_id":7000})");
  EXPECT_TRUE(absl::StrContains(freshdesk.body, "Raised by this follow-up: priority low -&gt; urgent, team pr -&gt; billing<br>Why:<br>- outage: down (+50)"))
      << freshdesk.body;

  // Not more urgent, same team: a note, nothing raised. Never lowered either.
  for (const Level filed : {Level::kUrgent, Level::kHigh}) {
    context.ticket_level = filed;
    context.ticket_team = "billing";
    context.level = filed == Level::kUrgent ? Level::kUrgent : Level::kNormal;
    EXPECT_FALSE(context.Escalates());
    const OutboundRequest note = Render(Destination(kZendesk), view, context);
    EXPECT_FALSE(absl::StrContains(note.body, "priority")) << note.body;
    EXPECT_FALSE(absl::StrContains(note.body, "Raised")) << note.body;
    EXPECT_TRUE(Render(Destination(kFreshdesk), view, context).first.empty());
  }
  // An informed team's note never moves the ticket.
  context.owner = false;
  context.ticket_level = Level::kLow;
  EXPECT_FALSE(context.Escalates());
}

TEST(HelpdeskTest, SlackMessageIsCompactEscapedMrkdwn) {
  const OutboundRequest r = Render(Destination("    type: slack\n    url: https://hooks.slack.com/services/T0/B0/x\n"),
                                   false, std::nullopt);
  EXPECT_EQ(r.target, "");
  ExpectFixture(r.body, "slack.json");
}

TEST(HelpdeskTest, CustomTemplatesAndAuthorization) {
  config::DestinationOptions options = Destination(std::string(kZendesk) +
                                                   "    subject: \"{{team}}/{{level}}: {{author}}\"\n");
  EXPECT_EQ(options.type->Authorization(options.settings),
            "Basic " + absl::Base64Escape("bot@acme.example/token:abc123"));
  const OutboundRequest r = Render(options, true, std::nullopt);
  simdjson::dom::parser parser;
  EXPECT_EQ(std::string_view(Parse(parser, r.body)["ticket"]["subject"]), "billing/urgent: @dana_ops");

  options.settings.values["oauth_token"] = "oauth-xyz";
  EXPECT_EQ(options.type->Authorization(options.settings), "Bearer oauth-xyz");
  const config::DestinationOptions freshdesk = Destination(kFreshdesk);
  EXPECT_EQ(freshdesk.type->Authorization(freshdesk.settings), "Basic " + absl::Base64Escape("fd-key:X"));
}

TEST(HelpdeskTest, SlaDeadlineOfAStoredTicket) {
  EXPECT_EQ(SlaDeadline(TicketJson()), absl::FromUnixSeconds(1795000902));
  EXPECT_FALSE(SlaDeadline(R"({"triage":{"sla_deadline":null}})").has_value());
  EXPECT_FALSE(SlaDeadline("not json").has_value());
}

TEST(HelpdeskTest, CreatedTicketIdFromEachHelpdesksAnswer) {
  EXPECT_EQ(Type("zendesk").CreatedTicketId(R"({"ticket":{"id":35436,"subject":"x"}})").value(), "35436");
  EXPECT_EQ(Type("freshdesk").CreatedTicketId(R"({"id":9001,"priority":4})").value(), "9001");
  EXPECT_FALSE(Type("zendesk").CreatedTicketId(R"({"id":1})").ok());
  EXPECT_FALSE(Type("freshdesk").CreatedTicketId("<html>").ok());
}

TEST(HelpdeskTest, ZendeskLookupOnlyWhenTheKeyMayHaveExpired) {
  const absl::Time t0 = absl::FromUnixSeconds(1795000000);
  const DestinationType& zendesk = Type("zendesk");
  EXPECT_FALSE(zendesk.LookUpBeforeCreating(t0, 0, t0 + absl::Hours(5))) << "never tried: nothing to find";
  EXPECT_FALSE(zendesk.LookUpBeforeCreating(t0, 3, t0 + absl::Minutes(104)));
  EXPECT_TRUE(zendesk.LookUpBeforeCreating(t0, 1, t0 + absl::Minutes(105)));
  const config::DestinationOptions options = Destination(kZendesk);
  const TicketTemplates templates = Templates(options);
  const std::optional<OutboundRequest> lookup =
      zendesk.LookupRequest(DestinationView{options.settings, templates, options.group_ids},
                            DeliveryContext{.delivery_id = "msg_00ff"});
  ASSERT_TRUE(lookup.has_value());
  EXPECT_EQ(lookup->method, HttpMethod::kGet);
  EXPECT_EQ(lookup->target, "/api/v2/tickets.json?external_id=msg_00ff");
  EXPECT_EQ(zendesk.FoundTicketId(R"({"tickets":[{"id":77},{"id":78}],"count":2})").value(), "77");
  EXPECT_EQ(zendesk.FoundTicketId(R"({"tickets":[],"count":0})").value(), std::nullopt);
  EXPECT_FALSE(zendesk.FoundTicketId(R"({"ticket":{"id":1}})").ok());
}

TEST(HelpdeskTest, FreshdeskLooksEveryRetriedCreationUpByItsDeliveryTag) {
  const absl::Time t0 = absl::FromUnixSeconds(1795000000);
  const DestinationType& freshdesk = Type("freshdesk");
  EXPECT_FALSE(freshdesk.LookUpBeforeCreating(t0, 0, t0)) << "never tried: nothing to find";
  EXPECT_TRUE(freshdesk.LookUpBeforeCreating(t0, 1, t0 + absl::Seconds(1))) << "no idempotency key to rely on";
  const config::DestinationOptions options = Destination(kFreshdesk);
  const TicketTemplates templates = Templates(options);
  const std::optional<OutboundRequest> lookup = freshdesk.LookupRequest(
      DestinationView{options.settings, templates, options.group_ids}, DeliveryContext{.delivery_id = "msg_00ff"});
  ASSERT_TRUE(lookup.has_value());
  EXPECT_EQ(lookup->method, HttpMethod::kGet);
  EXPECT_EQ(lookup->target, "/api/v2/search/tickets?query=%22tag:%27msg_00ff%27%22");
  EXPECT_EQ(freshdesk.FoundTicketId(R"({"results":[{"id":9001,"tags":["msg_00ff"]}],"total":1})").value(), "9001");
  EXPECT_EQ(freshdesk.FoundTicketId(R"({"results":[],"total":0})").value(), std::nullopt);
  EXPECT_FALSE(freshdesk.FoundTicketId(R"({"errors":[]})").ok());
}

// The counts the acknowledgement issue reads: unsolved tickets waiting in a team's group.
TEST(HelpdeskTest, HelpdesksCountTheOpenTicketsInATeamsGroup) {
  const config::DestinationOptions zendesk = Destination(kZendesk);
  const TicketTemplates z_templates = Templates(zendesk);
  const DestinationView z_view{zendesk.settings, z_templates, zendesk.group_ids};
  const std::optional<OutboundRequest> z = zendesk.type->CountOpenRequest(z_view, "billing");
  ASSERT_TRUE(z.has_value());
  EXPECT_EQ(z->method, HttpMethod::kGet);
  EXPECT_EQ(z->target, "/api/v2/search/count?query=type%3Aticket%20status%3Csolved%20group_id%3A360001");
  EXPECT_EQ(zendesk.type->OpenCount(R"({"count": 6})").value(), 6);  // the documented answer
  EXPECT_FALSE(zendesk.type->OpenCount(R"({"view_id":1,"value":null,"fresh":false})").ok());
  EXPECT_FALSE(zendesk.type->CountOpenRequest(z_view, "no-group-here").has_value());

  const config::DestinationOptions freshdesk = Destination(kFreshdesk);
  const TicketTemplates f_templates = Templates(freshdesk);
  const std::optional<OutboundRequest> f =
      freshdesk.type->CountOpenRequest(DestinationView{freshdesk.settings, f_templates, freshdesk.group_ids}, "billing");
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->target, "/api/v2/search/tickets?query=%22group_id:7000%20AND%20(status:2%20OR%20status:3)%22");
  EXPECT_EQ(freshdesk.type->OpenCount(R"({"results":[{"id":1}],"total":42})").value(), 42);
  EXPECT_FALSE(freshdesk.type->OpenCount(R"({"results":[]})").ok());
  // A Slack hook counts nothing.
  const config::DestinationOptions slack = Destination("    type: slack\n    url: https://hooks.slack.com/x\n");
  const TicketTemplates s_templates = Templates(slack);
  EXPECT_FALSE(slack.type->CountOpenRequest(DestinationView{slack.settings, s_templates, slack.group_ids}, "billing")
                   .has_value());
}

// HubSpot, added as one folder: the same ticket, follow-up, escalation, lookup and count.
TEST(HelpdeskTest, HubSpotTicketsNotesEscalationLookupAndCount) {
  const config::DestinationOptions options = Destination(kHubSpot);
  EXPECT_EQ(options.rate, 5);
  EXPECT_EQ(options.type->Authorization(options.settings), "Bearer pat-na1-abc");
  const OutboundRequest create = Render(options, true, std::nullopt);
  EXPECT_EQ(create.method, HttpMethod::kPost);
  EXPECT_EQ(create.target, "/crm/v3/objects/tickets");
  EXPECT_TRUE(create.creates_ticket);
  ExpectFixture(create.body, "hubspot-create.json");
  EXPECT_EQ(options.type->CreatedTicketId(R"({"id":"512","properties":{"subject":"x"},"archived":false})").value(), "512");
  EXPECT_FALSE(options.type->CreatedTicketId(R"({"status":"error","category":"VALIDATION_ERROR"})").ok());

  const std::string json = TicketJson();
  const TicketView view = *ParseTicketView(json);
  DeliveryContext context{.destination = "helpdesk", .team = "billing", .level = Level::kUrgent,
                          .delivery_id = "msg_0123456789abcdef", .enqueued_unix_ms = 1795000002000,
                          .ticket_json = json, .remote_ticket = "512", .ticket_level = Level::kLow,
                          .ticket_team = "pr"};
  const OutboundRequest note = Render(options, view, context);
  EXPECT_EQ(note.target, "/crm/v3/objects/notes");
  ExpectFixture(note.body, "hubspot-note.json");
  ASSERT_EQ(note.first.size(), 1u);
  EXPECT_EQ(note.first[0].method, HttpMethod::kPatch);
  EXPECT_EQ(note.first[0].target, "/crm/v3/objects/tickets/512");
  EXPECT_EQ(note.first[0].body, R"({"properties":{"hs_ticket_priority":"URGENT","hubspot_owner_id":"51234567"}})");

  const TicketTemplates templates = Templates(options);
  const DestinationView d{options.settings, templates, options.group_ids};
  EXPECT_TRUE(options.type->LookUpBeforeCreating(absl::UnixEpoch(), 1, absl::UnixEpoch()));
  const std::optional<OutboundRequest> lookup = options.type->LookupRequest(d, context);
  ASSERT_TRUE(lookup.has_value());
  EXPECT_EQ(lookup->target, "/crm/v3/objects/tickets/search");
  EXPECT_EQ(lookup->body,
            R"({"filterGroups":[{"filters":[{"propertyName":"triaged_delivery_id","operator":"EQ","value":"msg_0123456789abcdef"}]}],)"
            R"("properties":["hs_object_id"],"limit":1})");
  EXPECT_EQ(options.type->FoundTicketId(R"({"total":1,"results":[{"id":"512","properties":{}}]})").value(), "512");
  EXPECT_EQ(options.type->FoundTicketId(R"({"total":0,"results":[]})").value(), std::nullopt);
  const std::optional<OutboundRequest> count = options.type->CountOpenRequest(d, "billing");
  ASSERT_TRUE(count.has_value());
  EXPECT_TRUE(absl::StrContains(count->body, R"({"propertyName":"hs_pipeline_stage","operator":"NEQ","value":"4"})"))
      << count->body;
  EXPECT_EQ(options.type->OpenCount(R"({"total":17,"results":[{"id":"9"}]})").value(), 17);

  const std::string errors = config::LoadConfigString(
      "destinations:\n  helpdesk: {type: hubspot, url: 'https://api.hubapi.com', custom_fields: {Bad-Name: x}}\n"
      "teams:\n  billing: {destinations: [helpdesk]}\nrouting: {default_team: billing}\n"
      "sources: {generic: {type: generic, secret: s}}\n", "test.yaml").status().ToString();
  EXPECT_TRUE(absl::StrContains(errors, "destinations.helpdesk.access_token: is required")) << errors;
  EXPECT_TRUE(absl::StrContains(errors, "internal name")) << errors;
}

// Request Tracker, one folder too: a queue per team, a numeric priority, the delivery id in a
// custom field that a retry searches for, comments, a raise by PUT.
TEST(HelpdeskTest, RtTicketsCommentsEscalationLookupAndCount) {
  const config::DestinationOptions options = Destination(kRt);
  EXPECT_EQ(options.rate, 2);
  EXPECT_EQ(options.concurrency, 1);
  EXPECT_EQ(options.type->Authorization(options.settings), "token 1-35-7ba9e790");
  const OutboundRequest create = Render(options, true, std::nullopt);
  EXPECT_EQ(create.method, HttpMethod::kPost);
  EXPECT_EQ(create.target, "/REST/2.0/ticket");
  EXPECT_TRUE(create.creates_ticket);
  ExpectFixture(create.body, "rt-create.json");
  // Ids are strings in RT's answers; an error is {"message": ...}.
  EXPECT_EQ(options.type->CreatedTicketId(R"({"_url":"http://rt/REST/2.0/ticket/7","id":"7","type":"ticket"})").value(), "7");
  EXPECT_FALSE(options.type->CreatedTicketId(R"({"message":"Could not create ticket. Queue not set"})").ok());
  // An informed team with its queue id.
  const OutboundRequest informed = Render(options, false, std::nullopt);
  EXPECT_TRUE(absl::StartsWith(informed.body, R"({"Queue":4,)")) << informed.body;

  const std::string json = TicketJson();
  const TicketView view = *ParseTicketView(json);
  DeliveryContext context{.destination = "helpdesk", .team = "billing", .level = Level::kUrgent,
                          .delivery_id = "msg_0123456789abcdef", .enqueued_unix_ms = 1795000002000,
                          .ticket_json = json, .remote_ticket = "7", .ticket_level = Level::kLow,
                          .ticket_team = "pr"};
  const OutboundRequest comment = Render(options, view, context);
  EXPECT_EQ(comment.target, "/REST/2.0/ticket/7/comment");
  ExpectFixture(comment.body, "rt-comment.json");
  ASSERT_EQ(comment.first.size(), 1u);
  EXPECT_EQ(comment.first[0].method, HttpMethod::kPut);
  EXPECT_EQ(comment.first[0].target, "/REST/2.0/ticket/7");
  EXPECT_EQ(comment.first[0].body, R"({"Priority":100,"Queue":"billing"})");
  context.ticket_level = Level::kUrgent;  // as urgent already, same team: a plain comment
  context.ticket_team = "billing";
  EXPECT_TRUE(Render(options, view, context).first.empty());

  const TicketTemplates templates = Templates(options);
  const DestinationView d{options.settings, templates, options.group_ids};
  EXPECT_FALSE(options.type->LookUpBeforeCreating(absl::UnixEpoch(), 0, absl::UnixEpoch()));
  EXPECT_TRUE(options.type->LookUpBeforeCreating(absl::UnixEpoch(), 1, absl::UnixEpoch()));
  const std::optional<OutboundRequest> lookup = options.type->LookupRequest(d, context);
  ASSERT_TRUE(lookup.has_value());
  EXPECT_EQ(lookup->method, HttpMethod::kGet);
  EXPECT_EQ(lookup->target,
            "/REST/2.0/tickets?per_page=1&query=CF.%7BTriagedDeliveryId%7D%20%3D%20%27msg_0123456789abcdef%27");
  EXPECT_EQ(options.type->FoundTicketId(R"({"count":1,"total":1,"items":[{"id":"7","type":"ticket"}]})").value(), "7");
  EXPECT_EQ(options.type->FoundTicketId(R"({"count":0,"total":0,"pages":0.0,"items":[]})").value(), std::nullopt);
  EXPECT_EQ(options.type->CountOpenRequest(d, "billing")->target,
            "/REST/2.0/tickets?per_page=1&query=Queue%20%3D%20%27billing%27%20AND%20Status%20%3D%20%27__Active__%27");
  EXPECT_EQ(options.type->CountOpenRequest(d, "pr")->target,
            "/REST/2.0/tickets?per_page=1&query=Queue%20%3D%204%20AND%20Status%20%3D%20%27__Active__%27");
  EXPECT_EQ(options.type->OpenCount(R"({"count":1,"page":1,"pages":9,"per_page":1,"total":9,"items":[]})").value(), 9);
  EXPECT_EQ(options.type->PriorityLevel("75"), Level::kHigh);
  EXPECT_EQ(options.type->PriorityLevel("Medium"), Level::kNormal);

  const std::string errors = config::LoadConfigString(
      "destinations:\n  helpdesk: {type: rt, url: 'https://rt.example.com', delivery_id_field: 'a}b',"
      " custom_fields: {'x{y': z}}\n"
      "teams:\n  billing: {destinations: [helpdesk]}\nrouting: {default_team: billing}\n"
      "sources: {generic: {type: generic, secret: s}}\n", "test.yaml").status().ToString();
  EXPECT_TRUE(absl::StrContains(errors, "destinations.helpdesk.token: is required")) << errors;
  EXPECT_TRUE(absl::StrContains(errors, "delivery_id_field: an RT custom field name has no braces")) << errors;
  EXPECT_TRUE(absl::StrContains(errors, "no braces or quotes")) << errors;
}

// Jira Service Management, one folder as well: a customer request per message, labels for the
// team, level and delivery id, internal comments, a raise through the platform API.
TEST(HelpdeskTest, JsmRequestsCommentsEscalationLookupAndCount) {
  const config::DestinationOptions options = Destination(kJsm);
  EXPECT_EQ(options.rate, 3);
  EXPECT_EQ(options.type->Authorization(options.settings), "Basic " + absl::Base64Escape("agent@acme.example:atl-token"));
  const OutboundRequest create = Render(options, true, std::nullopt);
  EXPECT_EQ(create.method, HttpMethod::kPost);
  EXPECT_EQ(create.target, "/rest/servicedeskapi/request");
  EXPECT_TRUE(create.creates_ticket);
  ExpectFixture(create.body, "jsm-create.json");
  EXPECT_TRUE(absl::StrContains(Render(options, false, std::nullopt).body, R"("requestTypeId":"32")"));
  EXPECT_EQ(options.type->CreatedTicketId(R"({"issueId":"107001","issueKey":"HELP-1","requestTypeId":"31"})").value(),
            "HELP-1");
  EXPECT_FALSE(options.type->CreatedTicketId(R"({"errorMessage":"Bad request","i18nErrorMessage":{}})").ok());

  const std::string json = TicketJson();
  const TicketView view = *ParseTicketView(json);
  DeliveryContext context{.destination = "helpdesk", .team = "billing", .level = Level::kUrgent,
                          .delivery_id = "msg_0123456789abcdef", .enqueued_unix_ms = 1795000002000,
                          .ticket_json = json, .remote_ticket = "HELP-1", .ticket_level = Level::kLow,
                          .ticket_team = "pr"};
  const OutboundRequest comment = Render(options, view, context);
  EXPECT_EQ(comment.target, "/rest/servicedeskapi/request/HELP-1/comment");
  ExpectFixture(comment.body, "jsm-comment.json");
  ASSERT_EQ(comment.first.size(), 1u);
  EXPECT_EQ(comment.first[0].method, HttpMethod::kPut);
  EXPECT_EQ(comment.first[0].target, "/rest/api/2/issue/HELP-1");
  EXPECT_EQ(comment.first[0].body,
            R"({"fields":{"priority":{"name":"Highest"}},"update":{"labels":[{"add":"level_urgent"},)"
            R"({"remove":"level_low"},{"add":"team_billing"},{"remove":"team_pr"}]}})");

  const TicketTemplates templates = Templates(options);
  const DestinationView d{options.settings, templates, options.group_ids};
  EXPECT_TRUE(options.type->LookUpBeforeCreating(absl::UnixEpoch(), 1, absl::UnixEpoch()));
  EXPECT_EQ(options.type->LookupRequest(d, context)->target,
            "/rest/api/3/search/jql?maxResults=1&fields=key&jql=labels%20%3D%20%22msg_0123456789abcdef%22");
  EXPECT_EQ(options.type->FoundTicketId(R"({"issues":[{"id":"107001","key":"HELP-1"}],"isLast":true})").value(),
            "HELP-1");
  EXPECT_EQ(options.type->FoundTicketId(R"({"issues":[],"isLast":true})").value(), std::nullopt);
  const std::optional<OutboundRequest> count = options.type->CountOpenRequest(d, "billing");
  ASSERT_TRUE(count.has_value());
  EXPECT_EQ(count->method, HttpMethod::kPost);
  EXPECT_EQ(count->body, R"({"jql":"labels = \"team_billing\" AND statusCategory != Done"})");
  EXPECT_EQ(options.type->OpenCount(R"({"count":12})").value(), 12);
  EXPECT_EQ(options.type->PriorityLevel("Highest"), Level::kUrgent);

  const std::string errors = config::LoadConfigString(
      "destinations:\n  helpdesk: {type: jsm, url: 'https://acme.atlassian.net', custom_fields: {reach: x}}\n"
      "teams:\n  billing: {destinations: [helpdesk]}\nrouting: {default_team: billing}\n"
      "sources: {generic: {type: generic, secret: s}}\n", "test.yaml").status().ToString();
  for (const char* key : {"email", "api_token", "service_desk_id", "request_type_id"}) {
    EXPECT_TRUE(absl::StrContains(errors, absl::StrCat("destinations.helpdesk.", key, ": is required"))) << errors;
  }
  EXPECT_TRUE(absl::StrContains(errors, "customfield_<id>")) << errors;
}

TEST(HelpdeskTest, SlackTextIsCutAt3000BytesOnACharacterBoundary) {
  config::DestinationOptions options =
      Destination("    type: slack\n    url: https://hooks.slack.com/x\n    body: \"{{text}}\"\n");
  TicketView ticket;
  for (int i = 0; i < 2000; ++i) ticket.text += "é";  // 2 bytes each: 4000 bytes
  const OutboundRequest r = Render(options, ticket, DeliveryContext{.team = "support", .delivery_id = "id"});
  simdjson::dom::parser parser;
  const std::string_view text = Parse(parser, r.body)["text"];
  EXPECT_LE(text.size(), 3000u);
  EXPECT_GE(text.size(), 2990u);
  EXPECT_EQ(text.substr(text.size() - 3), "…");
  EXPECT_EQ(text.substr(0, 2), "é");
  EXPECT_EQ(text.substr(text.size() - 5, 2), "é") << "no character split before the ellipsis";
}

// A WhatsApp message: no URL, no handle, no follower count, no kind.
TicketView WhatsAppTicket() {
  TicketView t;
  t.source = "meta";
  t.id = "wamid.HBgL";
  t.platform = "whatsapp";
  t.channel = "private";
  t.text = "my order never came";
  t.author_id = "15551234567";
  t.author_name = "Bob";
  t.level = "high";
  t.team = "support";
  t.rule = "default";
  return t;
}

TEST(HelpdeskTest, WhatATicketLacksLeavesNoEmptyLinesDoubleSpacesOrEmptyFields) {
  const config::DestinationOptions options = Destination(
      "    type: zendesk\n    url: https://acme.zendesk.com/\n    oauth_token: t\n"
      "    custom_fields: {\"1\": \"{{url}}\", \"2\": \"{{reach}}\", \"3\": \"{{platform}} {{url}}\"}\n");
  const OutboundRequest r = Render(options, WhatsAppTicket(),
                                   DeliveryContext{.team = "support", .delivery_id = "msg_1"});
  simdjson::dom::parser parser;
  simdjson::dom::element ticket = Parse(parser, r.body)["ticket"];
  EXPECT_EQ(std::string_view(ticket["subject"]), "[high] whatsapp from Bob: my order never came");
  const std::string_view body = ticket["comment"]["body"];
  EXPECT_EQ(body.find("Link:"), std::string_view::npos) << body;
  EXPECT_NE(body.find("Author: Bob, followers: unknown,"), std::string_view::npos) << body;
  EXPECT_EQ(body.find("Bob (Bob)"), std::string_view::npos) << body;
  // Fields 1 and 2 have nothing to say; 3 has the platform.
  std::vector<int64_t> ids;
  for (simdjson::dom::element field : ticket["custom_fields"].get_array()) ids.push_back(int64_t(field["id"]));
  EXPECT_EQ(ids, std::vector<int64_t>{3});
  EXPECT_EQ(std::string_view(ticket["custom_fields"].at(0)["value"]), "whatsapp");
}

TEST(HelpdeskTest, TheCustomerIsTheRequesterByTheIdentityEachHelpdeskKnows) {
  const config::DestinationOptions zendesk = Destination(kZendesk);
  const TicketTemplates templates = Templates(zendesk);
  const DestinationView view{zendesk.settings, templates, zendesk.group_ids};
  TicketView whatsapp = WhatsAppTicket();
  const std::optional<OutboundRequest> user = zendesk.type->RequesterRequest(view, whatsapp, DeliveryContext{});
  ASSERT_TRUE(user.has_value());
  EXPECT_EQ(user->target, "/api/v2/users/create_or_update.json");
  EXPECT_EQ(user->body,
            R"({"user":{"name":"Bob","external_id":"whatsapp:15551234567","role":"end-user",)"
            R"("identities":[{"type":"phone_number","value":"+15551234567"}]}})");
  EXPECT_EQ(zendesk.type->RequesterId(R"({"user":{"id":3742,"name":"Bob"}})").value(), "3742");
  EXPECT_FALSE(zendesk.type->RequesterId(R"({"users":[]})").ok());
  // The ticket names the user made from the author.
  const OutboundRequest create = Render(zendesk, whatsapp,
                                        DeliveryContext{.team = "billing", .delivery_id = "msg_1", .requester_id = "3742"});
  EXPECT_TRUE(absl::StrContains(create.body, R"("requester_id":3742)")) << create.body;
  // With a requester_email template, the email names the requester instead.
  const config::DestinationOptions by_email =
      Destination(std::string(kZendesk) + "    requester_email: \"{{author_id}}@customers.acme.example\"\n");
  const TicketTemplates email_templates = Templates(by_email);
  EXPECT_FALSE(by_email.type
                   ->RequesterRequest(DestinationView{by_email.settings, email_templates, by_email.group_ids}, whatsapp,
                                      DeliveryContext{})
                   .has_value());

  const config::DestinationOptions freshdesk = Destination(kFreshdesk);
  auto freshdesk_create = [&](const TicketView& t) {
    const OutboundRequest r = Render(freshdesk, t, DeliveryContext{.team = "billing", .delivery_id = "msg_1"});
    ExpectFreshdeskCreateSchema(r.body);
    return r.body;
  };
  std::string body = freshdesk_create(whatsapp);
  EXPECT_TRUE(absl::StrContains(body, R"("phone":"+15551234567")")) << body;
  EXPECT_TRUE(absl::StrContains(body, R"("source":7)")) << "a private conversation is a chat: " << body;
  TicketView messenger = WhatsAppTicket();
  messenger.platform = "messenger";
  messenger.author_id = "6543210987";
  body = freshdesk_create(messenger);
  EXPECT_TRUE(absl::StrContains(body, R"("facebook_id":"6543210987")")) << body;
  TicketView post = WhatsAppTicket();
  post.platform = "instagram";
  post.channel = "public";
  body = freshdesk_create(post);
  EXPECT_TRUE(absl::StrContains(body, R"("unique_external_id":"instagram:15551234567")")) << body;
  EXPECT_TRUE(absl::StrContains(body, R"("source":2)")) << body;
}

TEST(HelpdeskTest, SlackTextIsNeverCutInsideAnEntity) {
  const config::DestinationOptions options =
      Destination("    type: slack\n    url: https://hooks.slack.com/x\n    body: \"{{text}}\"\n");
  TicketView ticket;
  ticket.text = std::string(2995, 'a') + "&&&&&";  // escaped: 2995 bytes, then &amp; x5
  const OutboundRequest r = Render(options, ticket, DeliveryContext{.team = "support", .delivery_id = "id"});
  simdjson::dom::parser parser;
  const std::string_view text = Parse(parser, r.body)["text"];
  EXPECT_EQ(text, std::string(2995, 'a') + "…");
  ticket.text = std::string(2990, 'a') + "&&&&&";  // the cut falls after two whole entities
  const OutboundRequest r2 = Render(options, ticket, DeliveryContext{.team = "support", .delivery_id = "id"});
  const std::string_view text2 = Parse(parser, r2.body)["text"];
  EXPECT_EQ(text2, std::string(2990, 'a') + "&amp;" + "…");
}

// Where an agent opens a ticket, per type; an alert names it last, escaped, never cut.
TEST(HelpdeskTest, TicketPagesAndTheSlackLinkToThem) {
  const Settings none;
  EXPECT_EQ(Type("zendesk").TicketUrl(none, "https://acme.zendesk.com/", "35436"),
            "https://acme.zendesk.com/agent/tickets/35436");
  EXPECT_EQ(Type("freshdesk").TicketUrl(none, "https://acme.freshdesk.com", "1"), "https://acme.freshdesk.com/a/tickets/1");
  EXPECT_EQ(Type("rt").TicketUrl(none, "https://rt.example.com", "7"), "https://rt.example.com/Ticket/Display.html?id=7");
  EXPECT_EQ(Type("jsm").TicketUrl(none, "https://acme.atlassian.net", "HELP-1"), "https://acme.atlassian.net/browse/HELP-1");
  EXPECT_EQ(Type("hubspot").TicketUrl(none, "https://api.hubapi.com", "512"), std::nullopt) << "needs portal_id";
  Settings hubspot;
  hubspot.values["portal_id"] = "4711";
  EXPECT_EQ(Type("hubspot").TicketUrl(hubspot, "https://api.hubapi.com", "512"),
            "https://app.hubspot.com/contacts/4711/record/0-5/512");
  for (const char* name : {"file", "webhook", "slack"}) EXPECT_EQ(Type(name).TicketUrl(none, "x", "1"), std::nullopt);

  config::DestinationOptions slack = Destination("    type: slack\n    url: https://hooks.slack.com/x\n    body: \"{{text}}\"\n");
  TicketView ticket;
  ticket.text = std::string(4000, 'a');
  const OutboundRequest r = Render(slack, ticket,
                                   DeliveryContext{.team = "support", .delivery_id = "id",
                                                   .linked_ticket_url = "https://rt.example.com/Ticket/Display.html?id=7&x=<1>"});
  simdjson::dom::parser parser;
  const std::string_view text = Parse(parser, r.body)["text"];
  EXPECT_EQ(text.size(), 3000u);
  EXPECT_TRUE(text.ends_with("…\nTicket: <https://rt.example.com/Ticket/Display.html?id=7&amp;x=&lt;1&gt;>")) << text;
}

// watchers: teams of this config, each with at least one user; only on types that take them.
TEST(HelpdeskTest, WatchersAreUsersOfKnownTeams) {
  auto load = [](const std::string& destination) {
    return config::LoadConfigString("destinations:\n  helpdesk: " + destination +
                                        "\nteams:\n  billing: {destinations: [helpdesk]}\nrouting: {default_team: billing}\n"
                                        "sources: {generic: {type: generic, secret: s}}\n",
                                    "test.yaml")
        .status();
  };
  const std::string zendesk = "{type: zendesk, url: 'https://a.zendesk.com', email: e, api_token: t, ";
  EXPECT_TRUE(load(zendesk + "watchers: {billing: [1, a@b.c]}}").ok()) << load(zendesk + "watchers: {billing: [1]}}");
  EXPECT_TRUE(absl::StrContains(load(zendesk + "watchers: {legal: [1]}}").message(),
                                "destinations.helpdesk.watchers: unknown team 'legal'"))
      << load(zendesk + "watchers: {legal: [1]}}");
  EXPECT_TRUE(absl::StrContains(load(zendesk + "watchers: {billing: []}}").message(), "needs at least one user"))
      << load(zendesk + "watchers: {billing: []}}");
  EXPECT_TRUE(absl::StrContains(load("{type: jsm, url: 'https://a.atlassian.net', email: e, api_token: t, "
                                     "service_desk_id: '1', request_type_id: '2', watchers: {billing: [1]}}")
                                    .message(),
                                "watchers"))
      << "jsm has no watchers key";
}

// count_interval: on destinations that keep tickets, off by default, at least a second; the
// teams counted are those that deliver there.
TEST(HelpdeskTest, CountIntervalIsForTicketDestinations) {
  auto load = [](const std::string& destination) {
    return config::LoadConfigString("destinations:\n  helpdesk: " + destination +
                                        "\n  file: {type: file, path: /tmp/x.jsonl}\n"
                                        "teams:\n  billing: {destinations: [helpdesk]}\n  pr: {destinations: [helpdesk]}\n"
                                        "  legal: {destinations: [file]}\nrouting: {default_team: billing}\n"
                                        "sources: {generic: {type: generic, secret: s}}\n",
                                    "test.yaml");
  };
  const std::string rt = "{type: rt, url: 'https://rt.example.com', token: t";
  const absl::StatusOr<config::Config> off = load(rt + "}");
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_EQ(off->destinations[0].count_interval, absl::ZeroDuration());
  EXPECT_EQ(off->destinations[0].teams, (std::vector<std::string>{"billing", "pr"}));
  const absl::StatusOr<config::Config> on = load(rt + ", count_interval: 2m}");
  ASSERT_TRUE(on.ok()) << on.status();
  EXPECT_EQ(on->destinations[0].count_interval, absl::Minutes(2));
  EXPECT_TRUE(absl::StrContains(load(rt + ", count_interval: 100ms}").status().message(), "at least 1s"));
  EXPECT_TRUE(absl::StrContains(
      load("{type: slack, url: 'https://hooks.slack.com/x', count_interval: 1m}").status().message(),
      "count_interval"));
}

// ticket_link names a destination of this config whose type has ticket pages.
TEST(HelpdeskTest, ATicketLinkMustNameADestinationWithTicketPages) {
  auto errors = [](const std::string& link, const std::string& hubspot_extra = "") {
    return config::LoadConfigString(
               "destinations:\n  alerts: {type: slack, url: 'https://hooks.slack.com/x', ticket_link: " + link +
                   ", ticket_link_wait: 10s}\n"
                   "  hooks: {type: webhook, url: 'https://example.com/h', secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw}\n"
                   "  hub: {type: hubspot, url: 'https://api.hubapi.com', access_token: t" + hubspot_extra + "}\n"
                   "teams:\n  billing: {destinations: [alerts, hub]}\nrouting: {default_team: billing}\n"
                   "sources: {generic: {type: generic, secret: s}}\n",
               "test.yaml")
        .status();
  };
  EXPECT_TRUE(absl::StrContains(errors("nowhere").message(), "ticket_link: unknown destination 'nowhere'")) << errors("nowhere");
  EXPECT_TRUE(absl::StrContains(errors("hooks").message(), "'hooks' (webhook) has no ticket pages")) << errors("hooks");
  EXPECT_TRUE(absl::StrContains(errors("hub").message(), "'hub' (hubspot) has no ticket pages")) << errors("hub");
  EXPECT_TRUE(errors("hub", ", portal_id: '4711'").ok()) << errors("hub", ", portal_id: '4711'");
  const absl::StatusOr<config::Config> config = config::LoadConfigString(
      "destinations:\n  alerts: {type: slack, url: 'https://hooks.slack.com/x', ticket_link: rt}\n"
      "  rt: {type: rt, url: 'https://rt.example.com', token: t}\n"
      "teams:\n  billing: {destinations: [alerts, rt]}\n  pr: {destinations: [alerts]}\n"
      "routing: {default_team: billing}\nsources: {generic: {type: generic, secret: s}}\n",
      "test.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  const auto& link = config->destinations.at(0).ticket_link;
  ASSERT_TRUE(link.has_value());
  EXPECT_EQ(link->type, FindDestinationType("rt"));
  EXPECT_EQ(link->url, "https://rt.example.com");
  EXPECT_EQ(link->teams, std::set<std::string>{"billing"});
  EXPECT_EQ(config->destinations.at(0).ticket_link_wait, absl::Seconds(30));
}

TEST(DestinationRegistryTest, EveryTypeIsFoundByItsNameAndListedWhenATypeIsUnknown) {
  std::set<std::string> names;
  for (const DestinationType* type : DestinationTypes()) {
    EXPECT_EQ(FindDestinationType(type->name()), type);
    EXPECT_TRUE(names.insert(std::string(type->name())).second) << type->name() << " twice";
  }
  EXPECT_EQ(FindDestinationType("carrier-pigeon"), nullptr);
  const absl::StatusOr<config::Config> config = config::LoadConfigString(
      "destinations:\n  out: {type: carrier-pigeon}\nteams:\n  support: {destinations: [out]}\n"
      "routing: {default_team: support}\nsources: {generic: {type: generic, secret: s}}\n",
      "test.yaml");
  ASSERT_FALSE(config.ok());
  for (const std::string& name : names) {
    EXPECT_NE(config.status().message().find(name), std::string::npos) << name << " in " << config.status();
  }
}

}  // namespace
}  // namespace triage::router
