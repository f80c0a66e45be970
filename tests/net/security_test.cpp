// Origin checks and authentication, over real sockets: who may open a
// WebSocket is decided before any consumer of the app exists.

#include <atomic>

#include <gtest/gtest.h>

#include <channels/auth/signed_token.hpp>

#include "test_server.hpp"

using namespace channels;
using namespace std::chrono_literals;
using testing_support::http_get;
using testing_support::TestServer;

namespace {

std::atomic<int> consumers_built{0};

// Tells the client who it is (the user the middleware found) and what it was offered.
struct WhoAmI : WebsocketConsumer {
  WhoAmI() { ++consumers_built; }
  void on_connect() override {
    accept();
    send(Json{{"user", scope().extensions.value("user", Json())}, {"subprotocols", scope().subprotocols}}.dump());
  }
};

ApplicationPtr router() {
  return std::make_shared<URLRouter>(std::vector<Route>{path("who/", as_app<WhoAmI>())});
}

ApplicationPtr websocket_app(ApplicationPtr ws) {
  return std::make_shared<ProtocolTypeRouter>(ProtocolTypeRouter::Map{{"websocket", std::move(ws)}});
}

WebsocketClient::Options with_origin(std::string origin) {
  WebsocketClient::Options o;
  o.headers = {{"Origin", std::move(origin)}};
  return o;
}

std::string handshake(std::string_view origin_line) {
  return "GET /who/ HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
         std::string(origin_line) + "\r\n";
}

const std::string secret = "0123456789abcdef-test-secret";

struct Security : ::testing::Test {
  void SetUp() override { consumers_built = 0; }
};

}  // namespace

TEST(OriginPatterns, FollowChannelsAndAllowGlobs) {
  std::vector<std::string> p{"localhost", ".example.com", "*.glob.org", "https://secure.net:8443", "http://plain.net"};
  EXPECT_TRUE(origin_allowed("http://localhost:8000", p));
  EXPECT_TRUE(origin_allowed("https://LOCALHOST", p));
  EXPECT_TRUE(origin_allowed("http://example.com", p));
  EXPECT_TRUE(origin_allowed("http://a.b.example.com:81", p));
  EXPECT_FALSE(origin_allowed("http://badexample.com", p));
  EXPECT_TRUE(origin_allowed("https://x.glob.org", p));
  EXPECT_FALSE(origin_allowed("https://glob.org", p));  // "*." means subdomains only
  EXPECT_TRUE(origin_allowed("https://secure.net:8443", p));
  EXPECT_FALSE(origin_allowed("https://secure.net", p));        // port differs
  EXPECT_FALSE(origin_allowed("http://secure.net:8443", p));    // scheme differs
  EXPECT_TRUE(origin_allowed("http://plain.net:80", p));        // default port filled in
  EXPECT_FALSE(origin_allowed("http://evil.com", p));
  EXPECT_FALSE(origin_allowed("null", p));
  EXPECT_FALSE(origin_allowed(std::nullopt, p));                 // Channels: missing is refused...
  EXPECT_TRUE(origin_allowed(std::nullopt, p, true));            // ...unless allowed
  EXPECT_TRUE(origin_allowed(std::nullopt, {"*"}));              // ...or "*" is listed
  EXPECT_TRUE(origin_allowed("http://anything", {"*"}));
  EXPECT_TRUE(origin_allowed("http://[::1]:8000", {"[::1]"}));
}

TEST_F(Security, ServerWideAllowedOriginsRefuseOthersWith403BeforeRouting) {
  auto o = TestServer::defaults();
  o.allowed_origins = {"localhost", "127.0.0.1"};
  TestServer ts(websocket_app(router()), o);
  WebsocketClient ok;
  ASSERT_TRUE(ok.connect(ts.url("/who/"), with_origin("http://127.0.0.1:" + std::to_string(ts.server.port()))).accepted);
  EXPECT_EQ(consumers_built, 1);

  auto evil = http_get(ts.server.port(), handshake("Origin: http://evil.example\r\n"));
  EXPECT_EQ(evil.rfind("HTTP/1.1 403", 0), 0u) << evil;
  EXPECT_NE(evil.find("Origin 'http://evil.example' may not open a WebSocket"), std::string::npos) << evil;
  auto missing = http_get(ts.server.port(), handshake(""));
  EXPECT_EQ(missing.rfind("HTTP/1.1 403", 0), 0u) << missing;
  EXPECT_NE(missing.find("needs an Origin header"), std::string::npos) << missing;
  EXPECT_EQ(consumers_built, 1);  // none built for the refused ones
}

TEST_F(Security, AllowMissingOriginLetsNonBrowserClientsThroughButNotBadOrigins) {
  auto o = TestServer::defaults();
  o.allowed_origins = {"localhost"};
  o.allow_missing_origin = true;
  TestServer ts(websocket_app(router()), o);
  WebsocketClient plain, evil;
  EXPECT_TRUE(plain.connect(ts.url("/who/")).accepted);
  EXPECT_EQ(evil.connect(ts.url("/who/"), with_origin("https://evil.example")).status, 403);
}

