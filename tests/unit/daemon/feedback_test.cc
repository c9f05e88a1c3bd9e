#include "daemon/feedback.h"

#include <gtest/gtest.h>

#include "router/sources/generic/generic_source.h"

namespace triage::daemon {
namespace {

const router::DestinationType& Type(const char* name) { return *router::FindDestinationType(name); }

TEST(TicketUpdateTest, ReadsZendeskAndFreshdeskBodiesInTheirShapes) {
  auto z = ParseTicketUpdate(Type("zendesk"),
                             R"({"ticket_id":"123","priority":"High","group_id":"360002","tags":"complaint vip"})");
  ASSERT_TRUE(z.ok()) << z.status();
  EXPECT_EQ(z->ticket, "123");
  EXPECT_EQ(z->level, router::Level::kHigh);
  EXPECT_EQ(z->group_id, 360002);
  EXPECT_EQ(z->tags, (std::vector<std::string>{"complaint", "vip"}));

  auto f = ParseTicketUpdate(Type("freshdesk"),
                             R"({"ticket_id":42,"priority":2,"group":"Billing","tags":["not_complaint","x"]})");
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->ticket, "42");
  EXPECT_EQ(f->level, router::Level::kNormal);
  EXPECT_FALSE(f->group_id.has_value());
  EXPECT_EQ(f->group, "Billing");
  EXPECT_EQ(f->tags, (std::vector<std::string>{"not_complaint", "x"}));
  EXPECT_EQ(ParseTicketUpdate(Type("freshdesk"), R"({"ticket_id":1,"priority":"Urgent"})")->level,
            router::Level::kUrgent);
  EXPECT_EQ(ParseTicketUpdate(Type("freshdesk"), R"({"ticket_id":1,"priority":"medium"})")->level,
            router::Level::kNormal);
  // Zendesk renders an unset priority as "-".
  EXPECT_FALSE(ParseTicketUpdate(Type("zendesk"), R"({"ticket_id":1,"priority":"-"})")->level.has_value());
}

TEST(TicketUpdateTest, RefusesWhatItCannotReadByField) {
  for (const auto& [body, field] : std::vector<std::pair<std::string, std::string>>{
           {"[]", "JSON object"},
           {"{", "JSON object"},
           {R"({"priority":"low"})", "ticket_id: is required"},
           {R"({"ticket_id":true})", "ticket_id: must be a string or an integer"},
           {R"({"ticket_id":1,"priority":"critical"})", "priority: unknown value 'critical'"},
           {R"({"ticket_id":1,"group_id":"abc"})", "group_id: must be a number"},
           {R"({"ticket_id":1,"tags":[1]})", "tags: must hold strings"},
           {R"({"ticket_id":1,"tags":{}})", "tags: must be a string or an array"},
       }) {
    const auto update = ParseTicketUpdate(Type("zendesk"), body);
    ASSERT_FALSE(update.ok()) << body;
    EXPECT_NE(update.status().message().find(field), std::string::npos) << body << ": " << update.status();
  }
}

TEST(DeriveLabelTest, GroupsBecomeTeamsPrioritiesLevelsAndTagsTheComplaintLabel) {
  config::FeedbackOptions feedback;
  config::DestinationOptions zendesk;
  zendesk.group_ids = {{"support", 1}, {"billing", 2}};
  const std::vector<std::string> teams = {"support", "billing"};
  TicketUpdate update;
  update.level = router::Level::kUrgent;
  update.group_id = 2;
  update.tags = {"Complaint"};
  AgentLabel label = DeriveLabel(update, feedback, zendesk, teams);
  EXPECT_EQ(label.team, "billing");
  EXPECT_EQ(label.level, router::Level::kUrgent);
  EXPECT_EQ(label.complaint, true);
  update = TicketUpdate{};
  update.group = "SUPPORT";
  update.tags = {"not_complaint"};
  label = DeriveLabel(update, feedback, zendesk, teams);
  EXPECT_EQ(label.team, "support");
  EXPECT_EQ(label.complaint, false);
  // Contradicting tags, an unknown group: no label from them.
  update = TicketUpdate{};
  update.group_id = 99;
  update.tags = {"complaint", "not_complaint"};
  EXPECT_TRUE(DeriveLabel(update, feedback, zendesk, teams).empty());
}

TEST(LabelRecordTest, IsALineTrainingReadsWithTheLabelsAndWhatTriagedDecided) {
  const std::string ticket =
      R"({"source":"generic","id":"m1","platform":"x","kind":"","channel":"","account_id":"","author":{"id":"7","handle":"dana","name":"Dana","followers":120,"verified":false,"verified_type":""},"text":"charged twice","language":"","created_at":null,"received_at":"2026-11-23T10:00:00.000Z","conversation_id":"","url":"","triage":{"urgency":40,"complaint":true,"team":"support","level":"normal"}})";
  AgentLabel label;
  label.team = "billing";
  label.level = router::Level::kHigh;
  label.complaint = true;
  const auto record = LabelRecord(ticket, label, "zendesk-agents", "1001", absl::FromUnixSeconds(1'800'000'000));
  ASSERT_TRUE(record.ok()) << record.status();
  EXPECT_NE(record->find(R"("team":"billing")"), std::string::npos) << *record;
  EXPECT_NE(record->find(R"("level":"high")"), std::string::npos) << *record;
  EXPECT_NE(record->find(R"("triaged":{"complaint":true,"team":"support","level":"normal"})"), std::string::npos)
      << *record;
  EXPECT_EQ(record->find("created_at"), std::string::npos) << *record;  // null is left out
  const auto message = router::ParseLooseMessage(*record, "labels", router::PayloadLimits{});
  ASSERT_TRUE(message.ok()) << message.status();
  EXPECT_EQ(message->text, "charged twice");
  EXPECT_EQ(message->author.followers, 120);
  EXPECT_FALSE(LabelRecord("not json", label, "f", "1", absl::Now()).ok());
}

}  // namespace
}  // namespace triage::daemon
