#include "io/safetensors.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <set>
#include <sstream>

#include "io/atomic_file.h"
#include "io/json.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.cpp copies tensor bytes as they lie in memory; it needs a little-endian host"
#endif

namespace pw {

namespace {

constexpr uint64_t kPrefix = 8;  // the u64 header length

struct DTypeName {
  DType dtype;
  const char* name;
};
constexpr DTypeName kDTypes[] = {
    {DType::F32, "F32"}, {DType::F64, "F64"}, {DType::I64, "I64"}, {DType::BF16, "BF16"}, {DType::F16, "F16"}};

bool dtype_from_name(const std::string& s, DType* out) {
  for (const auto& d : kDTypes)
    if (s == d.name) {
      *out = d.dtype;
      return true;
    }
  return false;
}

template <class... A>
[[noreturn]] void fail_at(const std::string& path, uint64_t byte, const A&... a) {
  std::ostringstream os;
  os << path << ": byte " << byte << ": ";
  detail::stream_all(os, a...);
  throw Error(os.str());
}

template <class... A>
[[noreturn]] void fail_tensor(const std::string& path, const std::string& name, const A&... a) {
  std::ostringstream os;
  os << path << ": tensor " << json::quote(name) << ": ";
  detail::stream_all(os, a...);
  throw Error(os.str());
}

struct FileCloser {
  void operator()(FILE* f) const { std::fclose(f); }
};

// One header entry, checked and ready to read.
struct Entry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin, end;  // into the data bytes
};

Entry parse_entry(const std::string& path, const std::string& name, const json::Value& v, uint64_t data_size) {
  if (!v.is_object())
    fail_at(path, v.offset, "tensor ", json::quote(name), ": expected an object with dtype, shape and data_offsets, got ",
            v.kind_name());
  Entry e;
  e.name = name;
  const json::Value* dt = v.find("dtype");
  const json::Value* sh = v.find("shape");
  const json::Value* off = v.find("data_offsets");
  if (!dt || !sh || !off)
    fail_at(path, v.offset, "tensor ", json::quote(name), ": missing \"",
            !dt ? "dtype" : !sh ? "shape" : "data_offsets", "\"");
  // Unknown fields are ignored, as the reference implementation does.
  if (!dt->is_string()) fail_at(path, dt->offset, "tensor ", json::quote(name), ": dtype must be a string");
  if (!dtype_from_name(dt->text, &e.dtype))
    fail_at(path, dt->offset, "tensor ", json::quote(name), ": dtype ", json::quote(dt->text),
            " is not supported (patchwork reads F32, F64, I64, BF16 and F16)");

  if (!sh->is_array()) fail_at(path, sh->offset, "tensor ", json::quote(name), ": shape must be an array of sizes");
  // The product of the non-zero sizes must fit in int64 even when a zero makes
  // the tensor empty: Shape arithmetic elsewhere multiplies left to right.
  uint64_t nonzero = 1;
  bool has_zero = false;
  for (const json::Value& d : sh->items) {
    if (!d.is_uint64() || d.as_uint64() > (uint64_t)std::numeric_limits<int64_t>::max())
      fail_at(path, d.offset, "tensor ", json::quote(name), ": shape entries must be non-negative integers, got ",
              d.is_number() ? d.text : std::string(d.kind_name()));
    uint64_t n = d.as_uint64();
    e.shape.push_back((int64_t)n);
    if (n == 0) has_zero = true;
    else if (__builtin_mul_overflow(nonzero, n, &nonzero) || nonzero > (uint64_t)std::numeric_limits<int64_t>::max())
      fail_at(path, sh->offset, "tensor ", json::quote(name), ": shape has more than 2^63 elements");
  }
  uint64_t numel = has_zero ? 0 : nonzero;

  if (!off->is_array() || off->items.size() != 2 || !off->items[0].is_uint64() || !off->items[1].is_uint64())
    fail_at(path, off->offset, "tensor ", json::quote(name), ": data_offsets must be [begin, end], two non-negative integers");
  e.begin = off->items[0].as_uint64();
  e.end = off->items[1].as_uint64();
  if (e.begin > e.end)
    fail_at(path, off->offset, "tensor ", json::quote(name), ": data_offsets [", e.begin, ", ", e.end, "] end before they begin");
  if (e.end > data_size)
    fail_at(path, off->offset, "tensor ", json::quote(name), ": data_offsets [", e.begin, ", ", e.end,
            "] run past the end of the data (", data_size, " bytes; the file is truncated or the header is corrupt)");
  uint64_t want;
  if (__builtin_mul_overflow(numel, (uint64_t)dtype_size(e.dtype), &want) || want != e.end - e.begin)
    fail_at(path, off->offset, "tensor ", json::quote(name), ": data_offsets [", e.begin, ", ", e.end, "] hold ",
            e.end - e.begin, " bytes but ", dt->text, shape_str(e.shape), " needs ", numel, " x ",
            dtype_size(e.dtype), " bytes");
  return e;
}

}  // namespace

