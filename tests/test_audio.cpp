// The audio pipeline: WAV reading (every encoding, bad files), resampling, the
// log-mel front end's properties (the op's rows are in tests/ops/audio.cpp),
// per-utterance normalisation, SpecAugment, and the audio data sets through
// the DataLoader (padded variable-length batches, CTC targets, determinism).
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "data/audio_folder.h"
#include "data/check.h"
#include "data/loader.h"
#include "data/wav.h"
#include "kernels/audio/audio.h"
#include "tests/skip.h"
#include "trainers/config.h"
#include "trainers/trainer.h"
#include "tests/test_data_util.h"

using namespace pw;
using namespace pw::test;
namespace fs = std::filesystem;

namespace {

uint32_t fresh_seed() {
  static std::random_device rd;
  return rd();
}

const double kPi = 3.14159265358979323846;

std::vector<float> tone(double hz, int64_t rate, int64_t n, double amp = 0.5) {
  std::vector<float> x((size_t)n);
  for (int64_t i = 0; i < n; ++i) x[(size_t)i] = (float)(amp * std::sin(2 * kPi * hz * (double)i / (double)rate));
  return x;
}

std::string enc_name(WavEncoding e) {
  const char* n[] = {"u8", "s16", "s24", "s32", "f32", "f64"};
  return n[(int)e];
}

}  // namespace

TEST_CASE("WAV: every encoding, plain and extensible, mono and stereo, decodes to the same samples") {
  const uint32_t seed = fresh_seed();
  CAPTURE(seed);
  std::mt19937 gen(seed);
  // Values k/128 are exact in every encoding (8-bit included), so all decode bit-identically.
  std::uniform_int_distribution<int> k(-128, 127);
  const int frames = 257;
  TempDir dir;
  for (int ch : {1, 2, 3}) {
    std::vector<float> x((size_t)frames * ch);
    for (auto& v : x) v = (float)k(gen) / 128.f;
    std::vector<float> mono((size_t)frames);
    for (int i = 0; i < frames; ++i) {
      double s = 0;
      for (int c = 0; c < ch; ++c) s += x[(size_t)(i * ch + c)];
      mono[(size_t)i] = (float)(s / ch);
    }
    for (WavEncoding e : {WavEncoding::U8, WavEncoding::S16, WavEncoding::S24, WavEncoding::S32, WavEncoding::F32,
                          WavEncoding::F64})
      for (bool ext : {false, true}) {
        CAPTURE(ch);
        CAPTURE(enc_name(e));
        CAPTURE(ext);
        const std::string p = dir / ("x_" + enc_name(e) + (ext ? "_ext" : "") + ".wav");
        write_wav(p, x, ch, 22050, e, ext);
        Audio a = read_wav(p);
        CHECK(a.sample_rate == 22050);
        CHECK(a.channels == ch);
        REQUIRE(a.samples.size() == (size_t)frames);
        for (int i = 0; i < frames; ++i) REQUIRE(a.samples[(size_t)i] == mono[(size_t)i]);
      }
  }
  // Full-precision values: each encoding within its own quantisation step.
  std::normal_distribution<float> nd(0.f, 0.3f);
  std::vector<float> x(999);
  for (auto& v : x) v = std::max(-1.f, std::min(0.999f, nd(gen)));
  const std::pair<WavEncoding, double> steps[] = {{WavEncoding::S16, 1.0 / 32768}, {WavEncoding::S24, 1.0 / 8388608},
                                                  {WavEncoding::S32, 1e-7}, {WavEncoding::F32, 0}, {WavEncoding::F64, 0}};
  for (const auto& es : steps) {  // not a structured binding: clang 14 can't capture one (CAPTURE does)
    const WavEncoding e = es.first;
    const double step = es.second;
    CAPTURE(enc_name(e));
    write_wav(dir / "y.wav", x, 1, 16000, e);
    Audio a = read_wav(dir / "y.wav");
    for (size_t i = 0; i < x.size(); ++i) REQUIRE(std::abs(a.samples[i] - x[i]) <= step * 0.5 + 1e-9);
  }
}

