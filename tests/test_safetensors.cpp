// safetensors read/write: byte-exact round trips, the header layout PyTorch
// expects, every validation error (exact text), fuzzing with truncations and
// flipped bytes, a file written by PyTorch, and crash-safe atomic writes.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "autograd/tensor.h"
#include "io/atomic_file.h"
#include "io/json.h"
#include "io/safetensors.h"

using namespace pw;

namespace {

// A file of: u64 header length `len`, header, data.
std::string raw_n(uint64_t len, const std::string& header, const std::string& data = "") {
  std::string out(8, '\0');
  for (int k = 0; k < 8; ++k) out[k] = char(len >> (8 * k));
  return out + header + data;
}
std::string raw(const std::string& header, const std::string& data = "") { return raw_n(header.size(), header, data); }

void put(const std::string& path, const std::string& bytes) {
  // A fresh file: rewriting one in place makes ext4 flush it on close
  // (auto_da_alloc), which turns the fuzz loop from milliseconds into seconds.
  std::remove(path.c_str());
  FILE* f = std::fopen(path.c_str(), "wb");
  REQUIRE(f);
  std::fwrite(bytes.data(), 1, bytes.size(), f);
  std::fclose(f);
}

bool exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

// The error load_safetensors raises on these bytes, or "" if it loads.
std::string load_error(const std::string& bytes) {
  put("st_bad.safetensors", bytes);
  try {
    load_safetensors("st_bad.safetensors");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::string bytes_of(const Tensor& t) {
  return std::string((const char*)t.raw(), (size_t)t.numel() * dtype_size(t.dtype()));
}

// A few tensors of every dtype and some awkward shapes; values are random
// (never zeros or ones) so an offset slip shows.
std::vector<std::pair<std::string, Tensor>> sample_tensors() {
  Generator g(42);
  Tensor half = empty({3, 5}, DType::BF16);  // BF16/F16 are stored as raw 16-bit words
  Tensor f16 = empty({7}, DType::F16);
  Tensor bits = uniform({11}, -9, 9, DType::F32, &g);  // 44 random bytes for half and f16
  std::memcpy(half.raw(), bits.raw(), 30);
  std::memcpy(f16.raw(), (const char*)bits.raw() + 30, 14);
  return {
      {"blocks.0.attn.qkv.weight", uniform({6, 4}, -2, 2, DType::F32, &g)},
      {"blocks.0.attn.qkv.bias", normal({6}, 0, 1, DType::F64, &g)},
      {"head.weight", uniform({3, 5, 7}, -1, 1, DType::F32, &g)},
      {"labels", from_indices({3, -7, 1LL << 40}, {3})},
      {"step", full({}, 12345, DType::I64)},        // a 0-d scalar
      {"empty", empty({0, 3}, DType::F32)},         // no bytes at all
      {"pos_embed.bf16", half},
      {"z.f16", f16},
      {"na\xc3\xafve \"quoted\" name\\", uniform({2}, 3, 4, DType::F64, &g)},
  };
}

}  // namespace

TEST_CASE("round trip keeps every dtype, shape and byte") {
  auto ts = sample_tensors();
  std::map<std::string, std::string> meta = {{"format", "pt"}, {"config", "model:\n  depth: 6\n"}, {"\xe2\x9c\x93", "\t\x01"}};
  save_safetensors("st_roundtrip.safetensors", ts, meta);
  SafetensorsFile f = load_safetensors("st_roundtrip.safetensors");
  CHECK(f.metadata == meta);
  CHECK(f.tensors.size() == ts.size());
  for (const auto& [name, t] : ts) {
    const std::string& tensor = name;  // clang < 16 can't capture bindings
    CAPTURE(tensor);
    REQUIRE(f.has(name));
    const Tensor& u = f.get(name);
    CHECK(u.dtype() == t.dtype());
    CHECK(u.shape() == t.shape());
    CHECK(bytes_of(u) == bytes_of(t));
  }
  CHECK(f.get("step").item() == 12345);
  CHECK_THROWS_WITH_AS(f.get("nope"), "st_roundtrip.safetensors: no tensor \"nope\" (the file holds 9 tensors)", Error);
  // No metadata: the header has no __metadata__ entry.
  save_safetensors("st_nometa.safetensors", {{"x", full({2}, 1.5)}});
  CHECK(load_safetensors("st_nometa.safetensors").metadata.empty());
  save_safetensors("st_none.safetensors", {});
  CHECK(load_safetensors("st_none.safetensors").tensors.empty());
}

TEST_CASE("the layout is what PyTorch's reader expects") {
  Tensor a = from_vector({1.5, -2.25, 3}, {3}, DType::F32), b = from_indices({7, 8}, {1, 2});
  save_safetensors("st_layout.safetensors", {{"b", b}, {"a", a}}, {{"format", "pt"}});
  std::string file = read_file("st_layout.safetensors");
  uint64_t n = 0;
  for (int k = 0; k < 8; ++k) n |= (uint64_t)(unsigned char)file[k] << (8 * k);
  std::string header = file.substr(8, n);
  CHECK(n % 8 == 0);
  // Sorted by name, packed, padded with spaces.
  std::string want = R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},)"
                     R"("b":{"dtype":"I64","shape":[1,2],"data_offsets":[12,28]}})";
  CHECK(header.substr(0, want.size()) == want);
  CHECK(header.substr(want.size()) == std::string(n - want.size(), ' '));
  CHECK(file.size() == 8 + n + 28);
  CHECK(file.substr(8 + n, 12) == bytes_of(a));
  CHECK(file.substr(8 + n + 12) == bytes_of(b));
}

