// Test rows of the audio family (tests/op_test.h). log_mel is forward-only (a
// PW_OP_ROW_NOGRAD row: features are model inputs), so the rows check float32
// against float64, the PyTorch values (tests/fixtures/audio.json, written by
// scripts/reference/audio.py: torch.stft + torchaudio's melscale_fbanks
// formulas) and CPU/CUDA parity. The pure-tone property and the tables are in
// tests/test_audio.cpp.
#include "kernels/audio/audio.h"
#include "tests/op_test.h"

namespace pw::test {

namespace {
LogMelConfig small_cfg() {
  LogMelConfig c;
  c.sample_rate = 8000;
  c.n_fft = 64;
  c.hop = 16;
  c.n_mels = 10;
  return c;
}
LogMelConfig band_cfg() {  // no centre padding, a band-limited filterbank, odd n_fft
  LogMelConfig c;
  c.sample_rate = 16000;
  c.n_fft = 255;
  c.hop = 100;
  c.n_mels = 20;
  c.f_min = 50;
  c.f_max = 7000;
  c.center = false;
  return c;
}
}  // namespace

PW_OP_TEST(OpTest("log_mel", {In({2, 300}).no_grad()}, [](X x) { return log_mel(x[0], small_cfg()); })
               .variant("n_fft 64, center")
               .f32_tol(1e-3, 1e-3)
               .ref("audio", "log_mel_small")
               .parity({In({3, 4001}).no_grad()})
               .parity_tol(1e-4, 1e-4));
PW_OP_TEST(OpTest("log_mel", {In({2, 900}).no_grad()}, [](X x) { return log_mel(x[0], band_cfg()); })
               .variant("n_fft 255, no center, 50-7000 Hz")
               .f32_tol(1e-3, 1e-3)
               .ref("audio", "log_mel_band")
               .parity({In({2, 16000}).no_grad()})
               .parity_tol(1e-4, 1e-4));
PW_OP_TEST(OpTest("log_mel", {In({1, 1600}).no_grad()}, [](X x) { return log_mel(x[0], LogMelConfig{}); })
               .variant("defaults: 16 kHz, n_fft 400, hop 160, 80 mels")
               .f32_tol(1e-3, 1e-3)
               .ref("audio", "log_mel_default")
               .parity({In({2, 16000}).no_grad()})
               .parity_tol(1e-4, 1e-4));

}  // namespace pw::test
