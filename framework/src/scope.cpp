#include <channels/scope.hpp>

#include <algorithm>
#include <cctype>

#include "utf8.hpp"

namespace channels {

namespace {
bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

std::optional<std::string_view> Scope::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (iequals(k, name)) return std::string_view(v);
  return std::nullopt;
}

std::string Scope::kwarg(std::string_view name) const {
  auto it = url_route.kwargs.find(std::string(name));
  if (it == url_route.kwargs.end()) return {};
  if (it->is_string()) return it->get<std::string>();
  return it->dump();
}

std::optional<std::string> Scope::query(std::string_view name) const {
  std::string_view rest = query_string;
  while (!rest.empty()) {
    auto amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
    auto eq = pair.find('=');
    std::string key = percent_decode(pair.substr(0, eq), true);
    if (key == name)
      return eq == std::string_view::npos ? std::string{} : percent_decode(pair.substr(eq + 1), true);
  }
  return std::nullopt;
}

namespace {

using detail::utf8_sequence;

// Invalid bytes become U+FFFD, as Python's unquote() (and so Django
// Channels) decodes them: a scope's strings are always valid UTF-8, so
// putting them in JSON cannot throw.
std::string valid_utf8(std::string s) {
  std::string_view v(s);
  std::size_t i = 0;
  for (std::size_t n; i < v.size() && (n = utf8_sequence(v.substr(i))) != 0;) i += n;
  if (i == v.size()) return s;  // the usual case: nothing to replace
  std::string out(v.substr(0, i));
  while (i < v.size()) {
    if (std::size_t n = utf8_sequence(v.substr(i))) {
      out.append(v.substr(i, n));
      i += n;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

}  // namespace

std::string percent_decode(std::string_view in, bool plus_is_space) {
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%' && i + 2 < in.size()) {
      int hi = hex_value(in[i + 1]), lo = hex_value(in[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(plus_is_space && c == '+' ? ' ' : c);
  }
  return valid_utf8(std::move(out));
}

}  // namespace channels