TEST_CASE("WAV: bad files get one BadSampleError naming the file and the byte offset") {
  TempDir dir;
  const std::string good = dir / "good.wav";
  write_wav(good, tone(440, 16000, 1000), 1, 16000, WavEncoding::S16);
  const std::vector<uint8_t> ok = read_bytes(good);
  auto expect = [&](const std::vector<uint8_t>& bytes, const std::string& what) {
    const std::string p = dir / "bad.wav";
    write_bytes(p, bytes);
    CAPTURE(what);
    try {
      read_wav(p);
      FAIL("no error for ", what);
    } catch (const BadSampleError& e) {
      CHECK(e.path == p);
      CHECK(std::string(e.what()).find(p) != std::string::npos);
      CHECK_MESSAGE(e.reason.find(what) != std::string::npos, e.reason);
    }
  };
  expect({}, "empty");
  expect(std::vector<uint8_t>(ok.begin(), ok.begin() + 7), "shorter than a RIFF/WAVE header");
  std::vector<uint8_t> b = ok;
  b[0] = 'X';
  expect(b, "byte offset 0: not a RIFF/WAVE file");
  b = ok;
  std::memcpy(b.data() + 8, "AVI ", 4);
  expect(b, "byte offset 8: the RIFF form type is 'AVI '");
  expect(std::vector<uint8_t>(ok.begin(), ok.end() - 100), "byte offset 36: the 'data' chunk declares 2000 bytes but only 1900 remain (the file is truncated)");
  expect(std::vector<uint8_t>(ok.begin(), ok.begin() + 36), "no data chunk");
  b = ok;
  b[20] = 2;  // MS ADPCM
  expect(b, "byte offset 20: unsupported encoding, format MS ADPCM (0x0002) with 16 bits per sample");
  b = ok;
  b[34] = 12;  // 12-bit PCM
  expect(b, "unsupported encoding, format PCM (0x0001) with 12 bits");
  b = ok;
  b[32] = 3;  // block align
  expect(b, "byte offset 32: block align 3");
  // Non-finite floats.
  std::vector<float> nan = {0.f, NAN, 0.f};
  write_wav(dir / "nan.wav", nan, 1, 8000, WavEncoding::F32);
  CHECK_THROWS_WITH_AS(read_wav(dir / "nan.wav"), doctest::Contains("float sample 1 is not finite"), BadSampleError);
  // A finite 64-bit float beyond float32's range (found by fuzz_wav: it became inf).
  write_wav(dir / "big.wav", {0.f, 0.5f, 0.f}, 1, 8000, WavEncoding::F64);
  std::vector<uint8_t> big = read_bytes(dir / "big.wav");
  const std::string tag(big.begin(), big.end());
  const size_t data = tag.find("data");
  REQUIRE(data != std::string::npos);
  const double huge = 1e300;
  std::memcpy(big.data() + data + 8 + 8, &huge, 8);  // sample 1
  CHECK_THROWS_WITH_AS(decode_wav_bytes(big, "big.wav"), doctest::Contains("sample 1 (1e+300)"), BadSampleError);
  CHECK_THROWS_WITH_AS(decode_wav_bytes(big, "big.wav"), doctest::Contains("beyond float32's range"), BadSampleError);
  CHECK_THROWS_WITH_AS(read_wav(dir / "missing.wav"), doctest::Contains("cannot open it"), BadSampleError);
}

TEST_CASE("resample: band-limited windowed sinc (torchaudio sinc_interp_hann)") {
  // A 440 Hz tone at 44.1 kHz becomes the same tone at 16 kHz (away from the edges).
  const int64_t n = 44100 / 4;
  std::vector<float> y = resample(tone(440, 44100, n), 44100, 16000);
  CHECK(y.size() == (size_t)((n * 16000 + 44099) / 44100));
  std::vector<float> ref = tone(440, 16000, (int64_t)y.size());
  double err = 0;
  for (size_t i = 100; i + 100 < y.size(); ++i) err = std::max(err, (double)std::abs(y[i] - ref[i]));
  CHECK(err < 2e-3);
  // 12 kHz at 48 kHz is above 16 kHz's Nyquist (8 kHz): removed (< -40 dB), not aliased to 4 kHz.
  std::vector<float> hi = resample(tone(12000, 48000, 4800), 48000, 16000);
  double peak = 0;
  for (size_t i = 100; i + 100 < hi.size(); ++i) peak = std::max(peak, (double)std::abs(hi[i]));
  CHECK(peak < 0.5 * 0.01);
  // Upsampling keeps a tone too; equal rates are the identity.
  std::vector<float> up = resample(tone(1000, 8000, 800), 8000, 16000);
  std::vector<float> upref = tone(1000, 16000, 1600);
  for (size_t i = 100; i + 100 < up.size(); ++i) REQUIRE(std::abs(up[i] - upref[i]) < 2e-3);
  std::vector<float> same = tone(300, 16000, 100);
  CHECK(resample(same, 16000, 16000) == same);
}

