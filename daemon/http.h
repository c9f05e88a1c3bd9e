#pragma once

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace triage::daemon {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

// A JSON error answer: {"error": "<message>"}, with the given status.
Response JsonError(http::status status, absl::string_view message);
// A JSON answer with an already-serialised body.
Response JsonResponse(http::status status, std::string body);

// Decodes %XX escapes, and '+' as a space when `plus_is_space` (query strings, not paths);
// nullopt when an escape is malformed.
std::optional<std::string> PercentDecode(absl::string_view in, bool plus_is_space);
// The decoded value of query parameter `name` in a request target; nullopt when it is absent
// or malformed.
std::optional<std::string> QueryParam(absl::string_view target, absl::string_view name);

inline std::chrono::steady_clock::duration ToChrono(absl::Duration d) {
  return absl::ToChronoNanoseconds(d);
}

inline absl::string_view ToAbsl(boost::core::string_view s) { return {s.data(), s.size()}; }

}  // namespace triage::daemon
