#include "metrics.hpp"

#include <fmt/format.h>

#include "server_impl.hpp"

namespace channels::detail {

std::string_view to_string(HandshakeFailure f) {
  switch (f) {
    case HandshakeFailure::bad_request: return "bad_request";
    case HandshakeFailure::not_found: return "not_found";
    case HandshakeFailure::refused: return "refused";
    case HandshakeFailure::timeout: return "timeout";
    case HandshakeFailure::error: return "error";
    case HandshakeFailure::shutdown: return "shutdown";
    case HandshakeFailure::io_error: return "io_error";
    case HandshakeFailure::count_: break;
  }
  return "unknown";
}

namespace {

void metric(std::string& out, std::string_view name, std::string_view type, std::string_view help,
            std::uint64_t value) {
  fmt::format_to(std::back_inserter(out), "# HELP {0} {1}\n# TYPE {0} {2}\n{0} {3}\n", name, help, type, value);
}

}  // namespace

std::string prometheus_text(const ServerImpl& s) {
  const auto& m = s.metrics;
  auto v = [](const Metrics::Counter& c) { return c.load(std::memory_order_relaxed); };
  std::string out;
  metric(out, "cppchannels_connections_accepted_total", "counter", "TCP connections accepted.",
         v(s.connections_accepted));
  metric(out, "cppchannels_http_requests_total", "counter", "HTTP requests read (upgrades included).",
         v(s.http_requests));
  metric(out, "cppchannels_websocket_connections_open", "gauge", "WebSocket connections open now.",
         v(s.websockets_open));
  metric(out, "cppchannels_websocket_connects_total", "counter", "WebSocket handshakes completed.", v(m.ws_connects));
  metric(out, "cppchannels_websocket_disconnects_total", "counter", "Open WebSocket connections that ended.",
         v(m.ws_disconnects));
  metric(out, "cppchannels_websocket_messages_received_total", "counter", "WebSocket messages from clients.",
         v(m.ws_messages_in));
  metric(out, "cppchannels_websocket_received_bytes_total", "counter", "Payload bytes of messages from clients.",
         v(m.ws_bytes_in));
  metric(out, "cppchannels_websocket_messages_sent_total", "counter", "WebSocket messages written to clients.",
         v(m.ws_messages_out));
  metric(out, "cppchannels_websocket_sent_bytes_total", "counter", "Payload bytes written to clients.",
         v(m.ws_bytes_out));
  metric(out, "cppchannels_send_queue_overflows_total", "counter",
         "Messages for a client whose send queue was full (dropped, or the client closed with 1008).",
         v(s.send_queue_drops));
  out += "# HELP cppchannels_websocket_handshake_failures_total WebSocket handshakes that did not open, by reason.\n"
         "# TYPE cppchannels_websocket_handshake_failures_total counter\n";
  for (std::size_t i = 0; i < m.handshake_failures.size(); ++i)
    fmt::format_to(std::back_inserter(out), "cppchannels_websocket_handshake_failures_total{{reason=\"{}\"}} {}\n",
                   to_string(static_cast<HandshakeFailure>(i)), v(m.handshake_failures[i]));
  if (s.layer) {
    auto st = s.layer->stats();
    metric(out, "cppchannels_layer_messages_delivered_total", "counter",
           "Messages the channel layer put in a channel (send, plus one per group member).", st.messages_sent);
    metric(out, "cppchannels_layer_capacity_drops_total", "counter",
           "Messages dropped because the channel was at capacity.", st.dropped_full);
    metric(out, "cppchannels_layer_expired_drops_total", "counter", "Messages dropped unread after expiry.",
           st.dropped_expired);
    metric(out, "cppchannels_layer_groups", "gauge", "Groups with at least one member (this process's view).",
           st.groups);
    metric(out, "cppchannels_layer_group_members", "gauge", "Group memberships, summed over groups.",
           st.group_members);
  }
  return out;
}

}  // namespace channels::detail
