#include "tests/integration/harness.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <gtest/gtest.h>
#include <simdjson.h>
#include <yaml-cpp/yaml.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "daemon/crypto.h"
#include "tests/support/backends.h"
#include "tests/test_util.h"

namespace triage::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

HttpResult HttpCall(uint16_t port, const std::string& method, const std::string& target,
                    const std::string& body, const std::map<std::string, std::string>& headers) {
  HttpResult result;
  asio::io_context io;
  beast::tcp_stream stream(io);
  beast::error_code ec;
  stream.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
  if (ec) return result;
  // Synchronous reads ignore tcp_stream's expiry: a daemon that died with the listener still
  // open (socket activation) must fail the call, not hang the test.
  const timeval timeout{30, 0};
  ::setsockopt(stream.socket().native_handle(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  http::request<http::string_body> request{http::string_to_verb(method), target, 11};
  request.set(http::field::host, "127.0.0.1");
  for (const auto& [name, value] : headers) request.set(name, value);
  request.body() = body;
  request.prepare_payload();
  http::write(stream, request, ec);
  if (ec) return result;
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 << 20);
  http::read(stream, buffer, parser, ec);
  if (ec) return result;
  const auto& response = parser.get();
  result.status = static_cast<int>(response.result_int());
  result.body = response.body();
  for (const auto& field : response) {
    result.headers[absl::AsciiStrToLower(std::string(field.name_string()))] = std::string(field.value());
  }
  return result;
}

FakeHelpdesk::FakeHelpdesk() : acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
  StartAccepting();
}

FakeHelpdesk::FakeHelpdesk(const std::string& cert_file, const std::string& key_file)
    : tls_(std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server)),
      acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
  tls_->use_certificate_chain_file(cert_file);
  tls_->use_private_key_file(key_file, asio::ssl::context::pem);
  StartAccepting();
}

void FakeHelpdesk::StartAccepting() {
  port_ = acceptor_.local_endpoint().port();
  accept_thread_ = std::thread([this] {
    for (;;) {
      beast::error_code ec;
      tcp::socket socket(io_);
      acceptor_.accept(socket, ec);
      std::lock_guard lock(mu_);
      if (ec || stopping_) return;
      connections_.emplace_back([this, s = std::move(socket)]() mutable { Serve(std::move(s)); });
    }
  });
}

FakeHelpdesk::~FakeHelpdesk() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    for (tcp::socket* socket : sockets_) {
      beast::error_code ignored;
      socket->shutdown(tcp::socket::shutdown_both, ignored);
    }
  }
  beast::error_code ignored;
  // Wake the blocking accept with a connection of our own.
  tcp::socket poke(io_);
  poke.connect(acceptor_.local_endpoint(), ignored);
  accept_thread_.join();
  acceptor_.close(ignored);
  for (std::thread& t : connections_) t.join();
}

void FakeHelpdesk::Answer(int status, std::string retry_after) {
  std::lock_guard lock(mu_);
  status_ = status;
  retry_after_ = std::move(retry_after);
}

void FakeHelpdesk::Respond(Responder responder) {
  std::lock_guard lock(responder_mu_);
  responder_ = std::move(responder);
}

std::vector<FakeHelpdesk::Received> FakeHelpdesk::received() {
  std::lock_guard lock(mu_);
  return received_;
}

bool FakeHelpdesk::WaitUntil(const std::function<bool(const std::vector<Received>&)>& done,
                             absl::Duration timeout) {
  std::unique_lock lock(mu_);
  return changed_.wait_for(lock, absl::ToChronoMilliseconds(timeout), [&] { return done(received_); });
}

void FakeHelpdesk::Serve(tcp::socket socket) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    sockets_.push_back(&socket);
  }
  if (tls_) {
    asio::ssl::stream<tcp::socket&> secure(socket, *tls_);
    beast::error_code ec;
    secure.handshake(asio::ssl::stream_base::server, ec);
    if (!ec) Exchange(secure);
  } else {
    Exchange(socket);
  }
  std::lock_guard lock(mu_);
  std::erase(sockets_, &socket);
}

