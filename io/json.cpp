#include "io/json.h"

#include <cstdio>
#include <set>

#include "runtime/check.h"

namespace pw::json {

const char* Value::kind_name() const {
  switch (kind) {
    case Kind::Null: return "null";
    case Kind::Bool: return "a boolean";
    case Kind::Number: return "a number";
    case Kind::String: return "a string";
    case Kind::Array: return "an array";
    case Kind::Object: return "an object";
  }
  return "?";
}

const Value* Value::find(std::string_view key) const {
  for (const auto& m : members)
    if (m.first == key) return &m.second;
  return nullptr;
}

bool Value::is_uint64() const {
  if (kind != Kind::Number || text.empty() || text.size() > 20) return false;
  for (char c : text)
    if (c < '0' || c > '9') return false;
  // 20 digits may overflow: compare against 2^64-1 as text.
  return text.size() < 20 || text <= "18446744073709551615";
}

uint64_t Value::as_uint64() const {
  PW_CHECK(is_uint64(), "json: '", text, "' is not an unsigned 64-bit integer");
  uint64_t v = 0;
  for (char c : text) v = v * 10 + uint64_t(c - '0');
  return v;
}

namespace {

// Length of the valid UTF-8 sequence starting at s[pos], or 0 (RFC 3629: no
// overlong forms, no surrogates, nothing above U+10FFFF).
size_t utf8_seq_len(std::string_view s, size_t pos) {
  auto byte = [&](size_t k) -> unsigned { return pos + k < s.size() ? (unsigned char)s[pos + k] : 0u; };
  auto cont = [&](size_t k) { unsigned b = byte(k); return b >= 0x80 && b <= 0xBF; };
  unsigned b0 = byte(0);
  if (b0 < 0x80) return pos < s.size() ? 1 : 0;
  if (b0 >= 0xC2 && b0 <= 0xDF) return cont(1) ? 2 : 0;
  if (b0 >= 0xE0 && b0 <= 0xEF) {
    unsigned b1 = byte(1);
    if (b0 == 0xE0 && b1 < 0xA0) return 0;  // overlong
    if (b0 == 0xED && b1 > 0x9F) return 0;  // surrogate
    return cont(1) && cont(2) ? 3 : 0;
  }
  if (b0 >= 0xF0 && b0 <= 0xF4) {
    unsigned b1 = byte(1);
    if (b0 == 0xF0 && b1 < 0x90) return 0;
    if (b0 == 0xF4 && b1 > 0x8F) return 0;
    return cont(1) && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}

// Recursive descent over the bytes of `s`; pos_ is always the next unread byte.
class Parser {
 public:
  Parser(std::string_view s, const std::string& source, size_t base) : s_(s), source_(source), base_(base) {}

  Value parse_document() {
    skip_ws();
    Value v = value(0);
    skip_ws();
    if (pos_ != s_.size()) fail(pos_, "unexpected '", printable(s_[pos_]), "' after the end of the JSON value");
    return v;
  }

 private:
  std::string_view s_;
  const std::string& source_;
  size_t base_;
  size_t pos_ = 0;

  template <class... A>
  [[noreturn]] void fail(size_t at, const A&... a) const {
    std::ostringstream os;
    os << source_ << ": byte " << base_ + at << ": ";
    detail::stream_all(os, a...);
    throw Error(os.str());
  }
  static std::string printable(char c) {
    unsigned char u = (unsigned char)c;
    if (u >= 0x20 && u < 0x7f) return std::string(1, c);
    char buf[8];
    std::snprintf(buf, sizeof buf, "\\x%02x", u);
    return buf;
  }

  bool at_end() const { return pos_ >= s_.size(); }
  void skip_ws() {
    while (!at_end() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }
  void expect(char c, const char* context) {
    if (at_end()) fail(pos_, "unexpected end of JSON, expected '", c, "' ", context);
    if (s_[pos_] != c) fail(pos_, "expected '", c, "' ", context, ", found '", printable(s_[pos_]), "'");
    ++pos_;
  }

  Value value(int depth) {
    if (depth > kMaxDepth) fail(pos_, "JSON nested deeper than ", kMaxDepth, " levels");
    if (at_end()) fail(pos_, "unexpected end of JSON, expected a value");
    Value v;
    v.offset = base_ + pos_;
    char c = s_[pos_];
    if (c == '{') {
      v.kind = Value::Kind::Object;
      object(v, depth);
    } else if (c == '[') {
      v.kind = Value::Kind::Array;
      array(v, depth);
    } else if (c == '"') {
      v.kind = Value::Kind::String;
      v.text = string();
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      v.kind = Value::Kind::Number;
      v.text = number();
    } else if (literal("true")) {
      v.kind = Value::Kind::Bool;
      v.boolean = true;
    } else if (literal("false")) {
      v.kind = Value::Kind::Bool;
    } else if (literal("null")) {
      v.kind = Value::Kind::Null;
    } else {
      fail(pos_, "unexpected '", printable(c), "', expected a JSON value");
    }
    return v;
  }

  bool literal(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  void object(Value& v, int depth) {
    ++pos_;  // '{'
    skip_ws();
    if (!at_end() && s_[pos_] == '}') {
      ++pos_;
      return;
    }
    std::set<std::string> seen;
    for (;;) {
      skip_ws();
      if (at_end() || s_[pos_] != '"')
        fail(pos_, at_end() ? "unexpected end of JSON, expected an object key" : "expected a string key in the object");
      size_t key_at = pos_;
      std::string key = string();
      if (!seen.insert(key).second) fail(key_at, "duplicate key ", quote(key), " in the object");
      skip_ws();
      expect(':', "after an object key");
      skip_ws();
      Value item = value(depth + 1);
      v.members.emplace_back(std::move(key), std::move(item));
      skip_ws();
      if (at_end()) fail(pos_, "unexpected end of JSON inside an object");
      if (s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      expect('}', "or ',' in the object");
      return;
    }
  }

  void array(Value& v, int depth) {
    ++pos_;  // '['
    skip_ws();
    if (!at_end() && s_[pos_] == ']') {
      ++pos_;
      return;
    }
    for (;;) {
      skip_ws();
      v.items.push_back(value(depth + 1));
      skip_ws();
      if (at_end()) fail(pos_, "unexpected end of JSON inside an array");
      if (s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      expect(']', "or ',' in the array");
      return;
    }
  }

  std::string number() {
    size_t start = pos_;
    auto digits = [&] {
      size_t b = pos_;
      while (!at_end() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
      return pos_ - b;
    };
    if (s_[pos_] == '-') ++pos_;
    size_t int_at = pos_;
    size_t n = digits();
    if (n == 0) fail(pos_, "expected a digit in the number");
    if (n > 1 && s_[int_at] == '0') fail(int_at, "numbers may not have leading zeros");
    if (!at_end() && s_[pos_] == '.') {
      ++pos_;
      if (digits() == 0) fail(pos_, "expected a digit after the decimal point");
    }
    if (!at_end() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      ++pos_;
      if (!at_end() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
      if (digits() == 0) fail(pos_, "expected a digit in the exponent");
    }
    return std::string(s_.substr(start, pos_ - start));
  }

  unsigned hex4() {
    unsigned v = 0;
    for (int k = 0; k < 4; ++k) {
      if (at_end()) fail(pos_, "unexpected end of JSON in a \\u escape");
      char c = s_[pos_];
      unsigned d;
      if (c >= '0' && c <= '9') d = unsigned(c - '0');
      else if (c >= 'a' && c <= 'f') d = unsigned(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') d = unsigned(c - 'A' + 10);
      else fail(pos_, "expected a hex digit in a \\u escape, found '", printable(c), "'");
      v = v * 16 + d;
      ++pos_;
    }
    return v;
  }

  static void put_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out += char(cp);
    } else if (cp < 0x800) {
      out += char(0xC0 | (cp >> 6));
      out += char(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += char(0xE0 | (cp >> 12));
      out += char(0x80 | ((cp >> 6) & 0x3F));
      out += char(0x80 | (cp & 0x3F));
    } else {
      out += char(0xF0 | (cp >> 18));
      out += char(0x80 | ((cp >> 12) & 0x3F));
      out += char(0x80 | ((cp >> 6) & 0x3F));
      out += char(0x80 | (cp & 0x3F));
    }
  }

  std::string string() {
    size_t open = pos_;
    ++pos_;  // '"'
    std::string out;
    for (;;) {
      if (at_end()) fail(open, "unterminated string");
      unsigned char c = (unsigned char)s_[pos_];
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (c < 0x20) fail(pos_, "control character ", printable(char(c)), " in a string must be escaped");
      if (c == '\\') {
        ++pos_;
        if (at_end()) fail(pos_, "unterminated escape in a string");
        char e = s_[pos_++];
        switch (e) {
          case '"': out += '"'; break;
          case '\\': out += '\\'; break;
          case '/': out += '/'; break;
          case 'b': out += '\b'; break;
          case 'f': out += '\f'; break;
          case 'n': out += '\n'; break;
          case 'r': out += '\r'; break;
          case 't': out += '\t'; break;
          case 'u': {
            size_t esc_at = pos_ - 2;
            uint32_t cp = hex4();
            if (cp >= 0xDC00 && cp <= 0xDFFF) fail(esc_at, "unpaired low surrogate in a \\u escape");
            if (cp >= 0xD800 && cp <= 0xDBFF) {
              if (s_.substr(pos_, 2) != "\\u") fail(esc_at, "unpaired high surrogate in a \\u escape");
              pos_ += 2;
              uint32_t lo = hex4();
              if (lo < 0xDC00 || lo > 0xDFFF) fail(esc_at, "unpaired high surrogate in a \\u escape");
              cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            put_utf8(out, cp);
            break;
          }
          default: fail(pos_ - 1, "invalid escape '\\", printable(e), "' in a string");
        }
        continue;
      }
      if (c < 0x80) {
        out += char(c);
        ++pos_;
        continue;
      }
      size_t n = utf8_seq_len(s_, pos_);
      if (n == 0) fail(pos_, "invalid UTF-8 byte ", printable(char(c)), " in a string");
      out.append(s_.substr(pos_, n));
      pos_ += n;
    }
  }
};

}  // namespace

Value parse(std::string_view text, const std::string& source, size_t base_offset) {
  return Parser(text, source, base_offset).parse_document();
}

bool valid_utf8(std::string_view s) {
  for (size_t pos = 0; pos < s.size();) {
    size_t n = utf8_seq_len(s, pos);
    if (n == 0) return false;
    pos += n;
  }
  return true;
}

std::string quote(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out += '"';
  for (char ch : s) {
    unsigned char c = (unsigned char)ch;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += ch;
        }
    }
  }
  out += '"';
  return out;
}

}  // namespace pw::json
