// path()/re_path() matching, kwargs, nested routers and ProtocolTypeRouter.

#include <channels/routing.hpp>

#include <gtest/gtest.h>

#include <channels/errors.hpp>
#include <channels/websocket_consumer.hpp>

using namespace channels;

namespace {

struct A : WebsocketConsumer {};
struct B : WebsocketConsumer {};

Scope ws_scope(std::string path) {
  Scope s;
  s.type = "websocket";
  s.path = std::move(path);
  return s;
}

template <class T>
bool routed_to(const std::unique_ptr<Consumer>& c) {
  return dynamic_cast<T*>(c.get()) != nullptr;
}

}  // namespace

TEST(PathPattern, StrConverterMatchesOneSegment) {
  PathPattern p(PathPattern::Kind::path, "ws/chat/<str:room_name>/", true);
  auto m = p.match("ws/chat/lobby/");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->kwargs["room_name"], "lobby");
  EXPECT_FALSE(p.match("ws/chat/a/b/"));
  EXPECT_FALSE(p.match("ws/chat//"));
  EXPECT_FALSE(p.match("ws/chat/lobby/extra"));  // an endpoint matches the whole path
}

TEST(PathPattern, LeadingSlashInPatternIsIgnored) {
  PathPattern p(PathPattern::Kind::path, "/ws/echo/", true);
  EXPECT_TRUE(p.match("ws/echo/"));
}

TEST(PathPattern, BareNameDefaultsToStr) {
  PathPattern p(PathPattern::Kind::path, "rooms/<name>/", true);
  auto m = p.match("rooms/x-y/");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->kwargs["name"], "x-y");
}

TEST(PathPattern, IntConverterGivesANumber) {
  PathPattern p(PathPattern::Kind::path, "items/<int:id>/", true);
  auto m = p.match("items/42/");
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->kwargs["id"].is_number_integer());
  EXPECT_EQ(m->kwargs["id"], 42);
  EXPECT_FALSE(p.match("items/4x/"));
  EXPECT_FALSE(p.match("items/-1/"));
}

TEST(PathPattern, SlugUuidAndPathConverters) {
  PathPattern slug(PathPattern::Kind::path, "s/<slug:s>/", true);
  EXPECT_TRUE(slug.match("s/hello-world_2/"));
  EXPECT_FALSE(slug.match("s/hello world/"));
  EXPECT_FALSE(slug.match("s/a.b/"));

  PathPattern uuid(PathPattern::Kind::path, "u/<uuid:id>/", true);
  auto m = uuid.match("u/123e4567-e89b-12d3-a456-426614174000/");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->kwargs["id"], "123e4567-e89b-12d3-a456-426614174000");
  EXPECT_FALSE(uuid.match("u/123E4567-E89B-12D3-A456-426614174000/"));  // Django's is lower-case only
  EXPECT_FALSE(uuid.match("u/not-a-uuid/"));

  PathPattern path(PathPattern::Kind::path, "files/<path:rest>", true);
  auto f = path.match("files/a/b/c.txt");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->kwargs["rest"], "a/b/c.txt");
}

TEST(PathPattern, RegexMetacharactersInPathAreLiteral) {
  PathPattern p(PathPattern::Kind::path, "a.b/<str:x>/", true);
  EXPECT_TRUE(p.match("a.b/1/"));
  EXPECT_FALSE(p.match("aXb/1/"));
}

TEST(PathPattern, BadPatternsAreConfigErrors) {
  EXPECT_THROW(PathPattern(PathPattern::Kind::path, "x/<foo:y>/", true), ConfigError);
  EXPECT_THROW(PathPattern(PathPattern::Kind::path, "x/<str:1y>/", true), ConfigError);
  EXPECT_THROW(PathPattern(PathPattern::Kind::path, "x/<str:y/", true), ConfigError);
  EXPECT_THROW(PathPattern(PathPattern::Kind::path, "<a>/<a>/", true), ConfigError);
  EXPECT_THROW(PathPattern(PathPattern::Kind::re_path, "^x/(?P<y>[a-z+/$", true), ConfigError);
  // Found by fuzz_path_pattern: Boost takes any bytes as a group name, Python only names.
  EXPECT_THROW(PathPattern(PathPattern::Kind::re_path, "^room/(?P<na\xFFme>[a-z]+)/$", true), ConfigError);
  EXPECT_THROW(PathPattern(PathPattern::Kind::re_path, "^room/(?P<1st>[a-z]+)/$", true), ConfigError);
  try {
    PathPattern(PathPattern::Kind::path, "x/<foo:y>/", true);
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("unknown path converter 'foo'"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("str, int, slug, uuid, path"), std::string::npos);
  }
}

TEST(RePath, PythonNamedGroupsBecomeKwargs) {
  PathPattern p(PathPattern::Kind::re_path, R"(^ws/chat/(?P<room_name>\w+)/$)", true);
  auto m = p.match("ws/chat/lobby_1/");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->kwargs["room_name"], "lobby_1");
  EXPECT_TRUE(m->args.empty());
  EXPECT_FALSE(p.match("ws/chat/lobby/x"));
  // Python's '$' does not match before an embedded newline in the middle.
  EXPECT_FALSE(p.match("ws/chat/lobby/\nmore"));
}

TEST(RePath, UnnamedGroupsBecomeArgs) {
  PathPattern p(PathPattern::Kind::re_path, R"(^page/(\d+)/(\d+)/$)", true);
  auto m = p.match("page/3/14/");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->args, (std::vector<std::string>{"3", "14"}));
  EXPECT_TRUE(m->kwargs.empty());
}