TEST_F(Security, PerRouteAllowedOriginsFromRoutingYaml) {
  Registry registry;
  registry.add<WhoAmI>("test.WhoAmI");
  auto config = parse_config(R"(
websocket:
  - path: who/
    consumer: test.WhoAmI
    allowed_origins: ["*.example.com"]
  - path: open/
    consumer: test.WhoAmI
)", "routing.yaml", registry);
  TestServer ts(config.application);
  WebsocketClient sub, apex, other, open;
  EXPECT_TRUE(sub.connect(ts.url("/who/"), with_origin("https://chat.example.com")).accepted);
  EXPECT_EQ(apex.connect(ts.url("/who/"), with_origin("https://example.com")).status, 403);
  EXPECT_EQ(other.connect(ts.url("/who/")).status, 403);
  EXPECT_TRUE(open.connect(ts.url("/open/")).accepted);
  EXPECT_EQ(consumers_built, 2);
}

TEST(SignedToken, RoundTripTamperAndExpiry) {
  auto now = auth::Clock::now();
  auto token = auth::sign_token({{"user", "ann"}, {"id", 7}}, secret, 1h, now);
  auto ok = auth::verify_token(token, secret, now);
  ASSERT_TRUE(ok) << ok.error;
  EXPECT_EQ((*ok.claims)["user"], "ann");
  EXPECT_EQ((*ok.claims)["id"], 7);
  EXPECT_EQ(token.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."),
            std::string::npos);  // fits a subprotocol, a header, a cookie and a URL

  auto expired = auth::verify_token(token, secret, now + 1h + 1s);
  EXPECT_FALSE(expired);
  EXPECT_EQ(expired.error, "expired");
  EXPECT_FALSE(auth::verify_token(token, "another-secret-of-16+", now));
  // The claims are only base64: change them and the signature no longer fits.
  auto forged = auth::sign_token({{"user", "root"}, {"id", 0}}, "attacker-secret-1234", 1h, now);
  auto mixed = forged.substr(0, forged.find('.')) + token.substr(token.find('.'));
  EXPECT_NE(auth::verify_token(mixed, secret, now).error.find("bad signature"), std::string::npos);
  EXPECT_FALSE(auth::verify_token("garbage", secret, now));
  EXPECT_FALSE(auth::verify_token("", secret, now));
}

class Auth : public Security {
 protected:
  TestServer server(bool required) {
    auth::AuthOptions o;
    o.required = required;
    return TestServer(websocket_app(std::make_shared<auth::AuthMiddleware>(router(), auth::signed_token_auth(secret), o)));
  }
  static Json first_message(WebsocketClient& c) {
    auto m = c.receive();
    return m ? Json::parse(m->data) : Json();
  }
};

TEST_F(Auth, ValidTokenPutsTheUserInTheScopeFromEverySource) {
  auto ts = server(true);
  auto token = auth::sign_token({{"user", "ann"}}, secret, 1h);
  std::vector<WebsocketClient::Options> ways(2);
  ways[0].headers = {{"Authorization", "Bearer " + token}};
  ways[1].headers = {{"Cookie", "theme=dark; token=" + token}};
  for (auto& way : ways) {
    WebsocketClient c;
    ASSERT_TRUE(c.connect(ts.url("/who/"), way).accepted);
    EXPECT_EQ(first_message(c)["user"]["user"], "ann");
  }
  WebsocketClient q;
  ASSERT_TRUE(q.connect(ts.url("/who/?token=" + token)).accepted);
  EXPECT_EQ(first_message(q)["user"]["user"], "ann");
}

TEST_F(Auth, TokenInTheSubprotocolIsTakenOutAndAccessTokenIsEchoed) {
  auto ts = server(true);
  auto token = auth::sign_token({{"user", "bob"}}, secret, 1h);
  WebsocketClient c;
  WebsocketClient::Options o;
  o.subprotocols = {"access_token", token};
  auto r = c.connect(ts.url("/who/"), o);
  ASSERT_TRUE(r.accepted);
  EXPECT_EQ(r.subprotocol, "access_token");  // what the browser needs to see
  auto m = first_message(c);
  EXPECT_EQ(m["user"]["user"], "bob");
  EXPECT_EQ(m["subprotocols"], Json({"access_token"}));  // the token is not in the consumer's scope
}

TEST_F(Auth, TamperedExpiredOrMissingTokensAreRefusedWith403) {
  auto ts = server(true);
  auto token = auth::sign_token({{"user", "ann"}}, secret, 1h);
  auto tampered = token;
  tampered[tampered.find('.') - 2] ^= 1;
  auto expired = auth::sign_token({{"user", "ann"}}, secret, 1h, auth::Clock::now() - 2h);
  for (const auto& bad : {tampered, expired, std::string("nonsense")}) {
    WebsocketClient c;
    WebsocketClient::Options o;
    o.headers = {{"Authorization", "Bearer " + bad}};
    EXPECT_EQ(c.connect(ts.url("/who/"), o).status, 403) << bad;
  }
  WebsocketClient none;
  EXPECT_EQ(none.connect(ts.url("/who/")).status, 403);
  EXPECT_EQ(consumers_built, 0);
}

TEST_F(Auth, NotRequiredLetsTheConsumerSeeANullUser) {
  auto ts = server(false);
  WebsocketClient c;
  ASSERT_TRUE(c.connect(ts.url("/who/")).accepted);
  EXPECT_TRUE(first_message(c)["user"].is_null());
}
