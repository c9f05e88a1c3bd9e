#include "config/config.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "tests/test_util.h"

namespace triage::config {
namespace {

constexpr char kMinimal[] = R"(sources:
  generic: {type: generic, secret: s3cret}
teams:
  support: {destinations: [out]}
  billing: {destinations: [out]}
routing:
  default_team: support
  rules:
    - name: billing
      when: {categories_any: [billing], levels: [urgent, high]}
      team: billing
destinations:
  out: {type: file, path: /tmp/out.jsonl}
)";

std::string Errors(absl::string_view yaml) {
  const auto config = LoadConfigString(yaml, "test.yaml");
  return config.ok() ? "" : std::string(config.status().message());
}

TEST(ConfigTest, EmbeddedDefaultLoads) {
  const auto config = LoadConfigString(DefaultConfigYaml(), "default.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server.listen.port, 8080);
  EXPECT_EQ(config->server.max_body_bytes, 1u << 20);
  EXPECT_EQ(config->storage.dedup_window, absl::Hours(24 * 8));
  EXPECT_EQ(config->routing.default_team, "support");
  ASSERT_EQ(config->destinations.size(), 1u);
  EXPECT_EQ(config->destinations[0].type->name(), "file");
  EXPECT_FALSE(config->scoring.categories.empty());
}

TEST(ConfigTest, MinimalConfigGetsDefaultsAndTheDefaultLexicon) {
  const auto config = LoadConfigString(kMinimal, "test.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->sources[0].settings.Get("secret"), "s3cret");
  EXPECT_EQ(config->sources[0].settings.Get("signature_header"), "X-Triage-Signature");
  EXPECT_EQ(config->server.io_threads, 2);
  EXPECT_EQ(config->scoring.levels[0].sla, absl::Minutes(15));
  EXPECT_FALSE(config->scoring.categories.empty());
  ASSERT_EQ(config->routing.rules.size(), 1u);
  EXPECT_EQ(config->routing.rules[0].levels,
            (std::vector<router::Level>{router::Level::kUrgent, router::Level::kHigh}));
}

TEST(ConfigTest, UnknownKeysAreErrorsWithTheirPosition) {
  const std::string yaml = std::string(kMinimal) + "servr:\n  listen: 127.0.0.1:1\n";
  EXPECT_EQ(Errors(yaml).substr(0, 25), "test.yaml:14:1: servr: un");
}

TEST(ConfigTest, EveryErrorIsReportedWithLineColumnAndPath) {
  const std::string yaml = R"(server:
  io_threads: many
  max_body_bytes: 12 parsecs
  read_timeout: soon
sources:
  generic: {type: generic}
teams:
  support: {destinations: [nowhere]}
routing:
  default_team: sales
  rules:
    - name: r1
      team: legal
destinations:
  out: {type: ftp}
)";
  const std::string errors = Errors(yaml);
  for (const char* expected : {
           "test.yaml:2:15: server.io_threads: must be an integer",
           "test.yaml:3:19: server.max_body_bytes: must be a size",
           "test.yaml:4:17: server.read_timeout: must be a duration",
           "test.yaml:6:12: sources.generic.secret: is required",
           "test.yaml:8:28: teams.support.destinations: unknown destination 'nowhere'",
           "test.yaml:10:17: routing.default_team: unknown team 'sales'",
           "test.yaml:13:13: routing.rules[0].team: unknown team 'legal'",
           "test.yaml:15:15: destinations.out.type: unknown destination type",
       }) {
    EXPECT_NE(errors.find(expected), std::string::npos) << expected << "\n--- got:\n" << errors;
  }
}

// storage.backend picks where the records live; jetstream needs its servers, and destination
// names it can make streams of.
TEST(ConfigTest, TheStorageBackendAndItsJetStreamCluster) {
  const auto config = LoadConfigString(std::string(kMinimal) + R"(storage:
  backend: jetstream
  jetstream: {servers: ["nats://10.0.0.1:4222", "nats://10.0.0.2:4222"], replicas: 3, publish_timeout: 2s,
              node: web-1, lease_ttl: 10s}
)",
                                       "test.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->storage.backend, "jetstream");
  EXPECT_EQ(config->storage.jetstream.servers.size(), 2u);
  EXPECT_EQ(config->storage.jetstream.prefix, "TRIAGE");
  EXPECT_EQ(config->storage.jetstream.publish_timeout, absl::Seconds(2));
  EXPECT_EQ(config->storage.jetstream.node, "web-1");
  EXPECT_EQ(config->storage.jetstream.lease_ttl, absl::Seconds(10));
  EXPECT_NE(Errors(std::string(kMinimal) + "storage: {backend: jetstream, jetstream: {servers: [x], node: a.b}}\n")
                .find("storage.jetstream.node: must be 1 to 64 of [A-Za-z0-9_-]"),
            std::string::npos);
  EXPECT_NE(Errors(std::string(kMinimal) + "storage: {backend: jetstream, jetstream: {servers: [x], lease_ttl: 1s}}\n")
                .find("storage.jetstream.lease_ttl"),
            std::string::npos);
  const auto defaults = LoadConfigString(kMinimal, "test.yaml");
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->storage.backend, "rocksdb");

  EXPECT_NE(Errors(std::string(kMinimal) + "storage: {backend: postgres}\n").find("storage.backend: must be rocksdb or jetstream"),
            std::string::npos);
  EXPECT_NE(Errors(std::string(kMinimal) + "storage: {backend: jetstream}\n").find("storage.jetstream: is required"),
            std::string::npos);
  EXPECT_NE(Errors(std::string(kMinimal) + "storage: {backend: jetstream, jetstream: {prefix: a.b}}\n")
                .find("storage.jetstream.servers: is required with backend jetstream"),
            std::string::npos);
  EXPECT_NE(Errors(std::string(kMinimal) + "storage: {backend: jetstream, jetstream: {servers: [x], prefix: a.b}}\n")
                .find("storage.jetstream.prefix: must be 1 to 64 of [A-Za-z0-9_-]"),
            std::string::npos);
  const std::string dotted = absl::StrReplaceAll(kMinimal, {{"[out]", "[out.jsonl]"}, {"  out:", "  out.jsonl:"}});
  ASSERT_EQ(Errors(dotted), "");  // fine on RocksDB
  EXPECT_NE(Errors(dotted + "storage: {backend: jetstream, jetstream: {servers: [x]}}\n")
                .find("destinations.out.jsonl: with storage.backend jetstream, a destination name must be"),
            std::string::npos)
      << Errors(dotted + "storage: {backend: jetstream, jetstream: {servers: [x]}}\n");
}

TEST(ConfigTest, BoundsAreChecked) {
  std::string yaml = std::string(kMinimal) + "server: {io_threads: 0, max_connections: 5}\n";
  EXPECT_NE(Errors(yaml).find("server.io_threads: must be between 1 and 64"), std::string::npos);
  yaml = std::string(kMinimal) + "scoring: {urgency_weight: 0.5}\n";
  EXPECT_NE(Errors(yaml).find("weights must sum to 1"), std::string::npos);
}

TEST(ConfigTest, SecretsComeFromEnvironmentOrFile) {
  testing::TempDir dir;
  const std::string file = dir.path() + "/secret";
  std::ofstream(file) << "from-file\n";
  ::setenv("TRIAGED_TEST_SECRET", "from-env", 1);
  std::string yaml = kMinimal;
  yaml.replace(yaml.find("secret: s3cret"), 14, "secret: {env: TRIAGED_TEST_SECRET}");
  auto config = LoadConfigString(yaml, "t.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->sources[0].settings.Get("secret"), "from-env");

  yaml = kMinimal;
  yaml.replace(yaml.find("secret: s3cret"), 14, "secret: {file: " + file + "}");
  config = LoadConfigString(yaml, "t.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->sources[0].settings.Get("secret"), "from-file");

  yaml = kMinimal;
  yaml.replace(yaml.find("secret: s3cret"), 14, "secret: {env: TRIAGED_TEST_NOT_SET}");
  EXPECT_NE(Errors(yaml).find("environment variable TRIAGED_TEST_NOT_SET is not set"),
            std::string::npos);
}

// Outside the service, a credential of the unit is read from the folder systemd takes it from.
TEST(ConfigTest, CredentialsOfTheUnitAreReadFromTheCredentialsDirOutsideTheService) {
  testing::TempDir dir;
  std::ofstream(dir.path() + "/ingest-secret") << "from-credentials\n";
  std::string yaml = kMinimal;
  yaml.replace(yaml.find("secret: s3cret"), 14,
               "secret: {file: /run/credentials/triaged.service/secrets_ingest-secret}");
  auto config = LoadConfigString(yaml, "t.yaml", {.credentials_dir = dir.path()});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->sources[0].settings.Get("secret"), "from-credentials");

  // Missing there: the error names both paths.
  std::string missing = yaml;
  missing.replace(missing.find("secrets_ingest-secret"), 21, "secrets_other");
  config = LoadConfigString(missing, "t.yaml", {.credentials_dir = dir.path()});
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find(absl::StrCat("cannot read ", dir.path(),
                                                        "/other (/run/credentials/triaged.service/secrets_other inside the service)")),
            std::string::npos)
      << config.status();
  // Without the folder, the error says where to point.
  config = LoadConfigString(missing, "t.yaml");
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("exists only inside the service: outside it, give --credentials-dir"),
            std::string::npos)
      << config.status();
}

