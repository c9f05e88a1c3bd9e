// The shipped lexicon against a labelled set of customer messages (tests/fixtures/triage/,
// written for this project; not the held-out evaluation set). A regression guard: a lexicon
// change that loses agreement or blurs the urgency ranking fails here.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <fstream>

#include "config/config.h"
#include "router/router.h"

namespace triage::config {
namespace {

TEST(DefaultLexiconTest, AgreesWithTheLabelledSetAndRanksComplaintsAbove) {
  const auto config = LoadConfigString(DefaultConfigYaml(), "default.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  const auto triager = router::Triager::Create(config->scoring, config->routing);
  ASSERT_TRUE(triager.ok()) << triager.status();
  std::ifstream in(std::string(TRIAGE_FIXTURES) + "/triage/labelled.jsonl");
  simdjson::dom::parser parser;
  int total = 0, agree = 0;
  double complaint_urgency = 0, other_urgency = 0;
  int complaints = 0;
  std::string misses;
  for (std::string line; std::getline(in, line);) {
    simdjson::dom::element row = parser.parse(line);
    router::Message m;
    m.text = std::string(std::string_view(row["text"]));
    const bool labelled = bool(row["complaint"]);
    const router::RoutedMessage r = (*triager)->Triage(m, absl::UnixEpoch());
    ++total;
    if (r.triage.complaint == labelled) {
      ++agree;
    } else {
      misses += "\n  " + m.text;
    }
    (labelled ? complaint_urgency : other_urgency) += r.triage.urgency;
    complaints += labelled;
  }
  ASSERT_EQ(total, 60);
  EXPECT_GE(agree, 57) << "misses:" << misses;  // 95%
  EXPECT_GE(complaint_urgency / complaints, 30.0);
  EXPECT_LE(other_urgency / (total - complaints), 5.0);
}

}  // namespace
}  // namespace triage::config
