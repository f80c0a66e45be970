#include <channels/registry.hpp>

#include <stdexcept>

namespace channels {

Registry::Registry() { add<StaticFiles>("channels.StaticFiles"); }

Registry& Registry::add(std::string name, ConsumerKind kind, ConsumerFactory make) {
  if (name.empty()) throw std::invalid_argument("a consumer needs a non-empty name to be registered");
  entries_[std::move(name)] = Entry{kind, std::move(make)};
  return *this;
}

const Registry::Entry* Registry::find(std::string_view name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : &it->second;
}

std::vector<std::string> Registry::names() const {
  std::vector<std::string> out;
  for (const auto& [name, _] : entries_) out.push_back(name);
  return out;
}

}  // namespace channels