TEST_CASE("log_mel: a pure tone peaks in the mel bin whose centre is nearest its frequency") {
  LogMelConfig c;  // 16 kHz, n_fft 400, hop 160, 80 mels
  for (double hz : {300.0, 1000.0, 2500.0, 6000.0}) {
    CAPTURE(hz);
    Tensor y = log_mel(from_vector_f(tone(hz, 16000, 16000), {16000}), c);  // (80, 101)
    REQUIRE(y.shape() == Shape{80, 101});
    // The filter centres: f_pts[m + 1] of torchaudio's melscale_fbanks.
    const double mmax = 2595.0 * std::log10(1.0 + 8000.0 / 700.0);
    int64_t want = 0;
    double best = 1e9;
    for (int64_t m = 0; m < 80; ++m) {
      const double centre = 700.0 * (std::pow(10.0, mmax * (double)(m + 1) / 81.0 / 2595.0) - 1.0);
      if (std::abs(centre - hz) < best) best = std::abs(centre - hz), want = m;
    }
    const float* p = y.data<float>();
    for (int64_t t = 2; t < 99; t += 7) {  // frames away from the reflected edges
      int64_t arg = 0;
      for (int64_t m = 1; m < 80; ++m)
        if (p[m * 101 + t] > p[arg * 101 + t]) arg = m;
      CHECK(std::abs(arg - want) <= 1);  // between two centres the neighbour may win by leakage
    }
  }
  // The filterbank is torchaudio's: rows sum to the triangle overlap, peaks of 1 at exact centres.
  std::vector<double> fb = mel_filterbank_htk(201, 0, 8000, 80, 16000);
  double mx = 0;
  for (double v : fb) mx = std::max(mx, v);
  CHECK(mx <= 1.0);
  CHECK(mx > 0.9);
  // Silence is log(eps), finite.
  Tensor s = log_mel(zeros({2, 800}), c);
  for (float v : s.to_vector()) REQUIRE(v == doctest::Approx(std::log(1e-6)).epsilon(1e-5));
}

TEST_CASE("per-utterance normalisation and SpecAugment") {
  const uint32_t seed = fresh_seed();
  CAPTURE(seed);
  Tensor x = normal({6, 50}, 3.0, 2.0);
  normalize_utterance(x.data<float>(), 6, 50);
  for (int64_t m = 0; m < 6; ++m) {
    double s = 0, ss = 0;
    for (int64_t t = 0; t < 50; ++t) s += x.data<float>()[m * 50 + t], ss += std::pow(x.data<float>()[m * 50 + t], 2);
    CHECK(std::abs(s / 50) < 1e-5);
    CHECK(ss / 50 == doctest::Approx(1.0).epsilon(1e-3));
  }
  SpecAugmentConfig c;
  c.freq_width = 10;
  c.time_width = 30;
  c.time_ratio = 0.3;
  const int64_t M = 40, T = 90;
  auto masked = [&](uint64_t epoch, uint64_t idx) {
    std::vector<float> v((size_t)(M * T), 1.f);
    SampleRng rng(seed, epoch, idx, RngStream::Sample);
    spec_augment(v.data(), M, T, c, rng);
    return v;
  };
  std::vector<float> a = masked(1, 7);
  CHECK(a == masked(1, 7));  // a pure function of (seed, epoch, index)
  bool differs = false;
  for (uint64_t i = 0; i < 8 && !differs; ++i) differs = masked(1, 100 + i) != a;
  CHECK(differs);
  // Masks are whole rows (bins) or whole columns (frames), within the widths.
  int64_t zero_rows = 0, zero_cols = 0;
  for (int64_t m = 0; m < M; ++m) {
    bool all = true;
    for (int64_t t = 0; t < T; ++t) all = all && a[(size_t)(m * T + t)] == 0.f;
    zero_rows += all;
  }
  for (int64_t t = 0; t < T; ++t) {
    bool all = true;
    for (int64_t m = 0; m < M; ++m) all = all && a[(size_t)(m * T + t)] == 0.f;
    zero_cols += all;
  }
  CHECK(zero_rows <= 2 * c.freq_width);
  CHECK(zero_cols <= 2 * std::min<int64_t>(c.time_width, (int64_t)(0.3 * T)));
  for (int64_t m = 0; m < M; ++m)
    for (int64_t t = 0; t < T; ++t) {
      const float v = a[(size_t)(m * T + t)];
      REQUIRE((v == 1.f || v == 0.f));
    }
}

