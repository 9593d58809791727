#include "data/audio_folder.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "data/wav.h"
#include "runtime/check.h"

namespace pw {

namespace fs = std::filesystem;

AudioFeatureConfig audio_feature_config(const Options& d) {
  AudioFeatureConfig c;
  c.mel.sample_rate = d.get_int("sample_rate");
  c.mel.n_fft = d.get_int("n_fft");
  c.mel.hop = d.get_int("hop");
  c.mel.n_mels = d.get_int("n_mels");
  c.mel.f_min = d.get_float("f_min");
  c.mel.f_max = d.get_float("f_max");
  c.clip_seconds = d.get_float("clip_seconds");
  c.normalize = d.get_bool("normalize_utterance");
  c.specaug.freq_masks = d.get_int("specaug_freq_masks");
  c.specaug.freq_width = d.get_int("specaug_freq_width");
  c.specaug.time_masks = d.get_int("specaug_time_masks");
  c.specaug.time_width = d.get_int("specaug_time_width");
  c.specaug.time_ratio = d.get_float("specaug_time_ratio");
  return c;
}

Tensor audio_features(const std::string& path, const AudioFeatureConfig& c, const LogMelTables& tables) {
  Audio a = read_wav(path);
  std::vector<float> x = resample(a.samples, a.sample_rate, c.mel.sample_rate);
  if (c.clip_seconds > 0) x.resize((size_t)std::llround(c.clip_seconds * (double)c.mel.sample_rate), 0.f);
  const int64_t L = (int64_t)x.size();
  if (L <= c.mel.n_fft / 2)
    throw BadSampleError(path, "the clip has " + std::to_string(L) + " samples at " +
                                   std::to_string(c.mel.sample_rate) + " Hz, too short for one frame of n_fft " +
                                   std::to_string(c.mel.n_fft) + "; delete it");
  Tensor y = log_mel(from_vector_f(x, {L}), tables);  // (M,T)
  const int64_t M = y.size(0), T = y.size(1);
  if (c.normalize) normalize_utterance(y.data<float>(), M, T);
  return y.reshape({1, M, T});
}

AudioDataset::AudioDataset(std::string name, AudioFeatureConfig cfg)
    : name_(std::move(name)), cfg_(cfg), tables_(log_mel_tables(cfg.mel, DType::F32, Device::CPU)) {}

const std::string& AudioDataset::path(int64_t i) const {
  PW_CHECK(i >= 0 && i < size(), name_, ": sample index ", i, " out of range [0,", size(), ")");
  return paths_[(size_t)i];
}

int64_t AudioDataset::label(int64_t i) const {
  PW_CHECK(i >= 0 && i < size(), name_, ": sample index ", i, " out of range [0,", size(), ")");
  return labels_[(size_t)i];
}

Sample AudioDataset::get(int64_t i) const {
  Sample s;
  s.features = audio_features(path(i), cfg_, tables_);
  s.label = labels_[(size_t)i];
  if (!tokens_.empty()) s.tokens = tokens_[(size_t)i];
  return s;
}

void AudioDataset::augment(Sample& s, SampleRng& rng) const {
  if (!cfg_.specaug.enabled() || !s.features.defined()) return;
  const int64_t M = s.features.size(1), T = s.features.size(2);
  spec_augment(s.features.data<float>(), M, T, cfg_.specaug, rng);
}

namespace {

bool is_wav(const fs::path& p) {
  std::string ext = p.extension().string();
  for (auto& ch : ext) ch = (char)std::tolower((unsigned char)ch);
  return ext == ".wav";
}

// The lines of root/name (relative clip paths), or an empty set when the file is absent.
std::set<std::string> read_list(const fs::path& file) {
  std::set<std::string> out;
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) out.insert(fs::path(line).lexically_normal().generic_string());
  }
  return out;
}

void check_split(const std::string& name, const std::string& split) {
  PW_CHECK(split == "train" || split == "validation" || split == "test", name, ": split '", split,
           "' is not train, validation or test");
}

}  // namespace

