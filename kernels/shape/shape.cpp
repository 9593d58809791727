// The copying shape ops: public functions, autograd nodes and dispatch rows
// (device-agnostic; the kernels are in shape_cpu.cpp and shape_cuda.cu). Each op
// is a CopyPlan of strided pieces (shape_kernels.h), so one node serves permute,
// slice, narrow, split, chunk, pad, roll, repeat and expand, and concat is the
// same with one piece per input. unsqueeze, squeeze and flatten are reshapes
// sharing storage: no kernel, no row.
#include <numeric>

#include "autograd/op_table.h"
#include "kernels/shape/shape.h"
#include "kernels/shape/shape_kernels.h"
#include "kernels/shape/strided.h"

namespace pw {

namespace {

// y = the pieces of x.   x: any shape, y: the op's output shape
using CopyFwd = void(Tensor& y, const Tensor& x, const CopyPlan& c);
using CopyBwd = void(GradBuf dx, const Tensor& dy, const CopyPlan& c);
#define PW_COPY_ROW(var, name)                                                                          \
  PW_OP_ROW(var, name, "shape", CopyFwd, CopyBwd, copy_forward_cpu, PW_CUDA_KERNEL(copy_forward_cuda), \
            copy_backward_cpu, PW_CUDA_KERNEL(copy_backward_cuda))
PW_COPY_ROW(kPermute, "permute");
PW_COPY_ROW(kConcat, "concat");
PW_COPY_ROW(kSplit, "split");
PW_COPY_ROW(kChunk, "chunk");
PW_COPY_ROW(kNarrow, "narrow");
PW_COPY_ROW(kSlice, "slice");
PW_COPY_ROW(kRoll, "roll");
PW_COPY_ROW(kRepeat, "repeat");
PW_COPY_ROW(kExpand, "expand");
#undef PW_COPY_ROW
// y = value outside the box, x inside.   x: any shape, y: x's shape padded
using PadFwd = void(Tensor& y, const Tensor& x, const CopyPlan& c, double value);
PW_OP_ROW(kPad, "pad", "shape", PadFwd, CopyBwd, pad_forward_cpu, PW_CUDA_KERNEL(pad_forward_cuda), copy_backward_cpu,
          PW_CUDA_KERNEL(copy_backward_cuda));

using CopyRow = OpRow<CopyFwd, CopyBwd>;

// Whether the pieces reach every element of x (they never overlap): then a
// backward writes all of a fresh dx; else (slice, narrow, a cropping pad, a
// repeat by 0) a fresh dx is zeroed first. A piece reaches the product of its
// sizes along the dims x walks (sx != 0), or nothing when it is empty.
bool covers_all(const std::vector<Piece>& pieces, int64_t x_numel) {
  int64_t n = 0;
  for (const Piece& pc : pieces) {
    if (numel_of(pc.size) == 0) continue;
    int64_t m = 1;
    for (size_t k = 0; k < pc.size.size(); ++k)
      if (pc.sx[k] != 0) m *= pc.size[k];
    n += m;
  }
  return n == x_numel;
}

// A box of `size` at y0 in contiguous y and x0 in contiguous x.
Piece box(const Shape& size, const Shape& yshape, const Shape& y0, const Shape& xshape, const Shape& x0) {
  Piece pc;
  pc.size = size;
  pc.sy = contiguous_strides(yshape);
  pc.sx = contiguous_strides(xshape);
  for (size_t k = 0; k < size.size(); ++k) {
    pc.oy += y0[k] * pc.sy[k];
    pc.ox += x0[k] * pc.sx[k];
  }
  return pc;
}

// dx (+)= the pieces of dy, by row's backward kernel (GradBuf contract).
template <class Row>
void copy_backward(const Row& row, const Tensor& dy, GradBuf dx, const CopyPlan& c, bool covers) {
  if (!covers) dx.zero_if_fresh();
  row.bwd(dy.device())(dx, dy, c);
}

// y = pieces of x (x: any shape; y: the op's output shape).  Pieces cover
// disjoint parts of x, so backward puts each dx element's gradient in once.
template <class Row>
struct CopyFn final : Node {
  const Row* row = nullptr;
  CopyPlan c;
  bool covers = false;  // the pieces reach all of x
  const char* name() const override { return c.op; }
  void backward(const Tensor& dy, Grads& g) override {
    if (g.needs(0)) copy_backward(*row, dy, g.buf(0), c, covers);
  }
};

// y = concat(xs, dim).  c[i] places xs[i] in y (all of it).
struct ConcatFn final : Node {
  std::vector<CopyPlan> c;
  const char* name() const override { return "concat"; }
  void backward(const Tensor& dy, Grads& g) override {
    for (size_t i = 0; i < c.size(); ++i)
      if (g.needs(i)) copy_backward(kConcat, dy, g.buf(i), c[i], true);
  }
};

// Records y = the pieces of x (already run by the op).
template <class Row>
void record_copy(const Row& row, Tensor& y, const Tensor& x, CopyPlan c) {
  if (auto n = record<CopyFn<Row>>(y, {x})) {
    n->row = &row;
    n->covers = covers_all(c.pieces, x.numel());
    n->c = std::move(c);
  }
}

// Runs the pieces into a fresh y and records the op.
Tensor copy_op(const CopyRow& row, const Tensor& x, const Shape& yshape, std::vector<Piece> pieces) {
  Tensor y = empty(yshape, x.dtype(), x.device());
  CopyPlan c{row.info.name, std::move(pieces)};
  row.fwd(x.device())(y, x, c);
  record_copy(row, y, x, std::move(c));
  return y;
}

// d in [-n, n) -> [0, n).
int64_t wrap_dim(const char* op, int64_t d, int64_t n, const Tensor& x) {
  int64_t w = d < 0 ? d + n : d;
  PW_CHECK(w >= 0 && w < n, op, ": dim ", d, " is out of range for ", x.str(), " (valid dims are ",
           -n, "..", n - 1, ")");
  return w;
}

// x[.., start : start+len*step : step, ..] along dim (already validated).
Tensor slice_op(const CopyRow& row, const Tensor& x, int64_t dim, int64_t start, int64_t len, int64_t step) {
  Shape ys = x.shape();
  ys[dim] = len;
  Shape y0(x.dim(), 0), x0(x.dim(), 0);
  x0[dim] = start;
  Piece pc = box(ys, ys, y0, x.shape(), x0);
  pc.sx[dim] *= step;
  return copy_op(row, x, ys, {pc});
}

}  // namespace

Tensor permute(const Tensor& x, std::vector<int64_t> dims) {
  int64_t n = x.dim();
  PW_CHECK((int64_t)dims.size() == n, "permute: ", dims.size(), " dims ", shape_str(dims), " given for ",
           x.str(), "; pass one dim per dimension of the input");
  for (int64_t& d : dims) d = wrap_dim("permute", d, n, x);
  std::vector<bool> seen(n, false);
  for (int64_t d : dims) {
    PW_CHECK(!seen[d], "permute: dims ", shape_str(dims), " repeat dim ", d, " for ", x.str(),
             "; each dim must appear exactly once");
    seen[d] = true;
  }
  auto xs = contiguous_strides(x.shape());
  Piece pc;
  for (int64_t k = 0; k < n; ++k) {
    pc.size.push_back(x.shape()[dims[k]]);
    pc.sx.push_back(xs[dims[k]]);
  }
  pc.sy = contiguous_strides(pc.size);
  // Moving only size-1 dims keeps the memory order: a reshape, no copy.
  int64_t last = -1;
  bool in_order = true;
  for (int64_t d : dims)
    if (x.shape()[d] != 1) {
      in_order = in_order && d > last;
      last = d;
    }
  if (in_order) return x.reshape(pc.size);
  Shape ys = pc.size;
  return copy_op(kPermute, x, ys, {pc});
}

Tensor transpose(const Tensor& x, int64_t d0, int64_t d1) {
  int64_t n = x.dim();
  d0 = wrap_dim("transpose", d0, n, x);
  d1 = wrap_dim("transpose", d1, n, x);
  std::vector<int64_t> dims(n);
  std::iota(dims.begin(), dims.end(), 0);
  std::swap(dims[d0], dims[d1]);
  return permute(x, dims);
}

Tensor concat(const std::vector<Tensor>& xs, int64_t dim) {
  PW_CHECK(!xs.empty(), "concat: needs at least one tensor");
  const Tensor& x0 = xs[0];
  int64_t n = x0.dim();
  dim = wrap_dim("concat", dim, n, x0);
  Shape ys = x0.shape();
  ys[dim] = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const Tensor& x = xs[i];
    check_same_device("concat", x0, x);
    PW_CHECK(x.dtype() == x0.dtype(), "concat: tensor ", i, " is ", x.str(), " but tensor 0 is ", x0.str(),
             "; all inputs must share a dtype");
    bool ok = x.dim() == n;
    for (int64_t k = 0; ok && k < n; ++k) ok = k == dim || x.shape()[k] == x0.shape()[k];
    PW_CHECK(ok, "concat: tensor ", i, " ", x.str(), " does not match tensor 0 ", x0.str(),
             " outside dim ", dim, "; all sizes but the concatenated dim must be equal");
    ys[dim] += x.shape()[dim];
  }
  Tensor y = empty(ys, x0.dtype(), x0.device());
  std::vector<CopyPlan> plans;
  int64_t off = 0;
  for (const Tensor& x : xs) {
    Shape y0(n, 0), z(n, 0);
    y0[dim] = off;
    plans.push_back({"concat", {box(x.shape(), ys, y0, x.shape(), z)}});
    kConcat.fwd(x.device())(y, x, plans.back());
    off += x.shape()[dim];
  }
  if (auto node = record_list<ConcatFn>(y, xs)) node->c = std::move(plans);
  return y;
}