namespace {

// A tiny Speech Commands folder of synthetic clips (tones per word at varied
// rates and encodings) and a CTC folder with transcripts; returns the root.
void make_tiny_speech(const TempDir& root, uint32_t seed) {
  std::mt19937 gen(seed);
  auto dir = [&](const std::string& rel) { return root / ("kws/" + rel); };
  std::uniform_real_distribution<double> u(0, 1);
  const char* words[] = {"go", "no", "yes"};
  fs::create_directories(dir("_background_noise_"));
  std::ofstream val(dir("validation_list.txt")), test(dir("testing_list.txt"));
  write_wav(dir("_background_noise_/noise.wav"), tone(50, 16000, 16000, 0.1), 1, 16000, WavEncoding::S16);
  for (int w = 0; w < 3; ++w) {
    fs::create_directories(dir(words[w]));
    for (int i = 0; i < 6; ++i) {
      const std::string rel = std::string(words[w]) + "/spk" + std::to_string(i) + "_nohash_0.wav";
      const int64_t rate = i % 3 == 0 ? 22050 : 16000;
      const int64_t n = (int64_t)(rate * (0.6 + 0.5 * u(gen)));  // shorter and longer than 1 s
      write_wav(dir(rel), tone(300.0 * (w + 1) + 50 * u(gen), rate, n), 1, rate,
                i % 2 ? WavEncoding::S16 : WavEncoding::F32);
      if (i == 4) val << rel << "\n";
      if (i == 5) test << rel << "\n";
    }
  }
  fs::create_directories(root / "ctc/clips");
  std::ofstream vocab(root / "ctc/vocabulary.txt"), tr(root / "ctc/train.tsv"), te(root / "ctc/test.tsv");
  vocab << "go\nno\nyes\n";
  for (int i = 0; i < 7; ++i) {
    const int nw = 1 + i % 3;
    std::vector<float> x;
    std::string words_s;
    for (int k = 0; k < nw; ++k) {
      const int w = (i + k) % 3;
      std::vector<float> t = tone(300.0 * (w + 1), 16000, 4000 + 800 * k);
      x.insert(x.end(), t.begin(), t.end());
      words_s += (k ? " " : "") + std::string(words[w]);
    }
    const std::string rel = "clips/u" + std::to_string(i) + ".wav";
    write_wav(root / ("ctc/" + rel), x, 1, 16000, WavEncoding::S16);
    (i < 5 ? tr : te) << rel << "\t" << words_s << "\n";
  }
}

std::vector<Batch> epoch_batches(DataLoader& dl, int64_t epoch) {
  std::vector<Batch> out;
  dl.set_position(epoch, 0);
  Batch b;
  while (dl.next(b)) out.push_back(b);
  return out;
}

}  // namespace

