// MemoryStore: the store of a single process (the memory channel layer).

#include <deque>
#include <map>
#include <mutex>

#include "store.hpp"

namespace chat {
namespace {

using Clock = std::chrono::steady_clock;

class MemoryStore final : public Store {
 public:
  void append(const std::string& room, const Json& entry, std::size_t keep, Reply done) override {
    Json stored = entry;
    {
      std::lock_guard lock(mutex_);
      Room& r = rooms_[room];
      stored["id"] = ++r.seq;
      r.history.push_back(stored);
      while (r.history.size() > keep) r.history.pop_front();
    }
    if (done) done({}, std::move(stored));
  }

  void touch(const std::vector<Member>& members, std::chrono::milliseconds ttl, Reply done) override {
    {
      std::lock_guard lock(mutex_);
      for (const Member& m : members) rooms_[m.room].online[m.id] = {m, Clock::now() + ttl};
    }
    if (done) done({}, nullptr);
  }

  void leave(const Member& member, Reply done) override {
    bool removed = false;
    {
      std::lock_guard lock(mutex_);
      if (auto r = rooms_.find(member.room); r != rooms_.end()) {
        auto& online = r->second.online;
        if (auto it = online.find(member.id); it != online.end() && it->second.member.conn == member.conn) {
          online.erase(it);
          removed = true;
        }
      }
    }
    if (done) done({}, removed);
  }

  void room(const std::string& room, std::size_t history, Reply done) override {
    Json out{{"online", Json::array()}, {"history", Json::array()}};
    {
      std::lock_guard lock(mutex_);
      if (auto r = rooms_.find(room); r != rooms_.end()) {
        auto now = Clock::now();
        for (const auto& [id, e] : r->second.online)
          if (e.until > now) out["online"].push_back({{"id", id}, {"name", e.member.name}});
        const auto& h = r->second.history;
        for (std::size_t i = h.size() > history ? h.size() - history : 0; i < h.size(); ++i)
          out["history"].push_back(h[i]);
      }
    }
    if (done) done({}, std::move(out));
  }

  void reap(Reply done) override {
    Json gone = Json::array();
    {
      std::lock_guard lock(mutex_);
      auto now = Clock::now();
      for (auto& [name, r] : rooms_)
        for (auto it = r.online.begin(); it != r.online.end();) {
          if (it->second.until <= now) {
            gone.push_back({{"room", name}, {"id", it->first}, {"name", it->second.member.name}});
            it = r.online.erase(it);
          } else {
            ++it;
          }
        }
    }
    if (done) done({}, std::move(gone));
  }

  void rooms(Reply done) override {
    Json out = Json::array();
    {
      std::lock_guard lock(mutex_);
      auto now = Clock::now();
      for (const auto& [name, r] : rooms_) {
        std::size_t n = 0;
        for (const auto& [id, e] : r.online) n += e.until > now;
        if (n) out.push_back({{"room", name}, {"online", n}});
      }
    }
    if (done) done({}, std::move(out));
  }

 private:
  struct Online {
    Member member;
    Clock::time_point until;
  };
  struct Room {
    std::int64_t seq = 0;
    std::deque<Json> history;
    std::map<std::string, Online> online;
  };
  std::mutex mutex_;
  std::map<std::string, Room> rooms_;
};

}  // namespace

std::shared_ptr<Store> make_memory_store() { return std::make_shared<MemoryStore>(); }

}  // namespace chat
