// Transforms: geometry and pixel ops against Pillow, train/eval pipelines
// (shapes, flip, normalisation, determinism), random erasing, mixup/cutmix,
// and the per-sample random streams.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <set>

#include "data/image.h"
#include "data/mixup.h"
#include "data/randaugment.h"
#include "data/rng.h"
#include "data/transforms.h"
#include "tests/test_data_pil.h"
#include "tests/test_data_util.h"

using namespace pw;
using namespace pw::test;

namespace {
Image pattern_image(int64_t h, int64_t w, int64_t c, uint32_t seed) {
  Image img(h, w, c);
  img.data = pattern_bytes((size_t)(h * w * c), seed);
  return img;
}
int max_abs_diff(const Image& a, const std::vector<uint8_t>& b) {
  REQUIRE(a.data.size() == b.size());
  int d = 0;
  for (size_t i = 0; i < b.size(); ++i) d = std::max(d, std::abs((int)a.data[i] - (int)b[i]));
  return d;
}
}  // namespace

TEST_CASE("image ops match Pillow") {
  const Image src = pattern_image(pil::kH, pil::kW, 3, pil::kSeed);
  const uint8_t* fill = pil::kFill;
  using Op = std::function<Image(Image)>;
  // tolerance: LUT ops are exact; filters differ from Pillow's fixed-point rounding by at most 1.
  const std::map<std::string, std::pair<Op, int>> ops = {
      {"resize_down_4x5", {[](Image i) { return resize_bilinear(i, 4, 5); }, 1}},
      {"resize_up_11x13", {[](Image i) { return resize_bilinear(i, 11, 13); }, 1}},
      {"rotate_30", {[&](Image i) { return augment::rotate(i, 30, fill); }, 1}},
      {"rotate_m17", {[&](Image i) { return augment::rotate(i, -17, fill); }, 1}},
      {"shear_x_0p25", {[&](Image i) { return augment::shear_x(i, 0.25, fill); }, 1}},
      {"shear_y_m0p2", {[&](Image i) { return augment::shear_y(i, -0.2, fill); }, 1}},
      {"translate_x_2p3", {[&](Image i) { return augment::translate_x(i, 2.3, fill); }, 1}},
      {"equalize", {[](Image i) { augment::equalize(i); return i; }, 0}},
      {"autocontrast", {[](Image i) { augment::auto_contrast(i); return i; }, 0}},
      {"posterize_3", {[](Image i) { augment::posterize(i, 3); return i; }, 0}},
      {"solarize_100", {[](Image i) { augment::solarize(i, 100); return i; }, 0}},
      {"color_0p3", {[](Image i) { augment::color(i, 0.3); return i; }, 1}},
      {"contrast_1p6", {[](Image i) { augment::contrast(i, 1.6); return i; }, 1}},
      {"brightness_1p4", {[](Image i) { augment::brightness(i, 1.4); return i; }, 1}},
      {"sharpness_1p7", {[](Image i) { augment::sharpness(i, 1.7); return i; }, 1}},
      {"sharpness_0p2", {[](Image i) { augment::sharpness(i, 0.2); return i; }, 1}},
  };
  for (const auto& ref : pil::refs()) {
    CAPTURE(ref.name);
    auto it = ops.find(ref.name);
    REQUIRE(it != ops.end());
    Image out = it->second.first(src);
    REQUIRE(out.h == ref.h);
    REQUIRE(out.w == ref.w);
    CHECK(max_abs_diff(out, ref.data) <= it->second.second);
  }
}

TEST_CASE("rotate by 90 degrees is exact and counter-clockwise; zero shear is the identity") {
  const Image src = pattern_image(6, 6, 3, 4);
  const uint8_t fill[3] = {1, 2, 3};
  Image r = augment::rotate(src, 90, fill);
  bool same = true;
  for (int64_t y = 0; y < 6; ++y)
    for (int64_t x = 0; x < 6; ++x)
      for (int64_t k = 0; k < 3; ++k) same &= r.at(y, x, k) == src.at(x, 5 - y, k);
  CHECK(same);
  CHECK(augment::shear_x(src, 0.0, fill).data == src.data);
  CHECK(augment::translate_y(src, 0.0, fill).data == src.data);
}

