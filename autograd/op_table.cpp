#include "autograd/op_table.h"

#include <cstring>

#include "runtime/check.h"

namespace pw {

namespace {
std::vector<const OpInfo*>& registry() {
  static std::vector<const OpInfo*> rows;  // function-local: safe from static-init order
  return rows;
}
}  // namespace

const std::vector<const OpInfo*>& op_registry() { return registry(); }

const OpInfo* find_op(const std::string& name) {
  for (const OpInfo* r : registry())
    if (name == r->name) return r;
  return nullptr;
}

namespace detail {

void register_op(const OpInfo* info) {
  // Two rows with one name would make dispatch and test coverage ambiguous: a
  // programming mistake, reported at startup.
  PW_CHECK(!find_op(info->name), "op table: two rows are named '", info->name, "' (families ",
           find_op(info->name)->family, " and ", info->family, "); give one of them another name");
  registry().push_back(info);
}

void missing_kernel(const OpInfo& info, Device d, const char* pass) {
  if (d == Device::CUDA && !info.fwd[(int)Device::CUDA] && !info.bwd[(int)Device::CUDA]) {
#if !defined(PW_HAVE_CUDA)
    PW_FAIL(info.name, ": a CUDA tensor reached an op of a build without CUDA; rebuild with -DPW_CUDA=ON, or keep "
            "the tensors on the cpu");
#endif
  }
  PW_FAIL(info.name, ": no ", device_name(d), " ", pass, " kernel (kernels/", info.family, "); move the tensors to ",
          d == Device::CUDA ? "the cpu" : "cuda", " for this op, or add the kernel to its row");
}

}  // namespace detail

}  // namespace pw
