// softmax and log_softmax: public functions, autograd nodes and dispatch rows
// (device-agnostic; the kernels are in softmax_cpu.cpp and softmax_cuda.cu).
#include "kernels/softmax/softmax.h"

#include "autograd/op_table.h"
#include "kernels/reduce/reduce_plan.h"
#include "kernels/softmax/softmax_kernels.h"

namespace pw {

namespace {

// y = softmax(x) or log_softmax(x) along R.   x, y: (O, R, I)
using SoftmaxFwd = void(Tensor& y, const Tensor& x, int64_t O, int64_t R, int64_t I);
// Forward was y = (log_)softmax(x); dx from the saved y.   dx, y, dy: (O, R, I)
using SoftmaxBwd = void(GradBuf dx, const Tensor& y, const Tensor& dy, int64_t O, int64_t R, int64_t I);
PW_OP_ROW(kSoftmax, "softmax", "softmax", SoftmaxFwd, SoftmaxBwd, softmax_forward_cpu,
          PW_CUDA_KERNEL(softmax_forward_cuda), softmax_backward_cpu, PW_CUDA_KERNEL(softmax_backward_cuda));
PW_OP_ROW(kLogSoftmax, "log_softmax", "softmax", SoftmaxFwd, SoftmaxBwd, log_softmax_forward_cpu,
          PW_CUDA_KERNEL(log_softmax_forward_cuda), log_softmax_backward_cpu,
          PW_CUDA_KERNEL(log_softmax_backward_cuda));

// y = softmax(x) or log_softmax(x) along a dim.  x, y: (O, R, I) around the dim.
struct SoftmaxFn final : Node {
  const OpRow<SoftmaxFwd, SoftmaxBwd>* row = nullptr;
  Tensor y;  // the op's output, detached
  detail::DimView v;
  const char* name() const override { return row->info.name; }
  void backward(const Tensor& dy, Grads& g) override {
    if (g.needs(0)) row->bwd(dy.device())(g.buf(0), y, dy, v.O, v.R, v.I);
  }
  void release() override { y = Tensor(); }
};

Tensor softmax_op(const OpRow<SoftmaxFwd, SoftmaxBwd>& row, const Tensor& x, int64_t dim) {
  const int64_t d = detail::wrap_dim(row.info.name, dim, x.shape());
  const detail::DimView v = detail::dim_view(x.shape(), d);
  Tensor y = empty_like(x);
  row.fwd(x.device())(y, x, v.O, v.R, v.I);
  if (auto n = record<SoftmaxFn>(y, {x})) {
    n->row = &row;
    n->y = y.detach();
    n->v = v;
  }
  return y;
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) { return softmax_op(kSoftmax, x, dim); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_op(kLogSoftmax, x, dim); }

}  // namespace pw
