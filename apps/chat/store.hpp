#pragma once
// Store: what a chat room remembers beyond one connection. The last messages
// (history) and who is online (presence), shared by every process that uses
// the same store: MemoryStore for one process, RedisStore for several.
//
// Every call returns at once and replies later through `done`, possibly on
// another thread and possibly before the call returns (the memory store
// replies at once). The Redis store does its blocking I/O on a thread of its
// own, so a consumer's strand never waits for Redis.
//
// Presence entries expire: a member is online until `ttl` after its last
// touch(). A process that dies stops touching its members, and reap() (run by
// every live process) removes them and reports them once, so the others can
// say they left.

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include <channels/message.hpp>

namespace chat {

using channels::Json;

/// One member online in one room. `conn` is the connection that holds the
/// entry now: a leave from an older connection of the same member (who has
/// reconnected elsewhere) does not remove it.
struct Member {
  std::string room;
  std::string id;    // chosen by the client, kept across reconnects
  std::string name;  // display name
  std::string conn;  // the holding connection's channel name
};

class Store {
 public:
  /// `ec` set: the store could not be reached; `result` is null then.
  using Reply = std::function<void(std::error_code ec, Json result)>;

  virtual ~Store() = default;

  /// Adds a message (a JSON object) to the room's history, keeping the last
  /// `keep`. Replies with the entry as stored: the same object with "id", a
  /// number that grows with every message of the room.
  virtual void append(const std::string& room, const Json& entry, std::size_t keep, Reply done) = 0;
  /// Marks members online until now + ttl (a join or a heartbeat).
  virtual void touch(const std::vector<Member>& members, std::chrono::milliseconds ttl, Reply done) = 0;
  /// Removes the member if `member.conn` still holds it. Replies true if it did.
  virtual void leave(const Member& member, Reply done) = 0;
  /// The room as a newcomer sees it: {"online": [{"id", "name"}...],
  /// "history": [the last `history` entries, oldest first]}.
  virtual void room(const std::string& room, std::size_t history, Reply done) = 0;
  /// Removes the members whose time ran out and replies with them, each once
  /// across all processes: [{"room", "id", "name"}...].
  virtual void reap(Reply done) = 0;
  /// Rooms with someone online: [{"room", "online": count}...], by name.
  virtual void rooms(Reply done) = 0;
};

/// One process: maps under a mutex; replies before the call returns.
std::shared_ptr<Store> make_memory_store();

/// Redis at `url` (redis://host[:port][/db]), keys under `prefix`:
/// <prefix>:history:<room> (list), <prefix>:seq:<room> (counter),
/// <prefix>:online:<room> (sorted set: member id -> expiry in ms),
/// <prefix>:members:<room> (hash: member id -> {"name","conn"}),
/// <prefix>:rooms (set). Connects on first use and again after a failure.
std::shared_ptr<Store> make_redis_store(const std::string& url, const std::string& prefix = "chat");

}  // namespace chat
