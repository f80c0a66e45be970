// The Redis layer's wire format, checked against values channels_redis 4
// itself produced (see the comments for where each one comes from).

#include <gtest/gtest.h>

#include <channels/errors.hpp>

#include "redis/fernet.hpp"
#include "redis/redis_url.hpp"
#include "redis/wire.hpp"

using namespace channels;
using namespace channels::redis;

namespace {
std::string unhex(std::string_view h) {
  std::string out;
  for (std::size_t i = 0; i + 1 < h.size(); i += 2) out += static_cast<char>(std::stoi(std::string(h.substr(i, 2)), nullptr, 16));
  return out;
}
}  // namespace

TEST(RedisWire, ConsistentHashMatchesChannelsRedis) {
  // crc32("grp") = 0xffd56eff -> 3839; crc32("chat_lobby") = 0xcd99b86c -> 2156.
  EXPECT_EQ(consistent_hash("grp", 1), 0u);
  EXPECT_EQ(consistent_hash("grp", 2), 1u);
  EXPECT_EQ(consistent_hash("grp", 3), 2u);
  EXPECT_EQ(consistent_hash("grp", 4), 3u);
  EXPECT_EQ(consistent_hash("chat_lobby", 2), 1u);
  EXPECT_EQ(consistent_hash("chat_lobby", 3), 1u);
  EXPECT_EQ(consistent_hash("chat_lobby", 4), 2u);
  // crc32("specific.abc!") = 0xf5d88e43 -> 3651 of 4096.
  EXPECT_EQ(consistent_hash("specific.abc!", 2), 1u);
  EXPECT_EQ(consistent_hash("specific.abc!", 9), 8u);  // int(3651 / (4096/9)) = 8
}

TEST(RedisWire, KeysAndNames) {
  EXPECT_EQ(non_local_name("specific.abc!def"), "specific.abc!");
  EXPECT_EQ(non_local_name("worker.tasks"), "worker.tasks");
  EXPECT_EQ(channel_key("asgi", "specific.abc!def"), "asgispecific.abc!");
  EXPECT_EQ(channel_key("asgi", "worker.tasks"), "asgiworker.tasks");
  EXPECT_EQ(group_key("asgi", "chat_lobby"), "asgi:group:chat_lobby");
}

TEST(RedisWire, ScoresReadLikePythonRepr) {
  EXPECT_EQ(score_text(1796020046.745017), "1796020046.745017");
  EXPECT_EQ(score_text(1796019996.9254127), "1796019996.9254127");
  EXPECT_EQ(score_text(1.5), "1.5");
}

TEST(RedisWire, GlobPatternsLikeFnmatch) {
  EXPECT_TRUE(glob_match("http.response!*", "http.response!abc"));
  EXPECT_FALSE(glob_match("http.response!*", "xhttp.response!abc"));
  EXPECT_TRUE(glob_match("specific.?bc!*", "specific.abc!x"));
  EXPECT_TRUE(glob_match("chan[0-9]", "chan5"));
  EXPECT_FALSE(glob_match("chan[!0-9]", "chan5"));
  EXPECT_TRUE(glob_match("chan[!0-9]", "chanx"));
  EXPECT_TRUE(glob_match("*", ""));
  EXPECT_FALSE(glob_match("abc", "abcd"));
  EXPECT_TRUE(glob_match("a[b", "a[b"));  // an unclosed '[' is a literal
}

TEST(RedisWire, PackMatchesPythonMsgpackBytes) {
  // msgpack.packb({"type": "x.y", "n": 1}, use_bin_type=True), keys sorted as here.
  Message m{{"n", 1}, {"type", "x.y"}};
  EXPECT_EQ(pack(m), unhex("82a16e01a474797065a3782e79"));
  // Bytes are msgpack bin, not str.
  Message b{{"b", Json::binary({0x00, 0xff})}};
  EXPECT_EQ(pack(b), unhex("81a162c40200ff"));
}

TEST(RedisWire, PackWithAppendsOneEntry) {
  Message m{{"type", "chat.message"}, {"message", "hi"}};
  Json names = Json::array({"specific.P!a", "specific.P!b"});
  Message full = m;
  full["__asgi_channel__"] = names;
  auto appended = pack_with(pack(m), asgi_channel_key, names);
  EXPECT_EQ(Json::from_msgpack(appended), full);
  // Crossing from fixmap (15 entries) to map16 (16) rewrites the header.
  Message big;
  for (int i = 0; i < 15; ++i) big["k" + std::to_string(i)] = i;
  auto grown = pack_with(pack(big), "z", "last");
  EXPECT_EQ(static_cast<unsigned char>(grown[0]), 0xde);
  big["z"] = "last";
  EXPECT_EQ(Json::from_msgpack(grown), big);
}

TEST(RedisWire, MemberRoundTripAndRandomPrefix) {
  Message m{{"type", "x.y"}, {"l", Json::array({1, "two"})}, {"f", 1.5}, {"b", Json::binary({1, 2, 3})}};
  std::string body = pack_with(pack(m), asgi_channel_key, "specific.P!L");
  auto a = make_member(body, nullptr), b = make_member(body, nullptr);
  ASSERT_EQ(a.size(), body.size() + 12);
  EXPECT_NE(a.substr(0, 12), b.substr(0, 12));  // equal messages stay distinct members
  EXPECT_NE(a.substr(8, 4), b.substr(8, 4));    // the last 4 prefix bytes are random too
  std::string error;
  auto d = read_member(a, nullptr, 70, error);
  ASSERT_TRUE(d) << error;
  EXPECT_EQ(d->message, m);
  EXPECT_EQ(d->channels, "specific.P!L");
}

