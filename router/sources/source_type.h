// A source type: one platform's webhooks, behind one interface, in its own folder
// (router/sources/<type>/), listed once in router/sources/registry.cc. It says which settings
// its config block takes, how its requests are signed and which handshake it answers (as data:
// the daemon, which owns the crypto, carries them out), and parses its bodies into messages and
// known non-messages. Nothing outside the registry looks at which type a source is.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "router/settings.h"
#include "router/source.h"

namespace triage::router {

// How one request is authenticated. The checks of a source are tried in order; a check with
// `only_if_present` applies only when its header is there, and the first that applies decides.
struct SignatureCheck {
  enum class Kind {
    kHmacSha256Hex,     // hex HMAC-SHA256 of the raw body; `prefix` may precede it
    kHmacSha256Base64,  // `prefix` + base64 HMAC-SHA256 of the raw body
    kSharedToken,       // the header equals the secret (constant time)
  };
  Kind kind = Kind::kHmacSha256Hex;
  std::string header;
  std::string prefix;            // "sha256=", or empty
  bool prefix_required = false;  // hex: refuse a value without the prefix
  bool only_if_present = false;
  std::string key;  // the secret
  // A second secret that also passes (during a rotation, or while it is unclear which one the
  // platform signs with); empty when none.
  std::string alternate_key;
  bool operator==(const SignatureCheck&) const = default;
};

// The GET handshake a platform makes when a webhook is registered.
struct HandshakeSpec {
  enum class Kind {
    kNone,        // GET is 405
    kXCrc,        // ?crc_token=T -> {"response_token": "sha256=" base64 HMAC(key, T)}
    kMetaVerify,  // hub.mode=subscribe and hub.verify_token == key -> hub.challenge
  };
  Kind kind = Kind::kNone;
  std::string key;
  bool operator==(const HandshakeSpec&) const = default;
};

class SourceType {
 public:
  virtual ~SourceType() = default;
  virtual std::string_view name() const = 0;
  virtual std::vector<Setting> settings() const = 0;
  // The list setting that names the brand's own accounts, or "" when the type has none.
  virtual std::string brand_ids_setting() const { return ""; }
  // Checks across settings: (key, message) for each problem.
  virtual std::vector<std::pair<std::string, std::string>> Validate(const Settings&) const { return {}; }
  virtual std::vector<SignatureCheck> Signature(const Settings& settings) const = 0;
  virtual HandshakeSpec Handshake(const Settings&) const { return {}; }
  // A signed body that does not parse: quarantined (the platform's, true) or refused with 400
  // naming the problem (a sender that can fix its payload, false).
  virtual bool quarantine_unparsable() const { return true; }
  // The body's customer messages and counted non-messages. InvalidArgument when it is not this
  // platform's envelope at all.
  virtual absl::StatusOr<ParseResult> Parse(absl::string_view body, const ParseContext& context) const = 0;
};

// The registry: every source type, and one by its name (nullptr when unknown).
const std::vector<const SourceType*>& SourceTypes();
const SourceType* FindSourceType(std::string_view name);

}  // namespace triage::router
