#include <channels/inbox.hpp>

#include "delivery_window.hpp"

namespace channels {

bool Inbox::push(MessagePtr msg, Clock::time_point now) {
  std::shared_ptr<const std::function<void()>> wake;
  {
    std::lock_guard lock(mutex_);
    if (queue_.size() >= (wake_ ? live_capacity_ : capacity_)) {
      dropped_full_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    if (queue_.empty()) wake = wake_;
    queue_.push_back({std::move(msg), now});
  }
  // Counted before the wake: a delivery window opened by this wake-up sees
  // only the pushes after it.
  detail::DeliveryWindow::note_push();
  if (wake) (*wake)();
  return true;
}

std::size_t Inbox::drop_expired_locked(Clock::time_point now, std::chrono::milliseconds expiry) {
  std::size_t n = 0;
  while (!queue_.empty() && now - queue_.front().at >= expiry) {
    queue_.pop_front();
    ++n;
  }
  if (n) dropped_expired_.fetch_add(n, std::memory_order_relaxed);
  return n;
}

std::vector<MessagePtr> Inbox::take_all(Clock::time_point now, std::chrono::milliseconds expiry) {
  std::vector<MessagePtr> out;
  take_all(out, now, expiry);
  return out;
}

void Inbox::take_all(std::vector<MessagePtr>& out, Clock::time_point now, std::chrono::milliseconds expiry) {
  std::lock_guard lock(mutex_);
  drop_expired_locked(now, expiry);
  out.reserve(out.size() + queue_.size());
  queue_.drain([&](Entry&& e) { out.push_back(std::move(e.msg)); });
}

MessagePtr Inbox::take_one(Clock::time_point now, std::chrono::milliseconds expiry) {
  std::lock_guard lock(mutex_);
  drop_expired_locked(now, expiry);
  if (queue_.empty()) return nullptr;
  MessagePtr m = std::move(queue_.front().msg);
  queue_.pop_front();
  return m;
}

std::size_t Inbox::drop_expired(Clock::time_point now, std::chrono::milliseconds expiry) {
  std::lock_guard lock(mutex_);
  return drop_expired_locked(now, expiry);
}

void Inbox::on_wake(std::function<void()> wake) {
  std::shared_ptr<const std::function<void()>> now;
  {
    std::lock_guard lock(mutex_);
    wake_ = wake ? std::make_shared<const std::function<void()>>(std::move(wake)) : nullptr;
    // Messages that arrived before the reader did must not wait for the next one.
    if (!queue_.empty()) now = wake_;
  }
  if (now) (*now)();
}

void Inbox::clear_wake() {
  std::lock_guard lock(mutex_);
  wake_ = nullptr;
}

std::size_t Inbox::size() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

void Inbox::trim() {
  std::lock_guard lock(mutex_);
  queue_.shrink_to_fit();  // frees everything, and only, when it is empty
}

std::size_t Inbox::held_bytes() const {
  std::lock_guard lock(mutex_);
  return queue_.held_bytes();
}

}  // namespace channels
