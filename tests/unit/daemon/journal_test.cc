#include "daemon/journal.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>

namespace triage::daemon {
namespace {

using ::testing::ElementsAre;

TEST(JournalTest, LevelsMapToSyslogPriorities) {
  EXPECT_EQ(JournalPriority(spdlog::level::critical), 2);
  EXPECT_EQ(JournalPriority(spdlog::level::err), 3);
  EXPECT_EQ(JournalPriority(spdlog::level::warn), 4);
  EXPECT_EQ(JournalPriority(spdlog::level::info), 6);
  EXPECT_EQ(JournalPriority(spdlog::level::debug), 7);
}

TEST(JournalTest, TheLinesPairsBecomeFields) {
  EXPECT_THAT(JournalFields(spdlog::level::err,
                            "event=config_reload_refused path=/etc/t.yaml error=\"a \\\"b\\\" c\"", "triaged"),
              ElementsAre("MESSAGE=event=config_reload_refused path=/etc/t.yaml error=\"a \\\"b\\\" c\"",
                          "PRIORITY=3", "SYSLOG_IDENTIFIER=triaged", "EVENT=config_reload_refused",
                          "PATH=/etc/t.yaml", "ERROR=a \"b\" c"));
  // Words that are not pairs stay in MESSAGE only; so do keys that could not be field names.
  EXPECT_THAT(JournalFields(spdlog::level::info, "hello Key=x 9x=y =z destination=zendesk", "t"),
              ElementsAre("MESSAGE=hello Key=x 9x=y =z destination=zendesk", "PRIORITY=6",
                          "SYSLOG_IDENTIFIER=t", "DESTINATION=zendesk"));
  // An unterminated quote takes the rest of the line.
  EXPECT_THAT(JournalFields(spdlog::level::warn, "note=\"open", "t"),
              ElementsAre("MESSAGE=note=\"open", "PRIORITY=4", "SYSLOG_IDENTIFIER=t", "NOTE=open"));
}

TEST(JournalTest, AtMostSixteenPairs) {
  std::string line;
  for (int i = 0; i < 20; ++i) line += "k" + std::to_string(i) + "=v ";
  EXPECT_EQ(JournalFields(spdlog::level::info, line, "t").size(), 3u + kMaxJournalPairs);
}

TEST(JournalTest, StderrIsTheJournalOnlyWhenJournalStreamNamesIt) {
  ::unsetenv("JOURNAL_STREAM");
  EXPECT_FALSE(StderrIsJournal());
  struct stat st {};
  ASSERT_EQ(fstat(2, &st), 0);
  ::setenv("JOURNAL_STREAM", (std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino)).c_str(), 1);
  EXPECT_TRUE(StderrIsJournal());
  ::setenv("JOURNAL_STREAM", (std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino + 1)).c_str(), 1);
  EXPECT_FALSE(StderrIsJournal());
  ::setenv("JOURNAL_STREAM", "garbage", 1);
  EXPECT_FALSE(StderrIsJournal());
  ::unsetenv("JOURNAL_STREAM");
}

}  // namespace
}  // namespace triage::daemon
