#pragma once
// Private to the server: ties one connection's consumer to the channel layer
// (its channel_name, its inbox, the groups it joined) and brings layer
// messages onto the connection's strand.

#include <chrono>
#include <functional>
#include <memory>
#include <vector>

#include <channels/detail/consumer_access.hpp>
#include <channels/layer.hpp>
#include <channels/log.hpp>

#include "delivery.hpp"
#include "delivery_window.hpp"

namespace channels::detail {

class ConsumerLink {
 public:
  /// Gives the consumer a channel and starts delivering its messages:
  /// `deliver` runs on `strand` for each one while `owner` is alive, and
  /// `delivered` after each batch of them.
  template <class Deliver, class Delivered = void (*)()>
  void open(Consumer& consumer, std::shared_ptr<ChannelLayer> layer, const Strand& strand,
            std::weak_ptr<void> owner, Deliver deliver, Delivered delivered = [] {}) {
    layer_ = std::move(layer);
    ConsumerAccess::set_channel_name(consumer, layer_->new_channel());
    auto inbox = layer_->attach(consumer.channel_name());
    // Woken once per batch (see delivery_window.hpp): the drain takes
    // everything queued so far, so a burst costs one hop onto the strand,
    // not one per message.
    auto drain = std::make_shared<Drain<Deliver, Delivered>>(strand, std::move(owner), inbox, layer_->options().expiry,
                                                             std::move(deliver), std::move(delivered));
    inbox->on_wake([drain] { DeliveryWindow::add(drain); });
    inbox_ = std::move(inbox);
  }

  /// For a connection that has been quiet: its inbox gives back what a burst grew.
  void trim() {
    if (inbox_) inbox_->trim();
  }

  /// Leaves every group the consumer is still in and gives up the channel.
  void close(Consumer& consumer) {
    if (!layer_) return;
    for (const auto& g : ConsumerAccess::take_groups(consumer)) {
      try {
        layer_->group_discard(g, consumer.channel_name());
      } catch (const std::exception& e) {
        log().warn("leaving group {}: {}", g, e.what());
      }
    }
    if (inbox_) inbox_->clear_wake();
    layer_->detach(consumer.channel_name());
    layer_.reset();
    inbox_.reset();
  }

 private:
  template <class Deliver, class Delivered>
  struct Drain final : Drainable {
    Drain(const Strand& s, std::weak_ptr<void> o, const std::shared_ptr<Inbox>& i, std::chrono::milliseconds e,
          Deliver d, Delivered after)
        : Drainable(s), owner(std::move(o)), inbox(i), expiry(e), deliver(std::move(d)), delivered(std::move(after)) {}

    void run() override {
      auto alive = owner.lock();
      auto box = inbox.lock();
      if (!alive || !box) return;
      // The thread's spare vector, taken (not borrowed) in case a handler
      // runs another drain on this thread before this one is done.
      thread_local std::vector<MessagePtr> spare;
      std::vector<MessagePtr> batch;
      batch.swap(spare);
      box->take_all(batch, Inbox::Clock::now(), expiry);
      for (auto& m : batch) {
        Delivery delivery(m);
        deliver(*m);
      }
      batch.clear();
      if (batch.capacity() <= 1024) spare.swap(batch);
      delivered();
    }

    std::weak_ptr<void> owner;
    std::weak_ptr<Inbox> inbox;
    std::chrono::milliseconds expiry;
    Deliver deliver;
    Delivered delivered;
  };

  std::shared_ptr<ChannelLayer> layer_;
  std::shared_ptr<Inbox> inbox_;
};

}  // namespace channels::detail
