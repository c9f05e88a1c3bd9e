#include "config/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <tuple>
#include <fstream>
#include <sstream>

#include "absl/algorithm/container.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "router/matcher.h"
#include "router/ticket_template.h"

namespace triage::config {
namespace {

constexpr absl::string_view kCredentialsRoot = "/run/credentials/";

std::string Child(absl::string_view path, absl::string_view key) {
  return path.empty() ? std::string(key) : absl::StrCat(path, ".", key);
}

// Walks the YAML tree against the schema written out in Load*(): each known key is read with
// its type and bounds, unknown keys are reported, and every error is collected with the
// position of the node it concerns. Nothing throws past this class.
class Loader {
 public:
  Loader(std::string file, LoadOptions options) : options(std::move(options)), file_(std::move(file)) {}

  const LoadOptions options;

  // Where a {file: PATH} secret is read: PATH, or for a credential of a unit
  // (/run/credentials/UNIT/[secrets_]NAME) options.credentials_dir/NAME when that is given.
  std::string CredentialPath(const std::string& path) const {
    absl::string_view rest = path;
    if (options.credentials_dir.empty() || !absl::ConsumePrefix(&rest, kCredentialsRoot)) return path;
    const size_t slash = rest.find('/');
    if (slash == absl::string_view::npos) return path;
    rest.remove_prefix(slash + 1);
    absl::ConsumePrefix(&rest, "secrets_");  // LoadCredential=secrets:DIR names them so
    return absl::StrCat(options.credentials_dir, "/", rest);
  }

  void Error(const YAML::Node& node, absl::string_view path, absl::string_view message) {
    const YAML::Mark mark = node.Mark();
    errors_.push_back({mark.line, mark.column,
                       absl::StrCat(file_, ":", mark.line + 1, ":", mark.column + 1, ": ",
                                    path.empty() ? "(top)" : path, ": ", message)});
  }
  bool ok() const { return errors_.empty(); }
  // Every error, one per line, in file order.
  std::string Report() {
    std::stable_sort(errors_.begin(), errors_.end(), [](const auto& a, const auto& b) {
      return std::tie(a.line, a.column) < std::tie(b.line, b.column);
    });
    std::vector<std::string> lines;
    for (const auto& e : errors_) lines.push_back(e.text);
    return absl::StrJoin(lines, "\n");
  }

  bool Map(const YAML::Node& node, absl::string_view path) {
    if (node.IsMap()) return true;
    Error(node, path, "must be a mapping");
    return false;
  }

  void Keys(const YAML::Node& node, absl::string_view path,
            std::initializer_list<absl::string_view> known) {
    Keys(node, path, std::vector<absl::string_view>(known));
  }
  void Keys(const YAML::Node& node, absl::string_view path,
            const std::vector<absl::string_view>& known) {
    for (const auto& item : node) {
      const std::string key = item.first.Scalar();
      if (std::find(known.begin(), known.end(), key) == known.end()) {
        Error(item.first, Child(path, key),
              absl::StrCat("unknown key (known here: ", absl::StrJoin(known, ", "), ")"));
      }
    }
  }

  // Returns the child node when present; reports it when required and missing.
  std::optional<YAML::Node> Get(const YAML::Node& parent, absl::string_view key,
                                absl::string_view path, bool required) {
    YAML::Node node = parent[std::string(key)];
    if (node.IsDefined() && !node.IsNull()) return node;
    if (required) Error(parent, Child(path, key), "is required");
    return std::nullopt;
  }

  void String(const YAML::Node& parent, absl::string_view key, absl::string_view path,
              std::string* out, bool required = false) {
    const auto node = Get(parent, key, path, required);
    if (!node) return;
    if (!node->IsScalar()) {
      Error(*node, Child(path, key), "must be a string");
      return;
    }
    *out = node->Scalar();
    if (required && out->empty()) Error(*node, Child(path, key), "must not be empty");
  }

  // A level name (urgent, high, normal, low); `out` stays unset when the key is absent.
  void Level(const YAML::Node& parent, absl::string_view key, absl::string_view path,
             std::optional<router::Level>* out) {
    std::string name;
    String(parent, key, path, &name);
    if (name.empty()) return;
    router::Level parsed;
    if (router::ParseLevel(name, &parsed)) {
      *out = parsed;
    } else {
      Error(parent[std::string(key)], Child(path, key), "must be urgent, high, normal or low");
    }
  }

  template <typename Int>
  void Integer(const YAML::Node& parent, absl::string_view key, absl::string_view path, Int* out,
               int64_t min, int64_t max) {
    const auto node = Get(parent, key, path, false);
    if (!node) return;
    int64_t value = 0;
    if (!node->IsScalar() || !absl::SimpleAtoi(node->Scalar(), &value)) {
      Error(*node, Child(path, key), "must be an integer");
    } else if (value < min || value > max) {
      Error(*node, Child(path, key), absl::StrCat("must be between ", min, " and ", max));
    } else {
      *out = static_cast<Int>(value);
    }
  }

  void Double(const YAML::Node& parent, absl::string_view key, absl::string_view path,
              double* out, double min, double max) {
    const auto node = Get(parent, key, path, false);
    if (!node) return;
    double value = 0;
    if (!node->IsScalar() || !absl::SimpleAtod(node->Scalar(), &value)) {
      Error(*node, Child(path, key), "must be a number");
    } else if (value < min || value > max) {
      Error(*node, Child(path, key), absl::StrCat("must be between ", min, " and ", max));
    } else {
      *out = value;
    }
  }

  void Duration(const YAML::Node& parent, absl::string_view key, absl::string_view path,
                absl::Duration* out, absl::Duration min, absl::Duration max) {
    const auto node = Get(parent, key, path, false);
    if (!node) return;
    absl::Duration value;
    if (!node->IsScalar() || !ParseDurationText(node->Scalar(), &value)) {
      Error(*node, Child(path, key), "must be a duration such as 250ms, 10s, 15m, 4h or 8d");
    } else if (value < min || value > max) {
      Error(*node, Child(path, key),
            absl::StrCat("must be between ", absl::FormatDuration(min), " and ",
                         absl::FormatDuration(max)));
    } else {
      *out = value;
    }
  }

  // A byte size: an integer, or a number with a KiB/MiB/GiB suffix.
  void Size(const YAML::Node& parent, absl::string_view key, absl::string_view path, size_t* out,
            size_t min, size_t max) {
    const auto node = Get(parent, key, path, false);
    if (!node) return;
    absl::string_view text = node->IsScalar() ? absl::string_view(node->Scalar()) : "";
    uint64_t unit = 1;
    for (const auto& [suffix, factor] : {std::pair<absl::string_view, uint64_t>{"KiB", 1 << 10},
                                         {"MiB", 1 << 20},
                                         {"GiB", 1 << 30}}) {
      if (absl::ConsumeSuffix(&text, suffix)) unit = factor;
    }
    uint64_t value = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &value)) {
      Error(*node, Child(path, key), "must be a size such as 1048576, 64KiB or 1MiB");
    } else if (value * unit < min || value * unit > max) {
      Error(*node, Child(path, key), absl::StrCat("must be between ", min, " and ", max, " bytes"));
    } else {
      *out = value * unit;
    }
  }

  void Bool(const YAML::Node& parent, absl::string_view key, absl::string_view path,
            std::optional<bool>* out) {
    const auto node = Get(parent, key, path, false);
    if (!node) return;
    bool value = false;
    if (!node->IsScalar() || !YAML::convert<bool>::decode(*node, value)) {
      Error(*node, Child(path, key), "must be true or false");
      return;
    }
    *out = value;
  }

  // A list of networks in CIDR notation.
  void Networks(const YAML::Node& parent, absl::string_view key, absl::string_view path,
                std::vector<IpNetwork>* out) {
    std::vector<std::string> texts;
    StringList(parent, key, path, &texts);
    out->clear();
    int index = 0;
    for (const std::string& text : texts) {
      if (std::optional<IpNetwork> network = IpNetwork::Parse(text)) {
        out->push_back(*network);
      } else {
        Error(parent[std::string(key)][index], absl::StrCat(Child(path, key), "[", index, "]"),
              absl::StrCat("'", text, "' is not an address or a network (10.0.0.0/8, 2001:db8::/32)"));
      }
      ++index;
    }
  }

