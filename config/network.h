// IP networks in CIDR notation ("10.0.0.0/8", "2001:db8::/32", or one address), for the
// trusted proxies and the per-source allowlists. Pure; IPv4-mapped IPv6 addresses
// (::ffff:a.b.c.d, what a dual-stack listener reports) are matched as IPv4.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace triage::config {

struct IpAddress {
  bool v4 = false;
  std::array<uint8_t, 16> bytes{};  // v4: the first 4

  static std::optional<IpAddress> Parse(absl::string_view text);
  std::string ToString() const;
  bool operator==(const IpAddress&) const = default;
};

struct IpNetwork {
  IpAddress base;
  int prefix = 0;  // bits

  // "a.b.c.d/n", "x::y/n", or an address alone (/32 or /128); nullopt when malformed or when
  // the address has bits set beyond the prefix ("10.0.0.1/8" is refused as a likely typo).
  static std::optional<IpNetwork> Parse(absl::string_view text);
  bool Contains(const IpAddress& address) const;
  bool operator==(const IpNetwork&) const = default;
};

bool AnyContains(const std::vector<IpNetwork>& networks, const IpAddress& address);

}  // namespace triage::config
