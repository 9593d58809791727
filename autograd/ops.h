// Every differentiable op of patchwork, one include for users and tests.
// Each family's API lives beside its kernels in kernels/<family>/<family>.h.
#pragma once
#include "autograd/function.h"
#include "autograd/tensor.h"
#include "kernels/activation/activation.h"
#include "kernels/conv/conv.h"
#include "kernels/dropout/dropout.h"
#include "kernels/elementwise/elementwise.h"
#include "kernels/index/index.h"
#include "kernels/interp/interp.h"
#include "kernels/loss/loss.h"
#include "kernels/matmul/matmul.h"
#include "kernels/norm/norm.h"
#include "kernels/pool/pool.h"
#include "kernels/reduce/reduce.h"
#include "kernels/shape/shape.h"
#include "kernels/softmax/softmax.h"
#include "kernels/unfold/unfold.h"