TEST_CASE("audio_folder and audio_ctc: Speech Commands splits, padded batches, targets, determinism") {
  const uint32_t seed = fresh_seed();
  CAPTURE(seed);
  TempDir dir;
  make_tiny_speech(dir, seed);
  AudioFeatureConfig fc;
  fc.mel.n_mels = 40;
  fc.clip_seconds = 1.0;
  const std::string kws = dir / "kws";
  AudioFolder train(kws, "train", fc), test(kws, "test", fc), val(kws, "validation", fc);
  CHECK(train.num_classes() == 3);  // _background_noise_ is not a class
  CHECK(train.class_names() == std::vector<std::string>{"go", "no", "yes"});
  CHECK(train.size() == 12);
  CHECK(test.size() == 3);
  CHECK(val.size() == 3);
  CHECK(!train.variable_length());
  Sample s = train.get(0);
  CHECK(s.features.shape() == Shape{1, 40, 101});
  CHECK(check_dataset(train, 2).empty());

  // Fixed 1 s clips: equal frames, no lengths (a model without padding masks can train on them).
  LoaderConfig lc;
  lc.batch_size = 5;
  lc.num_workers = 2;
  lc.seed = seed;
  DataLoader dl(std::shared_ptr<const Dataset>(&train, [](const Dataset*) {}), Transform({}, true), lc);
  std::vector<Batch> e1 = epoch_batches(dl, 1);
  REQUIRE(e1.size() == 3);
  CHECK(e1[0].images.shape() == Shape{5, 1, 40, 101});
  CHECK(!e1[0].lengths.defined());
  // Determinism: workers 0 and 2 give identical batches; another epoch differs.
  LoaderConfig lc0 = lc;
  lc0.num_workers = 0;
  DataLoader dl0(std::shared_ptr<const Dataset>(&train, [](const Dataset*) {}), Transform({}, true), lc0);
  std::vector<Batch> f1 = epoch_batches(dl0, 1);
  for (size_t i = 0; i < e1.size(); ++i) {
    CHECK(e1[i].images.to_vector() == f1[i].images.to_vector());
    CHECK(e1[i].labels.to_vector() == f1[i].labels.to_vector());
  }
  CHECK(epoch_batches(dl0, 2)[0].images.to_vector() != e1[0].images.to_vector());
  // Eval: no SpecAugment, features as get() gives them.
  LoaderConfig le = lc0;
  le.shuffle = false;
  DataLoader ev(std::shared_ptr<const Dataset>(&test, [](const Dataset*) {}), Transform({}, false), le);
  std::vector<Batch> eb = epoch_batches(ev, 0);
  REQUIRE(eb.size() == 1);
  std::vector<double> got = eb[0].images.to_vector(), want = test.get(1).features.to_vector();
  CHECK(std::vector<double>(got.begin() + (int64_t)want.size(), got.begin() + 2 * (int64_t)want.size()) == want);

  // Variable length (clip_seconds 0): padded with 0 past each sample's frames, lengths filled.
  AudioFeatureConfig vc = fc;
  vc.clip_seconds = 0;
  AudioFolder vtrain(kws, "train", vc);
  CHECK(vtrain.variable_length());
  DataLoader vl(std::shared_ptr<const Dataset>(&vtrain, [](const Dataset*) {}), Transform({}, false), le);
  for (const Batch& b : epoch_batches(vl, 0)) {
    REQUIRE(b.lengths.defined());
    const int64_t B = b.images.size(0), T = b.images.size(3);
    int64_t tmax = 0;
    for (int64_t j = 0; j < B; ++j) {
      const int64_t Lj = b.lengths.data<int64_t>()[j];
      tmax = std::max(tmax, Lj);
      const Tensor f = vtrain.get(b.index * 5 + j).features;
      CHECK(f.size(2) == Lj);
      const float* p = b.images.data<float>() + j * 40 * T;
      for (int64_t m = 0; m < 40; ++m)
        for (int64_t t = 0; t < T; ++t)
          REQUIRE(p[m * T + t] == (t < Lj ? f.data<float>()[m * Lj + t] : 0.f));
    }
    CHECK(tmax == T);
  }

  // CTC: targets (B,S) padded with 0, target_lengths, vocabulary ids from 1.
  AudioCtc ctc((dir.path / "ctc").string(), "train", vc);
  CHECK(ctc.num_classes() == 4);
  CHECK(ctc.class_names()[0] == "<blank>");
  CHECK(ctc.size() == 5);
  DataLoader cl(std::shared_ptr<const Dataset>(&ctc, [](const Dataset*) {}), Transform({}, true), lc);
  int64_t seen = 0;
  for (const Batch& b : epoch_batches(cl, 0)) {
    REQUIRE(b.targets.defined());
    REQUIRE(b.lengths.defined());
    const int64_t B = b.targets.size(0), S = b.targets.size(1);
    for (int64_t j = 0; j < B; ++j) {
      const int64_t n = b.target_lengths.data<int64_t>()[j];
      CHECK(n >= 1);
      CHECK(n <= S);
      for (int64_t k = 0; k < S; ++k) {
        const int64_t v = b.targets.data<int64_t>()[j * S + k];
        CHECK((k < n ? (v >= 1 && v <= 3) : v == 0));
      }
      // Two words per extra 0.25 s + 0.05 s: the frames grow with the transcript.
      CHECK(b.lengths.data<int64_t>()[j] == 1 + ([&] { int64_t L = 0; for (int64_t k = 0; k < n; ++k) L += 4000 + 800 * k; return L; }()) / 160);
      ++seen;
    }
  }
  CHECK(seen == 5);
}

