// https:// and wss:// with a self-signed certificate that the test makes
// (OpenSSL's API, into a temporary directory), against clients that trust
// only that certificate; plain HTTP on the TLS port fails cleanly.

#include <cstdio>
#include <filesystem>
#include <memory>
#include <thread>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <channels/errors.hpp>

#include "test_server.hpp"

using namespace channels;
using namespace std::chrono_literals;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace fs = std::filesystem;
using tcp = asio::ip::tcp;

namespace {

// A P-256 key and a self-signed certificate for 127.0.0.1 (valid one hour).
struct SelfSigned {
  fs::path dir, cert, key;

  SelfSigned() {
    dir = fs::temp_directory_path() / ("channels-tls-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    cert = dir / "cert.pem";
    key = dir / "key.pem";
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> pkey(EVP_EC_gen("P-256"), &EVP_PKEY_free);
    std::unique_ptr<X509, decltype(&X509_free)> x(X509_new(), &X509_free);
    if (!pkey || !x) throw std::runtime_error("OpenSSL could not make a key");
    X509_set_version(x.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x.get()), 1);
    X509_gmtime_adj(X509_getm_notBefore(x.get()), -60);
    X509_gmtime_adj(X509_getm_notAfter(x.get()), 3600);
    X509_set_pubkey(x.get(), pkey.get());
    X509_NAME* name = X509_get_subject_name(x.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("127.0.0.1"), -1, -1, 0);
    X509_set_issuer_name(x.get(), name);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x.get(), x.get(), nullptr, nullptr, 0);
    for (auto [nid, value] : {std::pair{NID_subject_alt_name, "IP:127.0.0.1"}, std::pair{NID_basic_constraints, "critical,CA:TRUE"}}) {
      X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
      X509_add_ext(x.get(), ext, -1);
      X509_EXTENSION_free(ext);
    }
    if (!X509_sign(x.get(), pkey.get(), EVP_sha256())) throw std::runtime_error("OpenSSL could not sign");
    FILE* f = std::fopen(key.c_str(), "w");
    PEM_write_PrivateKey(f, pkey.get(), nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(f);
    f = std::fopen(cert.c_str(), "w");
    PEM_write_X509(f, x.get());
    std::fclose(f);
  }
  ~SelfSigned() { fs::remove_all(dir); }
};

struct SchemeEcho : WebsocketConsumer {
  void on_receive(std::string_view t) override { send(std::string(t) + " over " + scope().scheme); }
};

struct Hello : HttpConsumer {
  void on_request(const HttpRequest&) override {
    send_response(200, "hello over " + scope().scheme, {{"Content-Type", "text/plain"}});
  }
};

ApplicationPtr app() {
  return std::make_shared<ProtocolTypeRouter>(ProtocolTypeRouter::Map{
      {"websocket", std::make_shared<URLRouter>(std::vector<Route>{path("echo/", as_app<SchemeEcho>())})},
      {"http", std::make_shared<URLRouter>(std::vector<Route>{path("hello/", as_app<Hello>())})},
  });
}

ServerOptions tls_options(const SelfSigned& certs) {
  auto o = testing_support::TestServer::defaults();
  o.tls_cert = certs.cert.string();
  o.tls_key = certs.key.string();
  return o;
}

// A client context that trusts only `cert` and checks the address in it.
asio::ssl::context trusting(const fs::path& cert) {
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  ctx.load_verify_file(cert.string());
  ctx.set_verify_mode(asio::ssl::verify_peer);
  return ctx;
}

using TlsStream = beast::ssl_stream<beast::tcp_stream>;

std::unique_ptr<TlsStream> tls_connect(asio::io_context& ioc, asio::ssl::context& ctx, std::uint16_t port,
                                       boost::system::error_code& ec) {
  auto s = std::make_unique<TlsStream>(ioc, ctx);
  s->set_verify_callback(asio::ssl::host_name_verification("127.0.0.1"));
  beast::get_lowest_layer(*s).expires_after(5s);
  beast::get_lowest_layer(*s).connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
  if (!ec) s->handshake(asio::ssl::stream_base::client, ec);
  return s;
}

struct Tls : ::testing::Test {
  SelfSigned certs;
};

}  // namespace

TEST_F(Tls, WssCarriesMessagesAndTheScopeSaysWss) {
  testing_support::TestServer ts(app(), tls_options(certs));
  asio::io_context ioc;
  auto ctx = trusting(certs.cert);
  boost::system::error_code ec;
  auto s = tls_connect(ioc, ctx, ts.server.port(), ec);
  ASSERT_FALSE(ec) << ec.message();
  beast::get_lowest_layer(*s).expires_never();
  beast::websocket::stream<TlsStream&> ws(*s);
  ws.handshake("127.0.0.1", "/echo/", ec);
  ASSERT_FALSE(ec) << ec.message();
  ws.write(asio::buffer(std::string("hello")));
  beast::flat_buffer buf;
  ws.read(buf);
  EXPECT_EQ(beast::buffers_to_string(buf.data()), "hello over wss");
  ws.close(beast::websocket::close_code::normal);
}

