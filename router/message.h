#pragma once

#include "absl/strings/string_view.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace triage::router {

// The author of a message, as far as the platform tells us. `followers` is empty when the
// platform gives no count (Meta, WhatsApp): reach is then "unknown", not zero.
struct Author {
  std::string id;
  std::string handle;
  std::string name;
  std::optional<int64_t> followers;
  bool verified = false;
  std::string verified_type;  // X v2: "blue", "business", "government"; empty when not given
  // Set by the source from its configuration, never from the payload: the reach to assume
  // when the platform gives no follower count, and why an author is known (press, VIP).
  std::optional<int> assumed_reach;
  std::string known_as;
};

// One customer message, normalised from whatever envelope carried it. Plain data: built by a
// source parser, read by the scorer and the router, serialised by storage.
struct Message {
  std::string source;    // configured source name, e.g. "generic"
  std::string id;        // the platform's id for the message
  // The platform's key for this event when it differs from `id` (an edit of a comment is a
  // new event on the same comment). (source, event key) is the dedup key.
  std::string event_key;
  std::string platform;  // "x", "facebook", "messenger", "instagram", "whatsapp", ...
  std::string kind;      // "mention", "reply", "quote", "retweet", "post", "comment",
                         // "direct_message"; empty when the source does not say
  std::string channel;   // "public" or "private"; empty when the source does not say
  std::string account_id;  // the brand account it reached (X user, Page, IG account, phone)
  Author author;
  std::string text;
  std::string language;  // BCP-47 as given ("en", "und"); empty when not given
  absl::Time created_at = absl::InfinitePast();  // InfinitePast when the payload gave none
  std::string conversation_id;
  std::string url;

  const std::string& dedup_id() const { return event_key.empty() ? id : event_key; }
};

enum class Level { kUrgent = 0, kHigh = 1, kNormal = 2, kLow = 3 };
inline constexpr int kLevelCount = 4;

absl::string_view LevelName(Level level);
// Returns false when `name` is not one of urgent/high/normal/low.
bool ParseLevel(absl::string_view name, Level* level);

struct CategoryMatch {
  std::string name;
  std::vector<std::string> terms;  // the configured terms that matched, in match order
  int weight = 0;
};

// What the scorer and router decided, with the reasons in words an agent can read.
struct Triage {
  int urgency = 0;   // 0..100
  bool complaint = false;  // the author reports a problem or dissatisfaction
  int reach = 0;     // 0..100, 0 when unknown
  bool reach_known = false;
  int priority = 0;  // 0..100, from urgency and reach
  Level level = Level::kLow;
  absl::Time sla_deadline;
  std::vector<CategoryMatch> categories;
  std::string team;                  // owner team: its entry is the ticket
  std::vector<std::string> informed;  // further teams, each gets its own entry
  std::string rule;                  // name of the rule that chose the owner, or "default"
  std::vector<std::string> tags;     // from the rules that matched
  bool dropped = false;              // a rule dropped it: stored for dedup, delivered nowhere
  // A rule's say on acknowledging the customer (RuleOptions::acknowledge); unset: the owner
  // team's acknowledge block decides by its conditions.
  std::optional<bool> acknowledge;
  std::vector<std::string> reasons;
  // What the trained models said, when configured: the complaint probability, and the team
  // model's proposal with its probability.
  std::optional<double> model_complaint_probability;
  std::string model_team;
  double model_team_confidence = 0;
};

struct RoutedMessage {
  Message message;
  absl::Time received_at;
  Triage triage;
};

}  // namespace triage::router