std::vector<Tensor> split(const Tensor& x, std::vector<int64_t> sizes, int64_t dim) {
  dim = wrap_dim("split", dim, x.dim(), x);
  int64_t total = 0;
  for (int64_t s : sizes) {
    PW_CHECK(s >= 0, "split: negative size in ", shape_str(sizes), " for ", x.str());
    total += s;
  }
  PW_CHECK(total == x.shape()[dim], "split: sizes ", shape_str(sizes), " sum to ", total, " but ", x.str(),
           " has ", x.shape()[dim], " along dim ", dim, "; the sizes must add up to that");
  std::vector<Tensor> out;
  int64_t start = 0;
  for (int64_t s : sizes) {
    out.push_back(slice_op(kSplit, x, dim, start, s, 1));
    start += s;
  }
  return out;
}

std::vector<Tensor> chunk(const Tensor& x, int64_t n, int64_t dim) {
  PW_CHECK(n > 0, "chunk: number of chunks must be positive, got ", n, " for ", x.str());
  dim = wrap_dim("chunk", dim, x.dim(), x);
  int64_t size = x.shape()[dim], each = (size + n - 1) / n;
  std::vector<Tensor> out;
  if (each == 0) {  // size 0: n empty chunks, as torch
    for (int64_t i = 0; i < n; ++i) out.push_back(slice_op(kChunk, x, dim, 0, 0, 1));
    return out;
  }
  for (int64_t start = 0; start < size; start += each)
    out.push_back(slice_op(kChunk, x, dim, start, std::min(each, size - start), 1));
  return out;
}

Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length) {
  dim = wrap_dim("narrow", dim, x.dim(), x);
  int64_t size = x.shape()[dim];
  int64_t s = start < 0 ? start + size : start;
  PW_CHECK(s >= 0 && length >= 0 && s + length <= size, "narrow: start ", start, " length ", length,
           " is out of bounds for dim ", dim, " of ", x.str(), " (size ", size, ")");
  return slice_op(kNarrow, x, dim, s, length, 1);
}

Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step) {
  dim = wrap_dim("slice", dim, x.dim(), x);
  PW_CHECK(step >= 1, "slice: step must be >= 1, got ", step, " for ", x.str());
  int64_t size = x.shape()[dim];
  auto clamp = [&](int64_t i) { return std::min(size, std::max<int64_t>(0, i < 0 ? i + size : i)); };
  int64_t s = clamp(start), e = clamp(end);
  int64_t len = e > s ? (e - s + step - 1) / step : 0;
  return slice_op(kSlice, x, dim, s, len, step);
}

