// HTTPS in front of the daemon, with real TLS clients (curl, openssl s_client, Asio):
// triaged's own TLS listener (server.tls), a certificate swapped under SIGHUP while an older
// connection keeps working, only modern suites accepted, and the shipped nginx example
// (deploy/nginx/triaged.conf) in front of a plain listener, with the client's address taken
// from a trusted proxy only and a per-source allowlist.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <filesystem>
#include <fstream>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "daemon/crypto.h"
#include "tests/integration/harness.h"
#include "tests/test_util.h"

namespace triage::testing {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

constexpr char kSecret[] = "tls-secret";

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream out;
  out << in.rdbuf();
  return out.str();
}

// A signed webhook posted with curl to `url`; returns curl's output: the status code, or
// curl's error when there was no answer. `options` go to curl as they are.
CommandRun CurlPost(const std::string& dir, const std::string& url, const std::string& id,
                    const std::string& options) {
  const std::string body = MessageJson(id, "my order never arrived", "author-" + id);
  const std::string file = dir + "/body-" + id + ".json";
  std::ofstream(file) << body;
  const std::string signature = "sha256=" + absl::BytesToHexString(daemon::HmacSha256(kSecret, body));
  return RunCommand(absl::StrCat("curl -sS -o /dev/null -w '%{http_code}' --max-time 10 ", options,
                                 " -H 'Content-Type: application/json' -H 'X-Triage-Signature: ", signature,
                                 "' --data-binary @", file, " ", url));
}

// The SHA-256 fingerprint of the certificate a TLS server on `port` presents.
std::string ServedFingerprint(uint16_t port) {
  return RunCommand(absl::StrCat("openssl s_client -connect 127.0.0.1:", port,
                                 " -servername localhost </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256"))
      .out;
}

std::string FileFingerprint(const std::string& pem) {
  return RunCommand("openssl x509 -noout -fingerprint -sha256 -in " + pem).out;
}

// Teams, routing and a file destination, after the server, admin, storage and sources parts.
std::string Rest(const std::string& dir) {
  return absl::StrCat("teams: {support: {destinations: [out]}}\nrouting: {default_team: support}\n",
                      "destinations: {out: {type: file, path: ", dir, "/out.jsonl}}\n");
}

std::string TlsConfig(const std::string& dir, const std::string& certs) {
  return Rest(dir) + absl::StrCat("server:\n  listen: 127.0.0.1:0\n  tls: {certificate: ", certs, "/server.pem, key: ", certs,
                      "/server.key}\n",
                      "admin: {listen: 127.0.0.1:0}\n", "storage: {path: ", dir, "/db}\n", "sources:\n",
                      "  generic: {type: generic, secret: ", kSecret, "}\n");
}

