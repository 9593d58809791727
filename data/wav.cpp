#include "data/wav.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <numeric>

#include "data/dataset.h"  // BadSampleError
#include "runtime/check.h"

namespace pw {

namespace {

uint16_t u16(const uint8_t* p) { return (uint16_t)(p[0] | (p[1] << 8)); }
uint32_t u32(const uint8_t* p) { return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24); }

std::string fourcc(const uint8_t* p) {
  std::string s;
  for (int i = 0; i < 4; ++i) {
    const char c = (char)p[i];
    s += (c >= 32 && c < 127) ? std::string(1, c) : "\\x" + std::to_string((int)p[i]);
  }
  return s;
}

[[noreturn]] void bad(const std::string& path, const std::string& reason) { throw BadSampleError(path, reason); }

const char* tag_name(uint16_t tag) {
  switch (tag) {
    case 1: return "PCM";
    case 2: return "MS ADPCM";
    case 3: return "IEEE float";
    case 6: return "A-law";
    case 7: return "mu-law";
    case 0x11: return "IMA ADPCM";
    case 0x55: return "MP3";
    case 0xFFFE: return "extensible";
    default: return "unknown";
  }
}

// The 14 bytes after the format tag in a KSDATAFORMAT_SUBTYPE_* GUID.
const uint8_t kGuidTail[14] = {0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71};

const char* kFix = "; convert it to 16-bit PCM WAV (e.g. sox in.wav -b 16 out.wav) or delete it";

}  // namespace

Audio decode_wav_bytes(const std::vector<uint8_t>& b, const std::string& path) {
  const size_t n = b.size();
  if (n == 0) bad(path, "the file is empty (0 bytes); replace or delete it");
  if (n < 12) bad(path, "the file is " + std::to_string(n) + " bytes, shorter than a RIFF/WAVE header (12 bytes)");
  if (std::memcmp(b.data(), "RIFF", 4) != 0)
    bad(path, "byte offset 0: not a RIFF/WAVE file (it starts with '" + fourcc(b.data()) + "', expected 'RIFF')");
  if (std::memcmp(b.data() + 8, "WAVE", 4) != 0)
    bad(path, "byte offset 8: the RIFF form type is '" + fourcc(b.data() + 8) + "', not 'WAVE'");
  bool have_fmt = false;
  uint16_t tag = 0, channels = 0, bits = 0, align = 0;
  uint32_t rate = 0;
  size_t fmt_at = 0;
  for (size_t at = 12; at + 8 <= n;) {
    const uint32_t size = u32(b.data() + at + 4);
    const std::string id = fourcc(b.data() + at);
    const size_t body = at + 8, left = n - body;
    if (size > left)
      bad(path, "byte offset " + std::to_string(at) + ": the '" + id + "' chunk declares " + std::to_string(size) +
                    " bytes but only " + std::to_string(left) + " remain (the file is truncated)");
    if (id == "fmt ") {
      if (size < 16)
        bad(path, "byte offset " + std::to_string(at) + ": the fmt chunk is " + std::to_string(size) +
                      " bytes, shorter than the 16 a WAV format needs");
      const uint8_t* f = b.data() + body;
      tag = u16(f);
      channels = u16(f + 2);
      rate = u32(f + 4);
      align = u16(f + 12);
      bits = u16(f + 14);
      fmt_at = at;
      if (tag == 0xFFFE) {
        if (size < 40)
          bad(path, "byte offset " + std::to_string(at) + ": a WAVE_FORMAT_EXTENSIBLE fmt chunk needs 40 bytes, it has " +
                        std::to_string(size));
        const uint8_t* guid = f + 24;
        if (std::memcmp(guid + 2, kGuidTail, 14) != 0)
          bad(path, "byte offset " + std::to_string(body + 24) +
                        ": the WAVE_FORMAT_EXTENSIBLE sub-format is not a standard KSDATAFORMAT GUID" + kFix);
        tag = u16(guid);
      }
      have_fmt = true;
    } else if (id == "data") {
      if (!have_fmt)
        bad(path, "byte offset " + std::to_string(at) + ": the data chunk comes before any fmt chunk");
      const bool pcm = tag == 1 && (bits == 8 || bits == 16 || bits == 24 || bits == 32);
      const bool flt = tag == 3 && (bits == 32 || bits == 64);
      if (!pcm && !flt)
        bad(path, "byte offset " + std::to_string(fmt_at + 8) + ": unsupported encoding, format " + tag_name(tag) +
                      " (0x" + [&] { char h[8]; std::snprintf(h, sizeof h, "%04x", tag); return std::string(h); }() +
                      ") with " + std::to_string(bits) +
                      " bits per sample (PCM 8/16/24/32-bit and float 32/64-bit are read)" + kFix);
      if (channels == 0 || rate < 1000 || rate > 1000000)
        bad(path, "byte offset " + std::to_string(fmt_at + 8) + ": the fmt chunk declares " +
                      std::to_string(channels) + " channels at " + std::to_string(rate) +
                      " Hz (expected at least 1 channel at 1000..1000000 Hz)");
      const int bps = bits / 8;
      if ((int)align != bps * channels)
        bad(path, "byte offset " + std::to_string(fmt_at + 20) + ": block align " + std::to_string(align) +
                      " is not channels * bytes per sample = " + std::to_string(bps * channels));
      const size_t frames = size / align;
      if (frames == 0) bad(path, "byte offset " + std::to_string(at) + ": the data chunk holds no samples");
      Audio a;
      a.sample_rate = rate;
      a.channels = channels;
      a.samples.resize(frames);
      const uint8_t* d = b.data() + body;
      for (size_t i = 0; i < frames; ++i) {
        double acc = 0;
        for (int c = 0; c < channels; ++c) {
          const uint8_t* p = d + (i * channels + c) * bps;
          double v;
          if (tag == 1) {
            switch (bits) {
              case 8: v = ((int)p[0] - 128) / 128.0; break;
              case 16: v = (int16_t)u16(p) / 32768.0; break;
              case 24: v = (double)((int32_t)(((uint32_t)p[0] << 8) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 24)) >> 8) / 8388608.0; break;
              default: v = (int32_t)u32(p) / 2147483648.0; break;
            }
          } else if (bits == 32) {
            float x;
            std::memcpy(&x, p, 4);
            v = x;
          } else {
            std::memcpy(&v, p, 8);
          }
          if (!std::isfinite(v))
            bad(path, "byte offset " + std::to_string(body + (i * channels + c) * bps) + ": float sample " +
                          std::to_string(i) + " is not finite");
          acc += v;
        }
        // A finite 64-bit sample (or the channels' mean) can still be beyond float's range.
        a.samples[i] = (float)(acc / channels);
        if (!std::isfinite(a.samples[i])) {
          char val[32];
          std::snprintf(val, sizeof val, "%g", acc / channels);
          bad(path, "byte offset " + std::to_string(body + i * channels * bps) + ": sample " + std::to_string(i) +
                        " (" + val + ") is beyond float32's range; audio samples lie in [-1, 1]");
        }
      }
      return a;
    }
    at = body + size + (size & 1);  // chunks are padded to even sizes
  }
  if (!have_fmt) bad(path, "no fmt chunk before the end of the file (byte offset " + std::to_string(n) + ")");
  bad(path, "no data chunk before the end of the file (byte offset " + std::to_string(n) + "); the file is truncated");
}

