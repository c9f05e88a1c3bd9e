#include <gtest/gtest.h>

#include <filesystem>

#include "router/source.h"
#include "router/sources/source_type.h"
#include "router/ticket_json.h"
#include "tests/test_util.h"

namespace triage::router {
namespace {

// Every fixture, and every input a fuzzer once crashed on, through every parser: each
// returns a status or messages that serialise; none crashes (the asan preset checks memory).
TEST(ParserRegressionTest, EveryFixtureThroughEveryParser) {
  ParseContext context;
  context.source = "regression";
  int files = 0;
  for (const char* folder : {"inbound", "inbound-more", "fuzz"}) {
    for (const auto& entry :
         std::filesystem::recursive_directory_iterator(std::string(TRIAGE_FIXTURES) + "/" + folder)) {
      if (!entry.is_regular_file() || entry.path().extension() == ".md") continue;
      const std::string body = testing::ReadFixture(
          std::filesystem::relative(entry.path(), std::string(TRIAGE_FIXTURES)).string());
      for (const SourceType* type : SourceTypes()) {
        const auto result = type->Parse(body, context);
        if (!result.ok()) {
          EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument) << entry.path();
          continue;
        }
        for (const Message& m : result->messages) {
          EXPECT_FALSE(m.id.empty()) << entry.path();
          EXPECT_EQ(TicketJson(RoutedMessage{m, absl::UnixEpoch(), {}}).front(), '{');
        }
      }
      ++files;
    }
  }
  EXPECT_GE(files, 40);
}

}  // namespace
}  // namespace triage::router
