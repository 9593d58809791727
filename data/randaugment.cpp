#include "data/randaugment.h"

#include <algorithm>
#include <cmath>

#include "runtime/check.h"

namespace pw {
namespace augment {

namespace {
// NOTE: a product rounded on its own, as Pillow's C and Python code compute it.
// With -march=native the compiler would fuse a*b + c into one FMA, which moves
// values that land exactly on a pixel boundary (or a LUT step) to the other side.
inline double rmul(double a, double b) {
  volatile double p = a * b;
  return p;
}

uint8_t clip8(double v) { return (uint8_t)(v <= 0 ? 0 : v >= 255 ? 255 : v); }

void apply_lut(Image& img, const uint8_t* lut, int64_t channel_stride) {
  // lut: (c,256) when channel_stride is 256, one shared table when it is 0.
  const int64_t c = img.c, n = img.h * img.w;
  uint8_t* p = img.data.data();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < c; ++k) p[i * c + k] = lut[k * channel_stride + p[i * c + k]];
}

// Histograms of each channel: (c,256).
std::vector<int64_t> histograms(const Image& img) {
  std::vector<int64_t> h((size_t)(img.c * 256), 0);
  const int64_t c = img.c, n = img.h * img.w;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < c; ++k) ++h[(size_t)(k * 256 + img.data[(size_t)(i * c + k)])];
  return h;
}

// PIL's "L" conversion: ITU-R 601-2 luma in 16-bit fixed point.
uint8_t luma(const uint8_t* rgb) {
  return (uint8_t)((rgb[0] * 19595 + rgb[1] * 38470 + rgb[2] * 7471 + 0x8000) >> 16);
}

// out = deg + f * (img - deg), PIL's ImagingBlend (truncating, clipped).
void blend_into(Image& img, const Image& deg, double f) {
  for (size_t i = 0; i < img.data.size(); ++i) {
    double d = deg.data[i];
    img.data[i] = clip8(d + f * ((double)img.data[i] - d));
  }
}
}  // namespace

void auto_contrast(Image& img) {
  std::vector<int64_t> h = histograms(img);
  std::vector<uint8_t> lut((size_t)(img.c * 256));
  for (int64_t k = 0; k < img.c; ++k) {
    const int64_t* hk = &h[(size_t)(k * 256)];
    int lo = 0, hi = 255;
    while (lo < 256 && hk[lo] == 0) ++lo;
    while (hi >= 0 && hk[hi] == 0) --hi;
    uint8_t* lk = &lut[(size_t)(k * 256)];
    if (hi <= lo) {
      for (int i = 0; i < 256; ++i) lk[i] = (uint8_t)i;
    } else {
      double scale = 255.0 / (hi - lo), offset = -lo * scale;
      for (int i = 0; i < 256; ++i) {
        int v = (int)(rmul(i, scale) + offset);
        lk[i] = (uint8_t)std::clamp(v, 0, 255);
      }
    }
  }
  apply_lut(img, lut.data(), 256);
}

void equalize(Image& img) {
  std::vector<int64_t> h = histograms(img);
  std::vector<uint8_t> lut((size_t)(img.c * 256));
  for (int64_t k = 0; k < img.c; ++k) {
    const int64_t* hk = &h[(size_t)(k * 256)];
    uint8_t* lk = &lut[(size_t)(k * 256)];
    int64_t total = 0, last = 0, nonzero = 0;
    for (int i = 0; i < 256; ++i)
      if (hk[i]) {
        total += hk[i];
        last = hk[i];
        ++nonzero;
      }
    int64_t step = nonzero <= 1 ? 0 : (total - last) / 255;
    if (step == 0) {
      for (int i = 0; i < 256; ++i) lk[i] = (uint8_t)i;
      continue;
    }
    int64_t acc = step / 2;
    for (int i = 0; i < 256; ++i) {
      lk[i] = (uint8_t)std::min<int64_t>(255, acc / step);
      acc += hk[i];
    }
  }
  apply_lut(img, lut.data(), 256);
}

void invert(Image& img) {
  for (auto& p : img.data) p = (uint8_t)(255 - p);
}

void posterize(Image& img, int bits) {
  if (bits >= 8) return;
  uint8_t mask = (uint8_t)(bits <= 0 ? 0 : (0xFF << (8 - bits)) & 0xFF);
  for (auto& p : img.data) p &= mask;
}

void solarize(Image& img, int threshold) {
  uint8_t lut[256];
  for (int i = 0; i < 256; ++i) lut[i] = (uint8_t)(i < threshold ? i : 255 - i);
  apply_lut(img, lut, 0);
}

void solarize_add(Image& img, int add, int threshold) {
  uint8_t lut[256];
  for (int i = 0; i < 256; ++i) lut[i] = (uint8_t)(i < threshold ? std::min(255, i + add) : i);
  apply_lut(img, lut, 0);
}

