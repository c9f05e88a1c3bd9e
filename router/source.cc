#include "router/source.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/strip.h"

namespace triage::router {

void ApplyAuthorKnowledge(const ParseContext& context, Author* author) {
  for (const KnownAuthor& known : context.known_authors) {
    const bool by_id = !known.id.empty() && known.id == author->id;
    const bool by_handle = !known.handle.empty() && !author->handle.empty() &&
                           absl::EqualsIgnoreCase(absl::StripPrefix(known.handle, "@"), author->handle);
    if (!by_id && !by_handle) continue;
    if (known.followers && (!author->followers || *author->followers < *known.followers)) {
      author->followers = known.followers;
    }
    author->verified = author->verified || known.verified;
    author->known_as = known.note.empty() ? "listed" : known.note;
    break;
  }
  if (!author->followers && context.default_reach) author->assumed_reach = context.default_reach;
}


}  // namespace triage::router
