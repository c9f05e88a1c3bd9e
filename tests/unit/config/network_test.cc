#include "config/network.h"

#include <gtest/gtest.h>

namespace triage::config {
namespace {

IpAddress A(const char* text) { return *IpAddress::Parse(text); }

TEST(NetworkTest, ParsesAddressesAndNetworks) {
  EXPECT_TRUE(IpNetwork::Parse("10.0.0.0/8"));
  EXPECT_TRUE(IpNetwork::Parse("127.0.0.1"));
  EXPECT_TRUE(IpNetwork::Parse("2001:db8::/32"));
  EXPECT_TRUE(IpNetwork::Parse("0.0.0.0/0"));
  EXPECT_FALSE(IpNetwork::Parse("10.0.0.1/8")) << "bits beyond the prefix: a likely typo";
  EXPECT_FALSE(IpNetwork::Parse("10.0.0.0/33"));
  EXPECT_FALSE(IpNetwork::Parse("10.0.0.0/"));
  EXPECT_FALSE(IpNetwork::Parse("10.0.0/8"));
  EXPECT_FALSE(IpNetwork::Parse("example.com"));
  EXPECT_FALSE(IpAddress::Parse(""));
}

TEST(NetworkTest, ContainsByPrefixAndMatchesMappedIpv4AsIpv4) {
  const IpNetwork ten = *IpNetwork::Parse("10.0.0.0/8");
  EXPECT_TRUE(ten.Contains(A("10.255.1.2")));
  EXPECT_FALSE(ten.Contains(A("11.0.0.1")));
  EXPECT_TRUE(ten.Contains(A("::ffff:10.1.2.3")));
  const IpNetwork odd = *IpNetwork::Parse("192.168.4.0/22");
  EXPECT_TRUE(odd.Contains(A("192.168.7.255")));
  EXPECT_FALSE(odd.Contains(A("192.168.8.0")));
  const IpNetwork v6 = *IpNetwork::Parse("2001:db8::/32");
  EXPECT_TRUE(v6.Contains(A("2001:db8:ffff::1")));
  EXPECT_FALSE(v6.Contains(A("2001:db9::1")));
  EXPECT_FALSE(v6.Contains(A("10.0.0.1")));
  EXPECT_TRUE(IpNetwork::Parse("0.0.0.0/0")->Contains(A("8.8.8.8")));
  EXPECT_TRUE(AnyContains({ten, v6}, A("2001:db8::5")));
  EXPECT_FALSE(AnyContains({}, A("10.0.0.1")));
  EXPECT_EQ(A("::ffff:10.1.2.3").ToString(), "10.1.2.3");
  EXPECT_EQ(A("2001:db8::1").ToString(), "2001:db8::1");
}

}  // namespace
}  // namespace triage::config