void color(Image& img, double f) {
  if (img.c != 3) return;  // a gray image is its own grayscale
  Image deg(img.h, img.w, 3);
  for (int64_t i = 0; i < img.h * img.w; ++i) {
    uint8_t l = luma(&img.data[(size_t)(3 * i)]);
    deg.data[(size_t)(3 * i)] = deg.data[(size_t)(3 * i + 1)] = deg.data[(size_t)(3 * i + 2)] = l;
  }
  blend_into(img, deg, f);
}

void contrast(Image& img, double f) {
  double sum = 0;
  const int64_t n = img.h * img.w;
  for (int64_t i = 0; i < n; ++i) sum += img.c == 3 ? luma(&img.data[(size_t)(3 * i)]) : img.data[(size_t)i];
  // PIL: int(mean + 0.5) of the grayscale image.
  Image deg(img.h, img.w, img.c, (uint8_t)(int)(sum / (double)n + 0.5));
  blend_into(img, deg, f);
}

void brightness(Image& img, double f) {
  for (auto& p : img.data) p = clip8(f * p);
}

void sharpness(Image& img, double f) {
  // PIL's SMOOTH kernel [[1,1,1],[1,5,1],[1,1,1]] / 13; the one-pixel border is copied.
  Image deg = img;
  const int64_t c = img.c, w = img.w;
  for (int64_t y = 1; y + 1 < img.h; ++y) {
    const uint8_t *up = img.row(y - 1), *mid = img.row(y), *dn = img.row(y + 1);
    uint8_t* out = deg.row(y);
    for (int64_t x = 1; x + 1 < w; ++x)
      for (int64_t k = 0; k < c; ++k) {
        int64_t l = (x - 1) * c + k, m = x * c + k, r = (x + 1) * c + k;
        int s = up[l] + up[m] + up[r] + mid[l] + 5 * mid[m] + mid[r] + dn[l] + dn[m] + dn[r];
        out[m] = clip8(s / 13.0 + 0.5);
      }
  }
  blend_into(img, deg, f);
}

Image affine(const Image& in, const std::array<double, 6>& m, const uint8_t* fill) {
  const int64_t c = in.c, H = in.h, W = in.w;
  Image out(H, W, c);
  for (int64_t y = 0; y < H; ++y) {
    uint8_t* o = out.row(y);
    const double yc = y + 0.5;
    for (int64_t x = 0; x < W; ++x) {
      const double xc = x + 0.5;
      double xi = rmul(m[0], xc) + rmul(m[1], yc) + m[2];
      double yi = rmul(m[3], xc) + rmul(m[4], yc) + m[5];
      uint8_t* px = o + x * c;
      if (xi < 0 || xi >= W || yi < 0 || yi >= H) {
        for (int64_t k = 0; k < c; ++k) px[k] = fill[k];
        continue;
      }
      // Bilinear between the four pixel centres around (xi, yi), clamped at the border.
      xi -= 0.5;
      yi -= 0.5;
      double fx0 = std::floor(xi), fy0 = std::floor(yi);
      double dx = xi - fx0, dy = yi - fy0;
      int64_t x0 = (int64_t)fx0, y0 = (int64_t)fy0;
      int64_t x1 = std::min(x0 + 1, W - 1), y1 = std::min(y0 + 1, H - 1);
      x0 = std::max<int64_t>(x0, 0);
      y0 = std::max<int64_t>(y0, 0);
      const uint8_t *p00 = in.row(y0) + x0 * c, *p01 = in.row(y0) + x1 * c;
      const uint8_t *p10 = in.row(y1) + x0 * c, *p11 = in.row(y1) + x1 * c;
      for (int64_t k = 0; k < c; ++k) {
        double top = p00[k] + dx * (p01[k] - p00[k]);
        double bot = p10[k] + dx * (p11[k] - p10[k]);
        px[k] = clip8(top + dy * (bot - top) + 0.5);
      }
    }
  }
  return out;
}

Image rotate(const Image& in, double degrees, const uint8_t* fill) {
  // PIL Image.rotate: the inverse map rotates output coordinates by -angle about the centre.
  const double a = -degrees * 3.14159265358979323846 / 180.0;
  // Pillow rounds the matrix to 15 decimals, so rotate(90) is exact.
  auto r15 = [](double v) { return std::round(v * 1e15) / 1e15; };
  const double cs = r15(std::cos(a)), sn = r15(std::sin(a));
  const double cx = in.w / 2.0, cy = in.h / 2.0;
  std::array<double, 6> m{cs, sn, 0, -sn, cs, 0};
  m[2] = rmul(m[0], -cx) + rmul(m[1], -cy) + cx;
  m[5] = rmul(m[3], -cx) + rmul(m[4], -cy) + cy;
  return affine(in, m, fill);
}

Image shear_x(const Image& in, double f, const uint8_t* fill) { return affine(in, {1, f, 0, 0, 1, 0}, fill); }
Image shear_y(const Image& in, double f, const uint8_t* fill) { return affine(in, {1, 0, 0, f, 1, 0}, fill); }
Image translate_x(const Image& in, double px, const uint8_t* fill) { return affine(in, {1, 0, px, 0, 1, 0}, fill); }
Image translate_y(const Image& in, double px, const uint8_t* fill) { return affine(in, {1, 0, 0, 0, 1, px}, fill); }

}  // namespace augment