TEST_F(Tls, HttpsAnswersAndTheScopeSaysHttps) {
  testing_support::TestServer ts(app(), tls_options(certs));
  asio::io_context ioc;
  auto ctx = trusting(certs.cert);
  boost::system::error_code ec;
  auto s = tls_connect(ioc, ctx, ts.server.port(), ec);
  ASSERT_FALSE(ec) << ec.message();
  beast::http::request<beast::http::empty_body> req(beast::http::verb::get, "/hello/", 11);
  req.set(beast::http::field::host, "127.0.0.1");
  beast::http::write(*s, req);
  beast::flat_buffer buf;
  beast::http::response<beast::http::string_body> res;
  beast::http::read(*s, buf, res);
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), "hello over https");
}

TEST_F(Tls, ClientThatDoesNotTrustTheCertificateFailsTheHandshake) {
  testing_support::TestServer ts(app(), tls_options(certs));
  asio::io_context ioc;
  asio::ssl::context ctx(asio::ssl::context::tls_client);  // trusts nothing
  ctx.set_verify_mode(asio::ssl::verify_peer);
  boost::system::error_code ec;
  tls_connect(ioc, ctx, ts.server.port(), ec);
  EXPECT_TRUE(ec);  // certificate verify failed: it really is TLS with that certificate
}

TEST_F(Tls, PlainHttpOnTheTlsPortGets400AndTheServerKeepsServing) {
  testing_support::TestServer ts(app(), tls_options(certs));
  auto start = std::chrono::steady_clock::now();
  auto res = testing_support::http_get(ts.server.port(), "GET /hello/ HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);  // no hang
  EXPECT_EQ(res.rfind("HTTP/1.1 400", 0), 0u) << res;
  EXPECT_NE(res.find("use https:// or wss://"), std::string::npos) << res;
  WebsocketClient plain;  // ws:// to a wss:// port: refused, not hung
  EXPECT_FALSE(plain.connect(ts.url("/echo/")).accepted);

  asio::io_context ioc;
  auto ctx = trusting(certs.cert);
  boost::system::error_code ec;
  auto s = tls_connect(ioc, ctx, ts.server.port(), ec);
  EXPECT_FALSE(ec) << ec.message();
}

TEST_F(Tls, RoutingYamlTlsSectionResolvesPathsAndChecksThem) {
  Registry registry;
  auto yaml = "tls:\n  cert: " + certs.cert.filename().string() + "\n  key: " + certs.key.filename().string() + "\n";
  auto c = parse_config(yaml, certs.dir / "routing.yaml", registry);
  EXPECT_EQ(c.server.tls_cert, certs.cert.string());
  EXPECT_EQ(c.server.tls_key, certs.key.string());
  try {
    parse_config("tls:\n  cert: missing.pem\n  key: key.pem\n", certs.dir / "routing.yaml", registry);
    FAIL() << "a missing certificate file must stop start-up";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("routing.yaml:2: `tls.cert`: no such file"), std::string::npos) << e.what();
  }
}

// ---- channels::WebsocketClient over wss:// ----

namespace {

std::string wss_url(const testing_support::TestServer& ts, std::string_view host, std::string_view path) {
  return "wss://" + std::string(host) + ":" + std::to_string(ts.server.port()) + std::string(path);
}

WebsocketClient::Options trusting_options(const SelfSigned& certs) {
  WebsocketClient::Options o;
  o.tls_ca_file = certs.cert.string();
  o.timeout = 5s;
  return o;
}

}  // namespace