const char* safetensors_dtype_name(DType t) {
  for (const auto& d : kDTypes)
    if (d.dtype == t) return d.name;
  PW_FAIL("safetensors: dtype ", dtype_name(t), " has no safetensors name");
}

const Tensor& SafetensorsFile::get(const std::string& name) const {
  auto it = tensors.find(name);
  if (it == tensors.end())
    throw Error(path + ": no tensor " + json::quote(name) + " (the file holds " + std::to_string(tensors.size()) +
                " tensors)");
  return it->second;
}

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::vector<const std::pair<std::string, Tensor>*> order;
  for (const auto& nt : tensors) {
    const std::string& name = nt.first;
    const Tensor& t = nt.second;
    PW_CHECK(!name.empty(), "save_safetensors ", path, ": a tensor has an empty name");
    PW_CHECK(name != "__metadata__", "save_safetensors ", path, ": '__metadata__' is reserved and can't name a tensor");
    PW_CHECK(json::valid_utf8(name), "save_safetensors ", path, ": tensor name ", json::quote(name), " is not valid UTF-8");
    PW_CHECK(t.defined(), "save_safetensors ", path, ": tensor '", name, "' is undefined");
    PW_CHECK(t.device() == Device::CPU, "save_safetensors ", path, ": tensor '", name, "' is on ",
             device_name(t.device()), "; copy it to the cpu first");
    bool known = false;
    for (const auto& d : kDTypes) known |= d.dtype == t.dtype();
    PW_CHECK(known, "save_safetensors ", path, ": tensor '", name, "' has dtype ", dtype_name(t.dtype()),
             ", which safetensors can't hold");
    order.push_back(&nt);
  }
  std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->first < b->first; });
  for (size_t i = 1; i < order.size(); ++i)
    PW_CHECK(order[i]->first != order[i - 1]->first, "save_safetensors ", path, ": two tensors are named '",
             order[i]->first, "'");
  for (const auto& kv : metadata)
    PW_CHECK(json::valid_utf8(kv.first) && json::valid_utf8(kv.second), "save_safetensors ", path,
             ": metadata entry ", json::quote(kv.first), " is not valid UTF-8");

  // __metadata__ first, then tensors by name, packed back to back.
  std::string h = "{";
  if (!metadata.empty()) {
    h += "\"__metadata__\":{";
    bool first = true;
    for (const auto& kv : metadata) {
      if (!first) h += ',';
      first = false;
      h += json::quote(kv.first) + ":" + json::quote(kv.second);
    }
    h += "}";
  }
  uint64_t pos = 0;
  for (size_t i = 0; i < order.size(); ++i) {
    const Tensor& t = order[i]->second;
    uint64_t n = (uint64_t)t.numel() * dtype_size(t.dtype());
    if (h.size() > 1) h += ',';
    h += json::quote(order[i]->first) + ":{\"dtype\":\"" + safetensors_dtype_name(t.dtype()) + "\",\"shape\":[";
    for (int64_t d = 0; d < t.dim(); ++d) h += (d ? "," : "") + std::to_string(t.shape()[d]);
    h += "],\"data_offsets\":[" + std::to_string(pos) + "," + std::to_string(pos + n) + "]}";
    pos += n;
  }
  h += "}";
  // Padding the header keeps the data 8-byte aligned in the file, so readers
  // that mmap it can view F64/I64 tensors in place.
  h.append((8 - h.size() % 8) % 8, ' ');
  PW_CHECK(h.size() <= kSafetensorsMaxHeader, "save_safetensors ", path, ": the header would be ", h.size(),
           " bytes, over the format's limit of ", kSafetensorsMaxHeader);

  unsigned char prefix[kPrefix];
  uint64_t hn = h.size();
  for (size_t k = 0; k < kPrefix; ++k) prefix[k] = (unsigned char)(hn >> (8 * k));
  AtomicFile f(path);
  f.write(prefix, kPrefix);
  f.write(h);
  for (const auto* nt : order) f.write(nt->second.raw(), (size_t)nt->second.numel() * dtype_size(nt->second.dtype()));
  f.commit();
}