TEST(RePath, BackReferenceAndAbsoluteEnd) {
  PathPattern p(PathPattern::Kind::re_path, R"(^(?P<a>\w+)-(?P=a)\Z)", true);
  EXPECT_TRUE(p.match("ab-ab"));
  EXPECT_FALSE(p.match("ab-cd"));
  EXPECT_FALSE(p.match("ab-ab\n"));
}

TEST(RePath, LookBehindIsNotAName) {
  PathPattern p(PathPattern::Kind::re_path, R"(^x/(?P<n>\d+)(?<=5)/$)", true);
  auto m = p.match("x/15/");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->kwargs.size(), 1u);
  EXPECT_EQ(m->kwargs["n"], "15");
  EXPECT_FALSE(p.match("x/16/"));
}

TEST(URLRouter, FirstMatchWinsAndKwargsLandInScope) {
  URLRouter router({
      path("ws/chat/<str:room_name>/", as_app<A>()),
      path("ws/<str:anything>/", as_app<B>()),
  });
  auto s = ws_scope("/ws/chat/lobby/");
  auto c = router.route(s);
  ASSERT_TRUE(routed_to<A>(c));
  EXPECT_EQ(s.kwarg("room_name"), "lobby");
  EXPECT_EQ(s.url_route.kwargs["room_name"], "lobby");

  auto s2 = ws_scope("/ws/other/");
  EXPECT_TRUE(routed_to<B>(router.route(s2)));
  EXPECT_EQ(s2.kwarg("anything"), "other");
}

TEST(URLRouter, NoMatchGivesNull) {
  URLRouter router({path("ws/echo/", as_app<A>())});
  auto s = ws_scope("/ws/nothing/");
  EXPECT_EQ(router.route(s), nullptr);
  EXPECT_TRUE(s.url_route.kwargs.empty());  // a failed route leaves the scope alone
}

TEST(URLRouter, NestedRoutersMatchPrefixesAndMergeKwargs) {
  auto inner = std::make_shared<URLRouter>(std::vector<Route>{
      path("chat/<str:room>/", as_app<A>()),
      re_path(R"(^echo/(?P<n>\d+)/$)", as_app<B>()),
  });
  URLRouter outer({path("api/<int:version>/", inner)});
  auto s = ws_scope("/api/2/chat/lobby/");
  ASSERT_TRUE(routed_to<A>(outer.route(s)));
  EXPECT_EQ(s.url_route.kwargs["version"], 2);
  EXPECT_EQ(s.kwarg("room"), "lobby");
  EXPECT_EQ(s.path, "/api/2/chat/lobby/");  // the full path is kept

  auto s2 = ws_scope("/api/1/echo/7/");
  ASSERT_TRUE(routed_to<B>(outer.route(s2)));
  EXPECT_EQ(s2.kwarg("n"), "7");
  EXPECT_EQ(s2.kwarg("version"), "1");

  auto s3 = ws_scope("/api/x/chat/lobby/");
  EXPECT_EQ(outer.route(s3), nullptr);
}

TEST(URLRouter, FallsThroughANestedRouterThatDoesNotMatch) {
  auto inner = std::make_shared<URLRouter>(std::vector<Route>{path("only/", as_app<A>())});
  URLRouter outer({path("x/", inner), path("x/other/", as_app<B>())});
  auto s = ws_scope("/x/other/");
  EXPECT_TRUE(routed_to<B>(outer.route(s)));
}

TEST(ProtocolTypeRouter, RoutesByScopeType) {
  ProtocolTypeRouter router({
      {"websocket", std::make_shared<URLRouter>(std::vector<Route>{path("ws/", as_app<A>())})},
  });
  auto ws = ws_scope("/ws/");
  EXPECT_TRUE(routed_to<A>(router.route(ws)));
  Scope http = ws_scope("/ws/");
  http.type = "http";
  EXPECT_EQ(router.route(http), nullptr);
}

TEST(Scope, HeadersAreCaseInsensitiveAndQueryIsDecoded) {
  Scope s;
  s.headers = {{"origin", "http://x"}, {"cookie", "a=1"}};
  s.query_string = "token=a%20b&x=1+2&empty";
  EXPECT_EQ(s.header("Origin"), "http://x");
  EXPECT_FALSE(s.header("missing"));
  EXPECT_EQ(s.query("token"), "a b");
  EXPECT_EQ(s.query("x"), "1 2");
  EXPECT_EQ(s.query("empty"), "");
  EXPECT_FALSE(s.query("none"));
  EXPECT_EQ(percent_decode("%41%zz%4"), "A%zz%4");
}

// Found by fuzz_path_pattern: a path with %FF gave url_route kwargs that
// were not UTF-8, and putting them in JSON threw. Invalid bytes now become
// U+FFFD, as Python's unquote() gives them to Django Channels.
TEST(Scope, PercentDecodingAlwaysGivesValidUtf8) {
  EXPECT_EQ(percent_decode("/caf%C3%A9/"), "/caf\xC3\xA9/");                      // é stays é
  EXPECT_EQ(percent_decode("/a%FFb/"), "/a\xEF\xBF\xBD" "b/");                     // a lone byte
  EXPECT_EQ(percent_decode("%C0%AF"), "\xEF\xBF\xBD\xEF\xBF\xBD");               // overlong '/'
  EXPECT_EQ(percent_decode("%ED%A0%80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // a surrogate
  EXPECT_EQ(percent_decode("%F0%9F%98%80"), "\xF0\x9F\x98\x80");                  // an emoji
  EXPECT_EQ(percent_decode("x%E2%82"), "x\xEF\xBF\xBD\xEF\xBF\xBD");              // cut short
  PathPattern p(PathPattern::Kind::re_path, "^room/(?P<name>.+)/$", true);
  auto m = p.match(percent_decode("room/%FF%FE/"));
  ASSERT_TRUE(m);
  EXPECT_NO_THROW((void)m->kwargs.dump());
}
