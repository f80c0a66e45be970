#pragma once
// Private to the server: ties one connection's consumer to the channel layer
// (its channel_name, its inbox, the groups it joined) and brings layer
// messages onto the connection's strand.

#include <functional>
#include <memory>

#include <boost/asio/post.hpp>

#include <channels/detail/consumer_access.hpp>
#include <channels/layer.hpp>
#include <channels/log.hpp>

#include "delivery.hpp"

namespace channels::detail {

class ConsumerLink {
 public:
  /// Gives the consumer a channel and starts delivering its messages:
  /// `deliver` runs on `strand` for each one while `owner` is alive.
  template <class Deliver>
  void open(Consumer& consumer, std::shared_ptr<ChannelLayer> layer, const Strand& strand,
            std::weak_ptr<void> owner, Deliver deliver) {
    layer_ = std::move(layer);
    channel_ = layer_->new_channel();
    ConsumerAccess::set_channel_name(consumer, channel_);
    auto inbox = layer_->attach(channel_);
    std::weak_ptr<Inbox> weak_inbox = inbox;
    auto expiry = layer_->options().expiry;
    // Woken once per batch: the drain takes everything queued so far, so a
    // burst costs one hop onto the strand, not one per message.
    inbox->on_wake([strand, owner, weak_inbox, expiry, deliver] {
      boost::asio::post(strand, [owner, weak_inbox, expiry, deliver] {
        auto alive = owner.lock();
        auto box = weak_inbox.lock();
        if (!alive || !box) return;
        for (auto& m : box->take_all(Inbox::Clock::now(), expiry)) {
          Delivery delivery(m);
          deliver(*m);
        }
      });
    });
    inbox_ = std::move(inbox);
  }

  /// Leaves every group the consumer is still in and gives up the channel.
  void close(Consumer& consumer) {
    if (!layer_) return;
    for (const auto& g : ConsumerAccess::take_groups(consumer)) {
      try {
        layer_->group_discard(g, channel_);
      } catch (const std::exception& e) {
        log().warn("leaving group {}: {}", g, e.what());
      }
    }
    if (inbox_) inbox_->clear_wake();
    layer_->detach(channel_);
    layer_.reset();
    inbox_.reset();
  }

 private:
  std::shared_ptr<ChannelLayer> layer_;
  std::shared_ptr<Inbox> inbox_;
  std::string channel_;
};

}  // namespace channels::detail