SafetensorsFile load_safetensors(const std::string& path) {
  std::unique_ptr<FILE, FileCloser> f(std::fopen(path.c_str(), "rb"));
  if (!f) throw Error("cannot open safetensors file '" + path + "': " + std::strerror(errno));
  if (::fseeko(f.get(), 0, SEEK_END) != 0) throw Error("cannot seek in '" + path + "': " + std::strerror(errno));
  off_t end = ::ftello(f.get());
  if (end < 0) throw Error("cannot size '" + path + "': " + std::strerror(errno));
  uint64_t file_size = (uint64_t)end;
  std::rewind(f.get());

  auto read_at = [&](uint64_t at, void* dst, uint64_t n, const char* what) {
    if (n == 0) return;
    if (::fseeko(f.get(), (off_t)at, SEEK_SET) != 0 || std::fread(dst, 1, n, f.get()) != n)
      fail_at(path, at, "reading ", n, " bytes of ", what, " failed (was the file truncated while reading?)");
  };

  if (file_size < kPrefix)
    fail_at(path, 0, "the file is ", file_size, " bytes, too short to hold the 8-byte header length; not a safetensors file");
  unsigned char prefix[kPrefix];
  read_at(0, prefix, kPrefix, "the header length");
  uint64_t hn = 0;
  for (size_t k = 0; k < kPrefix; ++k) hn |= (uint64_t)prefix[k] << (8 * k);
  if (hn > kSafetensorsMaxHeader)
    fail_at(path, 0, "header length ", hn, " is over the ", kSafetensorsMaxHeader,
            "-byte limit; not a safetensors file, or a corrupt one");
  if (hn > file_size - kPrefix)
    fail_at(path, 0, "header length ", hn, " runs past the end of the file (", file_size,
            " bytes); the file is truncated or not a safetensors file");
  if (hn < 2) fail_at(path, kPrefix, "header of ", hn, " bytes is too short for a JSON object");

  std::string header(hn, '\0');
  read_at(kPrefix, header.data(), hn, "the header");
  if (header[0] != '{')
    fail_at(path, kPrefix, "the header must be a JSON object starting with '{'; not a safetensors file");
  json::Value root = json::parse(header, path, kPrefix);
  if (!root.is_object()) fail_at(path, kPrefix, "the header must be a JSON object");

  const uint64_t data_start = kPrefix + hn;
  const uint64_t data_size = file_size - data_start;
  SafetensorsFile out;
  out.path = path;
  std::vector<Entry> entries;
  for (const auto& m : root.members) {
    if (m.first == "__metadata__") {
      if (!m.second.is_object()) fail_at(path, m.second.offset, "__metadata__ must be an object of strings");
      for (const auto& kv : m.second.members) {
        if (!kv.second.is_string())
          fail_at(path, kv.second.offset, "__metadata__ value for ", json::quote(kv.first), " must be a string, got ",
                  kv.second.kind_name());
        out.metadata[kv.first] = kv.second.text;
      }
      continue;
    }
    if (m.first.empty()) fail_at(path, m.second.offset, "a tensor has an empty name");
    entries.push_back(parse_entry(path, m.first, m.second, data_size));
  }

  // The tensors must tile the data exactly: no overlaps, no holes (which
  // could hide a second file inside this one), nothing after the last.
  std::vector<const Entry*> by_offset;
  for (const Entry& e : entries) by_offset.push_back(&e);
  std::sort(by_offset.begin(), by_offset.end(), [](const Entry* a, const Entry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t covered = 0;
  const Entry* prev = nullptr;
  for (const Entry* e : by_offset) {
    if (e->begin < covered)
      fail_tensor(path, e->name, "data_offsets [", e->begin, ", ", e->end, "] overlap tensor ", json::quote(prev->name),
                  " [", prev->begin, ", ", prev->end, ")");
    if (e->begin > covered)
      fail_at(path, data_start + covered, "data bytes [", covered, ", ", e->begin,
              ") belong to no tensor; the header is corrupt");
    covered = e->end;
    if (e->end > e->begin) prev = e;
  }
  if (covered != data_size)
    fail_at(path, data_start + covered, data_size - covered,
            " bytes after the last tensor belong to no tensor; the header is corrupt or the file has trailing data");

  for (const Entry& e : entries) {
    Tensor t = empty(e.shape, e.dtype);
    read_at(data_start + e.begin, t.raw(), e.end - e.begin, ("tensor " + json::quote(e.name)).c_str());
    out.tensors.emplace(e.name, t);
  }
  return out;
}

}  // namespace pw