TEST_CASE("resize, crops and flips") {
  Image flat(9, 13, 3, 77);
  CHECK(resize_bilinear(flat, 4, 5).data == std::vector<uint8_t>(4 * 5 * 3, 77));
  CHECK(resize_bilinear(flat, 20, 31).data == std::vector<uint8_t>(20 * 31 * 3, 77));
  Image r = resize_shorter(Image(40, 60, 3), 36);
  CHECK(r.h == 36);
  CHECK(r.w == 54);
  Image src = pattern_image(5, 7, 1, 9);
  Image c = center_crop(src, 3, 3);
  CHECK(c.at(0, 0, 0) == src.at(1, 2, 0));
  Image p = crop_padded(src, -2, -1, 5, 7, 0);
  CHECK(p.at(0, 0, 0) == 0);
  CHECK(p.at(2, 1, 0) == src.at(0, 0, 0));
  CHECK(p.at(4, 6, 0) == src.at(2, 5, 0));
  Image f = src;
  hflip(f);
  CHECK(f.at(3, 0, 0) == src.at(3, 6, 0));
  CHECK(f.at(3, 2, 0) == src.at(3, 4, 0));
  CHECK_THROWS_WITH_AS(crop(src, 3, 0, 3, 3), doctest::Contains("does not fit"), pw::Error);
  CHECK_THROWS_WITH_AS(to_channels(pattern_image(2, 2, 3, 1), 1), doctest::Contains("to_channels"), pw::Error);
}

TEST_CASE("transform output shapes") {
  SampleRng rng(1, 0, 0, RngStream::Sample);
  Image gray = pattern_image(28, 28, 1, 1);
  TransformConfig c;
  CHECK(Transform(c, false)(gray, rng).shape() == Shape{1, 28, 28});
  c.channels = 3;
  CHECK(Transform(c, false)(gray, rng).shape() == Shape{3, 28, 28});

  Image big = pattern_image(40, 60, 3, 2);
  TransformConfig e;
  e.image_size = 32;
  e.crop_pct = 0.875;  // resize to 36, crop 32
  CHECK(Transform(e, false).output_shape(big) == Shape{3, 32, 32});
  CHECK(Transform(e, false)(big, rng).shape() == Shape{3, 32, 32});
  TransformConfig t;
  t.image_size = 16;
  t.random_resized_crop = true;
  t.hflip = 0.5;
  t.randaugment = RandAugmentConfig{2, 9, 0.5, true, 0.5};
  t.erasing_prob = 1.0;
  for (uint64_t i = 0; i < 20; ++i) {
    SampleRng r(3, 1, i, RngStream::Sample);
    CHECK(Transform(t, true)(big, r).shape() == Shape{3, 16, 16});
  }
  TransformConfig cp;
  cp.crop_padding = 4;
  CHECK(Transform(cp, true)(pattern_image(32, 32, 3, 3), rng).shape() == Shape{3, 32, 32});
  TransformConfig bad;
  bad.mean = {0.5f, 0.5f};
  bad.std = {0.5f};
  CHECK_THROWS_WITH_AS(Transform(bad, true), doctest::Contains("mean has 2 entries but std has 1"), pw::Error);
  TransformConfig wrongc;
  wrongc.mean = {0.5f, 0.5f, 0.5f};
  wrongc.std = {0.5f, 0.5f, 0.5f};
  CHECK_THROWS_WITH_AS(Transform(wrongc, false)(gray, rng), doctest::Contains("the image has 1 channels"), pw::Error);
}

TEST_CASE("normalisation values and CHW layout") {
  Image img = pattern_image(3, 4, 3, 5);
  TransformConfig c;
  c.mean = {0.1f, 0.5f, 0.9f};
  c.std = {0.2f, 0.3f, 0.4f};
  SampleRng rng(0, 0, 0, RngStream::Sample);
  Tensor t = Transform(c, false)(img, rng);
  const float* p = t.data<float>();
  for (int64_t k = 0; k < 3; ++k)
    for (int64_t y = 0; y < 3; ++y)
      for (int64_t x = 0; x < 4; ++x) {
        double want = (img.at(y, x, k) / 255.0 - c.mean[k]) / c.std[k];
        CHECK(p[(k * 3 + y) * 4 + x] == doctest::Approx(want).epsilon(1e-5));
      }
  TransformConfig raw;  // no mean/std: [0,1]
  Tensor u = Transform(raw, false)(img, rng);
  CHECK(u.data<float>()[5] == doctest::Approx(img.at(1, 1, 0) / 255.0));
}