TEST(ConfigTest, TlsFilesAreReadAtLoadAndNetworksAreChecked) {
  testing::TempDir dir;
  std::ofstream(dir.path() + "/cert.pem") << "CERT";
  std::ofstream(dir.path() + "/key.pem") << "KEY";
  std::string yaml = kMinimal;
  yaml += absl::StrCat("server:\n  tls: {certificate: ", dir.path(), "/cert.pem, key: ", dir.path(),
                       "/key.pem}\n  trusted_proxies: [127.0.0.1, 10.0.0.0/8]\n");
  auto config = LoadConfigString(yaml, "t.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->server.tls.enabled());
  EXPECT_EQ(config->server.tls.certificate_pem, "CERT");
  EXPECT_EQ(config->server.tls.key_pem, "KEY");
  EXPECT_EQ(config->server.tls.min_version, "1.2");
  EXPECT_EQ(config->server.trusted_proxies.size(), 2u);

  yaml = kMinimal;
  yaml += absl::StrCat("server:\n  tls: {certificate: ", dir.path(), "/none.pem, min_version: \"1.1\"}\n",
                       "  trusted_proxies: [10.0.0.1/8, proxy.example.com]\n");
  const std::string errors = Errors(yaml);
  EXPECT_NE(errors.find(absl::StrCat("server.tls.certificate: cannot read ", dir.path(), "/none.pem")), std::string::npos) << errors;
  EXPECT_NE(errors.find("server.tls.key: is required"), std::string::npos) << errors;
  EXPECT_NE(errors.find("server.tls.min_version: must be \"1.2\" or \"1.3\""), std::string::npos) << errors;
  EXPECT_NE(errors.find("server.trusted_proxies[0]: '10.0.0.1/8' is not an address or a network"), std::string::npos) << errors;
  EXPECT_NE(errors.find("server.trusted_proxies[1]: 'proxy.example.com' is not"), std::string::npos) << errors;
}

TEST(ConfigTest, WebhookDestinationsNeedAUrlAndAStandardWebhooksSecret) {
  std::string yaml = kMinimal;
  yaml.replace(yaml.find("out: {type: file, path: /tmp/out.jsonl}"), 40,
               "out: {type: webhook, url: ftp://x, secret: whsec_short}");
  const std::string errors = Errors(yaml);
  EXPECT_NE(errors.find("destinations.out.url: must start with http:// or https://"), std::string::npos) << errors;
  EXPECT_NE(errors.find("destinations.out.secret: must be whsec_"), std::string::npos) << errors;
}

TEST(ConfigTest, AMissingSourcesSectionIsReportedByName) {
  EXPECT_NE(Errors("teams: {support: {destinations: [out]}}\nrouting: {default_team: support}\n"
                   "destinations: {out: {type: file, path: /tmp/x}}\n")
                .find("sources"),
            std::string::npos);
}

std::string WithDestination(const std::string& body) {
  return absl::StrReplaceAll(kMinimal, {{"  out: {type: file, path: /tmp/out.jsonl}\n", body}});
}

TEST(ConfigTest, HelpdeskDestinationsGetQuotaDefaultsAndCheckTheirOptions) {
  const auto config = LoadConfigString(WithDestination(R"(  out:
    type: zendesk
    url: https://acme.zendesk.com/
    email: bot@acme.example
    api_token: t0ken
    group_ids: {billing: 12}
    breaker: {failure_ratio: 0.25, window: 8, min_calls: 4, open_for: 5s}
)"),
                                      "test.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  const DestinationOptions& d = config->destinations.at(0);
  EXPECT_EQ(d.type->name(), "zendesk");
  EXPECT_EQ(d.url, "https://acme.zendesk.com") << "a base URL loses its trailing slash";
  EXPECT_EQ(d.rate, 10);  // Zendesk: about 10 requests a second per account
  EXPECT_EQ(d.concurrency, 2);
  EXPECT_EQ(d.group_ids.at("billing"), 12);
  EXPECT_EQ(d.breaker.window, 8);
  EXPECT_EQ(d.breaker.open_for, absl::Seconds(5));
  EXPECT_NE(d.subject_template.find("{{level}}"), std::string::npos);

  const auto slack = LoadConfigString(
      WithDestination("  out: {type: slack, url: 'https://hooks.slack.com/x', min_level: high, min_reach: 70}\n"),
      "test.yaml");
  ASSERT_TRUE(slack.ok()) << slack.status();
  const DestinationOptions& s = slack->destinations.at(0);
  EXPECT_EQ(s.rate, 1);  // Slack: one message a second
  EXPECT_TRUE(s.Accepts(router::Level::kUrgent, 0));
  EXPECT_TRUE(s.Accepts(router::Level::kHigh, 0));
  EXPECT_FALSE(s.Accepts(router::Level::kNormal, 69));
  EXPECT_TRUE(s.Accepts(router::Level::kLow, 70)) << "high reach alone is enough";

  const std::string errors = Errors(WithDestination(R"(  out:
    type: zendesk
    url: ftp://acme
    email: bot@acme.example
    subject: "{{nope}}"
    custom_fields: {status: "{{level}}"}
    breaker: {min_calls: 30}
    min_level: severe
  bad:
    type: freshdesk
    url: https://acme.freshdesk.com
    custom_fields: {platform: x}
  worse: {type: carrier-pigeon}
)"));
  for (const std::string& expected : std::vector<std::string>
       {"destinations.out: give either email and api_token, or oauth_token",
        "destinations.out.url: must start with http:// or https://",
        "destinations.out.subject: unknown field {{nope}}",
        "destinations.out.custom_fields.status: a Zendesk custom field is named by its numeric id",
        "destinations.out.breaker.min_calls: must not exceed window",
        "destinations.out.min_level: must be urgent, high, normal or low",
        "destinations.bad.api_key: is required",
        "destinations.bad.custom_fields.platform: a Freshdesk custom field name starts with cf_",
        absl::StrCat("destinations.worse.type: unknown destination type (known: ", router::DestinationTypeNames(), ")")}) {
    EXPECT_NE(errors.find(expected), std::string::npos) << expected << "\n" << errors;
  }
}

TEST(ConfigTest, YamlSyntaxErrorsHaveAPosition) {
  EXPECT_EQ(Errors("sources: [unclosed\n").substr(0, 12), "test.yaml:2:");
}

TEST(ConfigTest, MissingFileIsReported) {
  const auto config = LoadConfigFile("/nonexistent/triaged.yaml");
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound);
}

TEST(DurationTest, ParsesUnitsIncludingDays) {
  absl::Duration d;
  ASSERT_TRUE(ParseDurationText("250ms", &d));
  EXPECT_EQ(d, absl::Milliseconds(250));
  ASSERT_TRUE(ParseDurationText("8d", &d));
  EXPECT_EQ(d, absl::Hours(192));
  ASSERT_TRUE(ParseDurationText("1h30m", &d));
  EXPECT_EQ(d, absl::Minutes(90));
  EXPECT_FALSE(ParseDurationText("10", &d));
  EXPECT_FALSE(ParseDurationText("-1s", &d));
  EXPECT_FALSE(ParseDurationText("xd", &d));
}

}  // namespace
}  // namespace triage::config