Audio read_wav(const std::string& path) {
  return decode_wav_bytes(read_sample_file(path), path);
}

void write_wav(const std::string& path, const std::vector<float>& x, int channels, int64_t sample_rate,
               WavEncoding enc, bool extensible) {
  PW_CHECK(channels > 0 && x.size() % (size_t)channels == 0, "write_wav: ", x.size(), " samples are not a whole number of ",
           channels, "-channel frames");
  const int bits = enc == WavEncoding::U8 ? 8 : enc == WavEncoding::S16 ? 16 : enc == WavEncoding::S24 ? 24
                   : enc == WavEncoding::F64 ? 64 : 32;
  const bool flt = enc == WavEncoding::F32 || enc == WavEncoding::F64;
  const int bps = bits / 8;
  std::vector<uint8_t> out;
  auto put = [&](uint64_t v, int nb) {
    for (int i = 0; i < nb; ++i) out.push_back((uint8_t)(v >> (8 * i)));
  };
  auto tagstr = [&](const char* s) { out.insert(out.end(), s, s + 4); };
  const uint32_t data_bytes = (uint32_t)(x.size() * bps), fmt_bytes = extensible ? 40 : 16;
  tagstr("RIFF");
  put(4 + 8 + fmt_bytes + 8 + data_bytes + (data_bytes & 1), 4);
  tagstr("WAVE");
  tagstr("fmt ");
  put(fmt_bytes, 4);
  put(extensible ? 0xFFFE : (flt ? 3 : 1), 2);
  put(channels, 2);
  put(sample_rate, 4);
  put(sample_rate * channels * bps, 4);
  put(channels * bps, 2);
  put(bits, 2);
  if (extensible) {
    put(22, 2);    // cbSize
    put(bits, 2);  // valid bits
    put(0, 4);     // channel mask: unspecified
    put(flt ? 3 : 1, 2);
    out.insert(out.end(), kGuidTail, kGuidTail + 14);
  }
  tagstr("data");
  put(data_bytes, 4);
  for (float f : x) {
    const double v = f;
    auto q = [&](double scale, double lo, double hi) { return (int64_t)std::max(lo, std::min(hi, std::nearbyint(v * scale))); };
    switch (enc) {
      case WavEncoding::U8: put((uint64_t)(q(128, -128, 127) + 128), 1); break;
      case WavEncoding::S16: put((uint64_t)q(32768, -32768, 32767), 2); break;
      case WavEncoding::S24: put((uint64_t)q(8388608, -8388608, 8388607), 3); break;
      case WavEncoding::S32: put((uint64_t)q(2147483648.0, -2147483648.0, 2147483647.0), 4); break;
      case WavEncoding::F32: { uint32_t u; float g = f; std::memcpy(&u, &g, 4); put(u, 4); break; }
      case WavEncoding::F64: { uint64_t u; std::memcpy(&u, &v, 8); put(u, 8); break; }
    }
  }
  if (data_bytes & 1) out.push_back(0);
  FILE* fp = std::fopen(path.c_str(), "wb");
  PW_CHECK(fp, "write_wav: cannot create '", path, "' (", std::strerror(errno), ")");
  const bool ok = std::fwrite(out.data(), 1, out.size(), fp) == out.size();
  PW_CHECK(std::fclose(fp) == 0 && ok, "write_wav: cannot write '", path, "' (disk full?)");
}

