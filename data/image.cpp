#include "data/image.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "runtime/check.h"

namespace pw {

Image::Image(int64_t h_, int64_t w_, int64_t c_, uint8_t fill) : h(h_), w(w_), c(c_) {
  PW_CHECK(h_ > 0 && w_ > 0 && c_ > 0, "Image: need positive (h,w,c), got (", h_, ",", w_, ",", c_, ")");
  data.assign((size_t)(h_ * w_ * c_), fill);
}

Image crop(const Image& in, int64_t y0, int64_t x0, int64_t h, int64_t w) {
  PW_CHECK(y0 >= 0 && x0 >= 0 && h > 0 && w > 0 && y0 + h <= in.h && x0 + w <= in.w, "crop: window (y0=", y0,
           ", x0=", x0, ", h=", h, ", w=", w, ") does not fit an image of ", in.h, "x", in.w);
  Image out(h, w, in.c);
  for (int64_t y = 0; y < h; ++y)
    std::memcpy(out.row(y), in.row(y0 + y) + x0 * in.c, (size_t)(w * in.c));
  return out;
}

Image crop_padded(const Image& in, int64_t y0, int64_t x0, int64_t h, int64_t w, uint8_t fill) {
  Image out(h, w, in.c, fill);
  int64_t ya = std::max<int64_t>(0, -y0), yb = std::min(h, in.h - y0);
  int64_t xa = std::max<int64_t>(0, -x0), xb = std::min(w, in.w - x0);
  if (xb <= xa) return out;
  for (int64_t y = ya; y < yb; ++y)
    std::memcpy(out.row(y) + xa * in.c, in.row(y0 + y) + (x0 + xa) * in.c, (size_t)((xb - xa) * in.c));
  return out;
}

void hflip(Image& img) {
  const int64_t c = img.c;
  for (int64_t y = 0; y < img.h; ++y) {
    uint8_t* r = img.row(y);
    for (int64_t a = 0, b = img.w - 1; a < b; ++a, --b)
      for (int64_t k = 0; k < c; ++k) std::swap(r[a * c + k], r[b * c + k]);
  }
}

namespace {
// Filter taps of one output coordinate: in[first .. first+weights.size()).
struct Taps {
  std::vector<int64_t> first;    // (out)
  std::vector<int64_t> count;    // (out)
  std::vector<float> weights;    // (out, max_taps), each row sums to 1
  int64_t max_taps = 0;
};

// PIL's precompute_coeffs for the bilinear (triangle) filter: output pixel i
// centres at (i+0.5)*scale in input coordinates; when shrinking the support
// grows to `scale` pixels, which is what keeps thin lines from aliasing.
Taps make_taps(int64_t in_size, int64_t out_size) {
  Taps t;
  double scale = (double)in_size / (double)out_size;
  double filterscale = std::max(scale, 1.0);
  double support = 1.0 * filterscale;
  t.max_taps = (int64_t)std::ceil(support) * 2 + 1;
  t.first.resize(out_size);
  t.count.resize(out_size);
  t.weights.assign((size_t)(out_size * t.max_taps), 0.f);
  for (int64_t i = 0; i < out_size; ++i) {
    double center = (i + 0.5) * scale;
    int64_t lo = std::max<int64_t>(0, (int64_t)(center - support + 0.5));
    int64_t hi = std::min<int64_t>(in_size, (int64_t)(center + support + 0.5));
    double total = 0;
    float* w = &t.weights[(size_t)(i * t.max_taps)];
    for (int64_t j = lo; j < hi; ++j) {
      double v = 1.0 - std::abs((j - center + 0.5) / filterscale);
      v = v > 0 ? v : 0;
      w[j - lo] = (float)v;
      total += v;
    }
    if (total > 0)
      for (int64_t j = 0; j < hi - lo; ++j) w[j] = (float)(w[j] / total);
    t.first[i] = lo;
    t.count[i] = hi - lo;
  }
  return t;
}
}  // namespace

Image resize_bilinear(const Image& in, int64_t h, int64_t w) {
  PW_CHECK(!in.empty() && h > 0 && w > 0, "resize_bilinear: cannot resize a ", in.h, "x", in.w, " image to ", h,
           "x", w);
  if (h == in.h && w == in.w) return in;
  const int64_t c = in.c;
  Taps tx = make_taps(in.w, w), ty = make_taps(in.h, h);
  // Horizontal pass into float rows, then vertical pass to uint8: separable, so
  // the cost is (taps_x + taps_y) per output pixel instead of their product.
  std::vector<float> mid((size_t)(in.h * w * c));  // (in.h, w, c)
  for (int64_t y = 0; y < in.h; ++y) {
    const uint8_t* src = in.row(y);
    float* dst = &mid[(size_t)(y * w * c)];
    for (int64_t x = 0; x < w; ++x) {
      const float* wt = &tx.weights[(size_t)(x * tx.max_taps)];
      const uint8_t* s = src + tx.first[x] * c;
      const int64_t taps = tx.count[x];
      if (c == 3) {  // the common case: one pass over the taps for all three channels
        float a0 = 0, a1 = 0, a2 = 0;
        for (int64_t j = 0; j < taps; ++j) {
          a0 += wt[j] * s[3 * j];
          a1 += wt[j] * s[3 * j + 1];
          a2 += wt[j] * s[3 * j + 2];
        }
        dst[3 * x] = a0;
        dst[3 * x + 1] = a1;
        dst[3 * x + 2] = a2;
        continue;
      }
      for (int64_t k = 0; k < c; ++k) {
        float acc = 0;
        for (int64_t j = 0; j < taps; ++j) acc += wt[j] * s[j * c + k];
        dst[x * c + k] = acc;
      }
    }
  }
  Image out(h, w, c);
  std::vector<float> acc((size_t)(w * c));
  for (int64_t y = 0; y < h; ++y) {
    std::fill(acc.begin(), acc.end(), 0.f);
    const float* wt = &ty.weights[(size_t)(y * ty.max_taps)];
    for (int64_t j = 0; j < ty.count[y]; ++j) {
      const float* s = &mid[(size_t)((ty.first[y] + j) * w * c)];
      const float wj = wt[j];
      for (int64_t i = 0; i < w * c; ++i) acc[i] += wj * s[i];
    }
    uint8_t* d = out.row(y);
    for (int64_t i = 0; i < w * c; ++i) {
      float v = std::nearbyint(acc[i]);
      d[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
  }
  return out;
}

Image resize_shorter(const Image& in, int64_t size) {
  PW_CHECK(size > 0, "resize_shorter: size must be positive, got ", size);
  if (in.h <= in.w) {
    if (in.h == size) return in;
    return resize_bilinear(in, size, std::max<int64_t>(1, size * in.w / in.h));
  }
  if (in.w == size) return in;
  return resize_bilinear(in, std::max<int64_t>(1, size * in.h / in.w), size);
}

Image center_crop(const Image& in, int64_t h, int64_t w) {
  if (h == in.h && w == in.w) return in;
  // torchvision: top = round((H - h) / 2), left = round((W - w) / 2).
  int64_t y0 = (int64_t)std::lround((in.h - h) / 2.0), x0 = (int64_t)std::lround((in.w - w) / 2.0);
  if (y0 >= 0 && x0 >= 0 && y0 + h <= in.h && x0 + w <= in.w) return crop(in, y0, x0, h, w);
  return crop_padded(in, y0, x0, h, w, 0);
}

Image to_channels(const Image& in, int64_t c) {
  if (in.c == c) return in;
  PW_CHECK(in.c == 1 && c == 3, "to_channels: cannot convert a ", in.c, "-channel image to ", c,
           " channels; set channels to 0 (keep) or 3 for gray input");
  Image out(in.h, in.w, 3);
  for (size_t i = 0; i < in.data.size(); ++i) out.data[3 * i] = out.data[3 * i + 1] = out.data[3 * i + 2] = in.data[i];
  return out;
}

}  // namespace pw