namespace triage::config {
namespace {

TEST(ConfigTest, RuleConditionsActionsAndTheirErrors) {
  std::string yaml = kMinimal;
  yaml.replace(yaml.find("    - name: billing"), std::string::npos, R"(    - name: billing
      when: {categories_any: [billing], levels: [urgent, high]}
      team: billing
    - name: office-hours
      when:
        channels: [private]
        kinds: [direct_message]
        categories_all: [billing, anger]
        min_followers: 1000
        verified: true
        complaint: true
        languages: [en, fr]
        authors: ["@dana"]
        text_regex: "order\\s+#\\d+"
        time: {zone: Europe/Paris, days: [mon, fri], from: "09:00", to: "18:00"}
      tags: [vip]
      raise: 1
    - name: spam
      when: {text_regex: "free followers"}
      drop: true
  conversation_window: 48h
destinations:
  out: {type: file, path: /tmp/out.jsonl}
)");
  const auto config = LoadConfigString(yaml, "test.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_EQ(config->routing.rules.size(), 3u);
  const router::RuleOptions& rule = config->routing.rules[1];
  EXPECT_EQ(rule.channels, std::vector<std::string>{"private"});
  EXPECT_EQ(rule.categories_all, (std::vector<std::string>{"billing", "anger"}));
  EXPECT_EQ(rule.min_followers, 1000);
  EXPECT_EQ(rule.verified, true);
  EXPECT_EQ(rule.complaint, true);
  ASSERT_TRUE(rule.time.has_value());
  EXPECT_EQ(rule.time->from_minute, 540);
  EXPECT_EQ(rule.time->days.size(), 2u);
  EXPECT_EQ(rule.raise_levels, 1);
  EXPECT_TRUE(config->routing.rules[2].drop);
  EXPECT_EQ(config->conversation_window, absl::Hours(48));

  std::string bad = kMinimal;
  bad.replace(bad.find("    - name: billing"), std::string::npos, R"(    - name: r
      when:
        categories_any: [nonsense]
        channels: [sideways]
        text_regex: "(unclosed"
        time: {zone: Mars/Olympus, days: [someday], from: "9am"}
      level: critical
    - name: idle
destinations:
  out: {type: file, path: /tmp/out.jsonl}
)");
  const std::string errors = Errors(bad);
  for (const char* expected : {
           "test.yaml:11:9: routing.rules[0].when: unknown category 'nonsense'",
           "test.yaml:12:19: routing.rules[0].when.channels: channels are public or private",
           "test.yaml:13:21: routing.rules[0].when.text_regex: cannot compile '(unclosed'",
           "test.yaml:14:22: routing.rules[0].when.time.zone: unknown time zone 'Mars/Olympus'",
           "test.yaml:14:42: routing.rules[0].when.time.days: unknown day 'someday'",
           "test.yaml:14:59: routing.rules[0].when.time.from: must be HH:MM",
           "test.yaml:15:14: routing.rules[0].level: must be urgent, high, normal or low",
           "test.yaml:16:7: routing.rules[1]: a rule needs an action",
       }) {
    EXPECT_NE(errors.find(expected), std::string::npos) << expected << "\n--- got:\n" << errors;
  }
}

TEST(ConfigTest, CategoryRolesAndSignals) {
  std::string yaml = std::string(kMinimal) + R"(scoring:
  signals: {shouting: 3}
  categories:
    fixed: {weight: -5, role: resolution, terms: [fixed]}
    billing: {weight: 30, terms: [refund]}
    odd: {weight: 5, role: grumpy, terms: [x]}
)";
  EXPECT_NE(Errors(yaml).find("scoring.categories.odd.role: must be complaint, praise, resolution or neutral"),
            std::string::npos)
      << Errors(yaml);
  yaml.replace(yaml.find("role: grumpy"), 12, "role: neutral");
  const auto config = LoadConfigString(yaml, "t.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->scoring.signals.shouting, 3);
  EXPECT_EQ(config->scoring.categories[0].effective_role(), router::CategoryRole::kResolution);
}

}  // namespace
}  // namespace triage::config
