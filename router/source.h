#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "router/message.h"

namespace triage::router {

struct PayloadLimits {
  size_t max_messages = 1000;   // messages in one request
  size_t max_depth = 32;        // JSON nesting
  size_t max_id_bytes = 256;    // ids end up in storage keys
  size_t max_text_bytes = 64 * 1024;
};

// An author the brand knows (press, VIP), matched by platform id or handle. Meta payloads
// carry no follower counts, so this is the only way their reach can be known.
struct KnownAuthor {
  std::string id;
  std::string handle;  // matched case-insensitively, without '@'
  std::optional<int64_t> followers;
  bool verified = false;
  std::string note;  // shown in the reasons: "press", "VIP customer"
};

// What a source parser needs to know besides the bytes. Built from config, immutable.
struct ParseContext {
  std::string source;  // configured source name
  PayloadLimits limits;
  // The brand's own accounts (X user ids, Page/IG/phone-number ids): their posts, DMs and
  // echoes are not customer messages. Envelope fields (for_user_id, entry.id) add to these.
  std::vector<std::string> brand_ids;
  std::vector<KnownAuthor> known_authors;
  std::optional<int> default_reach;  // 0..100, assumed when the platform gives no followers
};

// Why an event was not routed:
//   not_a_message   receipts, reactions, deletes, statuses, account and template notifications
//   own_account     the brand's own posts, DMs and echoes
//   no_content      the platform sent ids only (an Instagram mention): nothing to read
//   could_not_read  a shape this version does not know: the request is quarantined (kept raw
//                   for a replay by a later version), never silently acknowledged
inline constexpr char kCouldNotRead[] = "could_not_read";

// One request's worth of events: the customer messages to route, and a count of every event
// by kind ("mention", "direct_message", "favorite", "delivery", ...) with the reason each
// ignored one was not routed.
struct ParseResult {
  static constexpr size_t kMaxUnreadable = 8;

  std::vector<Message> messages;
  std::map<std::string, int> events;
  std::map<std::string, int> ignored;
  // What could not be read, in words ("whatsapp message type 'order'"), the first few.
  std::vector<std::string> unreadable;

  void Ignore(const std::string& kind, const std::string& reason) {
    ++events[kind];
    ++ignored[reason];
  }
  void CouldNotRead(const std::string& kind, std::string what) {
    Ignore(kind, kCouldNotRead);
    if (unreadable.size() < kMaxUnreadable) unreadable.push_back(std::move(what));
  }
  bool complete() const { return !ignored.contains(kCouldNotRead); }
  void Add(Message message) {
    ++events[message.kind.empty() ? "message" : message.kind];
    messages.push_back(std::move(message));
  }
};

// Fills followers/verified/known_as from the known authors, and assumed_reach from the
// default when the follower count is unknown.
void ApplyAuthorKnowledge(const ParseContext& context, Author* author);

}  // namespace triage::router
