// WAV (RIFF/WAVE) reading and writing, and band-limited resampling.
//
// Read: PCM integer 8 (unsigned), 16, 24 and 32 bit, IEEE float 32 and 64 bit,
// in plain WAVE_FORMAT_PCM / WAVE_FORMAT_IEEE_FLOAT files and in
// WAVE_FORMAT_EXTENSIBLE ones (sub-format PCM or float). Integer samples are
// scaled as torchaudio.load / soundfile do (int16 / 32768, uint8: (v - 128) / 128,
// ...), channels are averaged to mono. Any malformed file (not RIFF/WAVE, a
// chunk running past the end, no fmt or data chunk, an unsupported encoding)
// throws BadSampleError naming the file and the byte offset.
//
// Resample: windowed-sinc polyphase interpolation with a Hann window, the
// algorithm and defaults of torchaudio.functional.resample
// (resampling_method="sinc_interp_hann", lowpass_filter_width 6, rolloff 0.99).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace pw {

struct Audio {
  int64_t sample_rate = 0;
  int channels = 0;            // in the file (the samples are already mono)
  std::vector<float> samples;  // (L) mono, about [-1, 1]
};

enum class WavEncoding { U8, S16, S24, S32, F32, F64 };

// Decodes a whole WAV file held in memory; `path` names it in errors.
Audio decode_wav_bytes(const std::vector<uint8_t>& bytes, const std::string& path);
Audio read_wav(const std::string& path);

// Writes interleaved samples (frames * channels, values in [-1, 1], clipped for the
// integer encodings) as a WAV file; `extensible` writes WAVE_FORMAT_EXTENSIBLE.
void write_wav(const std::string& path, const std::vector<float>& interleaved, int channels, int64_t sample_rate,
               WavEncoding enc, bool extensible = false);

// x at rate `from` -> rate `to`: ceil(len * to / from) samples (torchaudio's length).
std::vector<float> resample(const std::vector<float>& x, int64_t from, int64_t to, int lowpass_filter_width = 6,
                            double rolloff = 0.99);

}  // namespace pw
