#include <channels/websocket_consumer.hpp>

#include <channels/detail/consumer_access.hpp>
#include <channels/detail/transport.hpp>
#include <channels/log.hpp>

#include "delivery.hpp"
#include "json_frame.hpp"

namespace channels {

void WebsocketConsumer::on_receive(std::string_view) {}
void WebsocketConsumer::on_receive_bytes(std::string_view) {}
void WebsocketConsumer::on_disconnect(int) {}

void WebsocketConsumer::accept(std::string_view subprotocol) {
  if (accepted_ || closing_ || !transport_) return;
  accepted_ = true;
  transport_->accept(std::string(subprotocol));
}

SendStatus WebsocketConsumer::send(std::string_view text) {
  return send_frame(detail::Delivery::shared_payload(text), false);
}

SendStatus WebsocketConsumer::send_bytes(std::string_view bytes) {
  return send_frame(detail::Delivery::shared_payload(bytes), true);
}

SendStatus WebsocketConsumer::send_frame(std::shared_ptr<const std::string> payload, bool binary) {
  if (!on_strand()) {
    // From another thread: hop to the strand, where the transport lives.
    post_to_strand([this, payload = std::move(payload), binary]() mutable {
      send_frame(std::move(payload), binary);
    });
    return SendStatus::queued;
  }
  if (closing_ || !transport_) return SendStatus::closed;
  if (!accepted_) {
    log().warn("send() before accept() on {}: accepting the connection first", scope().path);
    accept();
  }
  return transport_->send(detail::OutFrame{std::move(payload), binary});
}

void WebsocketConsumer::close(int code, std::string_view reason) {
  if (!on_strand()) {
    post_to_strand([this, code, r = std::string(reason)] { close(code, r); });
    return;
  }
  if (closing_ || !transport_) return;
  closing_ = true;
  // A close reason is at most 123 bytes (RFC 6455 5.5: control frame payload <= 125).
  std::string r(reason.substr(0, 123));
  transport_->close(code, std::move(r));
}

void JsonWebsocketConsumer::on_receive_json(const Json&) {}

SendStatus JsonWebsocketConsumer::send_json(const Json& content) {
  return detail::ConsumerAccess::send_frame(*this, detail::Delivery::shared_json(content), false);
}

void JsonWebsocketConsumer::on_receive(std::string_view text) {
  detail::JsonFrame frame = detail::parse_json_frame(text, json_max_depth);
  if (frame.close_code) {
    close(frame.close_code, frame.reason);
    return;
  }
  on_receive_json(frame.content);
}

void JsonWebsocketConsumer::on_receive_bytes(std::string_view) {
  close(close_code::unsupported_data, "binary frames are not accepted: send JSON as text frames");
}

}  // namespace channels
