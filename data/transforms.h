// Per-sample transforms: uint8 HWC image -> float32 CHW, train or eval.
//
// Train:  [random-resized-crop | resize + center crop] -> [padded random crop]
//         -> [horizontal flip] -> [RandAugment] -> /255, normalise -> [random erasing]
// Eval:   resize shorter side to image_size / crop_pct -> center crop -> /255, normalise
// Every bracketed step is off by default. All randomness comes from the
// SampleRng passed in, so the result is a pure function of (seed, epoch, index).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "autograd/tensor.h"
#include "data/image.h"
#include "data/randaugment.h"
#include "data/rng.h"

namespace pw {

struct TransformConfig {
  int64_t image_size = 0;  // output side (square); 0 = the source size (then no resize or crop)
  int64_t channels = 0;    // output channels; 0 = the source's, 3 replicates a gray image

  // --- train-time augmentations (used only when Transform's train = true) ---
  bool random_resized_crop = false;     // torchvision RandomResizedCrop(image_size, scale, ratio)
  double rrc_scale_min = 0.08, rrc_scale_max = 1.0;
  double rrc_ratio_min = 3.0 / 4.0, rrc_ratio_max = 4.0 / 3.0;
  int64_t crop_padding = 0;             // RandomCrop(image_size, padding) with zero fill; 0 = off
  double hflip = 0.0;                   // probability of a horizontal flip
  RandAugmentConfig randaugment{0};     // n = 0: off (timm's rand-m9-mstd0.5-inc1 is {2, 9, 0.5})
  double erasing_prob = 0.0;            // timm RandomErasing probability; 0 = off
  std::string erasing_mode = "pixel";   // pixel: N(0,1) per value | rand: per channel | const: zeros
  int erasing_count = 1;                // erased boxes per image (max_count; min_count = 1)
  double erasing_min_area = 0.02, erasing_max_area = 1.0 / 3.0, erasing_min_aspect = 0.3;

  // --- eval-time ---
  double crop_pct = 1.0;  // eval resizes the shorter side to floor(image_size / crop_pct)

  // --- both ---
  std::vector<float> mean, std;  // (C) in [0,1] units; empty = no normalisation (values in [0,1])
};

class Transform {
 public:
  Transform(TransformConfig cfg, bool train);
  // The (C,H,W) that apply() writes for an input of this size.
  Shape output_shape(const Image& in) const;
  // out: (C,H,W) float32 with C,H,W = output_shape(in).
  void apply(const Image& in, SampleRng& rng, float* out) const;
  // The uint8 stage alone (geometry, flip, RandAugment): for tests and previews.
  Image augment(const Image& in, SampleRng& rng) const;
  // apply() into a fresh (C,H,W) tensor.
  Tensor operator()(const Image& in, SampleRng& rng) const;

  const TransformConfig& config() const { return cfg_; }
  bool train() const { return train_; }

 private:
  TransformConfig cfg_;
  bool train_;
  RandAugment randaug_;
};

// The i,j,h,w window of torchvision's RandomResizedCrop.get_params.
struct CropBox {
  int64_t y, x, h, w;
};
CropBox random_resized_crop_box(int64_t H, int64_t W, double scale_min, double scale_max, double ratio_min,
                                double ratio_max, SampleRng& rng);

// timm RandomErasing on one normalised (C,H,W) image in place.
void random_erasing(float* img, int64_t C, int64_t H, int64_t W, double prob, const std::string& mode, int max_count,
                    double min_area, double max_area, double min_aspect, SampleRng& rng);

}  // namespace pw