TEST_CASE("horizontal flip and padded crop are exact") {
  Image img = pattern_image(5, 6, 3, 6);
  TransformConfig c;
  c.hflip = 1.0;
  SampleRng rng(0, 0, 0, RngStream::Sample);
  Image out = Transform(c, true).augment(img, rng);
  Image want = img;
  hflip(want);
  CHECK(out.data == want.data);
  // Eval never flips.
  CHECK(Transform(c, false).augment(img, rng).data == img.data);

  // A padded random crop is the image shifted by (dy,dx) in [-p,p] with zero fill.
  TransformConfig pc;
  pc.crop_padding = 2;
  std::set<std::pair<int, int>> shifts;
  for (uint64_t i = 0; i < 200; ++i) {
    SampleRng r(9, 0, i, RngStream::Sample);
    Image o = Transform(pc, true).augment(img, r);
    bool found = false;
    for (int dy = -2; dy <= 2 && !found; ++dy)
      for (int dx = -2; dx <= 2 && !found; ++dx)
        if (crop_padded(img, dy, dx, 5, 6, 0).data == o.data) {
          found = true;
          shifts.insert({dy, dx});
        }
    CHECK(found);
  }
  CHECK(shifts.size() == 25);  // every offset happens
}

TEST_CASE("a sample's augmentation is a pure function of (seed, epoch, index)") {
  Image img = pattern_image(40, 48, 3, 7);
  TransformConfig t;
  t.image_size = 24;
  t.random_resized_crop = true;
  t.hflip = 0.5;
  t.randaugment = RandAugmentConfig{2, 9, 0.5, true, 0.5};
  t.erasing_prob = 0.5;
  t.mean = {0.5f, 0.5f, 0.5f};
  t.std = {0.25f, 0.25f, 0.25f};
  Transform tf(t, true);
  auto run = [&](uint64_t seed, uint64_t epoch, uint64_t index) {
    SampleRng r(seed, epoch, index, RngStream::Sample);
    return tf(img, r).to_vector();
  };
  CHECK(run(1, 2, 3) == run(1, 2, 3));
  CHECK(run(1, 2, 3) != run(1, 2, 4));
  CHECK(run(1, 2, 3) != run(1, 3, 3));
  CHECK(run(1, 2, 3) != run(2, 2, 3));
}

TEST_CASE("RandAugment: every op on gray and RGB keeps the size; m=0, prob=0 are identities") {
  const uint8_t* fill = pil::kFill;
  (void)fill;
  for (int64_t ch : {1, 3}) {
    Image img = pattern_image(11, 9, ch, 8);
    RandAugment ra(RandAugmentConfig{3, 9, 0.5, true, 1.0}, {100, 110, 120});
    RandAugment ra_plain(RandAugmentConfig{3, 10, 0, false, 1.0}, {100});
    for (uint64_t i = 0; i < 200; ++i) {  // 600 draws from 15 ops: each one runs
      SampleRng r(5, 0, i, RngStream::Sample);
      Image a = img;
      ra.apply(a, r);
      CHECK(a.h == 11);
      CHECK(a.w == 9);
      CHECK(a.c == ch);
      Image b = img;
      ra_plain.apply(b, r);
      CHECK(b.data.size() == img.data.size());
    }
    RandAugment off(RandAugmentConfig{4, 9, 0.5, true, 0.0}, {0});
    Image o = img;
    SampleRng r(0, 0, 0, RngStream::Sample);
    off.apply(o, r);
    CHECK(o.data == img.data);
  }
  CHECK(RandAugment::op_names(true).size() == 15);
  CHECK_THROWS_WITH_AS(RandAugment(RandAugmentConfig{2, 11, 0, true, 0.5}, {0}), doctest::Contains("RandAugment"),
                       pw::Error);
}

TEST_CASE("pixel ops: exact values") {
  Image img(1, 4, 1);
  img.data = {0, 100, 128, 255};
  Image a = img;
  augment::invert(a);
  CHECK(a.data == std::vector<uint8_t>{255, 155, 127, 0});
  a = img;
  augment::posterize(a, 1);
  CHECK(a.data == std::vector<uint8_t>{0, 0, 128, 128});
  a = img;
  augment::posterize(a, 0);
  CHECK(a.data == std::vector<uint8_t>{0, 0, 0, 0});
  a = img;
  augment::solarize(a, 128);
  CHECK(a.data == std::vector<uint8_t>{0, 100, 127, 0});
  a = img;
  augment::solarize_add(a, 50);
  CHECK(a.data == std::vector<uint8_t>{50, 150, 128, 255});
  a = img;
  augment::brightness(a, 2.0);
  CHECK(a.data == std::vector<uint8_t>{0, 200, 255, 255});
  Image ac(1, 3, 1);
  ac.data = {50, 100, 150};
  augment::auto_contrast(ac);
  CHECK(ac.data == std::vector<uint8_t>{0, 127, 255});
}

