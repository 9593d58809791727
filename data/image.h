// Image: the uint8 HWC pixel buffer every reader produces and every
// augmentation consumes, plus the geometric primitives shared by transforms.
#pragma once
#include <cstdint>
#include <vector>

namespace pw {

struct Image {
  int64_t h = 0, w = 0, c = 0;  // height, width, channels (1 gray or 3 RGB)
  std::vector<uint8_t> data;    // (h,w,c), row-major

  Image() = default;
  Image(int64_t h, int64_t w, int64_t c, uint8_t fill = 0);
  uint8_t* row(int64_t y) { return data.data() + y * w * c; }
  const uint8_t* row(int64_t y) const { return data.data() + y * w * c; }
  uint8_t& at(int64_t y, int64_t x, int64_t ch) { return data[(y * w + x) * c + ch]; }
  uint8_t at(int64_t y, int64_t x, int64_t ch) const { return data[(y * w + x) * c + ch]; }
  bool empty() const { return data.empty(); }
};

// out: (h,w,c) = in[y0:y0+h, x0:x0+w]; the window must lie inside `in`.
Image crop(const Image& in, int64_t y0, int64_t x0, int64_t h, int64_t w);
// Like crop, but the window may extend past the border, where it reads `fill`
// (torchvision's RandomCrop with padding).
Image crop_padded(const Image& in, int64_t y0, int64_t x0, int64_t h, int64_t w, uint8_t fill = 0);
// Mirror left-right in place.
void hflip(Image& img);
// Bilinear resize to (h,w) with PIL's antialiasing: when shrinking, the
// triangle filter widens by the scale factor so every source pixel contributes.
Image resize_bilinear(const Image& in, int64_t h, int64_t w);
// Scales the shorter side to `size` keeping the aspect ratio (torchvision's
// Resize(int)); the longer side is floor(size * long / short).
Image resize_shorter(const Image& in, int64_t size);
// Central (h,w) window; a window larger than the image is zero-padded.
Image center_crop(const Image& in, int64_t h, int64_t w);
// Gray -> RGB by replication; RGB -> RGB is a copy. Other conversions throw.
Image to_channels(const Image& in, int64_t c);

}  // namespace pw