TEST_CASE("save refuses what the format can't hold") {
  Tensor x = full({2}, 1.0);
  CHECK_THROWS_WITH_AS(save_safetensors("st_x.safetensors", {{"a", x}, {"a", x}}), doctest::Contains("two tensors are named 'a'"),
                       Error);
  CHECK_THROWS_WITH_AS(save_safetensors("st_x.safetensors", {{"", x}}), doctest::Contains("empty name"), Error);
  CHECK_THROWS_WITH_AS(save_safetensors("st_x.safetensors", {{"__metadata__", x}}), doctest::Contains("reserved"), Error);
  CHECK_THROWS_WITH_AS(save_safetensors("st_x.safetensors", {{"a", Tensor()}}), doctest::Contains("'a' is undefined"), Error);
  CHECK_THROWS_WITH_AS(save_safetensors("st_x.safetensors", {{"bad\xff", x}}), doctest::Contains("not valid UTF-8"), Error);
  CHECK_THROWS_WITH_AS(save_safetensors("st_x.safetensors", {{"a", x}}, {{"k", "\xc3"}}),
                       doctest::Contains("metadata entry \"k\" is not valid UTF-8"), Error);
  const std::string no_dir = "cannot create 'no/such/dir/x.safetensors.tmp." + std::to_string(getpid()) +
                             "' to write 'no/such/dir/x.safetensors': No such file or directory";
  CHECK_THROWS_WITH_AS(save_safetensors("no/such/dir/x.safetensors", {{"a", x}}), no_dir.c_str(), Error);
  CHECK_FALSE(exists("st_x.safetensors"));
}