TEST_F(Tls, WebsocketClientSpeaksWssWhenGivenTheCertificateAsItsCa) {
  testing_support::TestServer ts(app(), tls_options(certs));
  WebsocketClient c;
  auto hs = c.connect(wss_url(ts, "127.0.0.1", "/echo/"), trusting_options(certs));
  ASSERT_TRUE(hs.accepted) << hs.error;
  EXPECT_EQ(hs.status, 101);
  EXPECT_EQ(hs.certificate_error, "");
  for (std::string text : {std::string("hello"), std::string(100'000, 'x')}) {  // one record, and many
    c.send(text);
    auto m = c.receive(5s);
    ASSERT_TRUE(m);
    EXPECT_FALSE(m->binary);
    EXPECT_EQ(m->data, text + " over wss");
  }
  c.close(1000);
  EXPECT_FALSE(c.is_open());
  EXPECT_EQ(c.close_code(), 1000);

  // The same client object connects again (a new TLS session).
  ASSERT_TRUE(c.connect(wss_url(ts, "127.0.0.1", "/echo/"), trusting_options(certs)).accepted);
  c.send("again");
  auto m = c.receive(5s);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->data, "again over wss");
}

TEST_F(Tls, WebsocketClientRefusesACertificateItDoesNotTrustAndSaysWhatToDo) {
  testing_support::TestServer ts(app(), tls_options(certs));
  WebsocketClient c;
  WebsocketClient::Options o;  // verification on, the system's CA store: it does not know this certificate
  o.timeout = 5s;
  auto hs = c.connect(wss_url(ts, "127.0.0.1", "/echo/"), o);
  EXPECT_FALSE(hs.accepted);
  EXPECT_EQ(hs.status, 0);  // refused before any HTTP
  EXPECT_FALSE(c.is_open());
  // OpenSSL 3 says "self-signed certificate", 1.1 "self signed certificate".
  EXPECT_NE(hs.certificate_error.find("self"), std::string::npos) << hs.certificate_error;
  EXPECT_NE(hs.error.find("TLS certificate verification failed for 127.0.0.1"), std::string::npos) << hs.error;
  EXPECT_NE(hs.error.find("tls_ca_file"), std::string::npos) << hs.error;
  EXPECT_NE(hs.error.find("tls_verify = false"), std::string::npos) << hs.error;
}

TEST_F(Tls, WebsocketClientChecksTheNameInTheCertificate) {
  // Trusted, but issued for the address 127.0.0.1, not the name localhost.
  testing_support::TestServer ts(app(), tls_options(certs));
  WebsocketClient c;
  auto hs = c.connect(wss_url(ts, "localhost", "/echo/"), trusting_options(certs));
  EXPECT_FALSE(hs.accepted);
  EXPECT_NE(hs.certificate_error.find("mismatch"), std::string::npos) << hs.certificate_error;
  EXPECT_NE(hs.error.find("verification failed for localhost"), std::string::npos) << hs.error;
  EXPECT_NE(hs.error.find("issued for other names"), std::string::npos) << hs.error;
}

TEST_F(Tls, WebsocketClientWithVerificationOffAcceptsAnyCertificate) {
  testing_support::TestServer ts(app(), tls_options(certs));
  WebsocketClient::Options o;
  o.tls_verify = false;
  o.timeout = 5s;
  for (auto host : {"127.0.0.1", "localhost"}) {  // neither the chain nor the name is checked
    WebsocketClient c;
    auto hs = c.connect(wss_url(ts, host, "/echo/"), o);
    ASSERT_TRUE(hs.accepted) << host << ": " << hs.error;
    c.send("unchecked");
    auto m = c.receive(5s);
    ASSERT_TRUE(m);
    EXPECT_EQ(m->data, "unchecked over wss");
  }
}

TEST_F(Tls, WebsocketClientExplainsAMissingCaFileAndAPlainServer) {
  testing_support::TestServer tls_server(app(), tls_options(certs));
  WebsocketClient c;
  WebsocketClient::Options o;
  o.tls_ca_file = (certs.dir / "no-such-ca.pem").string();
  auto hs = c.connect(wss_url(tls_server, "127.0.0.1", "/echo/"), o);
  EXPECT_FALSE(hs.accepted);
  EXPECT_NE(hs.error.find("cannot load CA certificates from"), std::string::npos) << hs.error;

  testing_support::TestServer plain(app());  // wss:// to a ws:// server: a clear error, no hang
  auto start = std::chrono::steady_clock::now();
  hs = c.connect(wss_url(plain, "127.0.0.1", "/echo/"), trusting_options(certs));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 4s);
  EXPECT_FALSE(hs.accepted);
  EXPECT_EQ(hs.certificate_error, "");
  EXPECT_NE(hs.error.find("TLS handshake with 127.0.0.1:"), std::string::npos) << hs.error;
  EXPECT_NE(hs.error.find("use ws://"), std::string::npos) << hs.error;
}

// SNI: a bare TLS listener records the server name the client sends. A host
// name goes out as SNI; an IP address does not (RFC 6066 section 3).
TEST_F(Tls, WebsocketClientSendsTheHostNameAsSni) {
  asio::io_context ioc;
  asio::ssl::context ctx(asio::ssl::context::tls_server);
  ctx.use_certificate_chain_file(certs.cert.string());
  ctx.use_private_key_file(certs.key.string(), asio::ssl::context::pem);
  static std::string seen;
  SSL_CTX_set_tlsext_servername_callback(ctx.native_handle(), +[](SSL* ssl, int*, void*) {
    const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    seen = name ? name : "(none)";
    return SSL_TLSEXT_ERR_OK;
  });
  tcp::acceptor acceptor(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  auto port = acceptor.local_endpoint().port();
  for (auto [host, expected] : {std::pair{"localhost", "localhost"}, std::pair{"127.0.0.1", "(none)"}}) {
    seen.clear();
    std::thread server([&] {
      asio::ssl::stream<tcp::socket> s(acceptor.accept(), ctx);
      boost::system::error_code ec;
      s.handshake(asio::ssl::stream_base::server, ec);
      s.lowest_layer().close(ec);  // no HTTP: the client's handshake fails after TLS
    });
    WebsocketClient c;
    WebsocketClient::Options o;
    o.tls_verify = false;
    o.timeout = 5s;
    EXPECT_FALSE(c.connect("wss://" + std::string(host) + ":" + std::to_string(port) + "/", o).accepted);
    server.join();
    EXPECT_EQ(seen, expected) << host;
  }
}