AudioFolder::AudioFolder(const std::string& root, const std::string& split, AudioFeatureConfig cfg, std::string name)
    : AudioDataset(std::move(name), cfg) {
  check_split(name_, split);
  std::error_code ec;
  PW_CHECK(fs::is_directory(root, ec), name_, ": audio folder '", root,
           "' does not exist or is not a directory; set data.root to the folder holding one subfolder per word "
           "(Speech Commands layout, or run scripts/make_spoken_words.py)");
  for (const auto& e : fs::directory_iterator(root, ec)) {
    const std::string f = e.path().filename().string();
    if (e.is_directory() && f[0] != '.' && f[0] != '_') classes_.push_back(f);
  }
  PW_CHECK(!ec, name_, ": cannot list '", root, "' (", ec.message(), ")");
  std::sort(classes_.begin(), classes_.end());
  PW_CHECK(!classes_.empty(), name_, ": '", root, "' has no word subfolders; expected root/<word>/<clip>.wav");
  const std::set<std::string> val = read_list(fs::path(root) / "validation_list.txt"),
                              test = read_list(fs::path(root) / "testing_list.txt");
  if (split != "train")
    PW_CHECK(!(split == "test" ? test : val).empty(), name_, ": '", root, "/",
             split == "test" ? "testing_list.txt" : "validation_list.txt",
             "' is missing or empty; it must name the held-out clips relative to data.root, one a line");
  for (size_t k = 0; k < classes_.size(); ++k) {
    std::vector<std::string> files;
    for (const auto& e : fs::directory_iterator(fs::path(root) / classes_[k], ec))
      if (e.is_regular_file() && is_wav(e.path())) files.push_back(e.path().filename().string());
    PW_CHECK(!ec, name_, ": cannot list '", (fs::path(root) / classes_[k]).string(), "' (", ec.message(), ")");
    std::sort(files.begin(), files.end());
    for (const std::string& f : files) {
      const std::string rel = classes_[k] + "/" + f;
      const bool in_val = val.count(rel) > 0, in_test = test.count(rel) > 0;
      const bool take = split == "train" ? !in_val && !in_test : split == "test" ? in_test : in_val;
      if (!take) continue;
      paths_.push_back((fs::path(root) / rel).string());
      labels_.push_back((int32_t)k);
    }
  }
  PW_CHECK(!paths_.empty(), name_, ": the ", split, " split of '", root, "' holds no .wav clip");
}