TEST_CASE("every malformed file is a pw::Error naming the file and the byte or tensor") {
  const std::string P = "st_bad.safetensors: ";
  const std::string t8(8, '\0');  // data for one F32[2]
  auto one = [](const std::string& entry) { return "{\"t\":" + entry + "}"; };

  CHECK(load_error("") == P + "byte 0: the file is 0 bytes, too short to hold the 8-byte header length; not a safetensors file");
  CHECK(load_error("abcde") == P + "byte 0: the file is 5 bytes, too short to hold the 8-byte header length; not a safetensors file");
  CHECK(load_error(raw_n(3, "{}")) ==
        P + "byte 0: header length 3 runs past the end of the file (10 bytes); the file is truncated or not a safetensors file");
  CHECK(load_error(raw_n(1ULL << 40, "{}")) ==
        P + "byte 0: header length 1099511627776 is over the 100000000-byte limit; not a safetensors file, or a corrupt one");
  CHECK(load_error(raw_n(~1ULL, "{}")) == P + "byte 0: header length 18446744073709551614 is over the 100000000-byte limit; "
                                             "not a safetensors file, or a corrupt one");
  CHECK(load_error(raw("[]")) == P + "byte 8: the header must be a JSON object starting with '{'; not a safetensors file");
  CHECK(load_error(raw(" ")) == P + "byte 8: header of 1 bytes is too short for a JSON object");
  CHECK(load_error(raw("{\"t\":")) == P + "byte 13: unexpected end of JSON, expected a value");
  CHECK(load_error(raw("{\"t\" 1}")) == P + "byte 13: expected ':' after an object key, found '1'");
  CHECK(load_error(raw("{\"t\":{},}")) == P + "byte 16: expected a string key in the object");
  CHECK(load_error(raw("{} x")) == P + "byte 11: unexpected 'x' after the end of the JSON value");
  CHECK(load_error(raw("{\"a\xff\":1}")) == P + "byte 11: invalid UTF-8 byte \\xff in a string");
  CHECK(load_error(raw("{\"t\":1,\"t\":2}")) == P + "byte 15: duplicate key \"t\" in the object");
  CHECK(load_error(raw(std::string(70, '[') + std::string(70, ']'))) ==
        P + "byte 8: the header must be a JSON object starting with '{'; not a safetensors file");
  CHECK(load_error(raw("{\"t\":" + std::string(70, '[') + std::string(70, ']') + "}")) ==
        P + "byte 77: JSON nested deeper than 64 levels");

  CHECK(load_error(raw(one("1"))) == P + "byte 13: tensor \"t\": expected an object with dtype, shape and data_offsets, got a number");
  CHECK(load_error(raw(one(R"({"shape":[2],"data_offsets":[0,8]})"), t8)) == P + "byte 13: tensor \"t\": missing \"dtype\"");
  CHECK(load_error(raw(one(R"({"dtype":"I32","shape":[2],"data_offsets":[0,8]})"), t8)) ==
        P + "byte 22: tensor \"t\": dtype \"I32\" is not supported (patchwork reads F32, F64, I64, BF16 and F16)");
  CHECK(load_error(raw(one(R"({"dtype":7,"shape":[2],"data_offsets":[0,8]})"), t8)) ==
        P + "byte 22: tensor \"t\": dtype must be a string");
  CHECK(load_error(raw(one(R"({"dtype":"F32","shape":[-2],"data_offsets":[0,8]})"), t8)) ==
        P + "byte 37: tensor \"t\": shape entries must be non-negative integers, got -2");
  CHECK(load_error(raw(one(R"({"dtype":"F32","shape":[2.0],"data_offsets":[0,8]})"), t8)) ==
        P + "byte 37: tensor \"t\": shape entries must be non-negative integers, got 2.0");
  CHECK(load_error(raw(one(R"({"dtype":"F32","shape":2,"data_offsets":[0,8]})"), t8)) ==
        P + "byte 36: tensor \"t\": shape must be an array of sizes");
  CHECK(load_error(raw(one(R"({"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]})"), t8)) ==
        P + "byte 36: tensor \"t\": shape has more than 2^63 elements");
  CHECK(load_error(raw(one(R"({"dtype":"F32","shape":[2],"data_offsets":[0]})"), t8)) ==
        P + "byte 55: tensor \"t\": data_offsets must be [begin, end], two non-negative integers");
  CHECK(load_error(raw(one(R"({"dtype":"F32","shape":[2],"data_offsets":[8,0]})"), t8)) ==
        P + "byte 55: tensor \"t\": data_offsets [8, 0] end before they begin");
  CHECK(load_error(raw(one(R"({"dtype":"F32","shape":[2],"data_offsets":[0,16]})"), t8)) ==
        P + "byte 55: tensor \"t\": data_offsets [0, 16] run past the end of the data (8 bytes; the file is truncated or "
            "the header is corrupt)");
  CHECK(load_error(raw(one(R"({"dtype":"F32","shape":[3],"data_offsets":[0,8]})"), t8)) ==
        P + "byte 55: tensor \"t\": data_offsets [0, 8] hold 8 bytes but F32[3] needs 3 x 4 bytes");
  CHECK(load_error(raw(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                       R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", t8)) ==
        P + "tensor \"b\": data_offsets [4, 8] overlap tensor \"a\" [0, 8)");
  CHECK(load_error(raw(one(R"({"dtype":"F32","shape":[1],"data_offsets":[4,8]})"), t8)) ==
        P + "byte 62: data bytes [0, 4) belong to no tensor; the header is corrupt");
  CHECK(load_error(raw(one(R"({"dtype":"F32","shape":[1],"data_offsets":[0,4]})"), t8)) ==
        P + "byte 66: 4 bytes after the last tensor belong to no tensor; the header is corrupt or the file has trailing data");
  CHECK(load_error(raw(R"({"__metadata__":{"k":1}})")) == P + "byte 29: __metadata__ value for \"k\" must be a string, got a number");
  CHECK(load_error(raw(R"({"__metadata__":[]})")) == P + "byte 24: __metadata__ must be an object of strings");
  CHECK_THROWS_WITH_AS(load_safetensors("no/such.safetensors"),
                       "cannot open safetensors file 'no/such.safetensors': No such file or directory", Error);
  // Unknown fields are ignored, as the reference reader does; empty tensors may share an offset.
  CHECK(load_error(raw(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":1},)"
                       R"("e":{"dtype":"F64","shape":[0],"data_offsets":[8,8]},"e2":{"dtype":"I64","shape":[5,0],"data_offsets":[8,8]}})",
                       t8)) == "");
}

TEST_CASE("the header's JSON reader is strict RFC 8259") {
  json::Value v = json::parse(R"( {"a": [1, -2.5e3, 0, true, null], "s": "x\"\\\/\n\u00e9\ud83d\ude00"} )", "j");
  REQUIRE(v.is_object());
  CHECK(v.find("a")->items.size() == 5);
  CHECK(v.find("a")->items[1].text == "-2.5e3");
  CHECK(v.find("s")->text == "x\"\\/\n\xc3\xa9\xf0\x9f\x98\x80");
  CHECK(v.find("a")->offset == 7);
  CHECK(json::parse("18446744073709551615", "j").as_uint64() == ~0ULL);
  CHECK_FALSE(json::parse("18446744073709551616", "j").is_uint64());
  CHECK_FALSE(json::parse("1.0", "j").is_uint64());
  auto err = [](const char* text) {
    try {
      json::parse(text, "j", 100);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  CHECK(err("01") == "j: byte 100: numbers may not have leading zeros");
  CHECK(err("[1,]") == "j: byte 103: unexpected ']', expected a JSON value");
  CHECK(err("{\"a\":1,}") == "j: byte 107: expected a string key in the object");
  CHECK(err("\"\\ud800\"") == "j: byte 101: unpaired high surrogate in a \\u escape");
  CHECK(err("\"\\x\"") == "j: byte 102: invalid escape '\\x' in a string");
  CHECK(err("\"a\tb\"") == "j: byte 102: control character \\x09 in a string must be escaped");
  CHECK(err("\"\xc0\xaf\"") == "j: byte 101: invalid UTF-8 byte \\xc0 in a string");  // overlong '/'
  CHECK(err("NaN") == "j: byte 100: unexpected 'N', expected a JSON value");
  CHECK(err("") == "j: byte 100: unexpected end of JSON, expected a value");
  CHECK(json::quote("a\"\\\n\x01\xc3\xa9") == "\"a\\\"\\\\\\n\\u0001\xc3\xa9\"");
  CHECK(json::valid_utf8("\xc3\xa9"));
  CHECK_FALSE(json::valid_utf8("\xed\xa0\x80"));  // a UTF-16 surrogate
}

TEST_CASE("truncated or corrupted files throw pw::Error or load consistently") {
  auto ts = sample_tensors();
  save_safetensors("st_fuzz_src.safetensors", ts, {{"format", "pt"}, {"epoch", "3"}});
  const std::string good = read_file("st_fuzz_src.safetensors");
  auto consistent = [](const std::string& bytes) -> bool {
    // Loads fine: the tensors must tile the data exactly.
    put("st_fuzz.safetensors", bytes);
    try {
      SafetensorsFile f = load_safetensors("st_fuzz.safetensors");
      uint64_t n = 0;
      for (int k = 0; k < 8; ++k) n |= (uint64_t)(unsigned char)bytes[k] << (8 * k);
      uint64_t total = 0;
      for (const auto& kv : f.tensors) total += kv.second.numel() * dtype_size(kv.second.dtype());
      return total == bytes.size() - 8 - n;
    } catch (const Error&) {
      return true;
    } catch (...) {
      return false;  // anything but pw::Error is a bug
    }
  };
  // Every truncation must fail: the tensors no longer fit the data.
  for (size_t len = 0; len < good.size(); ++len) {
    CAPTURE(len);
    CHECK(load_error(good.substr(0, len)) != "");
  }
  int loaded = 0, rejected = 0;
  for (size_t pos = 0; pos < good.size(); ++pos)
    for (unsigned char mask : {0x01, 0x20, 0x80, 0xff}) {
      std::string bad = good;
      bad[pos] = char((unsigned char)bad[pos] ^ mask);
      CAPTURE(pos);
      CAPTURE((int)mask);
      CHECK(consistent(bad));
      (load_error(bad).empty() ? loaded : rejected) += 1;
    }
  CHECK(loaded > 0);    // flips in the data bytes load
  CHECK(rejected > 0);  // flips in the header mostly don't
  // Random garbage after a plausible length.
  Generator g(7);
  for (int trial = 0; trial < 200; ++trial) {
    Tensor r = uniform({64}, 0, 256, DType::F32, &g);
    std::string bytes = raw("{\"");
    for (double v : r.to_vector()) bytes += char((int)v);
    bytes[0] = char(2 + trial % 60);
    CHECK(consistent(bytes));
  }
}

TEST_CASE("a file written by PyTorch loads (tests/fixtures/torch_written.safetensors)") {
  // Written by scripts/check_safetensors.py --write-fixture: values are
  // arange(numel) * scale in the stored dtype.
  SafetensorsFile f = load_safetensors(std::string(PW_SOURCE_DIR) + "/tests/fixtures/torch_written.safetensors");
  CHECK(f.metadata.at("format") == "pt");
  CHECK(f.metadata.at("writer") == "torch");
  const Tensor& w = f.get("layer.weight");
  CHECK(w.dtype() == DType::F32);
  CHECK(w.shape() == Shape{3, 5});
  const Tensor& d = f.get("double");
  CHECK(d.dtype() == DType::F64);
  CHECK(d.shape() == Shape{7});
  const Tensor& i = f.get("index");
  CHECK(i.dtype() == DType::I64);
  CHECK(i.shape() == Shape{2, 3});
  const Tensor& h = f.get("half");
  CHECK(h.dtype() == DType::F16);
  CHECK(h.shape() == Shape{5});
  const Tensor& bf = f.get("bf16");
  CHECK(bf.dtype() == DType::BF16);
  CHECK(bf.shape() == Shape{3});
  std::vector<double> wv = w.to_vector(), dv = d.to_vector(), iv = i.to_vector();
  for (int k = 0; k < 15; ++k) CHECK(wv[k] == doctest::Approx(k * 0.25));
  for (int k = 0; k < 7; ++k) CHECK(dv[k] == doctest::Approx(k * -1.5));
  for (int k = 0; k < 6; ++k) CHECK(iv[k] == k * 1000000007.0);
  // F16 1.0 = 0x3C00, BF16 1.0 = 0x3F80: arange(n) * 1 gives 0, 1, 2, ...
  const uint16_t* hv = (const uint16_t*)h.raw();
  const uint16_t* bv = (const uint16_t*)bf.raw();
  CHECK(hv[0] == 0x0000);
  CHECK(hv[1] == 0x3C00);
  CHECK(hv[2] == 0x4000);
  CHECK(bv[1] == 0x3F80);
  CHECK(bv[2] == 0x4000);
  CHECK(f.get("scalar").shape() == Shape{});
  CHECK(f.get("scalar").item() == 42.0);
}

TEST_CASE("writes a file for scripts/check_safetensors.py") {
  // `scripts/check_safetensors.py build/safetensors_interop.safetensors`
  // opens it with the safetensors package and torch and checks the values.
  save_safetensors("safetensors_interop.safetensors",
                   {{"w", from_vector({0, 0.5, 1, 1.5, 2, 2.5}, {2, 3}, DType::F32)},
                    {"b", from_vector({-1, 1e-300, 3.25}, {3}, DType::F64)},
                    {"idx", from_indices({0, -1, 1LL << 62}, {3})},
                    {"scalar", full({}, 7, DType::F32)},
                    {"empty", empty({0, 4}, DType::F32)},
                    {"odd\xc3\xa9 \"name\"", from_vector({1, 2, 3, 4, 5}, {5}, DType::F32)}},
                   {{"format", "pt"}, {"config", "model:\n  depth: 6\n"}});
  CHECK(load_safetensors("safetensors_interop.safetensors").tensors.size() == 6);
}

TEST_CASE("atomic writes replace the whole file or nothing") {
  const std::string path = "st_atomic.txt";
  write_file_atomic(path, "old contents");
  CHECK(read_file(path) == "old contents");
  {
    AtomicFile f(path);
    f.write("half-written new con");
    CHECK(exists(f.temp_path()));
    CHECK(read_file(path) == "old contents");  // not visible until commit
  }  // abandoned (an exception unwinding, say): the temp file goes, the old file stays
  CHECK(read_file(path) == "old contents");
  CHECK_FALSE(exists(path + ".tmp." + std::to_string(getpid())));
  {
    AtomicFile f(path);
    f.write("new ");
    f.write("contents");
    CHECK(f.bytes_written() == 12);
    f.commit();
    CHECK_THROWS_WITH_AS(f.write("x"), doctest::Contains("already committed"), Error);
  }
  CHECK(read_file(path) == "new contents");
  CHECK_THROWS_WITH_AS(read_file("no/such/file"), "cannot open 'no/such/file': No such file or directory", Error);
  CHECK_THROWS_WITH_AS(write_file_atomic("no/such/dir/f", "x"), doctest::Contains("No such file or directory"), Error);

  // Kill a writer mid-stream, many times: the file is always one whole version.
  const size_t kSize = 1 << 20;
  auto version = [&](char c) { return std::string(kSize, c); };
  write_file_atomic(path, version('a'));
  for (int round = 0; round < 5; ++round) {
    pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      try {
        for (int k = 0;; ++k) write_file_atomic(path, version(char('b' + k % 20)));
      } catch (...) {
      }
      _exit(1);
    }
    usleep(20000 + round * 7000);
    kill(child, SIGKILL);
    int status = 0;
    waitpid(child, &status, 0);
    std::string now = read_file(path);
    CAPTURE(round);
    REQUIRE(now.size() == kSize);
    CHECK(now == std::string(kSize, now[0]));
    std::remove((path + ".tmp." + std::to_string(child)).c_str());  // a killed writer's leftover
  }
  std::remove(path.c_str());
}