TEST_CASE("audio data sets: clear errors for a wrong root, missing lists and unknown words") {
  TempDir dir;
  AudioFeatureConfig fc;
  CHECK_THROWS_WITH(AudioFolder(dir / "nope", "train", fc), doctest::Contains("does not exist"));
  fs::create_directories(dir / "yes");
  write_wav(dir / "yes/a.wav", tone(300, 16000, 16000), 1, 16000, WavEncoding::S16);
  CHECK(AudioFolder(dir.path.string(), "train", fc).size() == 1);
  CHECK_THROWS_WITH(AudioFolder(dir.path.string(), "test", fc), doctest::Contains("testing_list.txt' is missing"));
  fs::create_directories(dir / "ctc");
  std::ofstream(dir / "ctc/vocabulary.txt") << "yes\n";
  std::ofstream(dir / "ctc/train.tsv") << "../yes/a.wav\tyes maybe\n";
  CHECK_THROWS_WITH(AudioCtc(dir / "ctc", "train", fc), doctest::Contains("train.tsv:1: word 'maybe' is not in"));
}

TEST_CASE("the committed fuzz seeds are valid WAV files of several encodings") {
  int n = 0;
  for (const auto& e : fs::directory_iterator(fs::path(PW_SOURCE_DIR) / "tests/fuzz/corpus/fuzz_wav")) {
    CAPTURE(e.path().string());
    Audio a = read_wav(e.path().string());
    CHECK(!a.samples.empty());
    ++n;
  }
  CHECK(n >= 5);
}

TEST_CASE("end to end: scripts/make_spoken_words.py (espeak-ng) -> audio_folder / audio_ctc -> batches") {
  if (std::system("command -v espeak-ng >/dev/null 2>&1 && command -v python3 >/dev/null 2>&1") != 0) {
    note_skipped("espeak-ng or python3 is not installed: the generator test cannot run (scripts/install_deps.sh)");
    return;
  }
  TempDir dir;
  const std::string cmd = std::string("python3 ") + PW_SOURCE_DIR + "/scripts/make_spoken_words.py " +
                          dir.path.string() + " --speakers 1 --words 3 --ctc 6 --jobs 2 >/dev/null";
  REQUIRE(std::system(cmd.c_str()) == 0);
  // Through the registry, by the alias, with the data set's default keys.
  auto train = open_dataset("speech_commands", dir / "kws", true);
  auto test = open_dataset("audio_folder", dir / "kws", false);
  CHECK(train->name() == "audio_folder");
  CHECK(train->num_classes() == 3);
  CHECK(train->class_names() == std::vector<std::string>{"one", "two", "zero"});
  CHECK(train->size() == 3);  // one training speaker; one validation and one test speaker held out
  CHECK(test->size() == 3);
  CHECK(check_dataset(*train, 2).empty());
  for (int64_t i = 0; i < test->size(); ++i) {
    Sample s = test->get(i);
    CHECK(s.features.shape() == Shape{1, 80, 101});  // 1 s at 16 kHz, hop 160, 80 mels
    double sum = 0;
    for (double v : s.features.to_vector()) sum += v;
    CHECK(std::abs(sum) < 1e-2 * 80 * 101);  // normalised per utterance
  }
  LoaderConfig lc;
  lc.batch_size = 2;
  lc.seed = 5;
  DataLoader a(train, Transform({}, true), lc), b(train, Transform({}, true), lc);
  std::vector<Batch> ea = epoch_batches(a, 3), eb = epoch_batches(b, 3);
  REQUIRE(ea.size() == 2);
  for (size_t k = 0; k < ea.size(); ++k) CHECK(ea[k].images.to_vector() == eb[k].images.to_vector());
  CHECK(ea[0].images.shape() == Shape{2, 1, 80, 101});
  // CTC: variable length, targets from the transcripts.
  auto ctc = open_dataset("audio_ctc", dir / "ctc", true);
  CHECK(ctc->num_classes() == 21);  // 20 words + blank
  DataLoader c(ctc, Transform({}, true), lc);
  int64_t seen = 0;
  for (const Batch& bt : epoch_batches(c, 0)) {
    REQUIRE(bt.lengths.defined());
    REQUIRE(bt.targets.defined());
    for (int64_t j = 0; j < bt.targets.size(0); ++j) {
      const int64_t n = bt.target_lengths.data<int64_t>()[j];
      CHECK(n >= 2);
      CHECK(n <= 4);
      for (int64_t k = 0; k < n; ++k) CHECK(bt.targets.data<int64_t>()[j * bt.targets.size(1) + k] <= 10);  // digits
      CHECK(bt.lengths.data<int64_t>()[j] > 50);  // at least half a second of speech
      ++seen;
    }
  }
  CHECK(seen == ctc->size());
}

