#include "data/mixup.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "runtime/check.h"

namespace pw {

Tensor smooth_one_hot(const Tensor& labels, int64_t K, double s) {
  PW_CHECK(labels.dtype() == DType::I64 && labels.dim() == 1, "smooth_one_hot: labels must be a (B) i64 tensor, got ",
           labels.str());
  PW_CHECK(K > 0, "smooth_one_hot: num_classes must be > 0, got ", K);
  const int64_t B = labels.size(0);
  const float off = (float)(s / K), on = (float)(1.0 - s + s / K);
  Tensor t = full({B, K}, off, DType::F32);
  const int64_t* y = labels.data<int64_t>();
  float* p = t.data<float>();
  for (int64_t b = 0; b < B; ++b) {
    PW_CHECK(y[b] >= 0 && y[b] < K, "smooth_one_hot: label ", y[b], " of sample ", b, " outside [0,", K, ")");
    p[b * K + y[b]] = on;
  }
  return t;
}

Tensor mixup_batch(Tensor& images, const Tensor& labels, int64_t K, const MixupConfig& cfg, SampleRng& rng,
                   MixupParams* params) {
  PW_CHECK(images.dtype() == DType::F32 && images.dim() == 4, "mixup_batch: images must be (B,C,H,W) f32, got ",
           images.str());
  PW_CHECK(labels.dim() == 1 && labels.size(0) == images.size(0), "mixup_batch: labels ", labels.str(),
           " do not match images ", images.str());
  PW_CHECK(cfg.mixup_alpha >= 0 && cfg.cutmix_alpha >= 0 && cfg.prob >= 0 && cfg.prob <= 1 && cfg.switch_prob >= 0 &&
               cfg.switch_prob <= 1 && cfg.label_smoothing >= 0 && cfg.label_smoothing < 1,
           "mixup_batch: need alphas >= 0, prob and switch_prob in [0,1], label_smoothing in [0,1); got mixup_alpha=",
           cfg.mixup_alpha, " cutmix_alpha=", cfg.cutmix_alpha, " prob=", cfg.prob, " switch_prob=", cfg.switch_prob,
           " label_smoothing=", cfg.label_smoothing);
  const int64_t B = images.size(0), C = images.size(1), H = images.size(2), W = images.size(3);
  MixupParams p;
  // timm Mixup._params_per_batch
  if (cfg.enabled() && (double)rng.uniform() < cfg.prob) {
    if (cfg.mixup_alpha > 0 && cfg.cutmix_alpha > 0) {
      p.cutmix = (double)rng.uniform() < cfg.switch_prob;
      p.lam = p.cutmix ? rng.beta(cfg.cutmix_alpha, cfg.cutmix_alpha) : rng.beta(cfg.mixup_alpha, cfg.mixup_alpha);
    } else if (cfg.mixup_alpha > 0) {
      p.lam = rng.beta(cfg.mixup_alpha, cfg.mixup_alpha);
    } else {
      p.cutmix = true;
      p.lam = rng.beta(cfg.cutmix_alpha, cfg.cutmix_alpha);
    }
  }
  float* x = images.data<float>();
  const int64_t per = C * H * W;
  if (p.lam != 1.0) {
    // Mix with the flipped batch. Sample b reads sample B-1-b: process pairs (b, B-1-b) together so
    // the in-place update never reads an already-mixed value.
    if (p.cutmix) {
      // timm rand_bbox: a box of (1-lam) area at a uniformly drawn centre, clipped to the image.
      double ratio = std::sqrt(1.0 - p.lam);
      int64_t cut_h = (int64_t)(H * ratio), cut_w = (int64_t)(W * ratio);
      int64_t cy = rng.randint(0, H - 1), cx = rng.randint(0, W - 1);
      p.y0 = std::clamp<int64_t>(cy - cut_h / 2, 0, H);
      p.y1 = std::clamp<int64_t>(cy + cut_h / 2, 0, H);
      p.x0 = std::clamp<int64_t>(cx - cut_w / 2, 0, W);
      p.x1 = std::clamp<int64_t>(cx + cut_w / 2, 0, W);
      if (cfg.correct_lam) p.lam = 1.0 - (double)((p.y1 - p.y0) * (p.x1 - p.x0)) / (double)(H * W);
      const int64_t bw = p.x1 - p.x0;
      std::vector<float> tmp((size_t)std::max<int64_t>(bw, 0));
      for (int64_t b = 0; b < B / 2; ++b) {
        float* a = x + b * per;
        float* o = x + (B - 1 - b) * per;
        for (int64_t k = 0; k < C && bw > 0; ++k)
          for (int64_t y = p.y0; y < p.y1; ++y) {
            float* ra = a + (k * H + y) * W + p.x0;
            float* ro = o + (k * H + y) * W + p.x0;
            std::memcpy(tmp.data(), ra, (size_t)bw * sizeof(float));
            std::memcpy(ra, ro, (size_t)bw * sizeof(float));
            std::memcpy(ro, tmp.data(), (size_t)bw * sizeof(float));
          }
      }
    } else {
      const float l = (float)p.lam, m = (float)(1.0 - p.lam);
      for (int64_t b = 0; b < B / 2; ++b) {
        float* a = x + b * per;
        float* o = x + (B - 1 - b) * per;
        for (int64_t i = 0; i < per; ++i) {
          float va = a[i], vo = o[i];
          a[i] = va * l + vo * m;
          o[i] = vo * l + va * m;
        }
      }
      // An odd batch's middle sample mixes with itself: unchanged up to rounding, as in timm.
    }
  }
  Tensor y1 = smooth_one_hot(labels, K, cfg.label_smoothing);
  Tensor soft = empty({B, K}, DType::F32);
  const float* t = y1.data<float>();
  float* s = soft.data<float>();
  const float l = (float)p.lam, m = (float)(1.0 - p.lam);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t k = 0; k < K; ++k) s[b * K + k] = t[b * K + k] * l + t[(B - 1 - b) * K + k] * m;
  if (params) *params = p;
  return soft;
}

}  // namespace pw
