#include <channels/layers/in_memory.hpp>

#include <algorithm>
#include <random>

#include <channels/errors.hpp>
#include <channels/log.hpp>

namespace channels {

namespace {

// Channels' in-memory layer names channels "<prefix>.inmemory!<random>";
// 12 random letters make collisions practically impossible.
std::string random_suffix() {
  static constexpr char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_int_distribution<int> pick(0, sizeof(alphabet) - 2);
  std::string s(12, 'x');
  for (char& c : s) c = alphabet[pick(rng)];
  return s;
}

// An O(everything) sweep for expired messages and memberships, at most this
// often: Channels does it on every call, which costs O(channels) per message.
constexpr auto sweep_interval = std::chrono::seconds(1);

}  // namespace

InMemoryChannelLayer::InMemoryChannelLayer(LayerOptions options, Clock clock)
    : options_(options), clock_(std::move(clock)) {
  if (options_.capacity == 0) throw ConfigError("channel_layer.capacity must be at least 1");
}

Inbox::Clock::time_point InMemoryChannelLayer::now() const {
  return clock_ ? clock_() : Inbox::Clock::now();
}

std::string InMemoryChannelLayer::new_channel(std::string_view prefix) {
  std::string name = std::string(prefix) + ".inmemory!" + random_suffix();
  require_channel_name(name);
  return name;
}

std::shared_ptr<Inbox> InMemoryChannelLayer::channel_locked(const std::string& name) {
  auto& ch = channels_[name];
  if (!ch.inbox) {
    ch.inbox = std::make_shared<Inbox>(options_.capacity, options_.consumer_buffer);
    unattached_.insert(name);
  }
  return ch.inbox;
}

void InMemoryChannelLayer::send(std::string_view channel, Message msg, Completion done) {
  require_channel_name(channel);
  auto shared = std::make_shared<const Message>(std::move(msg));
  bool ok;
  {
    std::lock_guard lock(mutex_);
    auto t = now();
    sweep_locked(t);
    ok = channel_locked(std::string(channel))->push(std::move(shared), t);
    ++stats_.messages_sent;
    if (!ok) note_drop_locked(channel, 1);
  }
  if (done) done(ok ? std::error_code{} : make_error_code(LayerError::channel_full));
}

void InMemoryChannelLayer::group_add(std::string_view group, std::string_view channel,
                                     Completion done) {
  require_group_name(group);
  require_channel_name(channel);
  {
    std::lock_guard lock(mutex_);
    std::string ch(channel);
    auto inbox = channel_locked(ch);
    channels_[ch].groups.emplace(group);
    groups_[std::string(group)][ch] = Member{std::move(inbox), now()};
  }
  if (done) done({});
}

void InMemoryChannelLayer::group_discard(std::string_view group, std::string_view channel,
                                         Completion done) {
  require_group_name(group);
  require_channel_name(channel);
  {
    std::lock_guard lock(mutex_);
    auto it = groups_.find(std::string(group));
    if (it != groups_.end()) {
      it->second.erase(std::string(channel));
      if (it->second.empty()) groups_.erase(it);
    }
    if (auto ch = channels_.find(std::string(channel)); ch != channels_.end()) ch->second.groups.erase(std::string(group));
  }
  if (done) done({});
}

void InMemoryChannelLayer::group_send(std::string_view group, Message msg, GroupCompletion done) {
  require_group_name(group);
  // One immutable copy for every member: fan-out costs a pointer per member.
  auto shared = std::make_shared<const Message>(std::move(msg));
  GroupSendResult result;
  {
    std::lock_guard lock(mutex_);
    auto t = now();
    sweep_locked(t);
    auto it = groups_.find(std::string(group));
    if (it != groups_.end()) {
      for (auto m = it->second.begin(); m != it->second.end();) {
        if (t - m->second.added >= options_.group_expiry) {
          m = it->second.erase(m);
          continue;
        }
        if (m->second.inbox->push(shared, t))
          ++result.delivered;
        else
          ++result.dropped;
        ++m;
      }
      if (it->second.empty()) groups_.erase(it);
    }
    stats_.messages_sent += result.delivered + result.dropped;
    if (result.dropped) note_drop_locked(group, result.dropped);
  }
  if (done) done(result);
}

std::shared_ptr<Inbox> InMemoryChannelLayer::attach(std::string_view channel) {
  require_channel_name(channel);
  std::lock_guard lock(mutex_);
  auto [it, fresh] = channels_.try_emplace(std::string(channel));
  auto& ch = it->second;
  if (fresh)
    ch.inbox = std::make_shared<Inbox>(options_.capacity, options_.consumer_buffer);
  else if (!ch.attached)
    unattached_.erase(it->first);
  ch.attached = true;
  return ch.inbox;
}

void InMemoryChannelLayer::detach(std::string_view channel) {
  std::lock_guard lock(mutex_);
  auto it = channels_.find(std::string(channel));
  if (it == channels_.end()) return;
  it->second.inbox->clear_wake();
  if (!it->second.attached) unattached_.erase(it->first);
  stats_.dropped_expired += it->second.inbox->dropped_expired();
  // Nobody will read it again: forget it, and its memberships with it.
  remove_from_groups_locked(it->first, it->second);
  channels_.erase(it);
}

MessagePtr InMemoryChannelLayer::receive_nowait(std::string_view channel) {
  require_channel_name(channel);
  std::lock_guard lock(mutex_);
  auto it = channels_.find(std::string(channel));
  if (it == channels_.end()) return nullptr;
  return it->second.inbox->take_one(now(), options_.expiry);
}

void InMemoryChannelLayer::remove_from_groups_locked(const std::string& name, Channel& channel) {
  for (const auto& group : channel.groups) {
    auto g = groups_.find(group);
    if (g == groups_.end()) continue;  // the membership had expired
    g->second.erase(name);
    if (g->second.empty()) groups_.erase(g);
  }
  channel.groups.clear();
}

void InMemoryChannelLayer::sweep_locked(Inbox::Clock::time_point t) {
  if (t - last_sweep_ < sweep_interval && last_sweep_ != Inbox::Clock::time_point{}) return;
  last_sweep_ = t;
  // As in Channels: a channel whose messages expire unread is dead, so it
  // leaves its groups; an unattached channel left empty is forgotten. An
  // attached channel's reader drops what expired as it reads: visiting every
  // connection's inbox here took 6-19 ms each second with 10,000.
  for (auto n = unattached_.begin(); n != unattached_.end();) {
    auto it = channels_.find(*n);
    if (it == channels_.end()) {
      n = unattached_.erase(n);
      continue;
    }
    auto& ch = it->second;
    if (ch.inbox->drop_expired(t, options_.expiry)) remove_from_groups_locked(it->first, ch);
    // Unread and in no group (only this map holds the inbox): forget it.
    if (ch.inbox->empty() && ch.inbox.use_count() == 1) {
      stats_.dropped_expired += ch.inbox->dropped_expired();
      channels_.erase(it);
      n = unattached_.erase(n);
      continue;
    }
    ++n;
  }
  // Expired memberships are skipped by every group_send already; this only
  // gives back their memory, so it need not walk every member each second
  // (with 10,000 members, each walk stalled the layer for about 7 ms).
  if (last_group_sweep_ == Inbox::Clock::time_point{}) last_group_sweep_ = t;
  if (t - last_group_sweep_ < std::max<Inbox::Clock::duration>(sweep_interval, options_.group_expiry / 10)) return;
  last_group_sweep_ = t;
  for (auto g = groups_.begin(); g != groups_.end();) {
    for (auto m = g->second.begin(); m != g->second.end();)
      m = t - m->second.added >= options_.group_expiry ? g->second.erase(m) : std::next(m);
    g = g->second.empty() ? groups_.erase(g) : std::next(g);
  }
}

void InMemoryChannelLayer::note_drop_locked(std::string_view where, std::size_t n) {
  // Every drop is counted; the log says so for the first and every 1000th.
  auto before = stats_.dropped_full;
  stats_.dropped_full += n;
  if (before == 0 || before / 1000 != stats_.dropped_full / 1000)
    log().warn("channel layer: {} message(s) for {} dropped because a channel was full ({} dropped in all); "
               "raise channel_layer.capacity, or make sure the channel is read",
               n, where, stats_.dropped_full);
}

LayerStats InMemoryChannelLayer::stats() const {
  std::lock_guard lock(mutex_);
  LayerStats s = stats_;
  for (const auto& [_, ch] : channels_) s.dropped_expired += ch.inbox->dropped_expired();
  s.groups = groups_.size();
  for (const auto& [name, members] : groups_) s.group_members += members.size();
  return s;
}

std::size_t InMemoryChannelLayer::group_size(std::string_view group) {
  std::lock_guard lock(mutex_);
  auto t = now();
  auto it = groups_.find(std::string(group));
  if (it == groups_.end()) return 0;
  std::size_t n = 0;
  for (auto& [_, m] : it->second)
    if (t - m.added < options_.group_expiry) ++n;
  return n;
}

std::size_t InMemoryChannelLayer::channel_count() const {
  std::lock_guard lock(mutex_);
  return channels_.size();
}

}  // namespace channels
