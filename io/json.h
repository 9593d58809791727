// A small, strict JSON reader and string quoting, for file formats that are
// JSON by specification (the safetensors header) and must be validated byte by
// byte: yaml-cpp reads JSON too, but it accepts much that is not JSON and its
// errors carry lines, not byte offsets.
//
// Strict means RFC 8259: no comments, no trailing commas, no NaN, strings in
// valid UTF-8 with control characters escaped, nothing after the value but
// whitespace, duplicate object keys rejected. Nesting is capped (kMaxDepth) so a
// hostile file cannot overflow the stack.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pw::json {

struct Value {
  enum class Kind { Null, Bool, Number, String, Array, Object };
  Kind kind = Kind::Null;
  bool boolean = false;
  std::string text;                                     // String: decoded UTF-8; Number: the literal
  std::vector<Value> items;                             // Array
  std::vector<std::pair<std::string, Value>> members;   // Object, in file order
  size_t offset = 0;                                    // where the value starts, in source bytes

  bool is_null() const { return kind == Kind::Null; }
  bool is_string() const { return kind == Kind::String; }
  bool is_number() const { return kind == Kind::Number; }
  bool is_array() const { return kind == Kind::Array; }
  bool is_object() const { return kind == Kind::Object; }
  const char* kind_name() const;  // "a string", "an object", ... for error messages

  const Value* find(std::string_view key) const;  // Object member or nullptr
  // Number literals with no sign, fraction or exponent that fit in 64 bits.
  bool is_uint64() const;
  uint64_t as_uint64() const;  // requires is_uint64()
};

constexpr int kMaxDepth = 64;

// Parses one JSON value filling all of `text`. Throws pw::Error
// "<source>: byte <base_offset + position>: <what is wrong>", where
// base_offset says where `text` sits inside the file being read.
Value parse(std::string_view text, const std::string& source, size_t base_offset = 0);

// Whether s is well-formed UTF-8 (what a JSON string must hold).
bool valid_utf8(std::string_view s);

// The JSON string literal for s (quotes included); s is taken as UTF-8 and
// control characters, '"' and '\' are escaped.
std::string quote(std::string_view s);

}  // namespace pw::json