std::vector<float> resample(const std::vector<float>& x, int64_t from, int64_t to, int lowpass_filter_width,
                            double rolloff) {
  PW_CHECK(from > 0 && to > 0, "resample: rates must be positive, got ", from, " -> ", to);
  PW_CHECK(lowpass_filter_width > 0 && rolloff > 0 && rolloff <= 1, "resample: lowpass_filter_width ",
           lowpass_filter_width, " must be > 0 and rolloff ", rolloff, " in (0, 1]");
  if (from == to || x.empty()) return x;
  const int64_t g = std::gcd(from, to);
  const int64_t orig = from / g, dest = to / g;
  // torchaudio.functional._get_sinc_resample_kernel (sinc_interp_hann): one
  // kernel of 2*width + orig taps per output phase i in [0, dest).
  const double base = (double)std::min(orig, dest) * rolloff;
  const int64_t width = (int64_t)std::ceil(lowpass_filter_width * (double)orig / base);
  const double pi = 3.14159265358979323846, lpw = lowpass_filter_width;
  // Phase i's kernel over taps j in [0, 2*width + orig): t = (j - width)/orig - i/dest (in input
  // samples) times base. Taps with |t| >= lowpass_filter_width lie outside the Hann window (cos^2(pi/2) ~ 1e-33
  // in torchaudio, exactly 0 here) and are not stored: phase i keeps taps [j0[i], j0[i] + n).
  const int64_t n = (int64_t)std::ceil(2 * lpw * (double)orig / base) + 2;  // window span in taps, and a margin
  PW_CHECK((double)dest * (double)n <= 1e8, "resample: ", from, " Hz -> ", to, " Hz needs a filter table of ",
           (double)dest * (double)n, " taps; resample the file to a common rate first");
  std::vector<double> kern((size_t)(dest * n), 0.0);
  std::vector<int64_t> j0((size_t)dest);
  for (int64_t i = 0; i < dest; ++i) {
    const int64_t first = (int64_t)std::floor((double)width + (double)orig * ((double)i / (double)dest - lpw / base));
    j0[(size_t)i] = first;
    for (int64_t q = 0; q < n; ++q) {
      const int64_t j = first + q;
      double t = (-(double)i / (double)dest + (double)(j - width) / (double)orig) * base;
      if (std::abs(t) >= lpw) continue;
      const double w = std::cos(t * pi / lpw / 2) * std::cos(t * pi / lpw / 2);
      t *= pi;
      kern[(size_t)(i * n + q)] = (t == 0 ? 1.0 : std::sin(t) / t) * w * base / (double)orig;
    }
  }
  // y[f*dest + i] = sum_j x[f*orig + j - width] * kernel_i[j], x zero outside [0, L).
  const int64_t L = (int64_t)x.size();
  const int64_t out_len = (dest * L + orig - 1) / orig;
  std::vector<float> y((size_t)out_len);
  for (int64_t o = 0; o < out_len; ++o) {
    const int64_t f = o / dest, i = o % dest, s0 = f * orig - width + j0[(size_t)i];
    const double* k = kern.data() + i * n;
    double acc = 0;
    for (int64_t q = std::max<int64_t>(0, -s0); q < n && s0 + q < L; ++q) acc += (double)x[(size_t)(s0 + q)] * k[q];
    y[(size_t)o] = (float)acc;
  }
  return y;
}

}  // namespace pw
