// Tensors on CUDA: the caching allocator, copies between devices, creation,
// and the device checks of the engine.
#include "autograd/dispatch.h"
#include "kernels/ops.h"
#include "runtime/cuda/runtime.h"
#include "tests/cuda_parity.h"

using namespace pw;
using namespace pw::test;

TEST_CASE("the caching allocator hands a freed block back and counts bytes") {
  PW_SKIP_WITHOUT_CUDA();
  cuda::synchronize();
  const cuda::MemStats s0 = cuda::mem_stats();
  void* p = cuda::alloc(1000003);
  const cuda::MemStats s1 = cuda::mem_stats();
  CHECK(s1.current >= s0.current + 1000003);
  CHECK(s1.peak >= s1.current);
  CHECK(s1.reserved >= s1.current);
  cuda::free(p, 1000003);
  CHECK(cuda::mem_stats().current == s0.current);
  void* q = cuda::alloc(1000003);
  CHECK(q == p);  // reused from the cache, no cudaMalloc
  CHECK(cuda::mem_stats().reserved == s1.reserved);
  cuda::free(q, 1000003);
  cuda::reset_peak();
  CHECK(cuda::mem_stats().peak == cuda::mem_stats().current);
  cuda::empty_cache();
  CHECK(cuda::mem_stats().reserved < s1.reserved);
  // Tensors go through the same cache: a dead tensor's block serves the next one.
  void* first = nullptr;
  { first = empty({256, 257}, DType::F32, Device::CUDA).raw(); }
  CHECK(empty({256, 257}, DType::F32, Device::CUDA).raw() == first);
}

TEST_CASE("to(device) round trips exactly and clone/convert/item work on cuda") {
  PW_SKIP_WITHOUT_CUDA();
  Tensor x = normal({37, 41}, 0, 1);
  Tensor g = x.cuda();
  CHECK(g.device() == Device::CUDA);
  CHECK(g.shape() == x.shape());
  CHECK(g.cpu().to_vector() == x.to_vector());
  CHECK(g.to_vector() == x.to_vector());
  CHECK(g.clone().to_vector() == x.to_vector());
  CHECK(g.to(DType::F64).to_vector() == x.to(DType::F64).to_vector());
  CHECK(g.to(DType::F64).device() == Device::CUDA);
  CHECK(g.reshape({41, 37}).to_vector() == x.to_vector());
  Tensor idx = from_indices({3, -1, 7}, {3}).cuda();
  CHECK(idx.to_vector() == std::vector<double>{3, -1, 7});
  CHECK(from_vector({2.5}, {}).cuda().item() == 2.5);
}

TEST_CASE("creation keeps the device; zeros on cuda are zeros even over poisoned memory") {
  PW_SKIP_WITHOUT_CUDA();
  PoisonScope poison;
  Tensor z = zeros({5, 300}, DType::F32, Device::CUDA);
  CHECK(z.device() == Device::CUDA);
  for (double v : z.to_vector()) REQUIRE(v == 0);
  for (double v : ones({7}, DType::F64, Device::CUDA).to_vector()) CHECK(v == 1);
  for (double v : full({7}, -2.25, DType::F32, Device::CUDA).to_vector()) CHECK(v == -2.25);
  for (double v : full({7}, 9, DType::I64, Device::CUDA).to_vector()) CHECK(v == 9);
  CHECK(zeros_like(z).device() == Device::CUDA);
  CHECK(empty_like(z).device() == Device::CUDA);
  Generator g1(42), g2(42);
  CHECK(normal({99}, 0, 1, DType::F32, &g1, Device::CUDA).to_vector() == normal({99}, 0, 1, DType::F32, &g2).to_vector());
}

TEST_CASE("gradients cross devices: .cuda() sends the gradient back to the cpu leaf") {
  PW_SKIP_WITHOUT_CUDA();
  Tensor x = from_vector({0.5, -1.5, 2.0}, {3}).requires_grad_();
  Tensor y = x.cuda() * 3.0;
  CHECK(y.device() == Device::CUDA);
  sum(y).backward();  // seed of ones made on cuda
  REQUIRE(x.grad().defined());
  CHECK(x.grad().device() == Device::CPU);
  CHECK(x.grad().to_vector() == std::vector<double>{3, 3, 3});
  // A cuda leaf: its gradient lives on cuda and accumulates there.
  Tensor w = from_vector({1, 2}, {2}).cuda().requires_grad_();
  sum(w * w).backward();
  sum(w * w).backward();
  CHECK(w.grad().device() == Device::CUDA);
  CHECK(w.grad().to_vector() == std::vector<double>{4, 8});
}

TEST_CASE("mismatched devices and unported ops give clear errors") {
  PW_SKIP_WITHOUT_CUDA();
  Tensor a = ones({2, 3});
  Tensor b = ones({2, 3}, DType::F32, Device::CUDA);
  CHECK_THROWS_WITH_AS(add(a, b), doctest::Contains("different devices"), pw::Error);
  CHECK_THROWS_WITH_AS(where(a, b, b), doctest::Contains("where"), pw::Error);
  Tensor bg = ones({2, 3}, DType::F32, Device::CUDA).requires_grad_();
  Tensor y = sum(bg * 2.0);  // needs a gradient, so backward reaches the seed's device check
  CHECK_THROWS_WITH_AS(y.backward(ones({})), doctest::Contains("different devices"), pw::Error);
  CHECK_THROWS_WITH_AS(check_cpu("some_op", b), doctest::Contains("some_op: not yet on CUDA"), pw::Error);
}