template <typename Stream>
void FakeHelpdesk::Exchange(Stream& socket) {
  beast::flat_buffer buffer;
  for (;;) {
    http::request<http::string_body> request;
    beast::error_code ec;
    http::read(socket, buffer, request, ec);
    if (ec) break;
    Received r;
    r.at = absl::Now();
    r.method = std::string(request.method_string());
    r.target = std::string(request.target());
    r.body = request.body();
    for (const auto& field : request) {
      r.headers[absl::AsciiStrToLower(std::string(field.name_string()))] = std::string(field.value());
    }
    Reply reply;
    {
      std::lock_guard lock(responder_mu_);
      if (responder_) {
        reply = responder_(r);
      } else {
        std::lock_guard state(mu_);
        reply.status = status_;
        if (!retry_after_.empty()) reply.headers["Retry-After"] = retry_after_;
        reply.body = status_ < 300 ? R"({"ok":true})" : R"({"error":"unavailable"})";
      }
    }
    if (reply.delay > absl::ZeroDuration()) absl::SleepFor(reply.delay);
    {
      std::lock_guard lock(mu_);
      r.answered = reply.reset ? 0 : reply.status;
      received_.push_back(std::move(r));
    }
    changed_.notify_all();
    if (reply.reset) {
      beast::error_code ignored;
      beast::get_lowest_layer(socket).set_option(asio::socket_base::linger(true, 0), ignored);
      beast::get_lowest_layer(socket).close(ignored);
      break;
    }
    http::response<http::string_body> response;
    response.result(reply.status);
    for (const auto& [name, value] : reply.headers) response.set(name, value);
    response.body() = reply.body;
    response.version(11);
    response.keep_alive(request.keep_alive());
    response.prepare_payload();
    http::write(socket, response, ec);
    if (ec || !request.keep_alive()) break;
  }
}

FakeTicketing::FakeTicketing(Flavor flavor, std::string authorization)
    : flavor_(flavor), authorization_(std::move(authorization)) {
  http_.Respond([this](const FakeHelpdesk::Received& r) { return Serve(r); });
}

void FakeTicketing::Script(std::vector<Fault> faults) {
  std::lock_guard lock(mu_);
  script_.assign(faults.begin(), faults.end());
}

void FakeTicketing::ScriptUsers(std::vector<Fault> faults) {
  std::lock_guard lock(mu_);
  user_script_.assign(faults.begin(), faults.end());
}

std::vector<FakeTicketing::User> FakeTicketing::users() {
  std::lock_guard lock(mu_);
  return users_;
}

void FakeTicketing::FaultEvery(int n, Fault fault) {
  std::lock_guard lock(mu_);
  every_ = n;
  every_fault_ = std::move(fault);
}

std::vector<FakeTicketing::Ticket> FakeTicketing::tickets() {
  std::lock_guard lock(mu_);
  return tickets_;
}

int64_t FakeTicketing::Seed(std::string create_body) {
  std::lock_guard lock(mu_);
  Ticket ticket;
  ticket.id = static_cast<int64_t>(tickets_.size()) + 1001;
  ticket.create_body = std::move(create_body);
  tickets_.push_back(ticket);
  return ticket.id;
}

void FakeTicketing::Solve(int64_t id) {
  std::lock_guard lock(mu_);
  for (Ticket& t : tickets_) {
    if (t.id == id) t.solved_at = absl::Now();
  }
}

int FakeTicketing::idempotent_replays() {
  std::lock_guard lock(mu_);
  return replays_;
}

namespace {

FakeHelpdesk::Reply JsonReply(int status, std::string body) {
  FakeHelpdesk::Reply reply;
  reply.status = status;
  reply.headers["Content-Type"] = "application/json; charset=utf-8";
  reply.body = std::move(body);
  return reply;
}

// "/api/v2/tickets/123.json" or "/api/v2/tickets/123/notes" -> 123; 0 otherwise.
int64_t TicketIdIn(absl::string_view target, absl::string_view suffix) {
  if (!absl::ConsumePrefix(&target, "/api/v2/tickets/") || !absl::ConsumeSuffix(&target, suffix)) return 0;
  int64_t id = 0;
  return absl::SimpleAtoi(target, &id) ? id : 0;
}

}  // namespace