Tensor pad(const Tensor& x, std::vector<int64_t> pads, double value) {
  int64_t n = x.dim();
  PW_CHECK(pads.size() % 2 == 0 && (int64_t)pads.size() <= 2 * n, "pad: pads ", shape_str(pads),
           " for ", x.str(), " must be (lo, hi) pairs for at most ", n, " trailing dims");
  Shape ys = x.shape(), size = x.shape(), y0(n, 0), x0(n, 0);
  for (size_t p = 0; p < pads.size() / 2; ++p) {
    int64_t d = n - 1 - (int64_t)p, lo = pads[2 * p], hi = pads[2 * p + 1], s = x.shape()[d];
    int64_t crop = std::max<int64_t>(0, -lo) + std::max<int64_t>(0, -hi);
    PW_CHECK(crop <= s, "pad: pads (", lo, ", ", hi, ") crop ", crop, " elements from dim ", d, " of ",
             x.str(), ", which has only ", s);
    ys[d] = s + lo + hi;
    size[d] = s - crop;
    y0[d] = std::max<int64_t>(0, lo);
    x0[d] = std::max<int64_t>(0, -lo);
  }
  Tensor y = empty(ys, x.dtype(), x.device());
  CopyPlan c{"pad", {box(size, ys, y0, x.shape(), x0)}};
  kPad.fwd(x.device())(y, x, c, value);
  record_copy(kPad, y, x, std::move(c));
  return y;
}

