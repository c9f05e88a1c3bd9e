#include "config/network.h"

#include <arpa/inet.h>

#include <algorithm>

#include "absl/strings/numbers.h"

namespace triage::config {

std::optional<IpAddress> IpAddress::Parse(absl::string_view text) {
  const std::string s(text);
  IpAddress out;
  if (inet_pton(AF_INET, s.c_str(), out.bytes.data()) == 1) {
    out.v4 = true;
    return out;
  }
  if (inet_pton(AF_INET6, s.c_str(), out.bytes.data()) != 1) return std::nullopt;
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::equal(kMapped, kMapped + 12, out.bytes.begin())) {
    std::copy(out.bytes.begin() + 12, out.bytes.end(), out.bytes.begin());
    std::fill(out.bytes.begin() + 4, out.bytes.end(), 0);
    out.v4 = true;
  }
  return out;
}

std::string IpAddress::ToString() const {
  char buffer[INET6_ADDRSTRLEN] = {};
  inet_ntop(v4 ? AF_INET : AF_INET6, bytes.data(), buffer, sizeof(buffer));
  return buffer;
}

std::optional<IpNetwork> IpNetwork::Parse(absl::string_view text) {
  const size_t slash = text.find('/');
  const std::optional<IpAddress> base = IpAddress::Parse(text.substr(0, slash));
  if (!base) return std::nullopt;
  const int bits = base->v4 ? 32 : 128;
  int prefix = bits;
  if (slash != absl::string_view::npos &&
      (!absl::SimpleAtoi(text.substr(slash + 1), &prefix) || prefix < 0 || prefix > bits)) {
    return std::nullopt;
  }
  IpNetwork network{*base, prefix};
  IpAddress masked = *base;
  for (int i = 0; i < 16; ++i) {
    const int keep = std::clamp(prefix - i * 8, 0, 8);
    masked.bytes[i] &= static_cast<uint8_t>(0xff00 >> keep);
  }
  if (!(masked == *base)) return std::nullopt;
  return network;
}

bool IpNetwork::Contains(const IpAddress& address) const {
  if (address.v4 != base.v4) return false;
  for (int i = 0; i < 16; ++i) {
    const int keep = std::clamp(prefix - i * 8, 0, 8);
    if (keep == 0) break;
    const uint8_t mask = static_cast<uint8_t>(0xff00 >> keep);
    if ((address.bytes[i] & mask) != base.bytes[i]) return false;
  }
  return true;
}

bool AnyContains(const std::vector<IpNetwork>& networks, const IpAddress& address) {
  for (const IpNetwork& n : networks) {
    if (n.Contains(address)) return true;
  }
  return false;
}

}  // namespace triage::config