  // The contents of a file the config names (a TLS certificate or key), read now.
  void FileContents(const YAML::Node& parent, absl::string_view key, absl::string_view path,
                    std::string* file, std::string* contents) {
    String(parent, key, path, file, true);
    if (file->empty()) return;
    const std::string read_from = CredentialPath(*file);
    std::ifstream in(read_from, std::ios::binary);
    std::stringstream buffer;
    if (in) buffer << in.rdbuf();
    if (!in || buffer.str().empty()) {
      Error(parent[std::string(key)], Child(path, key), absl::StrCat("cannot read ", read_from));
      return;
    }
    *contents = buffer.str();
  }

  void StringList(const YAML::Node& parent, absl::string_view key, absl::string_view path,
                  std::vector<std::string>* out) {
    const auto node = Get(parent, key, path, false);
    if (!node) return;
    if (!node->IsSequence()) {
      Error(*node, Child(path, key), "must be a list of strings");
      return;
    }
    out->clear();
    for (const YAML::Node& item : *node) {
      if (!item.IsScalar() || item.Scalar().empty()) {
        Error(item, Child(path, key), "items must be non-empty strings");
      } else {
        out->push_back(item.Scalar());
      }
    }
  }

  // A secret: a plain string, {value: S}, {env: NAME} or {file: PATH}. Resolved now, so a
  // missing variable or unreadable file is a config error, not a runtime surprise.
  void Secret(const YAML::Node& parent, absl::string_view key, absl::string_view path,
              std::string* out, bool required) {
    const auto node = Get(parent, key, path, required);
    if (!node) return;
    const std::string here = Child(path, key);
    if (node->IsScalar()) {
      *out = node->Scalar();
    } else if (Map(*node, here)) {
      Keys(*node, here, {"value", "env", "file"});
      if (node->size() != 1) {
        Error(*node, here, "give exactly one of value, env or file");
        return;
      }
      if (const auto v = (*node)["value"]; v.IsDefined()) {
        *out = v.Scalar();
      } else if (const auto env = (*node)["env"]; env.IsDefined()) {
        const char* value = std::getenv(env.Scalar().c_str());
        if (value == nullptr) {
          Error(env, Child(here, "env"), absl::StrCat("environment variable ", env.Scalar(), " is not set"));
          return;
        }
        *out = value;
      } else if (const auto file = (*node)["file"]; file.IsDefined()) {
        const std::string read_from = CredentialPath(file.Scalar());
        std::ifstream in(read_from, std::ios::binary);
        if (!in) {
          std::string why = absl::StrCat("cannot read ", read_from);
          if (read_from != file.Scalar()) {
            absl::StrAppend(&why, " (", file.Scalar(), " inside the service)");
          } else if (absl::StartsWith(read_from, kCredentialsRoot)) {
            absl::StrAppend(&why, "; this path exists only inside the service: outside it, give "
                                  "--credentials-dir /etc/triaged/credentials");
          }
          Error(file, Child(here, "file"), why);
          return;
        }
        std::stringstream buffer;
        buffer << in.rdbuf();
        *out = std::string(absl::StripTrailingAsciiWhitespace(buffer.str()));
      }
    }
    if (required && out->empty()) Error(*node, here, "must not be empty");
  }

  // A trained model: `key: FILE`, or `key: {path: FILE, ...}` with the keys in `extra` left
  // for the caller. Loaded now, so a file that is missing, damaged or trained for another
  // label is refused like any other config error (at start, and by a reload).
  std::shared_ptr<const router::TextModel> Model(const YAML::Node& parent, absl::string_view key,
                                                 absl::string_view path, router::ModelLabel label,
                                                 std::vector<absl::string_view> extra, std::string* name) {
    const auto node = Get(parent, key, path, false);
    if (!node) return nullptr;
    const std::string here = Child(path, key);
    std::string file;
    if (node->IsScalar()) {
      file = node->Scalar();
    } else if (Map(*node, here)) {
      extra.push_back("path");
      Keys(*node, here, extra);
      String(*node, "path", here, &file, true);
    }
    if (file.empty()) return nullptr;
    auto model = LoadModelFile(file, label);
    if (!model.ok()) {
      // (Not `node = node["path"]`: assigning a yaml-cpp node rewrites the document.)
      Error(node->IsScalar() ? *node : (*node)["path"], here, model.status().message());
      return nullptr;
    }
    *name = file.substr(file.find_last_of('/') + 1);
    return *model;
  }

  void Listen(const YAML::Node& parent, absl::string_view key, absl::string_view path,
              ListenOptions* out) {
    const auto node = Get(parent, key, path, false);
    if (!node) return;
    const std::string text = node->IsScalar() ? node->Scalar() : "";
    const size_t colon = text.rfind(':');
    uint32_t port = 0;
    std::string host = colon == std::string::npos ? "" : text.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);
    }
    if (host.empty() || !absl::SimpleAtoi(text.substr(colon + 1), &port) || port > 65535) {
      Error(*node, Child(path, key), "must be HOST:PORT, e.g. 127.0.0.1:8080 or [::1]:0");
      return;
    }
    *out = {host, static_cast<uint16_t>(port)};
  }

 private:
  struct Located {
    int line;
    int column;
    std::string text;
  };
  std::string file_;
  std::vector<Located> errors_;
};

