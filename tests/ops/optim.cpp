// Test rows of the optimizer family (tests/op_test.h). The ops are forward-only
// in-place updates of several tensors at once, so each row's fn updates copies
// of its inputs (two or more tensors of different sizes: the multi-tensor path)
// over a few steps and returns everything it updated, flattened into one tensor:
// test_ops compares float32 with float64, test_ops_cuda the CPU with CUDA (the
// parity shapes cross the CUDA kernels' 16384-element chunks with ragged tails).
// The PyTorch trajectories of these updates are in tests/test_optim.cpp, through
// trainers/optim.h.
#include "kernels/ops.h"
#include "kernels/optim/optim.h"
#include "tests/op_test.h"

namespace pw::test {

namespace {

Tensor flat_all(const std::vector<Tensor>& xs) {
  std::vector<Tensor> f;
  for (const Tensor& x : xs) f.push_back(x.reshape({-1}));
  return concat(f, 0);
}

// Fresh tensors of `shapes`, no gradient wanted (an update is not differentiated).
// `positive` marks every k-th input (k = per) at offset `pos` as Positive (second moments).
std::vector<In> ins(const std::vector<Shape>& shapes, int per, int pos = -1) {
  std::vector<In> r;
  for (const Shape& s : shapes)
    for (int k = 0; k < per; ++k) r.push_back(In(s, k == pos ? Domain::Positive : Domain::Any).no_grad());
  return r;
}

const std::vector<Shape> kSmall = {{7, 13}, {13}, {3, 5, 2}};
const std::vector<Shape> kLarge = {{5, 40001}, {33}, {1}, {3, 16384}};

// inputs per tensor: p, g, m, v
Tensor adamw_case(X x, const AdamWArgs& a) {
  std::vector<AdamWSlot> ts;
  for (size_t k = 0; k * 4 < x.size(); ++k)
    ts.push_back({x[4 * k].clone(), x[4 * k + 1], x[4 * k + 2].clone(), x[4 * k + 3].clone(), (int64_t)k + 2,
                  k % 2 == 0});
  for (int s = 0; s < 3; ++s) {
    for (AdamWSlot& t : ts) ++t.step;
    adamw_step(ts, a);
  }
  std::vector<Tensor> out;
  for (const AdamWSlot& t : ts) out.insert(out.end(), {t.p, t.m, t.v});
  return flat_all(out);
}

// inputs per tensor: p, g, buf
Tensor sgd_case(X x, const SgdArgs& a) {
  std::vector<SgdSlot> ts;
  for (size_t k = 0; k * 3 < x.size(); ++k)
    ts.push_back({x[3 * k].clone(), x[3 * k + 1], a.momentum != 0 ? x[3 * k + 2].clone() : Tensor(), k % 2 == 0, true});
  for (int s = 0; s < 3; ++s) {
    sgd_step(ts, a);
    for (SgdSlot& t : ts) t.first = false;
  }
  std::vector<Tensor> out;
  for (const SgdSlot& t : ts) {
    out.push_back(t.p);
    if (t.buf.defined()) out.push_back(t.buf);
  }
  return flat_all(out);
}

Tensor norm_case(X x) { return global_norm(x, x[0].device()).to(x[0].dtype()); }

Tensor clip_case(X x, double max_norm) {
  std::vector<Tensor> gs;
  for (const Tensor& t : x) gs.push_back(t.clone());
  Tensor norm = global_norm(gs, gs[0].device());
  clip_to_norm(gs, norm, max_norm);
  return flat_all(gs);
}

// inputs per tensor: average, value
Tensor ema_case(X x, double decay) {
  std::vector<Tensor> es, vs;
  for (size_t k = 0; k * 2 < x.size(); ++k) {
    es.push_back(x[2 * k].clone());
    vs.push_back(x[2 * k + 1]);
  }
  for (int s = 0; s < 2; ++s) ema_update(es, vs, decay);
  return flat_all(es);
}

}  // namespace

PW_OP_TEST(OpTest("adamw_step", ins(kSmall, 4, 3), [](X x) { return adamw_case(x, {1e-2, 0.8, 0.95, 1e-8, 0.1}); })
               .parity(ins(kLarge, 4, 3)));
PW_OP_TEST(OpTest("sgd_step", ins(kSmall, 3), [](X x) { return sgd_case(x, {0.05, 0.9, 0.01, false}); })
               .variant("momentum")
               .parity(ins(kLarge, 3)));
PW_OP_TEST(OpTest("sgd_step", ins(kSmall, 3), [](X x) { return sgd_case(x, {0.05, 0.9, 0.01, true}); })
               .variant("nesterov")
               .parity(ins(kLarge, 3)));
PW_OP_TEST(OpTest("sgd_step", ins(kSmall, 3), [](X x) { return sgd_case(x, {0.05, 0.0, 0.05, false}); })
               .variant("no momentum")
               .parity(ins(kLarge, 3)));
// The norm sums in double in either precision: float32 inputs agree closely.
PW_OP_TEST(OpTest("global_norm", ins(kSmall, 1), norm_case).parity(ins(kLarge, 1)).parity_tol(1e-5, 1e-6));
PW_OP_TEST(OpTest("clip_to_norm", ins(kSmall, 1), [](X x) { return clip_case(x, 0.5); })
               .variant("clips")
               .parity(ins(kLarge, 1)));
PW_OP_TEST(OpTest("clip_to_norm", ins(kSmall, 1), [](X x) { return clip_case(x, 1e6); })
               .variant("leaves alone")
               .parity(ins(kLarge, 1)));
PW_OP_TEST(OpTest("ema_update", ins(kSmall, 2), [](X x) { return ema_case(x, 0.9); }).parity(ins(kLarge, 2)));

}  // namespace pw::test
