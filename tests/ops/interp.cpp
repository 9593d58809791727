// Test rows of the resizing family (tests/op_test.h). PyTorch values:
// tests/fixtures/pool.json (scripts/reference/pool.py writes the resizing cases
// next to the pooling ones), names <mode>_<size>_ac<0|1>.
#include <string>

#include "kernels/ops.h"
#include "tests/op_test.h"

namespace pw::test {

namespace {

// One row per mode, size and align_corners; `ref`: the fixture's size name or empty.
struct Resize {
  const char* variant;
  Shape in;
  int64_t oh, ow;
  const char* ref;
  Shape parity;  // empty: the gradient check's shape
};

int add_rows(bool cubic) {
  const Resize cases[] = {
      {"up", {2, 3, 4, 5}, 7, 9, "up", {2, 3, 5, 7}},
      {"down", {1, 2, 9, 11}, 4, 5, "down", {2, 3, 13, 11}},
      {"mixed", {1, 3, 5, 8}, 9, 3, "mixed", {1, 2, 6, 9}},
      {"same size", {1, 1, 4, 5}, 4, 5, "same", {1, 3, 5, 7}},
      {"to 1x1", {1, 2, 3, 4}, 1, 1, "to1x1", {1, 2, 5, 7}},
      {"pos-embed 5->8", {1, 2, 5, 5}, 8, 8, "posembed", {}},
      {"from 1x1", {1, 2, 1, 1}, 3, 4, nullptr, {}},
      {"tiny 2x3->7x5", {1, 2, 2, 3}, 7, 5, nullptr, {}},
  };
  const char* op = cubic ? "interpolate_bicubic" : "interpolate_bilinear";
  for (const Resize& c : cases)
    for (bool ac : {false, true}) {
      const int64_t oh = c.oh, ow = c.ow;
      OpTest t(op, {In(c.in)}, [=](X x) {
        return cubic ? interpolate_bicubic(x[0], oh, ow, ac) : interpolate_bilinear(x[0], oh, ow, ac);
      });
      t.variant(std::string(c.variant) + (ac ? " align_corners" : ""));
      if (c.ref) t.ref("pool", std::string(cubic ? "bicubic_" : "bilinear_") + c.ref + "_ac" + (ac ? "1" : "0"));
      if (!c.parity.empty()) t.parity({In(c.parity)});
      op_tests().push_back(std::move(t));
    }
  return 0;
}

}  // namespace

PW_OP_TEST(OpTest("interpolate_bilinear", {In({1, 2, 3, 4})}, [](X x) { return interpolate_bilinear(x[0], 64, 47); })
               .variant("large")
               .parity({In({4, 8, 31, 33})}));
// ViT position-embedding resize (timm): 14x14 -> 24x24 of 768 channels.
PW_OP_TEST(OpTest("interpolate_bicubic", {In({1, 1, 6, 7})}, [](X x) { return interpolate_bicubic(x[0], 24, 24); })
               .variant("pos-embed")
               .parity({In({1, 768, 14, 14})}));
[[maybe_unused]] const int kBilinearRows = add_rows(false);
[[maybe_unused]] const int kBicubicRows = add_rows(true);

}  // namespace pw::test
