// local_attention_rel: the public op, its autograd node and the dispatch row
// (device-agnostic; the kernels are in local_attention_cpu.cpp and local_attention_cuda.cu).
#include "kernels/local_attention/local_attention.h"

#include "autograd/dispatch.h"
#include "autograd/op_table.h"
#include "kernels/local_attention/local_attention_kernels.h"

namespace pw {

namespace {

// y = local attention of s's inputs.   y: (B,NH,M,HD)
using LocalAttnFwd = void(Tensor& y, LocalAttnSaved& s);
// dq, dk, dv: (B,NH,M,HD)  drow, dcol: (K,HD/2)  dy: (B,NH,M,HD)
using LocalAttnBwd = void(GradBuf dq, GradBuf dk, GradBuf dv, GradBuf drow, GradBuf dcol, const Tensor& dy,
                          const LocalAttnSaved& s);
PW_OP_ROW(kLocalAttentionRel, "local_attention_rel", "local_attention", LocalAttnFwd, LocalAttnBwd,
          local_attention_forward_cpu, PW_CUDA_KERNEL(local_attention_forward_cuda),
          local_attention_backward_cpu, PW_CUDA_KERNEL(local_attention_backward_cuda));

// y = local_attention_rel(q, k, v, row, col, ...); inputs q, k, v, row, col.
struct LocalAttentionFn final : Node {
  LocalAttnSaved s;
  const char* name() const override { return "local_attention_rel"; }
  void backward(const Tensor& dy, Grads& g) override {
    if (!(g.needs(0) || g.needs(1) || g.needs(2) || g.needs(3) || g.needs(4))) return;
    kLocalAttentionRel.bwd(dy.device())(g.buf(0), g.buf(1), g.buf(2), g.buf(3), g.buf(4), dy, s);
  }
  void release() override { s.q = s.k = s.v = s.row = s.col = s.y = s.lse = s.rel = Tensor(); }
};

}  // namespace

Tensor local_attention_rel(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& row, const Tensor& col,
                           int64_t H, int64_t W, int64_t K, int64_t skip) {
  const char* op = "local_attention_rel";
  for (const Tensor* t : {&q, &k, &v, &row, &col})
    PW_CHECK(t->defined(), op, ": got an undefined tensor among q, k, v, row, col");
  PW_CHECK(q.dim() == 4 && q.size(3) > 0, op, ": expected q of shape (B,NH,M,HD), got ", q.str());
  PW_CHECK(k.shape() == q.shape() && v.shape() == q.shape(), op, ": q, k and v must have one shape (B,NH,M,HD), got q ",
           q.str(), ", k ", k.str(), ", v ", v.str());
  for (const Tensor* t : {&k, &v, &row, &col}) {
    check_same_device(op, q, *t);
    check_same_dtype(op, q, *t);
  }
  const int64_t HD = q.size(3), M = q.size(2);
  PW_CHECK(HD % 2 == 0, op, ": the head dim must be even (half for the row, half for the column embedding), got q ",
           q.str(), "; use an even model.dim_head");
  PW_CHECK(K >= 1 && K % 2 == 1, op, ": the window K must be odd (centred on its patch), got K = ", K,
           "; use an odd model.sasa_kernel");
  PW_CHECK(H >= 1 && W >= 1 && skip >= 0, op, ": expected a grid H, W >= 1 and skip >= 0, got H = ", H, ", W = ", W,
           ", skip = ", skip);
  PW_CHECK(M == skip + H * W, op, ": q ", q.str(), " has M = ", M, " tokens but skip + H*W = ", skip, " + ", H, "*",
           W, " = ", skip + H * W, "; the grid (H, W) and the class tokens (skip) must cover every token");
  PW_CHECK(row.dim() == 2 && row.size(0) == K && row.size(1) == HD / 2 && col.shape() == row.shape(), op,
           ": row and col must be (K, HD/2) = (", K, ",", HD / 2, "), got row ", row.str(), ", col ", col.str());
  LocalAttnSaved s;
  s.d.op = op;
  s.d.B = q.size(0);
  s.d.NH = q.size(1);
  s.d.M = M;
  s.d.HD = HD;
  s.d.H = H;
  s.d.W = W;
  s.d.K = K;
  s.d.skip = skip;
  s.q = q.detach();
  s.k = k.detach();
  s.v = v.detach();
  s.row = row.detach();
  s.col = col.detach();
  Tensor y = empty(q.shape(), q.dtype(), q.device());
  kLocalAttentionRel.fwd(q.device())(y, s);
  if (auto n = record<LocalAttentionFn>(y, {q, k, v, row, col})) {
    s.y = y.detach();
    n->s = std::move(s);
  }
  return y;
}

}  // namespace pw
