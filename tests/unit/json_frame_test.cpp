// The JSON consumers' frame parsing: nesting is bounded before parsing.

#include <gtest/gtest.h>

#include "json_frame.hpp"

using channels::detail::json_nesting;
using channels::detail::parse_json_frame;

TEST(JsonFrame, NestingCountsArraysAndObjectsOutsideStrings) {
  EXPECT_EQ(json_nesting(R"("plain")", 8), 0u);
  EXPECT_EQ(json_nesting(R"({"a": [1, {"b": []}]})", 8), 4u);
  EXPECT_EQ(json_nesting(R"({"a": "[[[[{{{{"})", 8), 1u);
  EXPECT_EQ(json_nesting(R"(["\"[[[[", "\\", [[]]])", 8), 3u);
  EXPECT_EQ(json_nesting("[[][][]]", 8), 2u);
  // It stops counting just past the limit.
  EXPECT_EQ(json_nesting(std::string(1'000'000, '['), 128), 129u);
}

TEST(JsonFrame, DeepFramesAreRefusedWith1009AndInvalidOnesWith1007) {
  auto nested = [](int levels) { return std::string(levels, '[') + std::string(levels, ']'); };
  auto ok = parse_json_frame(nested(128), 128);
  EXPECT_EQ(ok.close_code, 0);
  EXPECT_TRUE(ok.content.is_array());
  auto deep = parse_json_frame(nested(129), 128);
  EXPECT_EQ(deep.close_code, 1009);
  EXPECT_NE(std::string(deep.reason).find("json_max_depth"), std::string::npos);
  // Unbalanced: refused by depth alone, without parsing a megabyte.
  EXPECT_EQ(parse_json_frame(std::string(1 << 20, '['), 128).close_code, 1009);
  EXPECT_EQ(parse_json_frame("{not json", 128).close_code, 1007);
  EXPECT_EQ(parse_json_frame(R"({"message": "[[[["})", 1).close_code, 0);
}