TEST(TlsTest, ServesHttpsWithModernSuitesAndSwapsTheCertificateOnReload) {
  TempDir dir;
  const std::string first = dir.path() + "/first";
  const std::string second = dir.path() + "/second";
  std::filesystem::create_directories(first);
  std::filesystem::create_directories(second);
  ASSERT_TRUE(MakeTestCertificates(first, "DNS:localhost,IP:127.0.0.1"));
  ASSERT_TRUE(MakeTestCertificates(second, "DNS:localhost,IP:127.0.0.1"));
  const std::string live = dir.path() + "/live";
  std::filesystem::create_directories(live);
  std::filesystem::copy_file(first + "/server.pem", live + "/server.pem");
  std::filesystem::copy_file(first + "/server.key", live + "/server.key");

  Daemon daemon(dir.path(), TlsConfig(dir.path(), live));
  daemon.Start();
  const std::string url = absl::StrCat("https://localhost:", daemon.ingest_port(), "/webhooks/generic");

  // A verified TLS client is accepted; plain HTTP on the TLS port gets no answer.
  CommandRun ok = CurlPost(dir.path(), url, "t1", "--cacert " + first + "/ca.pem");
  EXPECT_EQ(ok.out, "200") << ok.out << daemon.Log();
  EXPECT_EQ(HttpCall(daemon.ingest_port(), "POST", "/webhooks/generic", "{}").status, 0);
  // TLS 1.2 with a forward-secret AEAD suite: yes; without forward secrecy, or TLS 1.1: no.
  CommandRun gcm = CurlPost(dir.path(), url, "t2",
                            "--cacert " + first + "/ca.pem --tlsv1.2 --tls-max 1.2 --ciphers ECDHE-RSA-AES128-GCM-SHA256");
  EXPECT_EQ(gcm.out, "200") << gcm.out;
  CommandRun rsa_kx = CurlPost(dir.path(), url, "t3", "--cacert " + first + "/ca.pem --tlsv1.2 --tls-max 1.2 --ciphers AES128-GCM-SHA256");
  EXPECT_TRUE(absl::EndsWith(rsa_kx.out, "000")) << rsa_kx.out;
  CommandRun old = RunCommand(absl::StrCat("openssl s_client -connect 127.0.0.1:", daemon.ingest_port(),
                                           " -tls1_1 -cipher DEFAULT@SECLEVEL=0 </dev/null"));
  EXPECT_NE(old.exit_code, 0) << old.out;
  EXPECT_GE(daemon.Metric(R"(triage_http_connections_total{listener="ingest",outcome="tls_failed"})"), 2);
  EXPECT_GT(daemon.Metric("triage_tls_certificate_expiry_timestamp_seconds"), absl::ToUnixSeconds(absl::Now()));

  // A keep-alive connection opened on the first certificate.
  asio::io_context io;
  asio::ssl::context client_tls(asio::ssl::context::tls_client);
  client_tls.load_verify_file(first + "/ca.pem");
  client_tls.set_verify_mode(asio::ssl::verify_peer);
  beast::ssl_stream<beast::tcp_stream> kept(io, client_tls);
  SSL_set_tlsext_host_name(kept.native_handle(), "localhost");
  beast::get_lowest_layer(kept).connect({asio::ip::make_address("127.0.0.1"), daemon.ingest_port()});
  kept.handshake(asio::ssl::stream_base::client);
  auto get_on_kept = [&] {
    http::request<http::empty_body> request{http::verb::get, "/nothing", 11};
    request.set(http::field::host, "localhost");
    http::write(kept, request);
    beast::flat_buffer buffer;
    http::response<http::string_body> response;
    http::read(kept, buffer, response);
    return response.result_int();
  };
  EXPECT_EQ(get_on_kept(), 404);

  // certbot's deploy hook: new files in place, then a reload. New connections get the new
  // certificate; the connection already open keeps serving.
  EXPECT_EQ(ServedFingerprint(daemon.ingest_port()), FileFingerprint(first + "/server.pem"));
  std::filesystem::copy_file(second + "/server.pem", live + "/server.pem", std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(second + "/server.key", live + "/server.key", std::filesystem::copy_options::overwrite_existing);
  CommandRun reload = RunCommand(absl::StrCat("RUNTIME_DIRECTORY=", dir.path(), " ", TRIAGED_BINARY, " --reload ", daemon.pid()));
  ASSERT_EQ(reload.exit_code, 0) << reload.out << daemon.Log();
  EXPECT_EQ(ServedFingerprint(daemon.ingest_port()), FileFingerprint(second + "/server.pem"));
  EXPECT_EQ(CurlPost(dir.path(), url, "t4", "--cacert " + second + "/ca.pem").out, "200");
  EXPECT_EQ(get_on_kept(), 404);

  // A key that does not match its certificate is refused; the served certificate stays.
  std::filesystem::copy_file(first + "/server.key", live + "/server.key", std::filesystem::copy_options::overwrite_existing);
  reload = RunCommand(absl::StrCat("RUNTIME_DIRECTORY=", dir.path(), " ", TRIAGED_BINARY, " --reload ", daemon.pid()));
  EXPECT_EQ(reload.exit_code, 1) << reload.out;
  EXPECT_TRUE(absl::StrContains(reload.out, "does not match the certificate")) << reload.out;
  EXPECT_FALSE(absl::StrContains(reload.out, "PRIVATE KEY")) << reload.out;
  EXPECT_EQ(ServedFingerprint(daemon.ingest_port()), FileFingerprint(second + "/server.pem"));
  // So is a file that holds no key.
  std::ofstream(live + "/server.key") << "not a key\n";
  reload = RunCommand(absl::StrCat("RUNTIME_DIRECTORY=", dir.path(), " ", TRIAGED_BINARY, " --reload ", daemon.pid()));
  EXPECT_EQ(reload.exit_code, 1) << reload.out;
  EXPECT_TRUE(absl::StrContains(reload.out, "not an unencrypted PEM private key")) << reload.out;
  EXPECT_EQ(daemon.Stop(SIGTERM), 0);
}

// nginx from Debian (nginx-light) running the shipped example, rewritten for the test's ports
// and files.
class Nginx {
 public:
  Nginx(const std::string& dir, uint16_t upstream_port, const std::string& certs) : dir_(dir) {
    port_ = FreePort();
    std::string site = ReadAll(std::string(TRIAGE_SOURCE_DIR) + "/deploy/nginx/triaged.conf");
    site = absl::StrReplaceAll(
        site, {{"listen 443 ssl;", absl::StrCat("listen 127.0.0.1:", port_, " ssl;")},
               {"listen [::]:443 ssl;", ""},
               {"server 127.0.0.1:8080;", absl::StrCat("server 127.0.0.1:", upstream_port, ";")},
               {"/etc/letsencrypt/live/webhooks.example.com/fullchain.pem", certs + "/server.pem"},
               {"/etc/letsencrypt/live/webhooks.example.com/privkey.pem", certs + "/server.key"}});
    std::ofstream(dir + "/site.conf") << site;
    std::filesystem::create_directories(dir + "/nginx-tmp");
    std::ofstream(dir + "/nginx.conf") << absl::StrCat(
        ::geteuid() == 0 ? "user root root;\n" : "", "daemon off;\nworker_processes 1;\npid ", dir,
        "/nginx.pid;\nerror_log ", dir, "/nginx-error.log;\nevents { worker_connections 64; }\nhttp {\n",
        "  access_log off;\n  client_body_temp_path ", dir, "/nginx-tmp/body;\n  proxy_temp_path ", dir,
        "/nginx-tmp/proxy;\n  fastcgi_temp_path ", dir, "/nginx-tmp/fastcgi;\n  uwsgi_temp_path ", dir,
        "/nginx-tmp/uwsgi;\n  scgi_temp_path ", dir, "/nginx-tmp/scgi;\n  include ", dir, "/site.conf;\n}\n");
    pid_ = ::fork();
    if (pid_ == 0) {
      const std::string conf = dir + "/nginx.conf";
      const std::string err = dir + "/nginx-error.log";
      const char* argv[] = {"nginx", "-c", conf.c_str(), "-p", dir.c_str(), "-e", err.c_str(), nullptr};
      ::execvp("nginx", const_cast<char* const*>(argv));
      std::_Exit(127);
    }
  }
  ~Nginx() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
  }
  uint16_t port() const { return port_; }
  bool WaitReady() {
    return WaitFor([&] {
      asio::io_context io;
      asio::ip::tcp::socket socket(io);
      boost::system::error_code ec;
      socket.connect({asio::ip::make_address("127.0.0.1"), port_}, ec);
      return !ec;
    });
  }
  std::string ErrorLog() const { return ReadAll(dir_ + "/nginx-error.log"); }

 private:
  static uint16_t FreePort() {
    asio::io_context io;
    asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
    return acceptor.local_endpoint().port();
  }
  std::string dir_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
};

