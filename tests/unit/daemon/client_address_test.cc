#include <gtest/gtest.h>

#include "daemon/ingest.h"

namespace triage::daemon {
namespace {

config::IpAddress Client(const char* peer, std::vector<const char*> forwarded, std::vector<const char*> trusted) {
  Request request{http::verb::post, "/webhooks/x", 11};
  for (const char* value : forwarded) request.insert("X-Forwarded-For", value);
  std::vector<config::IpNetwork> networks;
  for (const char* t : trusted) networks.push_back(*config::IpNetwork::Parse(t));
  return ClientAddress(asio::ip::make_address(peer), request, networks);
}

std::string C(const char* peer, std::vector<const char*> forwarded, std::vector<const char*> trusted) {
  return Client(peer, std::move(forwarded), std::move(trusted)).ToString();
}

TEST(ClientAddressTest, AnUntrustedPeerIsTheClientWhateverItClaims) {
  EXPECT_EQ(C("203.0.113.9", {"10.0.0.1"}, {}), "203.0.113.9");
  EXPECT_EQ(C("203.0.113.9", {"10.0.0.1"}, {"127.0.0.1"}), "203.0.113.9");
}

TEST(ClientAddressTest, ATrustedProxyNamesTheClientAsTheRightmostUntrustedHop) {
  EXPECT_EQ(C("127.0.0.1", {"198.51.100.7"}, {"127.0.0.1"}), "198.51.100.7");
  // The client wrote a fake first hop; the proxy appended the real one.
  EXPECT_EQ(C("127.0.0.1", {"10.9.9.9, 198.51.100.7"}, {"127.0.0.1"}), "198.51.100.7");
  // Two proxies of ours: both are skipped.
  EXPECT_EQ(C("127.0.0.1", {"198.51.100.7, 10.0.0.2"}, {"127.0.0.1", "10.0.0.0/8"}), "198.51.100.7");
  // Several headers are one list, in order.
  EXPECT_EQ(C("127.0.0.1", {"10.9.9.9", "198.51.100.7"}, {"127.0.0.1"}), "198.51.100.7");
  // No header: the proxy itself.
  EXPECT_EQ(C("127.0.0.1", {}, {"127.0.0.1"}), "127.0.0.1");
  // Garbage: nothing further left is believed; the client is the last hop read (the proxy).
  EXPECT_EQ(C("127.0.0.1", {"198.51.100.7, unknown"}, {"127.0.0.1"}), "127.0.0.1");
  EXPECT_EQ(C("::ffff:127.0.0.1", {"2001:db8::7"}, {"127.0.0.1"}), "2001:db8::7");
}

}  // namespace
}  // namespace triage::daemon