namespace {
enum class Op {
  AutoContrast, Equalize, Invert, Rotate, Posterize, Solarize, SolarizeAdd, Color, Contrast, Brightness,
  Sharpness, ShearX, ShearY, TranslateXRel, TranslateYRel
};
constexpr int kNumOps = 15;
constexpr double kLevelDenom = 10.0;  // timm's _LEVEL_DENOM: magnitudes live in [0,10]
constexpr double kTranslatePct = 0.45;

// timm's _randomly_negate: -v with probability 1/2.
double randomly_negate(double v, SampleRng& rng) { return rng.uniform() > 0.5f ? -v : v; }
}  // namespace

const std::vector<std::string>& RandAugment::op_names(bool increasing) {
  static const std::vector<std::string> plain = {
      "AutoContrast", "Equalize", "Invert", "Rotate", "Posterize", "Solarize", "SolarizeAdd", "Color",
      "Contrast", "Brightness", "Sharpness", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel"};
  static const std::vector<std::string> inc = {
      "AutoContrast", "Equalize", "Invert", "Rotate", "PosterizeIncreasing", "SolarizeIncreasing",
      "SolarizeAdd", "ColorIncreasing", "ContrastIncreasing", "BrightnessIncreasing", "SharpnessIncreasing",
      "ShearX", "ShearY", "TranslateXRel", "TranslateYRel"};
  return increasing ? inc : plain;
}

RandAugment::RandAugment(RandAugmentConfig cfg, std::vector<uint8_t> fill) : cfg_(cfg), fill_(std::move(fill)) {
  PW_CHECK(cfg.n >= 0 && cfg.m >= 0 && cfg.m <= kLevelDenom && cfg.mstd >= 0 && cfg.prob >= 0 && cfg.prob <= 1,
           "RandAugment: need n >= 0, 0 <= m <= 10, mstd >= 0 and 0 <= prob <= 1; got n=", cfg.n, " m=", cfg.m,
           " mstd=", cfg.mstd, " prob=", cfg.prob);
  PW_CHECK(fill_.size() == 1 || fill_.size() == 3, "RandAugment: fill needs 1 or 3 channels, got ", fill_.size());
  if (fill_.size() == 1) fill_.assign(3, fill_[0]);
}

void RandAugment::apply(Image& img, SampleRng& rng) const {
  const uint8_t* fill = fill_.data();
  for (int i = 0; i < cfg_.n; ++i) {
    Op op = (Op)rng.randint(0, kNumOps - 1);
    // timm's AugmentOp: skip when random() > prob.
    if (cfg_.prob < 1.0 && (double)rng.uniform() > cfg_.prob) continue;
    double mag = cfg_.m;
    if (cfg_.mstd > 0) mag = std::clamp(mag + cfg_.mstd * rng.normal(), 0.0, kLevelDenom);
    const double level = mag / kLevelDenom;  // in [0,1]
    auto enhance = [&]() {
      // Increasing: 1 +- 0.9*level (further from 1 = stronger); else 0.1 .. 1.9.
      return cfg_.increasing ? std::max(0.1, 1.0 + randomly_negate(level * 0.9, rng)) : level * 1.8 + 0.1;
    };
    switch (op) {
      case Op::AutoContrast: augment::auto_contrast(img); break;
      case Op::Equalize: augment::equalize(img); break;
      case Op::Invert: augment::invert(img); break;
      case Op::Rotate: img = augment::rotate(img, randomly_negate(level * 30.0, rng), fill); break;
      case Op::Posterize: {
        int bits = (int)(level * 4);
        augment::posterize(img, cfg_.increasing ? 4 - bits : bits);
        break;
      }
      case Op::Solarize: {
        int t = (int)(level * 256);
        augment::solarize(img, cfg_.increasing ? 256 - t : t);
        break;
      }
      case Op::SolarizeAdd: augment::solarize_add(img, (int)(level * 110)); break;
      case Op::Color: augment::color(img, enhance()); break;
      case Op::Contrast: augment::contrast(img, enhance()); break;
      case Op::Brightness: augment::brightness(img, enhance()); break;
      case Op::Sharpness: augment::sharpness(img, enhance()); break;
      case Op::ShearX: img = augment::shear_x(img, randomly_negate(level * 0.3, rng), fill); break;
      case Op::ShearY: img = augment::shear_y(img, randomly_negate(level * 0.3, rng), fill); break;
      case Op::TranslateXRel:
        img = augment::translate_x(img, randomly_negate(level * kTranslatePct, rng) * img.w, fill);
        break;
      case Op::TranslateYRel:
        img = augment::translate_y(img, randomly_negate(level * kTranslatePct, rng) * img.h, fill);
        break;
    }
  }
}

}  // namespace pw
