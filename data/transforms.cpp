#include "data/transforms.h"

#include <algorithm>
#include <cmath>

#include "runtime/check.h"

namespace pw {

namespace {
std::vector<uint8_t> fill_from_mean(const std::vector<float>& mean) {
  // timm's img_mean hparam: the mean colour in 0..255, else mid-gray.
  if (mean.empty()) return {128};
  std::vector<uint8_t> f;
  for (float m : mean) f.push_back((uint8_t)std::clamp((int)std::lround(255.0 * m), 0, 255));
  return f;
}

// Checks a config before any member is built from it.
const TransformConfig& validated(const TransformConfig& c) {
  PW_CHECK(c.image_size >= 0 && c.channels >= 0 && c.crop_padding >= 0, "Transform: image_size, channels and ",
           "crop_padding must be >= 0, got ", c.image_size, ", ", c.channels, ", ", c.crop_padding);
  PW_CHECK(c.channels == 0 || c.channels == 1 || c.channels == 3, "Transform: channels must be 0 (keep), 1 or 3, got ",
           c.channels);
  PW_CHECK(c.mean.size() == c.std.size(), "Transform: mean has ", c.mean.size(), " entries but std has ",
           c.std.size(), "; give one per channel");
  PW_CHECK(c.mean.size() == 0 || c.mean.size() == 1 || c.mean.size() == 3, "Transform: mean/std need 1 or 3 ",
           "entries (one per channel), got ", c.mean.size());
  for (float s : c.std) PW_CHECK(s > 0, "Transform: every std must be > 0, got ", s);
  PW_CHECK(c.hflip >= 0 && c.hflip <= 1, "Transform: hflip is a probability in [0,1], got ", c.hflip);
  PW_CHECK(c.erasing_prob >= 0 && c.erasing_prob <= 1, "Transform: erasing_prob must be in [0,1], got ",
           c.erasing_prob);
  PW_CHECK(c.erasing_mode == "pixel" || c.erasing_mode == "rand" || c.erasing_mode == "const",
           "Transform: erasing_mode must be pixel, rand or const, got '", c.erasing_mode, "'");
  PW_CHECK(c.erasing_count >= 1, "Transform: erasing_count must be >= 1, got ", c.erasing_count);
  PW_CHECK(c.crop_pct > 0 && c.crop_pct <= 1, "Transform: crop_pct must be in (0,1], got ", c.crop_pct);
  PW_CHECK(c.rrc_scale_min > 0 && c.rrc_scale_min <= c.rrc_scale_max && c.rrc_ratio_min > 0 &&
               c.rrc_ratio_min <= c.rrc_ratio_max,
           "Transform: random-resized-crop needs 0 < scale_min <= scale_max and 0 < ratio_min <= ratio_max, got "
           "scale [", c.rrc_scale_min, ",", c.rrc_scale_max, "] ratio [", c.rrc_ratio_min, ",", c.rrc_ratio_max, "]");
  return c;
}
}  // namespace

Transform::Transform(TransformConfig cfg, bool train)
    : cfg_(validated(cfg)), train_(train), randaug_(cfg_.randaugment, fill_from_mean(cfg_.mean)) {}

Shape Transform::output_shape(const Image& in) const {
  int64_t c = cfg_.channels ? cfg_.channels : in.c;
  if (cfg_.image_size > 0) return {c, cfg_.image_size, cfg_.image_size};
  return {c, in.h, in.w};
}

CropBox random_resized_crop_box(int64_t H, int64_t W, double scale_min, double scale_max, double ratio_min,
                                double ratio_max, SampleRng& rng) {
  const double area = (double)H * (double)W;
  const double lr0 = std::log(ratio_min), lr1 = std::log(ratio_max);
  for (int attempt = 0; attempt < 10; ++attempt) {
    double target = area * rng.uniform(scale_min, scale_max);
    double aspect = std::exp(rng.uniform(lr0, lr1));
    // Python's round() is half-to-even, as is nearbyint in the default mode.
    int64_t w = (int64_t)std::nearbyint(std::sqrt(target * aspect));
    int64_t h = (int64_t)std::nearbyint(std::sqrt(target / aspect));
    if (w > 0 && w <= W && h > 0 && h <= H) {
      int64_t y = rng.randint(0, H - h), x = rng.randint(0, W - w);
      return {y, x, h, w};
    }
  }
  // Fallback: the central crop with the aspect ratio clamped into range.
  double in_ratio = (double)W / (double)H;
  int64_t w = W, h = H;
  if (in_ratio < ratio_min) h = (int64_t)std::nearbyint(W / ratio_min);
  else if (in_ratio > ratio_max) w = (int64_t)std::nearbyint(H * ratio_max);
  return {(H - h) / 2, (W - w) / 2, h, w};
}

Image Transform::augment(const Image& in, SampleRng& rng) const {
  PW_CHECK(!in.empty(), "Transform: empty input image");
  Image img = cfg_.channels ? to_channels(in, cfg_.channels) : in;
  const int64_t S = cfg_.image_size;
  if (train_ && cfg_.random_resized_crop) {
    CropBox b = random_resized_crop_box(img.h, img.w, cfg_.rrc_scale_min, cfg_.rrc_scale_max, cfg_.rrc_ratio_min,
                                        cfg_.rrc_ratio_max, rng);
    int64_t oh = S ? S : img.h, ow = S ? S : img.w;
    img = resize_bilinear(crop(img, b.y, b.x, b.h, b.w), oh, ow);
  } else if (S > 0) {
    // timm eval: scale_size = floor(image_size / crop_pct); train without RRC uses crop_pct 1.
    int64_t resize_to = train_ ? S : (int64_t)std::floor((double)S / cfg_.crop_pct + 1e-9);
    img = center_crop(resize_shorter(img, resize_to), S, S);
  }
  if (!train_) return img;
  if (cfg_.crop_padding > 0) {
    // torchvision RandomCrop(size, padding): pad by p, then an in-bounds window of the padded image.
    const int64_t p = cfg_.crop_padding;
    int64_t y = rng.randint(0, 2 * p), x = rng.randint(0, 2 * p);
    img = crop_padded(img, y - p, x - p, img.h, img.w, 0);
  }
  if (cfg_.hflip > 0 && rng.bernoulli(cfg_.hflip)) hflip(img);
  if (cfg_.randaugment.n > 0) randaug_.apply(img, rng);
  return img;
}

void Transform::apply(const Image& in, SampleRng& rng, float* out) const {
  Image img = augment(in, rng);
  const int64_t C = img.c, H = img.h, W = img.w, HW = H * W;
  const size_t nm = cfg_.mean.size();
  PW_CHECK(nm == 0 || nm == (size_t)C, "Transform: mean/std have ", nm, " entries but the image has ", C,
           " channels; give one per channel (or set channels: 3 for gray data with RGB statistics)");
  // out[k] = (p/255 - mean[k]) / std[k] = p * scale[k] + bias[k]
  for (int64_t k = 0; k < C; ++k) {
    float scale = nm ? 1.0f / (255.0f * cfg_.std[k]) : 1.0f / 255.0f;
    float bias = nm ? -cfg_.mean[k] / cfg_.std[k] : 0.0f;
    float* o = out + k * HW;
    const uint8_t* p = img.data.data() + k;
    for (int64_t i = 0; i < HW; ++i) o[i] = (float)p[i * C] * scale + bias;
  }
  if (train_ && cfg_.erasing_prob > 0)
    random_erasing(out, C, H, W, cfg_.erasing_prob, cfg_.erasing_mode, cfg_.erasing_count, cfg_.erasing_min_area,
                   cfg_.erasing_max_area, cfg_.erasing_min_aspect, rng);
}

Tensor Transform::operator()(const Image& in, SampleRng& rng) const {
  Tensor t = empty(output_shape(in), DType::F32);
  apply(in, rng, t.data<float>());
  return t;
}

void random_erasing(float* img, int64_t C, int64_t H, int64_t W, double prob, const std::string& mode, int max_count,
                    double min_area, double max_area, double min_aspect, SampleRng& rng) {
  // timm RandomErasing._erase, with min_count = 1.
  if ((double)rng.uniform() > prob) return;
  const double area = (double)H * (double)W;
  const double la0 = std::log(min_aspect), la1 = std::log(1.0 / min_aspect);
  const int count = max_count == 1 ? 1 : (int)rng.randint(1, max_count);
  for (int n = 0; n < count; ++n) {
    for (int attempt = 0; attempt < 10; ++attempt) {
      double target = rng.uniform(min_area, max_area) * area / count;
      double aspect = std::exp(rng.uniform(la0, la1));
      int64_t h = (int64_t)std::nearbyint(std::sqrt(target * aspect));
      int64_t w = (int64_t)std::nearbyint(std::sqrt(target / aspect));
      if (w < W && h < H) {
        int64_t top = rng.randint(0, H - h), left = rng.randint(0, W - w);
        const bool per_pixel = mode == "pixel";
        for (int64_t k = 0; k < C; ++k) {
          float chan = mode == "rand" ? (float)rng.normal() : 0.0f;
          for (int64_t y = top; y < top + h; ++y) {
            float* row = img + (k * H + y) * W;
            for (int64_t x = left; x < left + w; ++x) row[x] = per_pixel ? (float)rng.normal() : chan;
          }
        }
        break;
      }
    }
  }
}

}  // namespace pw
