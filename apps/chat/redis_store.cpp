// RedisStore: the store shared by every chat process on one Redis.
//
// hiredis' blocking API on a thread of its own: calls queue a job and return,
// the thread runs jobs in order (so one connection's messages keep their
// order) and replies from there. Each step that must not be split (a message
// and its id, a leave and its owner check, a reap) is one Lua script, so two
// processes never interleave inside it.

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <thread>

#include <hiredis/hiredis.h>

#include <channels/errors.hpp>
#include <channels/log.hpp>

#include "store.hpp"

namespace chat {
namespace {

// KEYS: seq, history. ARGV: entry JSON (an object), how many to keep.
// Puts "id" first in the object, so the entry and its id are one write.
constexpr const char* append_script = R"(
local id = redis.call('INCR', KEYS[1])
local entry = '{"id":' .. id .. ',' .. string.sub(ARGV[1], 2)
redis.call('RPUSH', KEYS[2], entry)
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[2]), -1)
return entry)";

// KEYS: online, members. ARGV: member id, connection.
constexpr const char* leave_script = R"(
local v = redis.call('HGET', KEYS[2], ARGV[1])
if v and cjson.decode(v).conn == ARGV[2] then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
  return 1
end
return 0)";

// KEYS: online, members, rooms. ARGV: now (ms), room.
// Returns id, name, id, name... of the members whose time ran out.
constexpr const char* reap_script = R"(
local out = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])) do
  local v = redis.call('HGET', KEYS[2], id)
  redis.call('ZREM', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
  table.insert(out, id)
  table.insert(out, v and cjson.decode(v).name or '')
end
if redis.call('ZCARD', KEYS[1]) == 0 then redis.call('SREM', KEYS[3], ARGV[2]) end
return out)";

struct Endpoint {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string password;
  int db = 0;
};