TEST_CASE("training on audio_folder: a tiny SimpleViT on fixed-length log-mels learns; padded input and flip TTA are refused") {
  const uint32_t seed = fresh_seed();
  CAPTURE(seed);
  TempDir dir;
  make_tiny_speech(dir, seed);
  // 1 s clips, hop 512: 1 + 16000 / 512 = 32 frames of 32 mels, a (1, 32, 32) "image".
  auto config = [&](const std::string& extra, const std::string& tail = "") {
    return Config::parse("model:\n  type: simple_vit\n  image_size: 32\n  patch_size: 8\n  channels: 1\n"
                         "  num_classes: 3\n  dim: 32\n  depth: 1\n  heads: 2\n  dim_head: 16\n  mlp_dim: 64\n"
                         "data:\n  dataset: speech_commands\n  root: " + dir / "kws" +
                             "\n  n_mels: 32\n  hop: 512\n  num_workers: 2\n  specaug_freq_masks: 0\n  specaug_time_masks: 1\n" +
                             extra + "train:\n  device: cpu\n  epochs: 20\n  batch_size: 4\n  lr: 0.005\n"
                             "  warmup_epochs: 1\n  threads: 2\n  eval_every: 0\n  checkpoint_every: 0\n" + tail,
                         "audio.yaml");
  };
  TrainOptions o;
  o.quiet = true;
  o.out_dir = dir / "run";
  TrainResult r = train(config(""), o);
  // Frequency masks are off: a mask can hide a whole tone (the classes here are pure tones).
  REQUIRE(r.losses.size() == 60);  // 20 epochs x 12 clips / 4
  const double first = (r.losses[0] + r.losses[1] + r.losses[2]) / 3, last = (r.losses[57] + r.losses[58] + r.losses[59]) / 3;
  CAPTURE(first);
  CAPTURE(last);
  CHECK(last < 0.75 * first);  // measured 0.3-0.6 of first over random data sets
  CHECK(r.test_top1 >= 0);  // evaluation ran on testing_list.txt
  // Variable-length clips carry lengths, which a model without padding masks refuses by name.
  o.out_dir = dir / "run2";
  CHECK_THROWS_WITH_AS(train(config("  clip_seconds: 0\n"), o), doctest::Contains("takes fixed-size input only"),
                       Error);
  // Flip TTA would reverse time.
  Config tta = config("", "eval:\n  hflip_tta: true\n");
  auto model = build_model(tta);
  auto test = open_split(tta, false);
  CHECK_THROWS_WITH_AS(evaluate(*model, tta, *test), doctest::Contains("a flip reverses time"), Error);
}
