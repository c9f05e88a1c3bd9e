// libFuzzer target for one source type of the registry (its name chosen at build time by
// TRIAGE_FUZZ_SOURCE): any bytes in, no crash, no sanitizer report, and every message that comes
// out serialises.
#include <cstddef>
#include <cstdint>

#include "absl/time/time.h"
#include "router/router.h"
#include "router/source.h"
#include "router/sources/source_type.h"
#include "router/ticket_json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const triage::router::ParseContext* context = [] {
    auto* c = new triage::router::ParseContext();
    c->source = "fuzz";
    c->brand_ids = {"1000000000000000001", "500000000000001"};
    c->known_authors = {{"6000000000000006", "dana_example", 1000, true, "press"}};
    c->default_reach = 5;
    return c;
  }();
  static const std::shared_ptr<const triage::router::Triager>* triager = [] {
    triage::router::ScorerOptions scorer;
    scorer.categories = {{"outage", 45, {"down", "not working"}}, {"billing", 30, {"refund"}}};
    triage::router::RouterOptions router;
    router.teams = {"support"};
    router.default_team = "support";
    return new std::shared_ptr<const triage::router::Triager>(
        *triage::router::Triager::Create(scorer, router));
  }();
  static const triage::router::SourceType* type = triage::router::FindSourceType(TRIAGE_FUZZ_SOURCE);
  if (type == nullptr) __builtin_trap();
  const auto result = type->Parse(absl::string_view(reinterpret_cast<const char*>(data), size), *context);
  if (!result.ok()) return 0;
  for (const triage::router::Message& message : result->messages) {
    const std::string json = triage::router::TicketJson((*triager)->Triage(message, absl::UnixEpoch()));
    if (json.empty() || json.front() != '{') __builtin_trap();
  }
  return 0;
}