TEST_CASE("random erasing: one box of the right area, the rest untouched") {
  const int64_t C = 3, H = 20, W = 30;
  std::vector<float> base(C * H * W);
  for (size_t i = 0; i < base.size(); ++i) base[i] = 1.0f + (float)(i % 7);
  int erased_any = 0;
  for (uint64_t s = 0; s < 50; ++s) {
    std::vector<float> img = base;
    SampleRng rng(s, 0, 0, RngStream::Sample);
    random_erasing(img.data(), C, H, W, 1.0, "const", 1, 0.02, 1.0 / 3, 0.3, rng);
    int64_t zeros = 0;
    for (float v : img) zeros += v == 0.0f;
    if (zeros) ++erased_any;
    CHECK(zeros % C == 0);
    CHECK(zeros / C <= H * W / 3 + W);  // rounding of h,w can add up to a row
  }
  CHECK(erased_any >= 45);  // 10 attempts nearly always find a box
  std::vector<float> img = base;
  SampleRng rng(1, 0, 0, RngStream::Sample);
  random_erasing(img.data(), C, H, W, 0.0, "pixel", 1, 0.02, 1.0 / 3, 0.3, rng);
  CHECK(img == base);
}

TEST_CASE("random-resized-crop box") {
  for (uint64_t i = 0; i < 500; ++i) {
    SampleRng rng(2, 0, i, RngStream::Sample);
    CropBox b = random_resized_crop_box(50, 80, 0.08, 1.0, 3.0 / 4, 4.0 / 3, rng);
    CHECK(b.y >= 0);
    CHECK(b.x >= 0);
    CHECK(b.y + b.h <= 50);
    CHECK(b.x + b.w <= 80);
    CHECK(b.h * b.w >= 0.07 * 50 * 80);
  }
  // Impossible scale: falls back to the central crop with the ratio clamped.
  SampleRng rng(0, 0, 0, RngStream::Sample);
  CropBox f = random_resized_crop_box(10, 100, 2.0, 3.0, 1.0, 1.0, rng);
  CHECK(f.h == 10);
  CHECK(f.w == 10);
  CHECK(f.x == 45);
}

namespace {
Tensor pattern_batch(int64_t B, int64_t C, int64_t H, int64_t W) {
  std::vector<float> v((size_t)(B * C * H * W));
  auto bytes = pattern_bytes(v.size(), 3);
  for (size_t i = 0; i < v.size(); ++i) v[i] = bytes[i] / 255.0f;
  return from_vector_f(v, {B, C, H, W});
}
}  // namespace

TEST_CASE("mixup: lam * x + (1-lam) * flip(x); soft targets with label smoothing") {
  const int64_t B = 5, C = 2, H = 4, W = 3, K = 6;
  Tensor x = pattern_batch(B, C, H, W);
  Tensor orig = x.clone();
  Tensor y = from_indices({0, 1, 2, 5, 3}, {B});
  MixupConfig m;
  m.mixup_alpha = 0.8;
  m.label_smoothing = 0.1;
  SampleRng rng(1, 0, 0, RngStream::Mixup);
  MixupParams p;
  Tensor soft = mixup_batch(x, y, K, m, rng, &p);
  CHECK(!p.cutmix);
  CHECK(p.lam > 0);
  CHECK(p.lam < 1);
  const float *a = x.data<float>(), *o = orig.data<float>();
  const int64_t per = C * H * W;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < per; ++i)
      CHECK(a[b * per + i] ==
            doctest::Approx(p.lam * o[b * per + i] + (1 - p.lam) * o[(B - 1 - b) * per + i]).epsilon(1e-5));
  REQUIRE(soft.shape() == Shape{B, K});
  const float* s = soft.data<float>();
  const int64_t* lab = y.data<int64_t>();
  for (int64_t b = 0; b < B; ++b) {
    double sum = 0;
    for (int64_t k = 0; k < K; ++k) {
      double want = 0.1 / K + (k == lab[b] ? p.lam * 0.9 : 0) + (k == lab[B - 1 - b] ? (1 - p.lam) * 0.9 : 0);
      CHECK(s[b * K + k] == doctest::Approx(want).epsilon(1e-5));
      sum += s[b * K + k];
    }
    CHECK(sum == doctest::Approx(1.0).epsilon(1e-5));
  }
}