// redis://[[user]:password@]host[:port][/db]; the user is not used here.
Endpoint parse(const std::string& url) {
  const std::string scheme = "redis://";
  if (url.rfind(scheme, 0) != 0)
    throw channels::ConfigError("chat store: '" + url + "' is not a redis://host:port URL");
  std::string rest = url.substr(scheme.size());
  Endpoint e;
  if (auto at = rest.rfind('@'); at != std::string::npos) {
    std::string auth = rest.substr(0, at);
    e.password = auth.substr(auth.find(':') == std::string::npos ? 0 : auth.find(':') + 1);
    rest = rest.substr(at + 1);
  }
  if (auto slash = rest.find('/'); slash != std::string::npos) {
    std::string db = rest.substr(slash + 1);
    if (!db.empty()) e.db = std::stoi(db);
    rest = rest.substr(0, slash);
  }
  if (auto colon = rest.rfind(':'); colon != std::string::npos) {
    e.port = std::stoi(rest.substr(colon + 1));
    rest = rest.substr(0, colon);
  }
  if (!rest.empty()) e.host = rest;
  return e;
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

using ReplyPtr = std::unique_ptr<redisReply, decltype(&freeReplyObject)>;

class RedisStore final : public Store {
 public:
  RedisStore(Endpoint endpoint, std::string prefix)
      : endpoint_(std::move(endpoint)), prefix_(std::move(prefix)), thread_([this] { run(); }) {}

  ~RedisStore() override {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_one();
    thread_.join();
    if (ctx_) redisFree(ctx_);
  }

  void append(const std::string& room, const Json& entry, std::size_t keep, Reply done) override {
    submit(std::move(done), [this, room, body = entry.dump(), keep] {
      auto r = eval(append_script, {key("seq", room), key("history", room)}, {body, std::to_string(keep)});
      return Json::parse(std::string(r->str, r->len));
    });
  }

  void touch(const std::vector<Member>& members, std::chrono::milliseconds ttl, Reply done) override {
    submit(std::move(done), [this, members, ttl] {
      std::string until = std::to_string(now_ms() + ttl.count());
      for (const Member& m : members) {
        std::string value = Json{{"name", m.name}, {"conn", m.conn}}.dump();
        append_command({"ZADD", key("online", m.room), until, m.id});
        append_command({"HSET", key("members", m.room), m.id, value});
        append_command({"SADD", prefix_ + ":rooms", m.room});
      }
      for (std::size_t i = 0; i < members.size() * 3; ++i) get_reply();
      return Json(nullptr);
    });
  }

  void leave(const Member& m, Reply done) override {
    submit(std::move(done), [this, m] {
      auto r = eval(leave_script, {key("online", m.room), key("members", m.room)}, {m.id, m.conn});
      return Json(r->integer == 1);
    });
  }

  void room(const std::string& room, std::size_t history, Reply done) override {
    submit(std::move(done), [this, room, history] {
      Json out{{"online", Json::array()}, {"history", Json::array()}};
      auto ids = command({"ZRANGEBYSCORE", key("online", room), std::to_string(now_ms()), "+inf"});
      for (std::size_t i = 0; i < ids->elements; ++i) {
        std::string id(ids->element[i]->str, ids->element[i]->len);
        auto v = command({"HGET", key("members", room), id});
        if (v->type == REDIS_REPLY_STRING)
          out["online"].push_back({{"id", id}, {"name", Json::parse(std::string(v->str, v->len)).value("name", "")}});
      }
      if (history > 0) {
        auto h = command({"LRANGE", key("history", room), "-" + std::to_string(history), "-1"});
        for (std::size_t i = 0; i < h->elements; ++i)
          out["history"].push_back(Json::parse(std::string(h->element[i]->str, h->element[i]->len)));
      }
      return out;
    });
  }

  void reap(Reply done) override {
    submit(std::move(done), [this] {
      Json gone = Json::array();
      auto rooms = command({"SMEMBERS", prefix_ + ":rooms"});
      std::string now = std::to_string(now_ms());
      for (std::size_t i = 0; i < rooms->elements; ++i) {
        std::string room(rooms->element[i]->str, rooms->element[i]->len);
        auto r = eval(reap_script, {key("online", room), key("members", room), prefix_ + ":rooms"}, {now, room});
        for (std::size_t j = 0; j + 1 < r->elements; j += 2)
          gone.push_back({{"room", room},
                          {"id", std::string(r->element[j]->str, r->element[j]->len)},
                          {"name", std::string(r->element[j + 1]->str, r->element[j + 1]->len)}});
      }
      return gone;
    });
  }

  void rooms(Reply done) override {
    submit(std::move(done), [this] {
      Json out = Json::array();
      auto rooms = command({"SMEMBERS", prefix_ + ":rooms"});
      std::vector<std::string> names;
      for (std::size_t i = 0; i < rooms->elements; ++i) names.emplace_back(rooms->element[i]->str, rooms->element[i]->len);
      std::sort(names.begin(), names.end());
      std::string now = std::to_string(now_ms());
      for (const auto& room : names) {
        auto n = command({"ZCOUNT", key("online", room), "(" + now, "+inf"});
        if (n->integer > 0) out.push_back({{"room", room}, {"online", n->integer}});
      }
      return out;
    });
  }

 private:
  using Job = std::function<void()>;

  std::string key(std::string_view kind, const std::string& room) const {
    return prefix_ + ":" + std::string(kind) + ":" + room;
  }

  // Runs `work` on the store's thread; a Redis failure becomes an error reply.
  void submit(Reply done, std::function<Json()> work) {
    {
      std::lock_guard lock(mutex_);
      jobs_.push_back([this, done = std::move(done), work = std::move(work)] {
        Json result;
        try {
          connect();
          result = work();
        } catch (const std::exception& e) {
          channels::log().warn("chat store: Redis {}:{}: {}", endpoint_.host, endpoint_.port, e.what());
          if (ctx_) redisFree(ctx_);
          ctx_ = nullptr;
          if (done) done(std::make_error_code(std::errc::host_unreachable), nullptr);
          return;
        }
        if (done) done({}, std::move(result));
      });
    }
    wake_.notify_one();
  }

  void run() {
    for (;;) {
      Job job;
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
        if (jobs_.empty()) return;  // stopping, and everything asked for is done
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job();
    }
  }

  void connect() {
    if (ctx_) return;
    timeval limit{1, 0};
    ctx_ = redisConnectWithTimeout(endpoint_.host.c_str(), endpoint_.port, limit);
    if (!ctx_ || ctx_->err) {
      std::string why = ctx_ ? ctx_->errstr : "out of memory";
      if (ctx_) redisFree(ctx_);
      ctx_ = nullptr;
      throw std::runtime_error("cannot connect (" + why + "); is redis-server running there?");
    }
    timeval op{2, 0};
    redisSetTimeout(ctx_, op);
    if (!endpoint_.password.empty()) command({"AUTH", endpoint_.password});
    if (endpoint_.db != 0) command({"SELECT", std::to_string(endpoint_.db)});
  }

  ReplyPtr checked(void* raw) {
    if (!raw) throw std::runtime_error(std::string("connection lost: ") + (ctx_ ? ctx_->errstr : ""));
    ReplyPtr r(static_cast<redisReply*>(raw), &freeReplyObject);
    if (r->type == REDIS_REPLY_ERROR) throw std::runtime_error("error reply: " + std::string(r->str, r->len));
    return r;
  }

  ReplyPtr command(const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    return checked(redisCommandArgv(ctx_, static_cast<int>(args.size()), argv.data(), lens.data()));
  }

  void append_command(const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    if (redisAppendCommandArgv(ctx_, static_cast<int>(args.size()), argv.data(), lens.data()) != REDIS_OK)
      throw std::runtime_error("cannot queue a command");
  }

  ReplyPtr get_reply() {
    void* raw = nullptr;
    if (redisGetReply(ctx_, &raw) != REDIS_OK) raw = nullptr;
    return checked(raw);
  }

  ReplyPtr eval(const char* script, const std::vector<std::string>& keys, const std::vector<std::string>& args) {
    std::vector<std::string> cmd{"EVAL", script, std::to_string(keys.size())};
    cmd.insert(cmd.end(), keys.begin(), keys.end());
    cmd.insert(cmd.end(), args.begin(), args.end());
    return command(cmd);
  }

  const Endpoint endpoint_;
  const std::string prefix_;
  redisContext* ctx_ = nullptr;  // only on thread_
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> jobs_;
  bool stopping_ = false;
  std::thread thread_;  // last: starts once everything above is ready
};

}  // namespace

std::shared_ptr<Store> make_redis_store(const std::string& url, const std::string& prefix) {
  return std::make_shared<RedisStore>(parse(url), prefix);
}

}  // namespace chat