AudioCtc::AudioCtc(const std::string& root, const std::string& split, AudioFeatureConfig cfg, std::string name)
    : AudioDataset(std::move(name), cfg) {
  check_split(name_, split);
  const fs::path vfile = fs::path(root) / "vocabulary.txt";
  std::ifstream vin(vfile);
  PW_CHECK(vin.good(), name_, ": cannot read '", vfile.string(),
           "'; data.root must hold vocabulary.txt (one word a line) and train/validation/test.tsv");
  std::map<std::string, int64_t> id;
  std::string line;
  while (std::getline(vin, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (line.empty()) continue;
    PW_CHECK(!id.count(line), name_, ": '", vfile.string(), "' lists '", line, "' twice");
    vocab_.push_back(line);
    id[line] = (int64_t)vocab_.size();
  }
  PW_CHECK(!vocab_.empty(), name_, ": '", vfile.string(), "' lists no word");
  classes_.push_back("<blank>");
  classes_.insert(classes_.end(), vocab_.begin(), vocab_.end());
  const fs::path tfile = fs::path(root) / (split + ".tsv");
  std::ifstream tin(tfile);
  PW_CHECK(tin.good(), name_, ": cannot read '", tfile.string(), "'; expected lines '<clip.wav>\\t<word> <word> ...'");
  int64_t lineno = 0;
  while (std::getline(tin, line)) {
    ++lineno;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (line.empty()) continue;
    const size_t tab = line.find('\t');
    PW_CHECK(tab != std::string::npos, name_, ": ", tfile.string(), ":", lineno,
             ": no tab between the clip path and the transcript");
    std::vector<int64_t> toks;
    std::istringstream words(line.substr(tab + 1));
    std::string w;
    while (words >> w) {
      auto it = id.find(w);
      PW_CHECK(it != id.end(), name_, ": ", tfile.string(), ":", lineno, ": word '", w, "' is not in ",
               vfile.string());
      toks.push_back(it->second);
    }
    PW_CHECK(!toks.empty(), name_, ": ", tfile.string(), ":", lineno, ": empty transcript");
    paths_.push_back((fs::path(root) / line.substr(0, tab)).string());
    labels_.push_back(0);
    tokens_.push_back(std::move(toks));
  }
  PW_CHECK(!paths_.empty(), name_, ": '", tfile.string(), "' names no clip");
}

namespace {

void audio_keys(KeySet& k, double clip_seconds) {
  k.add("sample_rate", KeySpec::Int(16000, "audio: rate the clips are resampled to (Hz)").gt(0), "data");
  k.add("n_fft", KeySpec::Int(400, "audio: STFT size = Hann window length (samples)").ge(2), "data");
  k.add("hop", KeySpec::Int(160, "audio: STFT hop (samples)").ge(1), "data");
  k.add("n_mels", KeySpec::Int(80, "audio: mel bins (HTK scale, torchaudio MelSpectrogram)").ge(1), "data");
  k.add("f_min", KeySpec::Float(0.0, "audio: lowest mel filter edge (Hz)").ge(0), "data");
  k.add("f_max", KeySpec::Float(0.0, "audio: highest mel filter edge (Hz); 0 = sample_rate / 2").ge(0), "data");
  k.add("clip_seconds",
        KeySpec::Float(clip_seconds, "audio: pad/trim every clip to this length; 0 = keep lengths (padded batches)")
            .ge(0),
        "data");
  k.add("normalize_utterance", KeySpec::Bool(true, "audio: zero mean, unit variance per mel bin per utterance"),
        "data");
  k.add("specaug_freq_masks", KeySpec::Int(2, "SpecAugment: frequency masks (mF; 0 = off)").ge(0), "data");
  k.add("specaug_freq_width", KeySpec::Int(15, "SpecAugment: max bins per frequency mask (F)").ge(0), "data");
  k.add("specaug_time_masks", KeySpec::Int(2, "SpecAugment: time masks (mT; 0 = off)").ge(0), "data");
  k.add("specaug_time_width", KeySpec::Int(70, "SpecAugment: max frames per time mask (T)").ge(0), "data");
  k.add("specaug_time_ratio", KeySpec::Float(0.2, "SpecAugment: max fraction of frames per time mask (p)").ge(0).le(1),
        "data");
  k.add("eval_split", KeySpec::Enum("test", {"test", "validation"}, "audio: the held-out split evaluation reads"),
        "data");
}

std::shared_ptr<Dataset> open_audio_folder(const std::string& root, const Options& data, bool train) {
  require_root(data.get_string("dataset"), root);
  return std::make_shared<AudioFolder>(root, train ? "train" : data.get_string("eval_split"),
                                       audio_feature_config(data), "audio_folder");
}

std::shared_ptr<Dataset> open_audio_ctc(const std::string& root, const Options& data, bool train) {
  require_root(data.get_string("dataset"), root);
  return std::make_shared<AudioCtc>(root, train ? "train" : data.get_string("eval_split"), audio_feature_config(data));
}

}  // namespace

// Features are normalised per utterance, so the image normalisation is the identity.
PW_REGISTER_DATASET({"audio_folder", {"speech_commands"},
                     "Speech Commands layout: root/<word>/<clip>.wav, validation_list.txt, testing_list.txt; "
                     "log-mel features",
                     "", 1, 0, {{0.f}, {1.f}}, [](KeySet& k) { audio_keys(k, 1.0); }, open_audio_folder});
PW_REGISTER_DATASET({"audio_ctc", {},
                     "spoken word sequences for CTC: root/vocabulary.txt, root/{train,validation,test}.tsv "
                     "(<clip.wav>\\t<words>); log-mel features, padded batches",
                     "", 1, 0, {{0.f}, {1.f}}, [](KeySet& k) { audio_keys(k, 0.0); }, open_audio_ctc});

}  // namespace pw