TEST_CASE("cutmix: the box comes from the flipped batch and lam is its complement") {
  const int64_t B = 4, C = 2, H = 8, W = 10, K = 3;
  MixupConfig m;
  m.cutmix_alpha = 1.0;
  m.label_smoothing = 0.0;
  int boxes = 0;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    Tensor x = pattern_batch(B, C, H, W);
    Tensor orig = x.clone();
    Tensor y = from_indices({0, 1, 2, 0}, {B});
    SampleRng rng(seed, 0, 0, RngStream::Mixup);
    MixupParams p;
    Tensor soft = mixup_batch(x, y, K, m, rng, &p);
    CHECK(p.cutmix);
    int64_t area = (p.y1 - p.y0) * (p.x1 - p.x0);
    boxes += area > 0;
    CHECK(p.lam == doctest::Approx(1.0 - (double)area / (H * W)));
    const float *a = x.data<float>(), *o = orig.data<float>();
    bool ok = true;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t k = 0; k < C; ++k)
        for (int64_t yy = 0; yy < H; ++yy)
          for (int64_t xx = 0; xx < W; ++xx) {
            bool in = yy >= p.y0 && yy < p.y1 && xx >= p.x0 && xx < p.x1;
            int64_t src = in ? B - 1 - b : b;
            ok &= a[((b * C + k) * H + yy) * W + xx] == o[((src * C + k) * H + yy) * W + xx];
          }
    CHECK(ok);
    // Sample 1 (label 1) mixed with sample 2 (label 2).
    CHECK(soft.data<float>()[1 * K + 1] == doctest::Approx(p.lam));
    CHECK(soft.data<float>()[1 * K + 2] == doctest::Approx(1 - p.lam));
  }
  CHECK(boxes >= 15);
  // prob = 0: no mixing, targets are the smoothed one-hot labels.
  MixupConfig never = m;
  never.prob = 0;
  never.label_smoothing = 0.3;
  Tensor x = pattern_batch(B, C, H, W), orig = x.clone();
  SampleRng rng(0, 0, 0, RngStream::Mixup);
  Tensor soft = mixup_batch(x, from_indices({0, 1, 2, 0}, {B}), K, never, rng);
  CHECK(x.to_vector() == orig.to_vector());
  CHECK(soft.data<float>()[0] == doctest::Approx(0.7 + 0.1));
  CHECK(soft.data<float>()[1] == doctest::Approx(0.1));
  CHECK_THROWS_WITH_AS(mixup_batch(x, from_indices({0, 1, 7, 0}, {B}), K, never, rng), doctest::Contains("label 7"),
                       pw::Error);
}

TEST_CASE("SampleRng: ranges and moments") {
  SampleRng a(1, 2, 3, RngStream::Sample), b(1, 2, 3, RngStream::Sample), c(1, 2, 3, RngStream::Mixup);
  CHECK(a.key() == b.key());
  CHECK(a.key() != c.key());
  CHECK(SampleRng(1, 2, 3, RngStream::Sample).key() != SampleRng(1, 3, 2, RngStream::Sample).key());
  const int n = 20000;
  double su = 0, sn = 0, sn2 = 0, sb = 0;
  int lo = 0, hi = 0;
  for (int i = 0; i < n; ++i) {
    float u = a.uniform();
    CHECK_MESSAGE((u >= 0 && u < 1), "uniform out of range");
    su += u;
    double z = a.normal();
    sn += z;
    sn2 += z * z;
    int64_t r = a.randint(3, 7);
    lo += r == 3;
    hi += r == 7;
    if (r < 3 || r > 7) FAIL("randint out of range");
    sb += a.beta(0.8, 0.8);
  }
  CHECK(su / n == doctest::Approx(0.5).epsilon(0.02));
  CHECK(std::abs(sn / n) < 0.03);
  CHECK(sn2 / n == doctest::Approx(1.0).epsilon(0.05));
  CHECK(lo > n / 5 - 400);
  CHECK(hi > n / 5 - 400);
  CHECK(sb / n == doctest::Approx(0.5).epsilon(0.03));
  double g = 0;
  for (int i = 0; i < n; ++i) g += a.gamma(0.3);
  CHECK(g / n == doctest::Approx(0.3).epsilon(0.06));
}
