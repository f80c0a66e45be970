#include <channels/message.hpp>

namespace channels {

std::string handler_name(std::string_view type) {
  if (type.empty() || type.front() == '_') return {};
  std::string name(type);
  for (char& c : name)
    if (c == '.') c = '_';
  return name;
}

std::string_view message_type(const Message& m) {
  if (!m.is_object()) return {};
  auto it = m.find("type");
  if (it == m.end() || !it->is_string()) return {};
  return it->get_ref<const std::string&>();
}

}  // namespace channels
