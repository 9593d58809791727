// Swin, CvT and LocalViT on CUDA against the CPU: tiny instances built from one config
// (same seed: same weights), a train-mode forward (BatchNorm on batch statistics) and
// backward on the same batch; logits, loss, every parameter gradient and the BatchNorm
// running statistics must match. Covers the compositions the models add on CUDA: Swin's
// rolled, padded windows with the expanded bias + mask in attention_qkv_bias, CvT's
// depthwise/BatchNorm projections and composed attention, LocalViT's convolutional
// feed-forward with SE and a head width the flash kernels lack (composed attention).
// Skips without a device.
//
// Tolerances: atol 1e-4 / rtol 1e-3, float32 through a few blocks whose CUDA kernels
// sum in other (fixed) orders than the CPU ones.
#include "kernels/ops.h"
#include "tests/cuda_parity.h"
#include "tests/model_parity.h"
#include "tests/gradcheck.h"
#include "trainers/config.h"
#include "trainers/trainer.h"

using namespace pw;
using namespace pw::test;

TEST_CASE("Swin on CUDA as on the CPU: shifted, padded windows, patch merging") {
  PW_SKIP_WITHOUT_CUDA();
  // 12x12 input, 2x2 patches -> 6x6 tokens: window 4 pads to 8x8 and shifts by 2; merging
  // pads nothing (6 -> 3), the 3x3 stage is one window
  check_model_on_cuda("model:\n  type: swin\n  image_size: 12\n  channels: 2\n  num_classes: 3\n  patch_size: 2\n"
                      "  embed_dim: 32\n  depths: [2, 2]\n  heads: [2, 4]\n  window_size: 4\n  drop_path: 0\n",
                      2, 12);
}

TEST_CASE("CvT on CUDA as on the CPU: conv projections, class token in the last stage") {
  PW_SKIP_WITHOUT_CUDA();
  check_model_on_cuda("model:\n  type: cvt\n  image_size: 16\n  channels: 2\n  num_classes: 3\n  dims: [16, 32]\n"
                      "  depths: [1, 2]\n  heads: [1, 2]\n  patch_sizes: [3, 3]\n  patch_strides: [2, 2]\n"
                      "  patch_paddings: [1, 1]\n  drop_path: [0.0, 0.0]\n",
                      2, 16);
}

TEST_CASE("LocalViT on CUDA as on the CPU: convolutional feed-forward with SE, 12-wide heads (composed)") {
  PW_SKIP_WITHOUT_CUDA();
  check_model_on_cuda("model:\n  type: localvit\n  image_size: 16\n  channels: 2\n  num_classes: 3\n"
                      "  patch_size: 4\n  dim: 24\n  depth: 2\n  heads: 2\n  se_reduction: 24\n  drop_path: 0\n",
                      2, 16);
}
