// The classification losses: public ops, autograd nodes and dispatch rows
// (device-agnostic; the kernels are in loss_cpu.cpp and loss_cuda.cu).
#include "kernels/loss/loss.h"

#include "autograd/dispatch.h"
#include "autograd/op_table.h"
#include "kernels/loss/loss_kernels.h"

namespace pw {

namespace {

// y = cross_entropy(x, t, eps).   x: (B,C)  t: (B) I64  y: ()  lse: (B) F64
using CeFwd = void(Tensor& y, Tensor& lse, const Tensor& x, const Tensor& t, int64_t B, int64_t C, double eps);
using CeBwd = void(GradBuf dx, const Tensor& dy, const Tensor& x, const Tensor& t, const Tensor& lse, int64_t B,
                   int64_t C, double eps);
PW_OP_ROW(kCrossEntropy, "cross_entropy", "loss", CeFwd, CeBwd, cross_entropy_forward_cpu,
          PW_CUDA_KERNEL(cross_entropy_forward_cuda), cross_entropy_backward_cpu,
          PW_CUDA_KERNEL(cross_entropy_backward_cuda));

// y = cross_entropy_soft(x, q).   x, q: (B,C)  y: ()  lse, sum_q: (B) F64
using SoftCeFwd = void(Tensor& y, Tensor& lse, Tensor& sum_q, const Tensor& x, const Tensor& q, int64_t B, int64_t C);
using SoftCeBwd = void(GradBuf dx, GradBuf dq, const Tensor& dy, const Tensor& x, const Tensor& q, const Tensor& lse,
                       const Tensor& sum_q, int64_t B, int64_t C);
PW_OP_ROW(kCrossEntropySoft, "cross_entropy_soft", "loss", SoftCeFwd, SoftCeBwd, cross_entropy_soft_forward_cpu,
          PW_CUDA_KERNEL(cross_entropy_soft_forward_cuda), cross_entropy_soft_backward_cpu,
          PW_CUDA_KERNEL(cross_entropy_soft_backward_cuda));

// y = ctc_loss(lp, tgt, in_len, tgt_len).   lp: (B,T,C)  tgt: (B,S)  lengths, y, nll: (B)  alpha: (B,T,2S+1) F64
using CtcFwd = void(Tensor& y, Tensor& nll, Tensor& alpha, const Tensor& lp, const Tensor& tgt, const Tensor& in_len,
                    const Tensor& tgt_len, int64_t blank, bool zero_inf);
using CtcBwd = void(GradBuf dlp, const Tensor& dy, const Tensor& lp, const Tensor& tgt, const Tensor& in_len,
                    const Tensor& tgt_len, const Tensor& alpha, const Tensor& nll, int64_t blank);
PW_OP_ROW(kCtcLoss, "ctc_loss", "loss", CtcFwd, CtcBwd, ctc_forward_cpu, PW_CUDA_KERNEL(ctc_forward_cuda),
          ctc_backward_cpu, PW_CUDA_KERNEL(ctc_backward_cuda));

void check_logits(const char* op, const Tensor& logits) {
  PW_CHECK(logits.dim() == 2, op, ": expected logits of shape (B,C), got ", logits.str());
  PW_CHECK(logits.size(1) > 0, op, ": logits ", logits.str(), " have no classes (C = 0)");
}

// loss = mean_b ce(logits[b], target[b]).  logits: (B,C), target: (B), lse: (B) F64.
struct CrossEntropyFn final : Node {
  Tensor logits, target, lse;
  double eps = 0;
  const char* name() const override { return "cross_entropy"; }
  void backward(const Tensor& dy, Grads& g) override {
    if (!g.needs(0)) return;
    kCrossEntropy.bwd(dy.device())(g.buf(0), dy, logits, target, lse, logits.size(0), logits.size(1), eps);
  }
  void release() override { logits = target = lse = Tensor(); }
};

// loss = mean_b sum_c -q[b,c] log_softmax(logits)[b,c].  logits, q: (B,C); lse, sum_q: (B) F64.
struct CrossEntropySoftFn final : Node {
  Tensor logits, q, lse, sum_q;
  const char* name() const override { return "cross_entropy_soft"; }
  void backward(const Tensor& dy, Grads& g) override {
    if (!g.needs(0) && !g.needs(1)) return;
    kCrossEntropySoft.bwd(dy.device())(g.buf(0), g.buf(1), dy, logits, q, lse, sum_q, logits.size(0),
                                       logits.size(1));
  }
  void release() override { logits = q = lse = sum_q = Tensor(); }
};

// loss[b] = -log p(tgt[b] | lp[b]).   lp: (B,T,C); alpha: (B,T,2S+1) F64, nll: (B) F64 from the forward.
struct CtcLossFn final : Node {
  Tensor lp, tgt, in_len, tgt_len, alpha, nll;
  int64_t blank = 0;
  const char* name() const override { return "ctc_loss"; }
  void backward(const Tensor& dy, Grads& g) override {
    if (!g.needs(0)) return;
    kCtcLoss.bwd(dy.device())(g.buf(0), dy, lp, tgt, in_len, tgt_len, alpha, nll, blank);
  }
  void release() override { lp = tgt = in_len = tgt_len = alpha = nll = Tensor(); }
};

}  // namespace

Tensor ctc_loss(const Tensor& log_probs, const Tensor& targets, const Tensor& input_lengths,
                const Tensor& target_lengths, int64_t blank, bool zero_infinity) {
  const char* op = "ctc_loss";
  PW_CHECK(log_probs.dim() == 3 && log_probs.size(2) > 0, op, ": expected log_probs of shape (B,T,C) with C > 0, got ",
           log_probs.str());
  const int64_t B = log_probs.size(0), T = log_probs.size(1), C = log_probs.size(2);
  PW_CHECK(targets.dtype() == DType::I64 && targets.dim() == 2 && targets.size(0) == B, op, ": targets ",
           targets.str(), " must be I64 of shape (B,S) with B = ", B, " (log_probs ", log_probs.str(), ")");
  for (const Tensor* l : {&input_lengths, &target_lengths})
    PW_CHECK(l->dtype() == DType::I64 && l->dim() == 1 && l->size(0) == B, op, ": lengths ", l->str(),
             " must be I64 of shape (B) = [", B, "]");
  PW_CHECK(blank >= 0 && blank < C, op, ": blank ", blank, " is not a class of log_probs ", log_probs.str());
  const int64_t S = targets.size(1);
  // NOTE: on CUDA the lengths and targets are copied to the host to be checked (a sync), so a
  // bad length is a pw::Error, not an out-of-bounds read in a kernel.
  const Tensor th = targets.cpu(), ih = input_lengths.cpu(), lh = target_lengths.cpu();
  for (int64_t b = 0; b < B; ++b) {
    const int64_t il = ih.data<int64_t>()[b], tl = lh.data<int64_t>()[b];
    PW_CHECK(il >= 0 && il <= T, op, ": input_lengths[", b, "] = ", il, " is outside [0, T = ", T, "]");
    PW_CHECK(tl >= 0 && tl <= S, op, ": target_lengths[", b, "] = ", tl, " is outside [0, S = ", S, "]");
    for (int64_t s = 0; s < tl; ++s) {
      const int64_t v = th.data<int64_t>()[b * S + s];
      PW_CHECK(v >= 0 && v < C && v != blank, op, ": targets[", b, ", ", s, "] = ", v, " must be a class in [0, ", C,
               ") other than the blank ", blank);
    }
  }
  const Device d = log_probs.device();
  Tensor tg = targets.to(d), il = input_lengths.to(d), tl = target_lengths.to(d);
  Tensor y = empty({B}, log_probs.dtype(), d), nll = empty({B}, DType::F64, d);
  Tensor alpha = empty({B, T, 2 * S + 1}, DType::F64, d);
  kCtcLoss.fwd(d)(y, nll, alpha, log_probs, tg, il, tl, blank, zero_infinity);
  if (auto n = record<CtcLossFn>(y, {log_probs})) {
    n->lp = log_probs;
    n->tgt = tg;
    n->in_len = il;
    n->tgt_len = tl;
    n->alpha = alpha;
    n->nll = nll;
    n->blank = blank;
  }
  return y;
}

Tensor cross_entropy(const Tensor& logits, const Tensor& target, double label_smoothing) {
  const char* op = "cross_entropy";
  check_logits(op, logits);
  check_same_device(op, logits, target);
  PW_CHECK(target.dtype() == DType::I64, op, ": target must hold I64 class ids, got ", target.str(),
           " (for class probabilities use cross_entropy_soft)");
  PW_CHECK(target.dim() == 1 && target.size(0) == logits.size(0), op, ": target ", target.str(),
           " does not match logits ", logits.str(), "; expected target of shape (B) = [", logits.size(0), "]");
  PW_CHECK(label_smoothing >= 0.0 && label_smoothing <= 1.0, op, ": label_smoothing must be in [0, 1], got ",
           label_smoothing);
  const int64_t B = logits.size(0), C = logits.size(1);
  // NOTE: on CUDA the labels are copied to the host to be checked (a sync): a bad label must be
  // a pw::Error naming it, not an out-of-bounds read in a kernel.
  const Tensor target_host = target.device() == Device::CPU ? target : target.cpu();
  const int64_t* t = target_host.data<int64_t>();
  for (int64_t b = 0; b < B; ++b)
    PW_CHECK(t[b] >= 0 && t[b] < C, op, ": target label ", t[b], " at position ", b, " is out of range for C = ", C,
             " classes (logits ", logits.str(), "); labels must be in [0, ", C - 1, "]");
  Tensor y = empty({}, logits.dtype(), logits.device()), lse = empty({B}, DType::F64, logits.device());
  kCrossEntropy.fwd(logits.device())(y, lse, logits, target, B, C, label_smoothing);
  if (auto n = record<CrossEntropyFn>(y, {logits})) {
    n->logits = logits;
    n->target = target;
    n->lse = lse;
    n->eps = label_smoothing;
  }
  return y;
}

Tensor cross_entropy_soft(const Tensor& logits, const Tensor& target_probs) {
  const char* op = "cross_entropy_soft";
  check_logits(op, logits);
  check_same_device(op, logits, target_probs);
  PW_CHECK(target_probs.shape() == logits.shape(), op, ": target_probs ", target_probs.str(),
           " must have the logits' shape ", logits.str(), " (one probability per class)");
  check_same_dtype(op, logits, target_probs);
  const int64_t B = logits.size(0), C = logits.size(1);
  Tensor y = empty({}, logits.dtype(), logits.device());
  Tensor lse = empty({B}, DType::F64, logits.device()), sum_q = empty({B}, DType::F64, logits.device());
  kCrossEntropySoft.fwd(logits.device())(y, lse, sum_q, logits, target_probs, B, C);
  if (auto n = record<CrossEntropySoftFn>(y, {logits, target_probs})) {
    n->logits = logits;
    n->q = target_probs;
    n->lse = lse;
    n->sum_q = sum_q;
  }
  return y;
}

}  // namespace pw