TEST(TlsTest, TheShippedNginxExamplePassesSignedWebhooksAndTheClientAddress) {
  if (RunCommand("command -v nginx").exit_code != 0) GTEST_SKIP() << "nginx is not installed (CI installs nginx-light)";
  TempDir dir;
  ASSERT_TRUE(MakeTestCertificates(dir.path(), "DNS:localhost,IP:127.0.0.1"));
  // Only 127.0.0.3 may post; nginx (127.0.0.1) is the one trusted proxy.
  const std::string config = Rest(dir.path()) + absl::StrCat(
      "server:\n  listen: 127.0.0.1:0\n  trusted_proxies: [127.0.0.1]\n", "admin: {listen: 127.0.0.1:0}\n",
      "storage: {path: ", dir.path(), "/db}\n", "sources:\n", "  generic: {type: generic, secret: ", kSecret,
      ", allow_from: [127.0.0.3/32]}\n");
  Daemon daemon(dir.path(), config);
  daemon.Start();
  Nginx nginx(dir.path(), daemon.ingest_port(), dir.path());
  ASSERT_TRUE(nginx.WaitReady()) << nginx.ErrorLog();
  const std::string url = absl::StrCat("https://localhost:", nginx.port(), "/webhooks/generic");
  const std::string ca = "--cacert " + dir.path() + "/ca.pem";

  // From the allowed address, through nginx: accepted, signature intact, stored once.
  CommandRun allowed = CurlPost(dir.path(), url, "n1", ca + " --interface 127.0.0.3");
  EXPECT_EQ(allowed.out, "200") << allowed.out << nginx.ErrorLog() << daemon.Log();
  EXPECT_EQ(daemon.Metric(R"(triage_ingest_messages_total{outcome="stored",source="generic"})"), 1);
  // From another address through nginx: 403, counted, logged with the client's address.
  CommandRun other = CurlPost(dir.path(), url, "n2", ca + " --interface 127.0.0.4");
  EXPECT_EQ(other.out, "403") << other.out;
  EXPECT_EQ(daemon.Metric(R"(triage_ingest_requests_total{source="generic",status="403"})"), 1);
  EXPECT_TRUE(WaitFor([&] { return absl::StrContains(daemon.Log(), "client=127.0.0.4"); })) << daemon.Log();
  // Straight to triaged from an untrusted peer, claiming the allowed address: not believed.
  CommandRun forged = CurlPost(dir.path(), absl::StrCat("http://127.0.0.1:", daemon.ingest_port(), "/webhooks/generic"),
                               "n3", "--interface 127.0.0.5 -H 'X-Forwarded-For: 127.0.0.3'");
  EXPECT_EQ(forged.out, "403") << forged.out;
  // Through nginx, a client's own X-Forwarded-For is replaced by its real address.
  CommandRun spoofed = CurlPost(dir.path(), url, "n4", ca + " --interface 127.0.0.4 -H 'X-Forwarded-For: 127.0.0.3'");
  EXPECT_EQ(spoofed.out, "403") << spoofed.out;
  // A body above the limits is refused by nginx already, with 413.
  const std::string big = dir.path() + "/big.json";
  std::ofstream(big) << std::string(2 << 20, 'x');
  CommandRun too_big = RunCommand(absl::StrCat("curl -sS -o /dev/null -w '%{http_code}' ", ca,
                                               " --interface 127.0.0.3 --data-binary @", big, " ", url));
  EXPECT_EQ(too_big.out, "413") << too_big.out;
  // The admin API is not proxied.
  CommandRun metrics = RunCommand(absl::StrCat("curl -sS -o /dev/null -w '%{http_code}' ", ca, " https://localhost:",
                                               nginx.port(), "/metrics"));
  EXPECT_EQ(metrics.out, "404") << metrics.out;
  EXPECT_EQ(daemon.Stop(SIGTERM), 0);
}

}  // namespace
}  // namespace triage::testing