void LoadServer(Loader& l, const YAML::Node& node, ServerOptions* s) {
  const std::string path = "server";
  if (!l.Map(node, path)) return;
  l.Keys(node, path,
         {"listen", "tls", "trusted_proxies", "io_threads", "max_body_bytes", "max_header_bytes",
          "read_timeout", "idle_timeout", "shutdown_timeout", "max_connections",
          "max_messages_per_request", "max_json_depth"});
  l.Listen(node, "listen", path, &s->listen);
  if (auto tls = l.Get(node, "tls", path, false); tls && l.Map(*tls, Child(path, "tls"))) {
    const std::string here = Child(path, "tls");
    l.Keys(*tls, here, {"certificate", "key", "min_version"});
    l.FileContents(*tls, "certificate", here, &s->tls.certificate_file, &s->tls.certificate_pem);
    l.FileContents(*tls, "key", here, &s->tls.key_file, &s->tls.key_pem);
    l.String(*tls, "min_version", here, &s->tls.min_version);
    if (s->tls.min_version != "1.2" && s->tls.min_version != "1.3") {
      l.Error((*tls)["min_version"], Child(here, "min_version"), "must be \"1.2\" or \"1.3\"");
    }
  }
  l.Networks(node, "trusted_proxies", path, &s->trusted_proxies);
  l.Integer(node, "io_threads", path, &s->io_threads, 1, 64);
  l.Size(node, "max_body_bytes", path, &s->max_body_bytes, 1024, 64 << 20);
  l.Size(node, "max_header_bytes", path, &s->max_header_bytes, 1024, 1 << 20);
  l.Duration(node, "read_timeout", path, &s->read_timeout, absl::Milliseconds(100), absl::Minutes(10));
  l.Duration(node, "idle_timeout", path, &s->idle_timeout, absl::Milliseconds(100), absl::Hours(1));
  l.Duration(node, "shutdown_timeout", path, &s->shutdown_timeout, absl::Milliseconds(100), absl::Minutes(10));
  l.Integer(node, "max_connections", path, &s->max_connections, 1, 1'000'000);
  l.Integer(node, "max_messages_per_request", path, &s->payload.max_messages, 1, 100'000);
  l.Integer(node, "max_json_depth", path, &s->payload.max_depth, 4, 1024);
}

// A name the JetStream backend turns into stream and subject tokens.
bool JetStreamToken(absl::string_view name) {
  return !name.empty() && name.size() <= 64 && absl::c_all_of(name, [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

void LoadJetStream(Loader& l, const YAML::Node& node, JetStreamStorageOptions* j) {
  const std::string path = "storage.jetstream";
  if (!l.Map(node, path)) return;
  l.Keys(node, path,
         {"servers", "credentials_file", "ca_file", "replicas", "prefix", "publish_timeout", "node", "lease_ttl"});
  l.StringList(node, "servers", path, &j->servers);
  l.String(node, "credentials_file", path, &j->credentials_file);
  l.String(node, "ca_file", path, &j->ca_file);
  l.Integer(node, "replicas", path, &j->replicas, 1, 5);
  l.String(node, "prefix", path, &j->prefix);
  if (!JetStreamToken(j->prefix)) l.Error(node["prefix"], Child(path, "prefix"), "must be 1 to 64 of [A-Za-z0-9_-]");
  l.Duration(node, "publish_timeout", path, &j->publish_timeout, absl::Milliseconds(100), absl::Minutes(1));
  l.String(node, "node", path, &j->node);
  if (node["node"].IsDefined() && !JetStreamToken(j->node)) {
    l.Error(node["node"], Child(path, "node"), "must be 1 to 64 of [A-Za-z0-9_-]");
  }
  l.Duration(node, "lease_ttl", path, &j->lease_ttl, absl::Seconds(3), absl::Minutes(5));
}

void LoadStorage(Loader& l, const YAML::Node& node, StorageOptions* s) {
  const std::string path = "storage";
  if (!l.Map(node, path)) return;
  l.Keys(node, path,
         {"backend", "jetstream", "path", "dedup_window", "quarantine_retention", "max_queued_entries",
          "max_pending_requests", "aging_step"});
  l.String(node, "backend", path, &s->backend);
  if (s->backend != "rocksdb" && s->backend != "jetstream") {
    l.Error(node["backend"], Child(path, "backend"), "must be rocksdb or jetstream");
  }
  if (auto n = l.Get(node, "jetstream", path, s->backend == "jetstream")) LoadJetStream(l, *n, &s->jetstream);
  if (s->backend == "jetstream" && s->jetstream.servers.empty() && node["jetstream"].IsDefined()) {
    l.Error(node["jetstream"], Child(path, "jetstream.servers"), "is required with backend jetstream");
  }
  l.String(node, "path", path, &s->path);
  l.Duration(node, "dedup_window", path, &s->dedup_window, absl::Minutes(1), absl::Hours(24 * 365));
  l.Duration(node, "quarantine_retention", path, &s->quarantine_retention, absl::Hours(1), absl::Hours(24 * 365));
  l.Integer(node, "max_queued_entries", path, &s->max_queued_entries, 1, int64_t{1} << 40);
  l.Integer(node, "max_pending_requests", path, &s->max_pending_requests, 1, 1'000'000);
  l.Duration(node, "aging_step", path, &s->aging_step, absl::Seconds(1), absl::Hours(24 * 30));
}

void LoadKnownAuthors(Loader& l, const YAML::Node& node, const std::string& path,
                      std::vector<router::KnownAuthor>* out) {
  const auto list = l.Get(node, "known_authors", path, false);
  if (!list) return;
  const std::string here = Child(path, "known_authors");
  if (!list->IsSequence()) {
    l.Error(*list, here, "must be a list of {id or handle, followers, verified, note}");
    return;
  }
  int index = 0;
  for (const YAML::Node& item : *list) {
    const std::string item_path = absl::StrCat(here, "[", index++, "]");
    if (!l.Map(item, item_path)) continue;
    l.Keys(item, item_path, {"id", "handle", "followers", "verified", "note"});
    router::KnownAuthor author;
    l.String(item, "id", item_path, &author.id);
    l.String(item, "handle", item_path, &author.handle);
    int64_t followers = -1;
    l.Integer(item, "followers", item_path, &followers, 0, int64_t{1} << 40);
    if (followers >= 0) author.followers = followers;
    std::string verified;
    l.String(item, "verified", item_path, &verified);
    if (!verified.empty() && verified != "true" && verified != "false") {
      l.Error(item["verified"], Child(item_path, "verified"), "must be true or false");
    }
    author.verified = verified == "true";
    l.String(item, "note", item_path, &author.note);
    if (author.id.empty() && author.handle.empty()) l.Error(item, item_path, "needs an id or a handle");
    out->push_back(std::move(author));
  }
}

// Source and feedback names are URL path segments: letters, digits, - and _.
void CheckTemplate(Loader& l, const YAML::Node& body, absl::string_view key, const std::string& path,
                   const std::string& text) {
  if (absl::StatusOr<router::Template> t = router::Template::Parse(text); !t.ok()) {
    l.Error(body[std::string(key)], Child(path, key), std::string(t.status().message()));
  }
}

void LoadTemplate(Loader& l, const YAML::Node& body, absl::string_view key, const std::string& path,
                  std::string* out) {
  l.String(body, key, path, out);
  CheckTemplate(l, body, key, path, *out);
}

// The keys a source or destination type declares (router::Setting), into `out`.
void LoadSettings(Loader& l, const YAML::Node& body, const std::string& path,
                  const std::vector<router::Setting>& settings, router::Settings* out) {
  for (const router::Setting& setting : settings) {
    switch (setting.kind) {
      case router::Setting::Kind::kSecret:
        l.Secret(body, setting.key, path, &out->values[setting.key], setting.required);
        break;
      case router::Setting::Kind::kString:
      case router::Setting::Kind::kTemplate: {
        std::string& value = out->values[setting.key];
        value = setting.default_value;
        l.String(body, setting.key, path, &value, setting.required);
        if (setting.kind == router::Setting::Kind::kTemplate) CheckTemplate(l, body, setting.key, path, value);
        if (!setting.allowed.empty() && !absl::c_linear_search(setting.allowed, value)) {
          l.Error(body[setting.key], Child(path, setting.key),
                  absl::StrCat("must be ", absl::StrJoin(setting.allowed, " or ")));
        }
        break;
      }
      case router::Setting::Kind::kStringList:
        l.StringList(body, setting.key, path, &out->lists[setting.key]);
        break;
      case router::Setting::Kind::kInteger:
        if (body[setting.key].IsDefined()) {
          int64_t value = 0;
          l.Integer(body, setting.key, path, &value, setting.min, setting.max);
          out->integers[setting.key] = value;
        }
        break;
    }
  }
}

void CheckPathName(Loader& l, const YAML::Node& key, const std::string& path, absl::string_view what) {
  const std::string name = key.Scalar();
  if (!std::all_of(name.begin(), name.end(), [](char c) {
        return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
      })) {
    l.Error(key, path, absl::StrCat(what, " names use letters, digits, - and _ (they are URL paths)"));
  }
}

void LoadSources(Loader& l, const YAML::Node& node, const router::PayloadLimits& limits,
                 std::vector<SourceOptions>* sources) {
  if (!l.Map(node, "sources")) return;
  for (const auto& item : node) {
    const std::string name = item.first.Scalar();
    const std::string path = Child("sources", name);
    const YAML::Node& body = item.second;
    if (!l.Map(body, path)) continue;
    SourceOptions source;
    source.name = name;
    CheckPathName(l, item.first, path, "source");
    std::string type;
    l.String(body, "type", path, &type, true);
    int default_reach = -1;
    l.Integer(body, "default_reach", path, &default_reach, 0, 100);
    if (default_reach >= 0) source.parse.default_reach = default_reach;
    LoadKnownAuthors(l, body, path, &source.parse.known_authors);
    l.Networks(body, "allow_from", path, &source.allow_from);
    source.type = router::FindSourceType(type);
    if (source.type == nullptr) {
      if (!type.empty()) {
        std::vector<std::string> known;
        for (const router::SourceType* t : router::SourceTypes()) known.emplace_back(t->name());
        l.Error(body["type"], Child(path, "type"),
                absl::StrCat("unknown source type (known: ", absl::StrJoin(known, ", "), ")"));
      }
    } else {
      // The common keys, then the type's own, declared by it (router/sources/<type>/).
      const std::vector<router::Setting> settings = source.type->settings();
      std::vector<absl::string_view> keys = {"type"};
      for (const router::Setting& setting : settings) keys.push_back(setting.key);
      for (absl::string_view common : {"known_authors", "default_reach", "allow_from"}) keys.push_back(common);
      l.Keys(body, path, keys);
      LoadSettings(l, body, path, settings, &source.settings);
      for (const auto& [key, message] : source.type->Validate(source.settings)) {
        l.Error(body, Child(path, key), message);
      }
      if (const std::string brands = source.type->brand_ids_setting(); !brands.empty()) {
        source.parse.brand_ids = source.settings.List(brands);
      }
      source.signature = source.type->Signature(source.settings);
      source.handshake = source.type->Handshake(source.settings);
    }
    source.parse.source = name;
    source.parse.limits = limits;
    sources->push_back(std::move(source));
  }
}

// A URL may be a secret (a Slack webhook URL is its own credential): {env: ...} and
// {file: ...} work as for other secrets.
void LoadUrl(Loader& l, const YAML::Node& body, const std::string& path, DestinationOptions* d) {
  l.Secret(body, "url", path, &d->url, true);
  if (!d->url.empty() && !absl::StartsWith(d->url, "http://") && !absl::StartsWith(d->url, "https://")) {
    l.Error(body["url"], Child(path, "url"), "must start with http:// or https://");
  }
  if (d->type->url_is_base()) d->url = std::string(absl::StripSuffix(d->url, "/"));
}

// Options every HTTP destination has: transport, pacing, retries, breaker, filter.
void LoadHttpOptions(Loader& l, const YAML::Node& body, const std::string& path,
                     DestinationOptions* d) {
  LoadUrl(l, body, path, d);
  l.String(body, "ca_file", path, &d->ca_file);
  l.Integer(body, "concurrency", path, &d->concurrency, 1, 256);
  l.Double(body, "rate", path, &d->rate, 0, 100'000);
  l.Double(body, "burst", path, &d->burst, 1, 100'000);
  l.Duration(body, "connect_timeout", path, &d->connect_timeout, absl::Milliseconds(10), absl::Minutes(5));
  l.Duration(body, "timeout", path, &d->timeout, absl::Milliseconds(10), absl::Minutes(10));
  l.Integer(body, "max_attempts", path, &d->max_attempts, 1, 1000);
  l.Duration(body, "backoff_initial", path, &d->backoff_initial, absl::Milliseconds(1), absl::Hours(1));
  l.Duration(body, "backoff_max", path, &d->backoff_max, absl::Milliseconds(1), absl::Hours(48));
  l.Duration(body, "retry_after_max", path, &d->retry_after_max, absl::Seconds(1), absl::Hours(48));
  l.Duration(body, "probe_max", path, &d->probe_max, absl::Milliseconds(10), absl::Hours(1));
  if (d->backoff_max < d->backoff_initial) {
    l.Error(body, Child(path, "backoff_max"), "must not be shorter than backoff_initial");
  }
  if (const auto breaker = l.Get(body, "breaker", path, false)) {
    const std::string here = Child(path, "breaker");
    if (l.Map(*breaker, here)) {
      BreakerOptions& b = d->breaker;
      l.Keys(*breaker, here, {"failure_ratio", "window", "min_calls", "open_for", "open_max"});
      l.Double(*breaker, "failure_ratio", here, &b.failure_ratio, 0.01, 1);
      l.Integer(*breaker, "window", here, &b.window, 1, 10'000);
      l.Integer(*breaker, "min_calls", here, &b.min_calls, 1, 10'000);
      l.Duration(*breaker, "open_for", here, &b.open_for, absl::Milliseconds(10), absl::Hours(24));
      l.Duration(*breaker, "open_max", here, &b.open_max, absl::Milliseconds(10), absl::Hours(24));
      if (b.min_calls > b.window) l.Error(*breaker, Child(here, "min_calls"), "must not exceed window");
      if (b.open_max < b.open_for) l.Error(*breaker, Child(here, "open_max"), "must not be shorter than open_for");
    }
  }
  l.Level(body, "min_level", path, &d->min_level);
  if (body["min_reach"].IsDefined()) {
    int64_t reach = 0;
    l.Integer(body, "min_reach", path, &reach, 0, 100);
    d->min_reach = reach;
  }
}

// Subject and body templates, group ids per team, custom fields: those the type takes.
void LoadTicketOptions(Loader& l, const YAML::Node& body, const std::string& path,
                       DestinationOptions* d) {
  LoadTemplate(l, body, "subject", path, &d->subject_template);
  LoadTemplate(l, body, "body", path, &d->body_template);
  LoadTemplate(l, body, "follow_up", path, &d->follow_up_template);
  if (const auto groups = l.Get(body, "group_ids", path, false)) {
    const std::string here = Child(path, "group_ids");
    if (l.Map(*groups, here)) {
      for (const auto& item : *groups) {
        int64_t id = 0;
        l.Integer(*groups, item.first.Scalar(), here, &id, 1, std::numeric_limits<int64_t>::max());
        d->group_ids[item.first.Scalar()] = id;
      }
    }
  }
  if (const auto watchers = l.Get(body, "watchers", path, false)) {
    const std::string here = Child(path, "watchers");
    if (l.Map(*watchers, here)) {
      for (const auto& item : *watchers) {
        std::vector<std::string>& users = d->watchers[item.first.Scalar()];
        l.StringList(*watchers, item.first.Scalar(), here, &users);
        if (users.empty()) l.Error(item.second, Child(here, item.first.Scalar()), "needs at least one user");
      }
    }
  }
  if (const auto fields = l.Get(body, "custom_fields", path, false)) {
    const std::string here = Child(path, "custom_fields");
    if (l.Map(*fields, here)) {
      for (const auto& item : *fields) {
        const std::string key = item.first.Scalar();
        if (const std::string problem = d->type->CustomFieldKeyProblem(key); !problem.empty()) {
          l.Error(item.first, Child(here, key), problem);
        }
        std::string text;
        LoadTemplate(l, *fields, key, here, &text);
        d->custom_fields.emplace_back(key, text);
      }
    }
  }
}

// The keys of a destination block: type, then the transport's (http: url, pacing, retries,
// breaker, filter), the ticket keys the type takes, and the type's own settings.
std::vector<absl::string_view> DestinationKeys(const router::DestinationType& type,
                                               const std::vector<router::Setting>& settings) {
  std::vector<absl::string_view> keys = {"type", "informed"};
  if (type.transport() == router::Transport::kHttp) {
    for (absl::string_view key : {"url", "ca_file", "concurrency", "rate", "burst", "connect_timeout", "timeout",
                                  "max_attempts", "backoff_initial", "backoff_max", "retry_after_max", "probe_max",
                                  "breaker", "min_level", "min_reach"}) {
      keys.push_back(key);
    }
  }
  const router::TicketKeys ticket = type.ticket_keys();
  if (ticket.subject) keys.push_back("subject");
  if (ticket.body) keys.push_back("body");
  if (ticket.follow_up) keys.push_back("follow_up");
  if (ticket.group_ids) keys.push_back("group_ids");
  if (ticket.custom_fields) keys.push_back("custom_fields");
  if (ticket.watchers) keys.push_back("watchers");
  if (type.keeps_tickets()) keys.push_back("count_interval");
  if (ticket.ticket_link) {
    keys.push_back("ticket_link");
    keys.push_back("ticket_link_wait");
  }
  for (const router::Setting& setting : settings) keys.push_back(setting.key);
  return keys;
}

void LoadDestinations(Loader& l, const YAML::Node& node, std::vector<DestinationOptions>* out) {
  if (!l.Map(node, "destinations")) return;
  for (const auto& item : node) {
    DestinationOptions d;
    d.name = item.first.Scalar();
    const std::string path = Child("destinations", d.name);
    const YAML::Node& body = item.second;
    if (!l.Map(body, path)) continue;
    std::string type;
    l.String(body, "type", path, &type, true);
    d.type = router::FindDestinationType(type);
    if (d.type == nullptr) {
      if (!type.empty()) {
        l.Error(body["type"], Child(path, "type"),
                absl::StrCat("unknown destination type (known: ", router::DestinationTypeNames(), ")"));
      }
      out->push_back(std::move(d));
      continue;
    }
    // The type's defaults (router/destinations/<type>/), then the block's own values.
    const router::DestinationDefaults defaults = d.type->defaults();
    d.join_informed = defaults.join_informed;
    d.concurrency = defaults.concurrency;
    d.rate = defaults.rate;
    d.burst = defaults.burst;
    d.subject_template = defaults.subject_template;
    d.body_template = defaults.body_template;
    d.follow_up_template = defaults.follow_up_template;
    const std::vector<router::Setting> settings = d.type->settings();
    l.Keys(body, path, DestinationKeys(*d.type, settings));
    if (d.type->transport() == router::Transport::kHttp) LoadHttpOptions(l, body, path, &d);
    LoadTicketOptions(l, body, path, &d);
    LoadSettings(l, body, path, settings, &d.settings);
    if (d.type->keeps_tickets()) {
      l.Duration(body, "count_interval", path, &d.count_interval, absl::ZeroDuration(), absl::Hours(24));
      if (d.count_interval > absl::ZeroDuration() && d.count_interval < absl::Seconds(1)) {
        l.Error(body["count_interval"], Child(path, "count_interval"), "must be 0 (off) or at least 1s");
      }
    }
    if (body["ticket_link"].IsDefined()) {
      d.ticket_link.emplace();
      l.String(body, "ticket_link", path, &d.ticket_link->destination, true);
      l.Duration(body, "ticket_link_wait", path, &d.ticket_link_wait, absl::ZeroDuration(), absl::Minutes(10));
    }
    std::string informed = d.join_informed ? "join" : "separate";
    l.String(body, "informed", path, &informed);
    if (informed != "join" && informed != "separate") {
      l.Error(body["informed"], Child(path, "informed"), "must be join or separate");
    }
    d.join_informed = informed == "join";
    for (const auto& [key, message] : d.type->Validate(d.settings)) {
      if (key.empty()) {
        l.Error(body, path, message);
      } else {
        l.Error(body[key], Child(path, key), message);
      }
    }
    out->push_back(std::move(d));
  }
}

// A ticket_link names another destination whose tickets have a web page: its type, url and
// settings are copied in, and the teams that deliver there.
void ResolveTicketLinks(Loader& l, const YAML::Node& root, Config* config) {
  for (DestinationOptions& d : config->destinations) {
    if (!d.ticket_link) continue;
    TicketLink& link = *d.ticket_link;
    const std::string path = absl::StrCat(Child("destinations", d.name), ".ticket_link");
    const YAML::Node node = root["destinations"][d.name]["ticket_link"];
    const auto target = absl::c_find_if(config->destinations,
                                        [&](const DestinationOptions& o) { return o.name == link.destination; });
    if (target == config->destinations.end()) {
      l.Error(node, path, absl::StrCat("unknown destination '", link.destination, "'"));
      continue;
    }
    if (target->type == nullptr) continue;  // reported where it is defined
    if (!target->type->keeps_tickets() || !target->type->TicketUrl(target->settings, target->url, "1")) {
      l.Error(node, path,
              absl::StrCat("destination '", link.destination, "' (", std::string(target->type->name()),
                           ") has no ticket pages to link to (types that keep tickets: ",
                           router::DestinationTypeNames([](const router::DestinationType& t) {
                             return t.keeps_tickets();
                           }),
                           ")"));
      continue;
    }
    link.type = target->type;
    link.url = target->url;
    link.settings = target->settings;
    link.teams.insert(target->teams.begin(), target->teams.end());
  }
}

void LoadFeedback(Loader& l, const YAML::Node& node, const std::vector<DestinationOptions>& destinations,
                  std::vector<FeedbackOptions>* out) {
  if (!l.Map(node, "feedback")) return;
  for (const auto& item : node) {
    FeedbackOptions f;
    f.name = item.first.Scalar();
    const std::string path = Child("feedback", f.name);
    const YAML::Node& body = item.second;
    if (!l.Map(body, path)) continue;
    CheckPathName(l, item.first, path, "feedback");
    std::string type;
    l.String(body, "type", path, &type, true);
    f.type = router::FindDestinationType(type);
    const router::FeedbackAuth::Kind auth =
        f.type == nullptr ? router::FeedbackAuth::Kind::kNone : f.type->feedback_auth().kind;
    switch (auth) {
      case router::FeedbackAuth::Kind::kHmacTimestamped:
        l.Keys(body, path, {"type", "destination", "secret", "complaint_tags", "not_complaint_tags", "max_clock_skew"});
        l.Duration(body, "max_clock_skew", path, &f.max_clock_skew, absl::Seconds(10), absl::Hours(24));
        break;
      case router::FeedbackAuth::Kind::kToken:
        l.Keys(body, path, {"type", "destination", "secret", "token_header", "complaint_tags", "not_complaint_tags"});
        l.String(body, "token_header", path, &f.token_header);
        break;
      case router::FeedbackAuth::Kind::kNone:
        if (!type.empty()) {
          l.Error(body["type"], Child(path, "type"),
                  absl::StrCat("unknown feedback type (known: ",
                               router::DestinationTypeNames([](const router::DestinationType& t) {
                                 return t.feedback_auth().kind != router::FeedbackAuth::Kind::kNone;
                               }),
                               ")"));
        }
        f.type = nullptr;
        break;
    }
    l.Secret(body, "secret", path, &f.secret, true);
    l.String(body, "destination", path, &f.destination, true);
    l.StringList(body, "complaint_tags", path, &f.complaint_tags);
    l.StringList(body, "not_complaint_tags", path, &f.not_complaint_tags);
    if (!f.destination.empty()) {
      const auto d = std::find_if(destinations.begin(), destinations.end(),
                                  [&](const DestinationOptions& o) { return o.name == f.destination; });
      if (d == destinations.end()) {
        l.Error(body["destination"], Child(path, "destination"),
                absl::StrCat("unknown destination '", f.destination, "' (define it under destinations)"));
      } else if (d->type != f.type) {
        l.Error(body["destination"], Child(path, "destination"),
                absl::StrCat("destination '", f.destination, "' is not a ", type, " destination"));
      }
    }
    out->push_back(std::move(f));
  }
}

void LoadScoring(Loader& l, const YAML::Node& node, router::ScorerOptions* s) {
  const std::string path = "scoring";
  if (!l.Map(node, path)) return;
  l.Keys(node, path,
         {"urgency_weight", "reach_weight", "followers_cap", "followers_max_points",
          "verified_points", "blue_points", "levels", "categories", "signals", "model",
          "complaint_threshold"});
  l.Integer(node, "complaint_threshold", path, &s->complaint_threshold, 1, 100);
  l.Integer(node, "blue_points", path, &s->blue_points, 0, 100);
  router::ScoringModel model;
  model.model = l.Model(node, "model", path, router::ModelLabel::kComplaint, {"threshold", "points"}, &model.name);
  if (model.model != nullptr) {
    if (const YAML::Node m = node["model"]; m.IsMap()) {
      const std::string here = Child(path, "model");
      double threshold = -1;
      l.Double(m, "threshold", here, &threshold, 0.01, 0.99);
      if (threshold > 0) model.threshold = threshold;
      l.Integer(m, "points", here, &model.points, 0, 100);
    }
    s->model = std::move(model);
  }
  if (const auto signals = l.Get(node, "signals", path, false)) {
    const std::string here = Child(path, "signals");
    if (l.Map(*signals, here)) {
      l.Keys(*signals, here, {"shouting", "exclamations", "angry_emoji", "negated_praise", "sarcasm",
                              "negative_sentiment", "positive_sentiment"});
      l.Integer(*signals, "negative_sentiment", here, &s->signals.negative_sentiment, 0, 100);
      l.Integer(*signals, "positive_sentiment", here, &s->signals.positive_sentiment, 0, 100);
      l.Integer(*signals, "shouting", here, &s->signals.shouting, 0, 100);
      l.Integer(*signals, "exclamations", here, &s->signals.exclamations, 0, 100);
      l.Integer(*signals, "angry_emoji", here, &s->signals.angry_emoji, 0, 100);
      l.Integer(*signals, "negated_praise", here, &s->signals.negated_praise, 0, 100);
      l.Integer(*signals, "sarcasm", here, &s->signals.sarcasm, 0, 100);
    }
  }
  l.Double(node, "urgency_weight", path, &s->urgency_weight, 0, 1);
  l.Double(node, "reach_weight", path, &s->reach_weight, 0, 1);
  l.Integer(node, "followers_cap", path, &s->followers_cap, 10, int64_t{1} << 40);
  l.Integer(node, "followers_max_points", path, &s->followers_max_points, 0, 100);
  l.Integer(node, "verified_points", path, &s->verified_points, 0, 100);
  if (const auto levels = l.Get(node, "levels", path, false)) {
    const std::string levels_path = Child(path, "levels");
    if (l.Map(*levels, levels_path)) {
      l.Keys(*levels, levels_path, {"urgent", "high", "normal", "low"});
      for (int i = 0; i < router::kLevelCount; ++i) {
        const std::string name(router::LevelName(static_cast<router::Level>(i)));
        const auto level = l.Get(*levels, name, levels_path, false);
        if (!level) continue;
        const std::string level_path = Child(levels_path, name);
        if (!l.Map(*level, level_path)) continue;
        l.Keys(*level, level_path, {"min_priority", "sla"});
        l.Integer(*level, "min_priority", level_path, &s->levels[i].min_priority, 0, 100);
        l.Duration(*level, "sla", level_path, &s->levels[i].sla, absl::Minutes(1), absl::Hours(24 * 30));
      }
    }
  }
  if (const auto categories = l.Get(node, "categories", path, false)) {
    const std::string cat_path = Child(path, "categories");
    if (l.Map(*categories, cat_path)) {
      s->categories.clear();
      for (const auto& item : *categories) {
        router::CategoryOptions c;
        c.name = item.first.Scalar();
        const std::string here = Child(cat_path, c.name);
        if (!l.Map(item.second, here)) continue;
        l.Keys(item.second, here, {"weight", "terms", "role", "per_term", "max"});
        l.Integer(item.second, "weight", here, &c.weight, -100, 100);
        std::optional<bool> per_term;
        l.Bool(item.second, "per_term", here, &per_term);
        c.per_term = per_term.value_or(false);
        l.Integer(item.second, "max", here, &c.max, 0, 100);
        if (item.second["max"].IsDefined() && !c.per_term) {
          l.Error(item.second["max"], Child(here, "max"), "max applies only with per_term: true");
        }
        std::string role;
        l.String(item.second, "role", here, &role);
        if (role == "complaint") {
          c.role = router::CategoryRole::kComplaint;
        } else if (role == "praise") {
          c.role = router::CategoryRole::kPraise;
        } else if (role == "resolution") {
          c.role = router::CategoryRole::kResolution;
        } else if (role == "neutral") {
          c.role = router::CategoryRole::kNeutral;
        } else if (!role.empty()) {
          l.Error(item.second["role"], Child(here, "role"),
                  "must be complaint, praise, resolution or neutral");
        }
        l.StringList(item.second, "terms", here, &c.terms);
        if (c.terms.empty()) l.Error(item.second, Child(here, "terms"), "needs at least one term");
        s->categories.push_back(std::move(c));
      }
    }
  }
  if (auto status = s->Validate(); !status.ok()) {
    l.Error(node, path, status.message());
  } else if (auto scorer = l.options.compile_patterns ? router::Scorer::Create(*s)
                                                      : absl::StatusOr<std::shared_ptr<const router::Scorer>>(nullptr);
             !scorer.ok()) {
    l.Error(node, Child(path, "categories"), scorer.status().message());  // a term Hyperscan refuses
  }
}

void LoadTimeWindow(Loader& l, const YAML::Node& node, const std::string& path,
                    std::optional<router::TimeWindow>* out);
void LoadLevels(Loader& l, const YAML::Node& node, absl::string_view path, std::vector<router::Level>* out);

constexpr char kDefaultAcknowledgement[] =
    "Thanks for your message. This is an automated reply: you are number {{position}} in our {{team}} team's line, "
    "and we expect to answer {{expected_wait}}. Ref {{reference}}";
constexpr char kDefaultAcknowledgementFallback[] =
    "Thanks for your message. This is an automated reply: it is with our {{team}} team, who will answer you as "
    "soon as they can. Ref {{reference}}";
constexpr char kDefaultAcknowledgementClosed[] =
    "Thanks for your message. This is an automated reply: our {{team}} team is away and back at {{opens_at}}. "
    "Your message is in their queue. Ref {{reference}}";

void LoadAcknowledge(Loader& l, const YAML::Node& node, const std::string& path, AcknowledgeOptions* a) {
  if (!l.Map(node, path)) return;
  l.Keys(node, path,
         {"via", "levels", "complaint", "channels", "platforms", "once_per", "max_delay", "text", "closed_text",
          "fallback", "hours", "tickets_per_hour"});
  l.StringList(node, "via", path, &a->via);
  if (a->via.empty()) l.Error(node, Child(path, "via"), "names at least one reply destination");
  LoadLevels(l, node, path, &a->levels);
  l.Bool(node, "complaint", path, &a->complaint);
  if (node["channels"].IsDefined()) {
    a->channels.clear();
    l.StringList(node, "channels", path, &a->channels);
  }
  for (const std::string& channel : a->channels) {
    if (channel != "public" && channel != "private") {
      l.Error(node["channels"], Child(path, "channels"), absl::StrCat("unknown channel '", channel, "' (public, private)"));
    }
  }
  l.StringList(node, "platforms", path, &a->platforms);
  l.Duration(node, "once_per", path, &a->once_per, absl::ZeroDuration(), absl::Hours(24 * 30));
  l.Duration(node, "max_delay", path, &a->max_delay, absl::Minutes(1), absl::Hours(24 * 7));
  l.Double(node, "tickets_per_hour", path, &a->tickets_per_hour, 0, 1e6);
  if (const auto hours = l.Get(node, "hours", path, false)) LoadTimeWindow(l, *hours, Child(path, "hours"), &a->hours);
  a->text = kDefaultAcknowledgement;
  a->fallback = kDefaultAcknowledgementFallback;
  a->closed_text = kDefaultAcknowledgementClosed;
  for (const auto& [key, text] : {std::pair<const char*, std::string*>{"text", &a->text},
                                  {"closed_text", &a->closed_text},
                                  {"fallback", &a->fallback}}) {
    l.String(node, key, path, text);
    absl::StatusOr<router::Template> parsed = router::Template::Parse(*text, kAcknowledgeFields);
    const YAML::Node at = node[key].IsDefined() ? node[key] : node;
    if (!parsed.ok()) {
      l.Error(at, Child(path, key), parsed.status().message());
      continue;
    }
    if (parsed->Uses("opens_at") && !a->hours && std::string_view(key) != "closed_text") {
      l.Error(at, Child(path, key), "{{opens_at}} needs hours (when the team is open)");
    }
    if (std::string_view(key) == "fallback" &&
        absl::c_any_of(kAcknowledgeFigures, [&](const std::string& f) { return parsed->Uses(f); })) {
      l.Error(at, Child(path, key), "the fallback is for unknown figures: it cannot name ahead, position or expected_wait");
    }
  }
}

void LoadTeams(Loader& l, const YAML::Node& node, std::vector<TeamOptions>* teams) {
  if (!l.Map(node, "teams")) return;
  for (const auto& item : node) {
    TeamOptions team;
    team.name = item.first.Scalar();
    const std::string path = Child("teams", team.name);
    if (!l.Map(item.second, path)) continue;
    l.Keys(item.second, path, {"destinations", "acknowledge"});
    l.StringList(item.second, "destinations", path, &team.destinations);
    if (team.destinations.empty()) {
      l.Error(item.second, Child(path, "destinations"), "a team needs at least one destination");
    }
    if (const auto ack = l.Get(item.second, "acknowledge", path, false)) {
      LoadAcknowledge(l, *ack, Child(path, "acknowledge"), &team.acknowledge.emplace());
    }
    teams->push_back(std::move(team));
  }
}

// A team's destinations take tickets (no reply-only type), and its acknowledgements go through
// destinations that send replies.
void CheckTeamDestinations(Loader& l, const YAML::Node& root, const Config& config) {
  auto find = [&](const std::string& name) -> const DestinationOptions* {
    const auto found = absl::c_find_if(config.destinations, [&](const DestinationOptions& d) { return d.name == name; });
    return found == config.destinations.end() || found->type == nullptr ? nullptr : &*found;
  };
  for (const TeamOptions& team : config.teams) {
    const std::string path = Child("teams", team.name);
    const YAML::Node node = root["teams"][team.name];
    for (const std::string& name : team.destinations) {
      const DestinationOptions* d = find(name);
      if (d != nullptr && d->type->replies_only()) {
        l.Error(node["destinations"], Child(path, "destinations"),
                absl::StrCat("destination '", name, "' (", std::string(d->type->name()),
                             ") only sends acknowledgements: name it in acknowledge.via"));
      }
    }
    if (!team.acknowledge) continue;
    for (const std::string& name : team.acknowledge->via) {
      const DestinationOptions* d = find(name);
      const YAML::Node at = node["acknowledge"]["via"];
      if (d == nullptr) {
        if (!absl::c_any_of(config.destinations, [&](const DestinationOptions& o) { return o.name == name; })) {
          l.Error(at, Child(path, "acknowledge.via"), absl::StrCat("unknown destination '", name, "'"));
        }
      } else if (!d->type->sends_replies()) {
        l.Error(at, Child(path, "acknowledge.via"),
                absl::StrCat("destination '", name, "' (", std::string(d->type->name()),
                             ") sends no replies (types that do: ",
                             router::DestinationTypeNames([](const router::DestinationType& t) {
                               return t.sends_replies();
                             }),
                             ")"));
      }
    }
  }
}

void LoadLevels(Loader& l, const YAML::Node& node, absl::string_view path,
                std::vector<router::Level>* out) {
  std::vector<std::string> names;
  l.StringList(node, "levels", path, &names);
  for (const std::string& name : names) {
    router::Level level;
    if (router::ParseLevel(name, &level)) {
      out->push_back(level);
    } else {
      l.Error(node["levels"], Child(path, "levels"),
              absl::StrCat("unknown level '", name, "' (known: urgent, high, normal, low)"));
    }
  }
}

// "09:00" -> 540; -1 when malformed.
int ParseClock(const std::string& text) {
  int hours = 0, minutes = 0;
  if (text.size() != 5 || text[2] != ':' || !absl::SimpleAtoi(text.substr(0, 2), &hours) ||
      !absl::SimpleAtoi(text.substr(3, 2), &minutes) || hours > 24 || minutes > 59 ||
      (hours == 24 && minutes != 0)) {
    return -1;
  }
  return hours * 60 + minutes;
}

void LoadTimeWindow(Loader& l, const YAML::Node& node, const std::string& path,
                    std::optional<router::TimeWindow>* out) {
  if (!l.Map(node, path)) return;
  l.Keys(node, path, {"zone", "days", "from", "to"});
  router::TimeWindow window;
  l.String(node, "zone", path, &window.zone_name, true);
  if (!window.zone_name.empty() && !absl::LoadTimeZone(window.zone_name, &window.zone)) {
    l.Error(node["zone"], Child(path, "zone"),
            absl::StrCat("unknown time zone '", window.zone_name, "' (an IANA name such as Europe/Paris)"));
  }
  std::vector<std::string> days;
  l.StringList(node, "days", path, &days);
  static const std::pair<const char*, absl::Weekday> kDays[] = {
      {"mon", absl::Weekday::monday},   {"tue", absl::Weekday::tuesday},
      {"wed", absl::Weekday::wednesday}, {"thu", absl::Weekday::thursday},
      {"fri", absl::Weekday::friday},   {"sat", absl::Weekday::saturday},
      {"sun", absl::Weekday::sunday}};
  for (const std::string& day : days) {
    const auto* found = std::find_if(std::begin(kDays), std::end(kDays),
                                     [&](const auto& d) { return day == d.first; });
    if (found == std::end(kDays)) {
      l.Error(node["days"], Child(path, "days"), absl::StrCat("unknown day '", day, "' (mon..sun)"));
    } else {
      window.days.push_back(found->second);
    }
  }
  for (const char* key : {"from", "to"}) {
    std::string text = key == std::string("from") ? "00:00" : "24:00";
    l.String(node, key, path, &text);
    const int minute = ParseClock(text);
    if (minute < 0) {
      l.Error(node[key], Child(path, key), "must be HH:MM, 00:00 to 24:00");
    } else {
      (key == std::string("from") ? window.from_minute : window.to_minute) = minute;
    }
  }
  *out = std::move(window);
}

void LoadRule(Loader& l, const YAML::Node& rule_node, const std::string& here,
              const std::function<void(const YAML::Node&, absl::string_view, const std::string&)>& check_team,
              router::RuleOptions* rule) {
  l.Keys(rule_node, here,
         {"name", "when", "team", "model_team", "inform", "tags", "level", "raise", "drop", "acknowledge"});
  l.String(rule_node, "name", here, &rule->name, true);
  l.String(rule_node, "team", here, &rule->team);
  check_team(rule_node["team"], Child(here, "team"), rule->team);
  std::optional<bool> model_team;
  l.Bool(rule_node, "model_team", here, &model_team);
  rule->model_team = model_team.value_or(false);
  if (rule->model_team && !rule->team.empty()) {
    l.Error(rule_node["model_team"], Child(here, "model_team"), "give team or model_team, not both");
  }
  l.StringList(rule_node, "inform", here, &rule->inform);
  for (const std::string& team : rule->inform) check_team(rule_node["inform"], Child(here, "inform"), team);
  l.StringList(rule_node, "tags", here, &rule->tags);
  l.Level(rule_node, "level", here, &rule->set_level);
  l.Integer(rule_node, "raise", here, &rule->raise_levels, -3, 3);
  std::optional<bool> drop;
  l.Bool(rule_node, "drop", here, &drop);
  rule->drop = drop.value_or(false);
  l.Bool(rule_node, "acknowledge", here, &rule->acknowledge);
  if (rule->team.empty() && !rule->model_team && rule->inform.empty() && rule->tags.empty() && !rule->set_level &&
      rule->raise_levels == 0 && !rule->drop && !rule->acknowledge) {
    l.Error(rule_node, here,
            "a rule needs an action: team, model_team, inform, tags, level, raise, drop or acknowledge");
  }
  const auto when = l.Get(rule_node, "when", here, false);
  if (!when) return;
  const std::string w = Child(here, "when");
  if (!l.Map(*when, w)) return;
  l.Keys(*when, w,
         {"sources", "platforms", "channels", "kinds", "categories_any", "categories_all", "levels",
          "min_urgency", "max_urgency", "min_reach", "max_reach", "min_priority", "max_priority",
          "min_followers", "max_followers", "verified", "complaint", "languages", "authors",
          "text_regex", "time", "min_model_confidence"});
  double confidence = -1;
  l.Double(*when, "min_model_confidence", w, &confidence, 0, 1);
  if (confidence >= 0) rule->min_model_confidence = confidence;
  l.StringList(*when, "sources", w, &rule->sources);
  l.StringList(*when, "platforms", w, &rule->platforms);
  l.StringList(*when, "channels", w, &rule->channels);
  for (const std::string& channel : rule->channels) {
    if (channel != "public" && channel != "private") {
      l.Error((*when)["channels"], Child(w, "channels"), "channels are public or private");
    }
  }
  l.StringList(*when, "kinds", w, &rule->kinds);
  l.StringList(*when, "categories_any", w, &rule->categories_any);
  l.StringList(*when, "categories_all", w, &rule->categories_all);
  LoadLevels(l, *when, w, &rule->levels);
  auto bound = [&](const char* key, std::optional<int>* out) {
    int value = -1;
    l.Integer(*when, key, w, &value, 0, 100);
    if (value >= 0) *out = value;
  };
  bound("min_urgency", &rule->min_urgency);
  bound("max_urgency", &rule->max_urgency);
  bound("min_reach", &rule->min_reach);
  bound("max_reach", &rule->max_reach);
  bound("min_priority", &rule->min_priority);
  bound("max_priority", &rule->max_priority);
  for (const char* key : {"min_followers", "max_followers"}) {
    int64_t value = -1;
    l.Integer(*when, key, w, &value, 0, int64_t{1} << 40);
    if (value >= 0) (key == std::string("min_followers") ? rule->min_followers : rule->max_followers) = value;
  }
  l.Bool(*when, "verified", w, &rule->verified);
  l.Bool(*when, "complaint", w, &rule->complaint);
  l.StringList(*when, "languages", w, &rule->languages);
  l.StringList(*when, "authors", w, &rule->authors);
  l.String(*when, "text_regex", w, &rule->text_regex);
  if (!rule->text_regex.empty() && l.options.compile_patterns) {
    if (auto compiled = router::Matcher::BuildRegexes({rule->text_regex}); !compiled.ok()) {
      l.Error((*when)["text_regex"], Child(w, "text_regex"), compiled.status().message());
    }
  }
  if (const auto time = l.Get(*when, "time", w, false)) LoadTimeWindow(l, *time, Child(w, "time"), &rule->time);
}

void LoadRouting(Loader& l, const YAML::Node& node, const std::vector<TeamOptions>& teams,
                 const router::ScorerOptions& scoring, Config* config) {
  router::RouterOptions* r = &config->routing;
  const std::string path = "routing";
  if (!l.Map(node, path)) return;
  l.Keys(node, path, {"default_team", "rules", "conversation_window", "model"});
  router::RoutingModel model;
  model.model = l.Model(node, "model", path, router::ModelLabel::kTeam, {}, &model.name);
  if (model.model != nullptr) r->model = std::move(model);
  l.Duration(node, "conversation_window", path, &config->conversation_window, absl::ZeroDuration(),
             absl::Hours(24 * 30));
  absl::flat_hash_set<std::string> known;
  for (const TeamOptions& team : teams) {
    known.insert(team.name);
    r->teams.push_back(team.name);
  }
  auto check_team = [&](const YAML::Node& at, absl::string_view where, const std::string& team) {
    if (!team.empty() && !known.contains(team)) {
      l.Error(at, where, absl::StrCat("unknown team '", team, "' (define it under teams)"));
    }
  };
  l.String(node, "default_team", path, &r->default_team, true);
  check_team(node["default_team"], Child(path, "default_team"), r->default_team);
  if (r->model) {
    for (const std::string& team : r->model->model->info().classes) {
      if (!known.contains(team)) {
        l.Error(node["model"], Child(path, "model"),
                absl::StrCat("the model proposes team '", team, "', which is not under teams"));
      }
    }
  }

  const auto rules = l.Get(node, "rules", path, false);
  if (!rules) return;
  if (!rules->IsSequence()) {
    l.Error(*rules, Child(path, "rules"), "must be a list of rules");
    return;
  }
  absl::flat_hash_set<std::string> names;
  absl::flat_hash_set<std::string> categories;
  for (const router::CategoryOptions& c : scoring.categories) categories.insert(c.name);
  int index = 0;
  for (const YAML::Node& rule_node : *rules) {
    const std::string here = absl::StrCat(path, ".rules[", index++, "]");
    if (!l.Map(rule_node, here)) continue;
    router::RuleOptions rule;
    LoadRule(l, rule_node, here, check_team, &rule);
    if (!rule.name.empty() && !names.insert(rule.name).second) {
      l.Error(rule_node["name"], Child(here, "name"), absl::StrCat("rule name '", rule.name, "' is used twice"));
    }
    for (const auto* list : {&rule.categories_any, &rule.categories_all}) {
      for (const std::string& c : *list) {
        if (!categories.contains(c)) {
          l.Error(rule_node["when"], Child(here, "when"), absl::StrCat("unknown category '", c, "'"));
        }
      }
    }
    if ((rule.model_team || rule.min_model_confidence) && !r->model && !node["model"].IsDefined()) {
      l.Error(rule_node, here, "uses the team model, but routing.model is not set");
    }
    if (rule.acknowledge.value_or(false) &&
        std::none_of(teams.begin(), teams.end(), [](const TeamOptions& t) { return t.acknowledge.has_value(); })) {
      l.Error(rule_node["acknowledge"], Child(here, "acknowledge"),
              "no team has an acknowledge block (its reply destinations and texts)");
    }
    r->rules.push_back(std::move(rule));
  }
}

absl::StatusOr<Config> Load(const YAML::Node& root, Loader& l, const router::ScorerOptions* lexicon) {
  Config config;
  config.scoring.sentiment = DefaultSentimentLexicon();
  if (lexicon != nullptr) config.scoring.categories = lexicon->categories;
  if (!l.Map(root, "")) return absl::InvalidArgumentError(l.Report());
  l.Keys(root, "",
         {"log_level", "server", "admin", "storage", "sources", "scoring", "teams", "routing",
          "destinations", "feedback"});
  l.String(root, "log_level", "", &config.log_level);
  if (!absl::c_linear_search(std::vector<std::string>{"trace", "debug", "info", "warn", "error"},
                             config.log_level)) {
    l.Error(root["log_level"], "log_level", "must be one of trace, debug, info, warn, error");
  }
  if (auto n = l.Get(root, "server", "", false)) LoadServer(l, *n, &config.server);
  if (auto n = l.Get(root, "admin", "", false); n && l.Map(*n, "admin")) {
    l.Keys(*n, "admin", {"listen", "token", "read_without_token"});
    l.Listen(*n, "listen", "admin", &config.admin.listen);
    l.Secret(*n, "token", "admin", &config.admin.token, false);
    std::optional<bool> open_reads;
    l.Bool(*n, "read_without_token", "admin", &open_reads);
    config.admin.read_without_token = open_reads.value_or(false);
  }
  if (auto n = l.Get(root, "storage", "", false)) LoadStorage(l, *n, &config.storage);
  if (auto n = l.Get(root, "sources", "", true)) LoadSources(l, *n, config.server.payload, &config.sources);
  if (auto n = l.Get(root, "scoring", "", false)) {
    LoadScoring(l, *n, &config.scoring);
  } else if (auto s = config.scoring.Validate(); !s.ok()) {
    l.Error(root, "scoring", s.message());
  }
  if (auto n = l.Get(root, "destinations", "", true)) LoadDestinations(l, *n, &config.destinations);
  if (auto n = l.Get(root, "feedback", "", false)) LoadFeedback(l, *n, config.destinations, &config.feedback);
  if (auto n = l.Get(root, "teams", "", true)) {
    LoadTeams(l, *n, &config.teams);
    absl::flat_hash_set<std::string> destinations;
    for (const DestinationOptions& d : config.destinations) destinations.insert(d.name);
    for (const auto& item : *n) {
      const YAML::Node list = item.second["destinations"];
      if (!list.IsSequence()) continue;
      for (const YAML::Node& d : list) {
        if (d.IsScalar() && !destinations.contains(d.Scalar())) {
          l.Error(d, absl::StrCat("teams.", item.first.Scalar(), ".destinations"),
                  absl::StrCat("unknown destination '", d.Scalar(), "' (define it under destinations)"));
        }
      }
    }
  }
  for (DestinationOptions& d : config.destinations) {
    for (const TeamOptions& team : config.teams) {
      if (absl::c_linear_search(team.destinations, d.name)) d.teams.push_back(team.name);
    }
  }
  if (config.storage.backend == "jetstream") {
    for (const DestinationOptions& d : config.destinations) {
      if (!JetStreamToken(d.name)) {
        l.Error(root["destinations"][d.name], Child("destinations", d.name),
                "with storage.backend jetstream, a destination name must be 1 to 64 of [A-Za-z0-9_-] (it names a stream)");
      }
    }
  }
  ResolveTicketLinks(l, root, &config);
  CheckTeamDestinations(l, root, config);
  for (const DestinationOptions& d : config.destinations) {
    for (const auto& watched : d.watchers) {
      const std::string& team = watched.first;
      if (!absl::c_any_of(config.teams, [&team](const TeamOptions& t) { return t.name == team; })) {
        l.Error(root["destinations"][d.name]["watchers"][team], absl::StrCat(Child("destinations", d.name), ".watchers"),
                absl::StrCat("unknown team '", team, "' (define it under teams)"));
      }
    }
  }
  if (auto n = l.Get(root, "routing", "", true)) LoadRouting(l, *n, config.teams, config.scoring, &config);
  if (config.sources.empty() && root["sources"].IsDefined() && root["sources"].IsMap()) l.Error(root["sources"], "sources", "needs at least one source");
  if (!l.ok()) return absl::InvalidArgumentError(l.Report());
  return config;
}

// The default lexicon: the categories of the embedded config, used when a config has none.
const router::ScorerOptions& DefaultLexicon() {
  static const router::ScorerOptions* lexicon = [] {
    auto* options = new router::ScorerOptions();
    Loader l("<embedded>", LoadOptions{.compile_patterns = false});  // compiled where it is used
    const YAML::Node root = YAML::Load(std::string(DefaultConfigYaml()));
    LoadScoring(l, root["scoring"], options);
    return options;
  }();
  return *lexicon;
}

}  // namespace

std::shared_ptr<const router::SentimentLexicon> DefaultSentimentLexicon() {
  static const auto* lexicon = new std::shared_ptr<const router::SentimentLexicon>([] {
    auto parsed = router::SentimentLexicon::Parse(SentimentLexiconText());
    // The embedded file is checked by a unit test; a build that breaks it fails there.
    return parsed.ok() ? *parsed : nullptr;
  }());
  return *lexicon;
}

bool ParseDurationText(absl::string_view text, absl::Duration* out) {
  text = absl::StripAsciiWhitespace(text);
  int64_t days = 0;
  if (absl::ConsumeSuffix(&text, "d")) {
    if (!absl::SimpleAtoi(text, &days) || days < 0) return false;
    *out = absl::Hours(24 * days);
    return true;
  }
  if (text.empty() || text == "0" || !absl::ParseDuration(text, out)) return false;
  return *out >= absl::ZeroDuration();
}

absl::StatusOr<Config> LoadConfigString(absl::string_view yaml, absl::string_view file_name,
                                        LoadOptions options) {
  Loader l{std::string(file_name), options};
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
    return Load(root, l, &DefaultLexicon());
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(file_name, ":", e.mark.line + 1, ":",
                                                   e.mark.column + 1, ": (yaml): ", e.msg));
  }
}

absl::StatusOr<std::shared_ptr<const router::TextModel>> LoadModelFile(const std::string& path,
                                                                       router::ModelLabel label) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open the model file"));
  std::stringstream buffer;
  buffer << in.rdbuf();
  auto model = router::TextModel::Parse(buffer.str());
  if (!model.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": ", model.status().message()));
  if ((*model)->info().label != label) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": a model trained for --label ",
                                                   router::ModelLabelName((*model)->info().label),
                                                   ", not for ", router::ModelLabelName(label)));
  }
  return model;
}

absl::StatusOr<Config> LoadConfigFile(const std::string& path, LoadOptions options) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open the config file"));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return LoadConfigString(buffer.str(), path, options);
}

}  // namespace triage::config

namespace triage::config {

bool DestinationOptions::Accepts(router::Level level, int reach) const {
  if (!min_level && !min_reach) return true;
  // Levels count down from urgent (0): "at or above" is a smaller value.
  if (min_level && static_cast<int>(level) <= static_cast<int>(*min_level)) return true;
  return min_reach && reach >= *min_reach;
}

}  // namespace triage::config
