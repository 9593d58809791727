// Audio data sets: WAV files turned into log-mel features (Sample::features,
// (1, n_mels, frames) F32) by the audio front end (kernels/audio/audio.h).
//
//   audio_folder (alias speech_commands): the Speech Commands layout, one
//     folder per word (root/<word>/<clip>.wav), validation_list.txt and
//     testing_list.txt in root naming the held-out clips relative to root; the
//     training split is every other clip. Folders starting with '_' or '.'
//     (_background_noise_) are not classes. Clips are padded/trimmed to
//     data.clip_seconds (1 s), so every sample has the same number of frames.
//   audio_ctc: utterances with word transcripts for CTC. root/vocabulary.txt
//     lists the words, one a line (id = line number, 1-based; 0 is the CTC
//     blank); root/train.tsv, validation.tsv, test.tsv hold lines
//     "<clip path relative to root>\t<word> <word> ...". Variable length:
//     batches are padded and carry Batch::lengths, Batch::targets and
//     Batch::target_lengths; labels are 0 and num_classes() is V + 1.
//
// Per sample: read_wav (data/wav.h) -> resample to data.sample_rate -> pad/trim
// -> log-mel -> per-utterance normalisation (data.normalize_utterance) ->
// [train: SpecAugment, data.specaug_*]. docs/speech.md describes the keys.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/specaugment.h"
#include "kernels/audio/audio.h"

namespace pw {

struct AudioFeatureConfig {
  LogMelConfig mel;
  double clip_seconds = 0;   // > 0: pad with silence / trim to this length; 0: keep each clip's length
  bool normalize = true;     // per-utterance mean/variance normalisation of each mel bin
  SpecAugmentConfig specaug;
};
// The data.<key>s of the audio data sets (data/audio_folder.cpp declares them).
AudioFeatureConfig audio_feature_config(const Options& data);

// One file's features: (1, n_mels, frames) F32 on the CPU. Throws BadSampleError for a bad file.
Tensor audio_features(const std::string& path, const AudioFeatureConfig& c, const LogMelTables& tables);

class AudioDataset : public Dataset {
 public:
  int64_t size() const override { return (int64_t)paths_.size(); }
  int64_t num_classes() const override { return (int64_t)classes_.size(); }
  const std::vector<std::string>& class_names() const override { return classes_; }
  Sample get(int64_t i) const override;
  int64_t label(int64_t i) const override;
  std::string name() const override { return name_; }
  bool has_features() const override { return true; }
  bool variable_length() const override { return cfg_.clip_seconds <= 0; }
  void augment(Sample& s, SampleRng& rng) const override;
  const std::string& path(int64_t i) const;
  const AudioFeatureConfig& config() const { return cfg_; }

 protected:
  AudioDataset(std::string name, AudioFeatureConfig cfg);
  std::string name_;
  AudioFeatureConfig cfg_;
  LogMelTables tables_;
  std::vector<std::string> classes_;              // (num_classes)
  std::vector<std::string> paths_;                // (size)
  std::vector<int32_t> labels_;                   // (size)
  std::vector<std::vector<int64_t>> tokens_;      // (size) CTC targets, or empty
};

// split: "train", "validation" or "test".
class AudioFolder : public AudioDataset {
 public:
  AudioFolder(const std::string& root, const std::string& split, AudioFeatureConfig cfg,
              std::string name = "audio_folder");
};

class AudioCtc : public AudioDataset {
 public:
  AudioCtc(const std::string& root, const std::string& split, AudioFeatureConfig cfg, std::string name = "audio_ctc");
  // The words (vocabulary.txt), id k+1 for entry k.
  const std::vector<std::string>& vocabulary() const { return vocab_; }

 private:
  std::vector<std::string> vocab_;
};

}  // namespace pw
