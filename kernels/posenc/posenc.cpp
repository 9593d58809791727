// The position-encoding ops: public ops, autograd nodes and dispatch rows
// (device-agnostic; kernels in posenc_cpu.cpp and posenc_cuda.cu).
#include "kernels/posenc/posenc.h"

#include "autograd/dispatch.h"
#include "autograd/op_table.h"
#include "kernels/posenc/posenc_kernels.h"

namespace pw {

RelIndex RelIndex::build(const std::vector<int64_t>& idx, int64_t N, int64_t T, Device d) {
  PW_CHECK(N >= 0 && T >= 0 && (int64_t)idx.size() == N * N, "RelIndex: expected ", N, "x", N, " = ", N * N,
           " index values for N = ", N, ", got ", idx.size());
  std::vector<int64_t> count(T + 1, 0);
  for (int64_t v : idx) {
    PW_CHECK(v >= -1 && v < T, "RelIndex: index value ", v, " outside [-1, ", T, ") for a table of ", T, " rows");
    if (v >= 0) ++count[v + 1];
  }
  for (int64_t t = 0; t < T; ++t) count[t + 1] += count[t];
  std::vector<double> off(count.begin(), count.end()), pos(count[T]), iv(idx.begin(), idx.end());
  std::vector<int64_t> fill(count.begin(), count.end() - 1);
  for (int64_t p = 0; p < N * N; ++p)
    if (idx[p] >= 0) pos[fill[idx[p]]++] = (double)p;
  RelIndex r;
  r.N = N;
  r.T = T;
  r.idx = from_vector(iv, {N, N}, DType::I64);
  r.inv_off = from_vector(off, {T + 1}, DType::I64);
  r.inv_pos = from_vector(pos, {(int64_t)pos.size()}, DType::I64);
  return d == Device::CPU ? r : r.to(d);
}

RelIndex RelIndex::to(Device d) const {
  RelIndex r = *this;
  r.idx = idx.to(d);
  r.inv_off = inv_off.to(d);
  r.inv_pos = inv_pos.to(d);
  return r;
}

namespace {

using RelBiasFwd = void(Tensor& bias, const Tensor& table, const RelIndex& r);
using RelBiasBwd = void(GradBuf dtable, const Tensor& dbias, const RelIndex& r);
PW_OP_ROW(kRelBiasGather, "rel_bias_gather", "posenc", RelBiasFwd, RelBiasBwd, rel_bias_gather_forward_cpu,
          PW_CUDA_KERNEL(rel_bias_gather_forward_cuda), rel_bias_gather_backward_cpu,
          PW_CUDA_KERNEL(rel_bias_gather_backward_cuda));

using RelRowsFwd = void(Tensor& y, const Tensor& x, const RelIndex& r);
using RelRowsBwd = void(GradBuf dx, const Tensor& dy, const RelIndex& r);
PW_OP_ROW(kRelLogitsGather, "rel_logits_gather", "posenc", RelRowsFwd, RelRowsBwd, rel_logits_gather_forward_cpu,
          PW_CUDA_KERNEL(rel_logits_gather_forward_cuda), rel_logits_gather_backward_cpu,
          PW_CUDA_KERNEL(rel_logits_gather_backward_cuda));
PW_OP_ROW(kRelLogitsScatter, "rel_logits_scatter", "posenc", RelRowsFwd, RelRowsBwd, rel_logits_scatter_forward_cpu,
          PW_CUDA_KERNEL(rel_logits_scatter_forward_cuda), rel_logits_scatter_backward_cpu,
          PW_CUDA_KERNEL(rel_logits_scatter_backward_cuda));

using ShiftFwd = void(Tensor& y, const Tensor& x);
using ShiftBwd = void(GradBuf dx, const Tensor& dy);
PW_OP_ROW(kRelShift, "rel_shift", "posenc", ShiftFwd, ShiftBwd, rel_shift_forward_cpu,
          PW_CUDA_KERNEL(rel_shift_forward_cuda), rel_shift_backward_cpu, PW_CUDA_KERNEL(rel_shift_backward_cuda));

using RopeFwd = void(Tensor& y, const Tensor& qkv, const Tensor& cos, const Tensor& sin, int64_t NH);
using RopeBwd = void(GradBuf dqkv, const Tensor& dy, const Tensor& cos, const Tensor& sin, int64_t NH);
PW_OP_ROW(kRopeQkv, "rope_qkv", "posenc", RopeFwd, RopeBwd, rope_qkv_forward_cpu, PW_CUDA_KERNEL(rope_qkv_forward_cuda),
          rope_qkv_backward_cpu, PW_CUDA_KERNEL(rope_qkv_backward_cuda));

// bias = rel_bias_gather(table, index); input table.
struct RelBiasGatherFn final : Node {
  RelIndex r;
  const char* name() const override { return "rel_bias_gather"; }
  void backward(const Tensor& dy, Grads& g) override {
    if (g.needs(0)) kRelBiasGather.bwd(dy.device())(g.buf(0), dy, r);
  }
};

// y = rel_logits_gather(x) or rel_logits_scatter(x); input x.
struct RelRowsFn final : Node {
  const OpRow<RelRowsFwd, RelRowsBwd>* row = nullptr;
  RelIndex r;
  const char* name() const override { return row->info.name; }
  void backward(const Tensor& dy, Grads& g) override {
    if (g.needs(0)) row->bwd(dy.device())(g.buf(0), dy, r);
  }
};

// y = rel_shift(x); input x.
struct RelShiftFn final : Node {
  const char* name() const override { return "rel_shift"; }
  void backward(const Tensor& dy, Grads& g) override {
    if (g.needs(0)) kRelShift.bwd(dy.device())(g.buf(0), dy);
  }
};

// y = rope_qkv(qkv, cos, sin); input qkv (the tables are constants).
struct RopeQkvFn final : Node {
  Tensor cos, sin;
  int64_t NH = 0;
  const char* name() const override { return "rope_qkv"; }
  void backward(const Tensor& dy, Grads& g) override {
    if (g.needs(0)) kRopeQkv.bwd(dy.device())(g.buf(0), dy, cos, sin, NH);
  }
};

void check_index(const char* op, const Tensor& x, const RelIndex& r) {
  PW_CHECK(r.idx.defined(), op, ": the RelIndex is empty");
  PW_CHECK(r.device() == x.device(), op, ": the index is on ", device_name(r.device()), " but the input ", x.str(),
           " on ", device_name(x.device()), "; move it with RelIndex::to");
}

Tensor rel_rows(const OpRow<RelRowsFwd, RelRowsBwd>& row, const Tensor& x, const RelIndex& r, int64_t in_last,
                int64_t out_last) {
  const char* op = row.info.name;
  check_index(op, x, r);
  PW_CHECK(x.dim() >= 2 && x.size(-2) == r.N && x.size(-1) == in_last, op, ": expected (...,", r.N, ",", in_last,
           ") for an index over N = ", r.N, " tokens into T = ", r.T, " rows, got ", x.str());
  Shape ys = x.shape();
  ys.back() = out_last;
  Tensor y = empty(ys, x.dtype(), x.device());
  row.fwd(x.device())(y, x, r);
  if (auto n = record<RelRowsFn>(y, {x})) {
    n->row = &row;
    n->r = r;
  }
  return y;
}

}  // namespace

Tensor rel_bias_gather(const Tensor& table, const RelIndex& index) {
  const char* op = "rel_bias_gather";
  check_index(op, table, index);
  PW_CHECK(table.dim() == 2 && table.size(0) == index.T, op, ": expected a table (T,NH) with T = ", index.T,
           " rows (the index's), got ", table.str());
  const int64_t NH = table.size(1), N = index.N;
  Tensor y = empty({NH, N, N}, table.dtype(), table.device());
  kRelBiasGather.fwd(table.device())(y, table, index);
  if (auto n = record<RelBiasGatherFn>(y, {table})) n->r = index;
  return y;
}

Tensor rel_logits_gather(const Tensor& x, const RelIndex& index) {
  return rel_rows(kRelLogitsGather, x, index, index.T, index.N);
}
Tensor rel_logits_scatter(const Tensor& p, const RelIndex& index) {
  return rel_rows(kRelLogitsScatter, p, index, index.N, index.T);
}

Tensor rel_shift(const Tensor& x) {
  PW_CHECK(x.dim() >= 2 && x.size(-1) == 2 * x.size(-2) - 1 && x.size(-2) > 0, "rel_shift: expected x (...,N,2N-1) "
           "(per query, the scores of the 2N-1 distances N-1 .. -(N-1)), got ", x.str());
  Shape ys = x.shape();
  ys.back() = x.size(-2);
  Tensor y = empty(ys, x.dtype(), x.device());
  kRelShift.fwd(x.device())(y, x);
  record<RelShiftFn>(y, {x});
  return y;
}

Tensor rope_qkv(const Tensor& qkv, const Tensor& cos, const Tensor& sin, int64_t heads) {
  const char* op = "rope_qkv";
  PW_CHECK(heads > 0 && qkv.dim() == 3 && qkv.size(2) % (6 * heads) == 0, op,
           ": expected qkv (B,N,3*heads*dim_head) with an even dim_head and heads = ", heads, ", got ", qkv.str());
  const int64_t N = qkv.size(1), HD = qkv.size(2) / (3 * heads);
  for (const Tensor* t : {&cos, &sin}) {
    check_same_device(op, qkv, *t);
    check_same_dtype(op, qkv, *t);
    PW_CHECK(t->dim() == 2 && t->size(0) == N && t->size(1) == HD / 2, op, ": expected cos and sin of shape (N,HD/2) = (",
             N, ",", HD / 2, ") for qkv ", qkv.str(), " with ", heads, " heads, got ", t->str());
  }
  Tensor y = empty_like(qkv);
  kRopeQkv.fwd(qkv.device())(y, qkv, cos, sin, heads);
  if (auto n = record<RopeQkvFn>(y, {qkv})) {
    n->cos = cos;
    n->sin = sin;
    n->NH = heads;
  }
  return y;
}

}  // namespace pw
