#pragma once

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>

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

inline std::chrono::steady_clock::duration ToChrono(absl::Duration d) {
  return absl::ToChronoNanoseconds(d);
}

inline absl::string_view ToAbsl(boost::core::string_view s) { return {s.data(), s.size()}; }

}  // namespace triage::daemon
