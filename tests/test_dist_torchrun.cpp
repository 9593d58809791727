// A real torchrun launch of build/patchwork (torch's elastic agent sets RANK, WORLD_SIZE,
// LOCAL_RANK, MASTER_ADDR/PORT and holds MASTER_PORT itself): the TCP store's group takes
// the next port and trains bit-identically to mpirun. Its own suite because it needs
// /opt/torchenv/bin/torchrun (a development venv, not in CI): without it this suite
// reports itself skipped while test_dist's cases still count as passed.
#include "dist/tcp_store.h"
#include "dist_util.h"
#include "tests/skip.h"

namespace fs = std::filesystem;
using namespace pw;
using namespace pw::dist_test;

TEST_CASE("a real torchrun launch (its agent holds MASTER_PORT; the store takes the next port)") {
  if (!mpi_ready()) return;
  const char* torchrun = "/opt/torchenv/bin/torchrun";
  if (!fs::exists(torchrun)) {
    test::note_skipped("no torchrun at /opt/torchenv/bin/torchrun");
    return;
  }
  const fs::path d = env().dir.path;
  const std::string cfg = write_config("tr_real.yaml", config(24) + "dist:\n  timeout_s: 60\n");
  Run mpi = launch(2, "train " + cfg + " --out " + (d / "tr_real_mpi").string());
  REQUIRE_MESSAGE(mpi.rc == 0, mpi.output);
  const std::string cmd = std::string("timeout 300 ") + torchrun + " --nproc_per_node=2 --master_port=" +
                          std::to_string(dist::free_tcp_port()) + " --no-python " + PW_BINARY_DIR +
                          "/patchwork train " + cfg + " --out " + (d / "tr_real").string() + " > " +
                          (d / "tr_real.log").string() + " 2>&1";
  const int status = std::system(cmd.c_str());
  std::ifstream f(d / "tr_real.log");
  const std::string out((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  REQUIRE_MESSAGE(status == 0, out);
  CHECK(out.find("2 processes (tcp-store)") != std::string::npos);
  CHECK(bit_identical(weights(d / "tr_real_mpi"), weights(d / "tr_real")));
}