TEST(RedisWire, ReadsWhatChannelsRedisWrote) {
  // A member observed in Redis after channels_redis' group_send (any 12
  // bytes, then the msgpack map with __asgi_channel__ last, as a list).
  std::string member(12, '\x01');
  member += unhex("83a474797065ac636861742e6d657373616765a76d657373616765a2686ab05f5f617367695f6368616e6e656c5f5f91"
                  "ac73706563696669632e50214c");
  std::string error;
  auto d = read_member(member, nullptr, 70, error);
  ASSERT_TRUE(d) << error;
  EXPECT_EQ(d->message, (Message{{"type", "chat.message"}, {"message", "hj"}}));
  EXPECT_EQ(d->channels, Json::array({"specific.P!L"}));
}

TEST(RedisWire, RejectsWhatPythonRejects) {
  std::string error;
  std::string prefix(12, '\0');
  EXPECT_FALSE(read_member("short", nullptr, 70, error));
  EXPECT_FALSE(read_member(prefix + unhex("81a161a2fffe"), nullptr, 70, error));
  EXPECT_NE(error.find("UTF-8"), std::string::npos) << error;
  EXPECT_FALSE(read_member(prefix + unhex("810101"), nullptr, 70, error));      // an integer map key
  EXPECT_FALSE(read_member(prefix + unhex("80c0"), nullptr, 70, error));        // trailing bytes
  EXPECT_FALSE(read_member(prefix + unhex("93010203"), nullptr, 70, error));    // not a map
  EXPECT_NE(error.find("not a map"), std::string::npos) << error;
}

TEST(RedisWire, FernetMatchesCryptographyWithChannelsRedisKeys) {
  // From Python: RedisChannelLayer(symmetric_encryption_keys=["secret", "old"])
  // .crypter._fernets[i]._encrypt_from_parts(body, 1796020046, bytes(range(16))).
  MultiFernet f({"secret", "old"});
  std::string body = unhex("82a474797065a3782e79a16e01");
  std::string iv;
  for (int i = 0; i < 16; ++i) iv += static_cast<char>(i);
  const std::string python_token =
      "gAAAAABrDRdOAAECAwQFBgcICQoLDA0ODzalVVLk6p7PeFW1KPrJ81PMOJbPCrsfROkw99JXMmWWbXzTv1ZZkjzLkDvZ7LQTHQ==";
  EXPECT_EQ(f.encrypt_at(body, 1796020046, iv), python_token);
  std::string error;
  auto plain = f.decrypt_at(python_token, 70, 1796020046 + 5, error);
  ASSERT_TRUE(plain) << error;
  EXPECT_EQ(*plain, body);
  // Decrypting tries every key: the second one made this.
  auto old = f.decrypt_at("gAAAAABrDRdOAAECAwQFBgcICQoLDA0OD_K7QEwtgLVbSU0DGPTsi_LhEKHnjDsS4R63-KQSifNhj9mA7LTZiYneF_4Xjs076w==",
                          70, 1796020046, error);
  ASSERT_TRUE(old) << error;
  EXPECT_EQ(*old, "old key");
  // Older than the ttl (expiry + 10): refused, as Python does.
  EXPECT_FALSE(f.decrypt_at(python_token, 70, 1796020046 + 71, error));
  EXPECT_NE(error.find("older"), std::string::npos);
  // Another key: refused.
  EXPECT_FALSE(MultiFernet({"other"}).decrypt_at(python_token, 70, 1796020046, error));
  // Tampered: refused.
  std::string bad = python_token;
  bad[40] = bad[40] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(f.decrypt_at(bad, 70, 1796020046, error));
}

TEST(RedisWire, EncryptedMemberRoundTrip) {
  MultiFernet f({"k1"});
  Message m{{"type", "secret.thing"}, {"x", "y"}};
  auto member = make_member(pack(m), &f);
  EXPECT_EQ(member.substr(12, 6), "gAAAAA");  // prefix stays outside the token
  std::string error;
  auto d = read_member(member, &f, 70, error);
  ASSERT_TRUE(d) << error;
  EXPECT_EQ(d->message, m);
  EXPECT_FALSE(read_member(member, nullptr, 70, error));  // encrypted, read as plain: not msgpack
}

TEST(RedisUrl, Parses) {
  auto e = parse_url("redis://127.0.0.1:6380");
  EXPECT_EQ(e.host, "127.0.0.1");
  EXPECT_EQ(e.port, 6380);
  EXPECT_EQ(e.db, 0);
  auto f = parse_url("redis://user:p%40ss@example.org/3");
  EXPECT_EQ(f.username, "user");
  EXPECT_EQ(f.password, "p@ss");
  EXPECT_EQ(f.port, 6379);
  EXPECT_EQ(f.db, 3);
  EXPECT_EQ(f.display(), "redis://user:***@example.org:6379/3");
  auto g = parse_url("redis://:secret@[::1]:7000");
  EXPECT_EQ(g.host, "::1");
  EXPECT_EQ(g.password, "secret");
  EXPECT_EQ(g.port, 7000);
  for (const char* bad : {"127.0.0.1:6379", "rediss://h:1", "unix:///tmp/r.sock", "redis://h:0", "redis://h:x",
                          "redis://h/db", "redis://h:1?timeout=1"})
    EXPECT_THROW(parse_url(bad), ConfigError) << bad;
}