Tensor roll(const Tensor& x, std::vector<int64_t> shifts, std::vector<int64_t> dims) {
  if (dims.empty()) {
    PW_CHECK(shifts.size() == 1, "roll: without dims, roll takes one shift (of the flattened tensor), got ",
             shape_str(shifts));
    return roll(x.reshape({-1}), shifts, {0}).reshape(x.shape());
  }
  PW_CHECK(shifts.size() == dims.size(), "roll: ", shifts.size(), " shifts ", shape_str(shifts), " but ",
           dims.size(), " dims ", shape_str(dims), " for ", x.str(), "; give one shift per dim");
  int64_t n = x.dim();
  Shape shift(n, 0);
  for (size_t i = 0; i < dims.size(); ++i) {
    int64_t d = wrap_dim("roll", dims[i], n, x), s = x.shape()[d];
    if (s > 0) shift[d] = ((shift[d] + shifts[i]) % s + s) % s;  // a repeated dim rolls twice
  }
  // Each shifted dim splits into two segments: y[s:] = x[:size-s] and y[:s] = x[size-s:].
  // The pieces are every combination of one segment per shifted dim.
  std::vector<Piece> pieces;
  std::vector<int64_t> rolled;
  for (int64_t d = 0; d < n; ++d)
    if (shift[d] != 0) rolled.push_back(d);
  for (int64_t combo = 0; combo < (int64_t(1) << rolled.size()); ++combo) {
    Shape size = x.shape(), y0(n, 0), x0(n, 0);
    for (size_t r = 0; r < rolled.size(); ++r) {
      int64_t d = rolled[r], s = shift[d], len = x.shape()[d];
      if (combo >> r & 1) {
        size[d] = s;
        x0[d] = len - s;
      } else {
        size[d] = len - s;
        y0[d] = s;
      }
    }
    pieces.push_back(box(size, x.shape(), y0, x.shape(), x0));
  }
  return copy_op(kRoll, x, x.shape(), std::move(pieces));
}

