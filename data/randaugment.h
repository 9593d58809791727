// RandAugment on uint8 HWC images, following timm's rand_augment_transform
// (the op list, the level -> argument mappings and PIL's pixel semantics).
//
// Each of `n` ops is drawn uniformly with replacement from the list and applied
// with probability `prob`; its magnitude is m (0..10), jittered by N(0, mstd)
// and clipped to [0,10]. Geometric ops resample bilinearly and fill uncovered
// pixels with `fill` (timm: the data set's mean colour).
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "data/image.h"
#include "data/rng.h"

namespace pw {

// The individual ops, usable on their own. All act per channel.
namespace augment {
void auto_contrast(Image& img);               // stretch each channel's [min,max] to [0,255]
void equalize(Image& img);                    // PIL's histogram equalisation, per channel
void invert(Image& img);                      // 255 - p
void posterize(Image& img, int bits);         // keep the top `bits` bits (0..8)
void solarize(Image& img, int threshold);     // p >= threshold -> 255 - p
void solarize_add(Image& img, int add, int threshold = 128);  // p < threshold -> min(255, p + add)
// Blends with a degenerate image: out = deg + f * (img - deg) (PIL ImageEnhance).
void color(Image& img, double f);       // deg = grayscale (identity for 1 channel)
void contrast(Image& img, double f);    // deg = mean gray level
void brightness(Image& img, double f);  // deg = black
void sharpness(Image& img, double f);   // deg = 3x3 smooth filter, border kept
// out(x,y) = in(a*x + b*y + c, d*x + e*y + f) at pixel centres (PIL's AFFINE
// transform); bilinear, `fill` (c entries) where the source is outside.
Image affine(const Image& in, const std::array<double, 6>& m, const uint8_t* fill);
Image rotate(const Image& in, double degrees, const uint8_t* fill);  // counter-clockwise, about the centre
Image shear_x(const Image& in, double factor, const uint8_t* fill);
Image shear_y(const Image& in, double factor, const uint8_t* fill);
Image translate_x(const Image& in, double pixels, const uint8_t* fill);
Image translate_y(const Image& in, double pixels, const uint8_t* fill);
}  // namespace augment

struct RandAugmentConfig {
  int n = 2;                // ops per image; 0 disables RandAugment
  double m = 9;             // magnitude in [0,10]
  double mstd = 0.5;        // std of the per-op magnitude jitter; 0 = fixed
  bool increasing = true;   // timm's "inc1" op list (magnitude always strengthens the op)
  double prob = 0.5;        // probability each drawn op is applied
};

class RandAugment {
 public:
  // fill: per-channel colour for pixels a geometric op uncovers; 1 or 3 entries.
  RandAugment(RandAugmentConfig cfg, std::vector<uint8_t> fill);
  void apply(Image& img, SampleRng& rng) const;
  static const std::vector<std::string>& op_names(bool increasing);

 private:
  RandAugmentConfig cfg_;
  std::vector<uint8_t> fill_;  // (3)
};

}  // namespace pw