FakeHelpdesk::Reply FakeTicketing::Serve(const FakeHelpdesk::Received& request) {
  std::lock_guard lock(mu_);
  const bool users_request = absl::StartsWith(request.target, "/api/v2/users");
  std::optional<Fault> fault;
  if (users_request) {
    if (!user_script_.empty()) {
      fault = user_script_.front();
      user_script_.pop_front();
    }
  } else {
    ++requests_;
    if (!script_.empty()) {
      fault = script_.front();
      script_.pop_front();
    } else if (every_ > 0 && requests_ % every_ == 0) {
      fault = every_fault_;
    }
  }
  if (fault && !fault->after_serving) {
    FakeHelpdesk::Reply reply = JsonReply(fault->status, R"({"error":"scripted fault"})");
    if (!fault->retry_after.empty()) reply.headers["Retry-After"] = fault->retry_after;
    reply.reset = fault->reset;
    reply.delay = fault->delay;
    return reply;
  }
  auto finish = [&](FakeHelpdesk::Reply reply) {
    if (fault) {  // served, then the answer is lost or late
      reply.reset = fault->reset;
      reply.delay = fault->delay;
    }
    return reply;
  };

  const auto auth = request.headers.find("authorization");
  if (auth == request.headers.end() || auth->second != authorization_) {
    return finish(JsonReply(401, R"({"error":"Couldn't authenticate you"})"));
  }
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  const bool json = parser.parse(request.body).get(root) == simdjson::SUCCESS;
  const bool zendesk = flavor_ == Flavor::kZendesk;

  // Zendesk matches a user by external_id (or email): 201 when made, 200 when it existed.
  if (zendesk && request.method == "POST" && request.target == "/api/v2/users/create_or_update.json") {
    std::string_view external_id, name;
    if (!json || root["user"]["external_id"].get(external_id) != simdjson::SUCCESS ||
        root["user"]["name"].get(name) != simdjson::SUCCESS || name.empty()) {
      return finish(JsonReply(422, R"({"error":"RecordInvalid","description":"Record validation errors"})"));
    }
    for (User& user : users_) {
      if (user.external_id == external_id) {
        user.body = request.body;
        return finish(JsonReply(200, absl::StrCat(R"({"user":{"id":)", user.id, R"(,"role":"end-user"}})")));
      }
    }
    users_.push_back(User{static_cast<int64_t>(users_.size()) + 9001, std::string(external_id), request.body});
    return finish(JsonReply(201, absl::StrCat(R"({"user":{"id":)", users_.back().id, R"(,"role":"end-user"}})")));
  }
  if (request.method == "POST" && request.target == (zendesk ? "/api/v2/tickets.json" : "/api/v2/tickets")) {
    std::string key;
    if (zendesk) {
      const auto found = request.headers.find("idempotency-key");
      if (found != request.headers.end()) key = found->second;
      if (const auto seen = idempotency_.find(key); !key.empty() && seen != idempotency_.end()) {
        if (seen->second.first != request.body) {
          return finish(JsonReply(400, R"({"error":"IdempotentRequestError","description":"Request parameters don't match the given idempotency key"})"));
        }
        ++replays_;
        FakeHelpdesk::Reply replay = seen->second.second;
        replay.headers["x-idempotency-lookup"] = "hit";
        return finish(replay);
      }
    }
    // Zendesk requires a comment; Freshdesk a subject, a description, a requester and a
    // priority of 1-4.
    bool valid = json;
    if (valid && zendesk) {
      std::string_view body;
      valid = root["ticket"]["comment"]["body"].get(body) == simdjson::SUCCESS && !body.empty();
    } else if (valid) {
      int64_t priority = 0;
      valid = root["subject"].is_string() && root["description"].is_string() &&
              root["priority"].get(priority) == simdjson::SUCCESS && priority >= 1 && priority <= 4 &&
              (!root["twitter_id"].error() || !root["unique_external_id"].error() || !root["email"].error() ||
               !root["facebook_id"].error() || !root["phone"].error());
    }
    if (!valid) {
      return finish(zendesk ? JsonReply(422, R"({"error":"RecordInvalid","description":"Record validation errors"})")
                            : JsonReply(400, R"({"description":"Validation failed","errors":[]})"));
    }
    Ticket ticket;
    ticket.id = static_cast<int64_t>(tickets_.size()) + 1001;
    ticket.idempotency_key = key;
    ticket.create_body = request.body;
    tickets_.push_back(ticket);
    FakeHelpdesk::Reply reply =
        JsonReply(201, zendesk ? absl::StrCat(R"({"ticket":{"id":)", ticket.id, R"(,"status":"new"}})")
                               : absl::StrCat(R"({"id":)", ticket.id, R"(,"status":2})"));
    if (zendesk) {
      reply.headers["Location"] = absl::StrCat("https://acme.zendesk.com/api/v2/tickets/", ticket.id, ".json");
      if (!key.empty()) {
        idempotency_[key] = {request.body, reply};
        reply.headers["x-idempotency-lookup"] = "miss";
      }
    }
    return finish(reply);
  }
  // Freshdesk's search by tag: query="tag:'<tag>'", URL-encoded.
  if (!zendesk && request.method == "GET" && absl::StartsWith(request.target, "/api/v2/search/tickets?query=")) {
    const std::string query = absl::StrReplaceAll(request.target.substr(request.target.find('=') + 1),
                                                  {{"%22", "\""}, {"%27", "'"}});
    const std::string wanted(absl::StripSuffix(absl::StripPrefix(query, "\"tag:'"), "'\""));
    std::string list;
    int total = 0;
    for (const Ticket& t : tickets_) {
      simdjson::dom::parser p;
      simdjson::dom::element created;
      if (p.parse(t.create_body).get(created) != simdjson::SUCCESS) continue;
      for (simdjson::dom::element tag : created["tags"].get_array()) {
        if (std::string_view(tag) == wanted) {
          absl::StrAppend(&list, list.empty() ? "" : ",", R"({"id":)", t.id, "}");
          ++total;
        }
      }
    }
    return finish(JsonReply(200, absl::StrCat(R"({"results":[)", list, R"(],"total":)", total, "}")));
  }
  // Zendesk's search count of unsolved tickets in a group (tickets here are never solved):
  // query=type:ticket status<solved group_id:<id>, URL-encoded.
  if (zendesk && request.method == "GET" && absl::StartsWith(request.target, "/api/v2/search/count?query=")) {
    const size_t at = request.target.find("group_id%3A");
    const std::string group = at == std::string::npos ? "" : request.target.substr(at + 11);
    // status<solved: the open ones; solved>1hours: those solved within the last hour.
    const bool solved_recently = absl::StrContains(request.target, "solved%3E1hours");
    int count = 0;
    for (const Ticket& t : tickets_) {
      simdjson::dom::parser p;
      simdjson::dom::element created;
      int64_t id = 0;
      const bool counted = solved_recently ? t.solved_at > absl::Now() - absl::Hours(1) : t.solved_at == absl::InfinitePast();
      if (counted && p.parse(t.create_body).get(created) == simdjson::SUCCESS &&
          created["ticket"]["group_id"].get(id) == simdjson::SUCCESS && std::to_string(id) == group) {
        ++count;
      }
    }
    return finish(JsonReply(200, absl::StrCat(R"({"count":)", count, "}")));
  }
  if (zendesk && request.method == "GET" && absl::StartsWith(request.target, "/api/v2/tickets.json?external_id=")) {
    const std::string wanted = request.target.substr(request.target.find('=') + 1);
    std::string list;
    for (const Ticket& t : tickets_) {
      simdjson::dom::parser p;
      simdjson::dom::element created;
      std::string_view external_id;
      if (p.parse(t.create_body).get(created) == simdjson::SUCCESS &&
          created["ticket"]["external_id"].get(external_id) == simdjson::SUCCESS && external_id == wanted) {
        absl::StrAppend(&list, list.empty() ? "" : ",", R"({"id":)", t.id, "}");
      }
    }
    return finish(JsonReply(200, absl::StrCat(R"({"tickets":[)", list, R"(],"next_page":null})")));
  }
  const int64_t id = zendesk ? (request.method == "PUT" ? TicketIdIn(request.target, ".json") : 0)
                             : (request.method == "POST" ? TicketIdIn(request.target, "/notes") : 0);
  if (id == 0) return finish(JsonReply(404, R"({"error":"InvalidEndpoint"})"));
  if (id < 1001 || id >= 1001 + static_cast<int64_t>(tickets_.size())) {
    return finish(JsonReply(404, R"({"error":"RecordNotFound"})"));
  }
  tickets_[id - 1001].follow_ups.push_back(request.body);
  return finish(zendesk ? JsonReply(200, absl::StrCat(R"({"ticket":{"id":)", id, "}}"))
                        : JsonReply(201, absl::StrCat(R"({"id":1,"ticket_id":)", id, "}")));
}

absl::StatusOr<std::unique_ptr<storage::Store>> OpenStoreOf(const std::string& dir, absl::Time now) {
  storage::StoreOptions options;
  options.path = dir + "/db";
  if (BackendUnderTest() != "jetstream") return storage::Store::Open(options, now);
  absl::StatusOr<storage::JetStreamOptions> jetstream = JetStreamAt(dir);
  if (!jetstream.ok()) return jetstream.status();
  absl::StatusOr<std::unique_ptr<storage::JetStreamBackend>> backend = storage::JetStreamBackend::Open(*jetstream, options);
  if (!backend.ok()) return backend.status();
  return storage::Store::Open(*std::move(backend), options, now);
}

std::string ForBackendUnderTest(const std::string& dir, const std::string& yaml) {
  if (BackendUnderTest() != "jetstream") return yaml;
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception&) {
    return yaml;  // a test of a broken config
  }
  if (!root.IsMap() || (root["storage"] && root["storage"]["backend"])) return yaml;
  const absl::StatusOr<storage::JetStreamOptions> jetstream = JetStreamAt(dir);
  if (!jetstream.ok()) {
    ADD_FAILURE() << "TRIAGE_TEST_BACKEND=jetstream: " << jetstream.status() << " (see stderr)";
    return yaml;
  }
  YAML::Node storage = root["storage"];
  storage["backend"] = "jetstream";
  for (const std::string& url : jetstream->connect.servers) storage["jetstream"]["servers"].push_back(url);
  storage["jetstream"]["prefix"] = jetstream->prefix;
  root["storage"] = storage;
  YAML::Emitter out;
  out << root;
  return out.c_str();
}

void WriteConfig(const std::string& dir, const std::string& yaml) {
  const std::string temp = dir + "/config.yaml.new";
  std::ofstream(temp) << ForBackendUnderTest(dir, yaml);
  ASSERT_EQ(std::rename(temp.c_str(), (dir + "/config.yaml").c_str()), 0);
}

Daemon::Daemon(std::string dir, std::string config_yaml) : dir_(std::move(dir)) { WriteConfig(dir_, config_yaml); }

Daemon::~Daemon() {
  if (pid_ > 0) Stop(SIGKILL);
}

void Daemon::HandOver(int fd, std::string name) {
  handed_fd_ = fd;
  handed_name_ = std::move(name);
}

void Daemon::Spawn() {
  const std::string ports = dir_ + "/ports.json";
  ::unlink(ports.c_str());
  const std::string config = dir_ + "/config.yaml";
  const std::string log = dir_ + "/daemon.log";
  // Everything the child needs is allocated before the fork: other threads of this process
  // may hold the allocator's lock at that moment.
  std::vector<char*> env;
  for (char** e = environ; *e != nullptr; ++e) env.push_back(*e);
  std::string listen_fds = "LISTEN_FDS=1";
  std::string listen_names = "LISTEN_FDNAMES=" + handed_name_;
  char listen_pid[32] = "LISTEN_PID=";
  // Reload outcomes go to the test's folder, as systemd's RuntimeDirectory= would have them.
  std::string runtime_dir = "RUNTIME_DIRECTORY=" + dir_;
  env.push_back(runtime_dir.data());
  if (handed_fd_ >= 0) {
    env.push_back(listen_fds.data());
    env.push_back(listen_names.data());
    env.push_back(listen_pid);
  }
  env.push_back(nullptr);
  pid_ = ::fork();
  ASSERT_GE(pid_, 0);
  if (pid_ == 0) {
    FILE* out = std::freopen(log.c_str(), "a", stderr);
    (void)out;
    if (handed_fd_ >= 0) {
      if (handed_fd_ != 3) ::dup2(handed_fd_, 3);
      ::fcntl(3, F_SETFD, 0);  // kept across exec
      char digits[16];
      int n = 0;
      for (pid_t pid = ::getpid(); pid > 0; pid /= 10) digits[n++] = static_cast<char>('0' + pid % 10);
      char* at = listen_pid + std::strlen(listen_pid);
      while (n > 0) *at++ = digits[--n];
      *at = '\0';
    }
    const char* argv[] = {"triaged", "--config", config.c_str(), "--ports-file", ports.c_str(), nullptr};
    ::execve(TRIAGED_BINARY, const_cast<char* const*>(argv), env.data());
    std::_Exit(127);
  }
}

int Daemon::StartExpectingExit() {
  Spawn();
  for (int i = 0; i < 1000; ++i) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  return -1;
}

void Daemon::Start() {
  Spawn();
  const std::string ports = dir_ + "/ports.json";
  // The daemon writes the file once both listeners are bound: wait for it (or its death).
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  std::string content;
  while (absl::Now() < deadline) {
    std::ifstream in(ports);
    if (in && std::getline(in, content) && !content.empty()) break;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      FAIL() << "triaged exited at start:\n" << Log();
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  ASSERT_FALSE(content.empty()) << "no ports file; log:\n" << Log();
  // {"ingest":P,"admin":Q}
  const size_t i = content.find("\"ingest\":"), a = content.find("\"admin\":");
  int ingest = 0, admin = 0;
  ASSERT_TRUE(absl::SimpleAtoi(content.substr(i + 9, content.find(',', i) - i - 9), &ingest));
  ASSERT_TRUE(absl::SimpleAtoi(content.substr(a + 8, content.find('}', a) - a - 8), &admin));
  ingest_port_ = static_cast<uint16_t>(ingest);
  admin_port_ = static_cast<uint16_t>(admin);
}

int Daemon::Stop(int signal) {
  if (pid_ <= 0) return -1;
  ::kill(pid_, signal);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + WTERMSIG(status);
}

std::string Daemon::Log() const { return ReadFile(dir_ + "/daemon.log"); }

HttpResult Daemon::PostSigned(const std::string& body, const std::string& secret,
                              const std::string& source) {
  const std::string signature =
      "sha256=" + absl::BytesToHexString(daemon::HmacSha256(secret, body));
  return HttpCall(ingest_port_, "POST", "/webhooks/" + source, body,
                  {{"X-Triage-Signature", signature}, {"Content-Type", "application/json"}});
}

double Daemon::Metric(const std::string& series) {
  const HttpResult metrics = HttpCall(admin_port_, "GET", "/metrics");
  std::istringstream lines(metrics.body);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind(series + " ", 0) == 0) {
      double value = 0;
      if (absl::SimpleAtod(line.substr(series.size() + 1), &value)) return value;
    }
  }
  return -1;
}

bool MakeTestCertificates(const std::string& dir, const std::string& names) {
  const std::string script = absl::StrCat(
      "cd ", dir, " && ",
      "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=triaged-test-ca ",
      "-keyout ca.key -out ca.pem && ",
      "openssl req -newkey rsa:2048 -nodes -subj /CN=helpdesk -keyout server.key -out server.csr && ",
      "printf 'subjectAltName=", names, "' > san.ext && ",
      "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 ",
      "-extfile san.ext -out server.pem) >/dev/null 2>&1");
  return std::system(("(" + script).c_str()) == 0;
}

double Daemon::WaitForMetric(const std::string& series, double at_least) {
  double value = Metric(series);
  for (int i = 0; i < 500 && value < at_least; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
    value = Metric(series);
  }
  return value;
}

bool WaitFor(const std::function<bool()>& done, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return true;
}

std::string WebhookDestination(const std::string& name, uint16_t port, const std::string& options) {
  return absl::StrCat("  ", name, ": {type: webhook, url: \"http://127.0.0.1:", port, "/hook\", secret: ",
                      kWebhookSecret, options.empty() ? "" : ", ", options, "}\n");
}

std::string SupportToWebhook(uint16_t port, const std::string& options) {
  return absl::StrCat("teams:\n  support: {destinations: [helpdesk]}\nrouting: {default_team: support}\n",
                      "destinations:\n", WebhookDestination("helpdesk", port, options));
}

std::string LoopbackConfig(const std::string& dir, const std::string& secret) {
  return absl::StrCat("server: {listen: 127.0.0.1:0}\n", "admin: {listen: 127.0.0.1:0}\n",
                      "storage: {path: ", dir, "/db}\n", "sources:\n",
                      "  generic: {type: generic, secret: ", secret, "}\n");
}

std::string MessageJson(const std::string& id, const std::string& text, const std::string& author) {
  return absl::StrCat(R"({"id":")", id, R"(","platform":"x","text":")", text,
                      R"(","created_at":"2026-11-23T10:00:00Z","author":{"id":")", author,
                      R"(","handle":"h","followers":10}})");
}

CommandRun RunCommand(const std::string& command) {
  CommandRun run;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return run;
  char buffer[4096];
  size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) run.out.append(buffer, n);
  const int status = ::pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

CommandRun Triagectl(const std::string& args) { return RunCommand(std::string(TRIAGECTL_BINARY) + " " + args); }

}  // namespace triage::testing