Tensor repeat(const Tensor& x, std::vector<int64_t> reps) {
  int64_t n = (int64_t)reps.size(), lead = n - x.dim();
  PW_CHECK(lead >= 0, "repeat: ", reps.size(), " repeats ", shape_str(reps), " for ", x.str(),
           "; give at least one per dim");
  for (int64_t r : reps) PW_CHECK(r >= 0, "repeat: negative repeat in ", shape_str(reps));
  Shape xsz(lead, 1);
  xsz.insert(xsz.end(), x.shape().begin(), x.shape().end());
  auto xs = contiguous_strides(xsz);
  Shape ys(n);
  for (int64_t k = 0; k < n; ++k) ys[k] = reps[k] * xsz[k];
  auto yst = contiguous_strides(ys);
  // y's dim k of size reps*s is row-major (rep, i): y[rep*s + i] = x[i].
  Piece pc;
  for (int64_t k = 0; k < n; ++k) {
    pc.size.insert(pc.size.end(), {reps[k], xsz[k]});
    pc.sy.insert(pc.sy.end(), {yst[k] * xsz[k], yst[k]});
    pc.sx.insert(pc.sx.end(), {0, xs[k]});
  }
  return copy_op(kRepeat, x, ys, {pc});
}

Tensor expand(const Tensor& x, Shape shape) {
  int64_t n = (int64_t)shape.size(), lead = n - x.dim();
  PW_CHECK(lead >= 0, "expand: target ", shape_str(shape), " has fewer dims than ", x.str());
  auto xs = contiguous_strides(x.shape());
  Piece pc;
  for (int64_t k = 0; k < n; ++k) {
    if (k < lead) {
      PW_CHECK(shape[k] >= 0, "expand: size ", shape[k], " in new leading dim ", k, " of ", shape_str(shape),
               " for ", x.str(), "; -1 may only keep an existing dim");
      pc.sx.push_back(0);
      continue;
    }
    int64_t s = x.shape()[k - lead];
    if (shape[k] == -1) shape[k] = s;
    PW_CHECK(shape[k] == s || (s == 1 && shape[k] >= 0), "expand: cannot expand ", x.str(), " to ",
             shape_str(shape), ": dim ", k, " has size ", s, "; only size-1 dims broadcast");
    pc.sx.push_back(s == shape[k] ? xs[k - lead] : 0);
  }
  pc.size = shape;
  pc.sy = contiguous_strides(shape);
  return copy_op(kExpand, x, shape, {pc});
}

Tensor unsqueeze(const Tensor& x, int64_t d) {
  d = wrap_dim("unsqueeze", d, x.dim() + 1, x);
  Shape s = x.shape();
  s.insert(s.begin() + d, 1);
  return x.reshape(s);
}

Tensor squeeze(const Tensor& x, int64_t d) {
  d = wrap_dim("squeeze", d, x.dim(), x);
  Shape s = x.shape();
  if (s[d] == 1) s.erase(s.begin() + d);
  return x.reshape(s);
}

Tensor flatten(const Tensor& x, int64_t start, int64_t end) {
  if (x.dim() == 0) return x.reshape({1});
  start = wrap_dim("flatten", start, x.dim(), x);
  end = wrap_dim("flatten", end, x.dim(), x);
  PW_CHECK(start <= end, "flatten: start dim ", start, " is after end dim ", end, " for ", x.str());
  const Shape& xs = x.shape();
  Shape s(xs.begin(), xs.begin() + start);
  s.push_back(numel_of(Shape(xs.begin() + start, xs.begin() + end + 1)));
  s.insert(s.end(), xs.begin() + end + 1, xs.end());
  return x.reshape(s);
}

}  // namespace pw
