#include "router/message.h"

#include <array>

namespace triage::router {
namespace {
constexpr std::array<absl::string_view, kLevelCount> kLevelNames = {"urgent", "high", "normal",
                                                                   "low"};
}  // namespace

absl::string_view LevelName(Level level) { return kLevelNames[static_cast<int>(level)]; }

bool ParseLevel(absl::string_view name, Level* level) {
  for (int i = 0; i < kLevelCount; ++i) {
    if (kLevelNames[i] == name) {
      *level = static_cast<Level>(i);
      return true;
    }
  }
  return false;
}

}  // namespace triage::router
