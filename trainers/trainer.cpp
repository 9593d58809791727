#include "trainers/trainer.h"

#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "autograd/profile.h"
#include "kernels/ops.h"
#include "data/device_loader.h"
#include "data/loader.h"
#include "nn/conformer.h"
#include "nn/registry.h"
#include "io/atomic_file.h"
#include "trainers/checkpoint.h"
#include "trainers/data_parallel.h"
#include "trainers/device.h"
#include "trainers/optim.h"

namespace fs = std::filesystem;

namespace pw {

namespace {

// Keys the trainer adds to the core schema.
void register_trainer_keys(Schema& s) {
  s.add("data", "random_resized_crop",
        KeySpec::Bool(false, "train: RandomResizedCrop to model.image_size (ImageNet recipe)"));
  s.add("train", "checkpoint_steps",
        KeySpec::Int(0, "also checkpoint every this many optimizer steps (0 = off)").ge(0).runtime());
  s.add("train", "keep_checkpoints", KeySpec::Int(2, "checkpoints kept in the run folder").ge(1).runtime());
}
ConfigKeys trainer_keys(register_trainer_keys);

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string json_num(double v) {
  if (!std::isfinite(v)) return "null";
  std::ostringstream os;
  os.precision(8);
  os << v;
  return os.str();
}

TransformConfig transform_config(const Config& cfg, const Dataset& ds) {
  TransformConfig t;
  t.image_size = cfg.get_int("model.image_size");
  t.channels = cfg.get_int("model.channels");
  t.crop_padding = cfg.get_int("data.crop_padding");
  t.hflip = cfg.get_bool("data.hflip") ? 0.5 : 0.0;
  t.randaugment.n = (int)cfg.get_int("data.randaugment_n");
  t.randaugment.m = (double)cfg.get_int("data.randaugment_m");
  t.erasing_prob = cfg.get_float("data.random_erasing");
  t.random_resized_crop = cfg.get_bool("data.random_resized_crop");
  int64_t resize = cfg.get_int("data.resize");
  if (resize > 0) t.crop_pct = (double)t.image_size / (double)resize;
  if (cfg.get_bool("data.normalize")) {
    Normalization n = normalization_for(ds.name());
    t.mean = n.mean;
    t.std = n.std;
    if ((int64_t)t.mean.size() == 1 && t.channels == 3) {  // a gray data set fed to an RGB model
      t.mean.assign(3, t.mean[0]);
      t.std.assign(3, t.std[0]);
    }
  }
  return t;
}

MixupConfig mixup_config(const Config& cfg) {
  MixupConfig m;
  m.mixup_alpha = cfg.get_float("data.mixup_alpha");
  m.cutmix_alpha = cfg.get_float("data.cutmix_alpha");
  m.label_smoothing = cfg.get_float("train.label_smoothing");
  return m;
}

LoaderConfig loader_config(const Config& cfg, bool train) {
  LoaderConfig l;
  l.batch_size = train ? cfg.get_int("train.batch_size") : cfg.get_int("eval.batch_size");
  l.shuffle = train;
  l.drop_last = train;
  l.num_workers = (int)cfg.get_int("data.num_workers");
  l.prefetch = (int)cfg.get_int("data.prefetch");
  l.seed = (uint64_t)cfg.get_int("train.seed");
  l.skip_bad = cfg.get_bool("data.skip_bad_files");
  l.rank = dist::process_group().rank();  // each rank reads its shard (DistributedSampler)
  l.world = dist::process_group().world();
  return l;
}

void check_model_matches_data(const Config& cfg, const Dataset& ds) {
  if (cfg.get_int("model.num_classes") != ds.num_classes())
    cfg.fail("model.num_classes", "is " + std::to_string(cfg.get_int("model.num_classes")) + " but data set '" +
                                      ds.name() + "' has " + std::to_string(ds.num_classes()) +
                                      " classes; set model.num_classes: " + std::to_string(ds.num_classes()));
}

// CTC, for batches with token targets (Batch::targets): the model's per-frame log-probabilities
// (B,T',C), its output lengths from Batch::lengths (all T' without), torch's 'mean' reduction
// (each sample's loss over its target length, then the batch mean); a sample too short for its
// targets counts 0 (zero_infinity).   -> per-sample (B) in *per when asked
Tensor ctc_batch_loss(const Module& model, const Tensor& log_probs, const Batch& b, Tensor* per = nullptr) {
  PW_CHECK(log_probs.dim() == 3, "CTC: the model must give per-frame log-probabilities (B,T,C) for a data set with "
                                 "token targets, got ", log_probs.str(), "; set model.head: ctc");
  const int64_t B = log_probs.size(0);
  Tensor in_len = b.lengths.defined() ? model.output_lengths(b.lengths)
                                      : from_indices(std::vector<int64_t>(B, log_probs.size(1)), {B});
  Tensor l = ctc_loss(log_probs, b.targets, in_len, b.target_lengths, 0, /*zero_infinity=*/true);
  std::vector<double> tl = b.target_lengths.to_vector();
  for (double& v : tl) v = std::max(v, 1.0);
  l = l / from_vector(tl, {B}, log_probs.dtype()).to(log_probs.device());
  if (per) *per = l.detach();
  return mean(l);
}

Tensor loss_of(const Module& model, const Tensor& logits, const Batch& b, double label_smoothing) {
  if (b.targets.defined()) return ctc_batch_loss(model, logits, b);
  if (b.soft_targets.defined()) return cross_entropy_soft(logits, b.soft_targets);
  return cross_entropy(logits, b.labels, label_smoothing);
}

// One line of metrics.jsonl, appended and flushed at once (a kill loses at most this line).
struct MetricsLog {
  FILE* f = nullptr;
  explicit MetricsLog(const std::string& path) {
    f = std::fopen(path.c_str(), "a");
    PW_CHECK(f, path, ": cannot open for appending; check the run folder is writable");
  }
  ~MetricsLog() { if (f) std::fclose(f); }
  void write(const std::string& line) {
    std::fputs(line.c_str(), f);
    std::fputc('\n', f);
    std::fflush(f);
  }
};

std::string default_run_dir(const Config& cfg) {
  std::string base = fs::path(cfg.source()).stem().string();
  if (base.empty()) base = "run";
  std::time_t now = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", std::localtime(&now));
  return (fs::path("runs") / (base + "-" + stamp)).string();
}

std::string format_eta(double s) {
  char buf[32];
  int64_t t = (int64_t)s;
  std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", (long long)(t / 3600), (long long)(t / 60 % 60),
                (long long)(t % 60));
  return buf;
}

}  // namespace

std::shared_ptr<Module> build_model(const Config& cfg) {
  manual_seed((uint64_t)cfg.get_int("train.seed"));
  return create_model(cfg.section("model"));
}

std::shared_ptr<Dataset> open_split(const Config& cfg, bool train) { return open_dataset(cfg.section("data"), train); }

// --- evaluation ---

EvalAccumulator::EvalAccumulator(int64_t k) {
  r_.num_classes = k;
  r_.confusion.assign(k * k, 0);
}

void EvalAccumulator::add(const Tensor& logits, const Tensor& labels) {
  PW_CHECK(logits.dim() == 2 && logits.size(1) == r_.num_classes && labels.dim() == 1 &&
               labels.size(0) == logits.size(0),
           "EvalAccumulator: logits ", logits.str(), " and labels ", labels.str(), " do not fit ", r_.num_classes,
           " classes");
  Tensor l = logits.dtype() == DType::F64 ? logits : logits.detach().to(DType::F64);
  const double* p = l.data<double>();
  const int64_t* y = labels.data<int64_t>();
  int64_t B = logits.size(0), K = r_.num_classes;
  for (int64_t b = 0; b < B; ++b) {
    const double* row = p + b * K;
    int64_t t = y[b];
    PW_CHECK(t >= 0 && t < K, "EvalAccumulator: label ", t, " at position ", b, " is outside [0, ", K, ")");
    double mx = row[0];
    int64_t arg = 0;
    for (int64_t k = 1; k < K; ++k)
      if (row[k] > mx) { mx = row[k]; arg = k; }
    double se = 0;
    for (int64_t k = 0; k < K; ++k) se += std::exp(row[k] - mx);
    loss_sum_ += std::log(se) + mx - row[t];
    // rank of the true class: how many classes score strictly higher (ties count for the label)
    int64_t higher = 0;
    for (int64_t k = 0; k < K; ++k) higher += row[k] > row[t];
    top1_ += arg == t;
    top5_ += higher < 5;
    r_.confusion[t * K + arg] += 1;
  }
  r_.n += B;
}

void EvalAccumulator::reduce(const std::function<void(std::vector<double>&)>& sum) {
  std::vector<double> v = {(double)r_.n, loss_sum_, (double)top1_, (double)top5_};
  for (int64_t c : r_.confusion) v.push_back((double)c);
  sum(v);
  r_.n = (int64_t)v[0];
  loss_sum_ = v[1];
  top1_ = (int64_t)v[2];
  top5_ = (int64_t)v[3];
  for (size_t i = 0; i < r_.confusion.size(); ++i) r_.confusion[i] = (int64_t)v[4 + i];
}

EvalResult EvalAccumulator::result() const {
  EvalResult r = r_;
  if (r.n == 0) return r;
  r.loss = loss_sum_ / r.n;
  r.top1 = (double)top1_ / r.n;
  r.top5 = (double)top5_ / r.n;
  int64_t K = r.num_classes;
  r.per_class.assign(K, 0);
  for (int64_t t = 0; t < K; ++t) {
    int64_t row = 0;
    for (int64_t k = 0; k < K; ++k) row += r.confusion[t * K + k];
    r.per_class[t] = row ? (double)r.confusion[t * K + t] / row : 0.0;
  }
  return r;
}

std::string EvalResult::to_json() const {
  std::ostringstream os;
  os << "{\"n\": " << n << ", \"loss\": " << json_num(loss) << ", \"top1\": " << json_num(top1)
     << ", \"top5\": " << json_num(top5);
  if (wer >= 0) os << ", \"wer\": " << json_num(wer);
  if (hflip_tta)
    os << ", \"hflip_tta\": true, \"single_view_loss\": " << json_num(single_view_loss)
       << ", \"single_view_top1\": " << json_num(single_view_top1);
  os << ", \"per_class\": [";
  for (size_t i = 0; i < per_class.size(); ++i) os << (i ? ", " : "") << json_num(per_class[i]);
  os << "], \"confusion\": [";
  for (int64_t t = 0; t < num_classes; ++t) {
    os << (t ? ", " : "") << "[";
    for (int64_t k = 0; k < num_classes; ++k) os << (k ? ", " : "") << confusion[t * num_classes + k];
    os << "]";
  }
  os << "]}";
  return os.str();
}

std::string EvalResult::to_text(const std::vector<std::string>& names) const {
  std::ostringstream os;
  char buf[256];
  std::snprintf(buf, sizeof buf, "images %lld  loss %.4f  top-1 %.2f%%  top-5 %.2f%%\n", (long long)n, loss,
                100 * top1, 100 * top5);
  os << buf;
  if (wer >= 0) {
    std::snprintf(buf, sizeof buf, "word error rate %.2f%% (greedy CTC decoding; top-1 = utterances exactly right)\n",
                  100 * wer);
    os << buf;
  }
  if (hflip_tta) {
    std::snprintf(buf, sizeof buf, "(mean of each image and its mirror image; single view: loss %.4f  top-1 %.2f%%)\n",
                  single_view_loss, 100 * single_view_top1);
    os << buf;
  }
  os << "per-class accuracy:\n";
  for (int64_t k = 0; k < num_classes; ++k) {
    std::string name = k < (int64_t)names.size() ? names[k] : std::to_string(k);
    std::snprintf(buf, sizeof buf, "  %-20s %6.2f%%\n", name.c_str(), 100 * per_class[k]);
    os << buf;
  }
  if (num_classes <= 20) {
    os << "confusion matrix (rows: true class, columns: predicted):\n";
    for (int64_t t = 0; t < num_classes; ++t) {
      for (int64_t k = 0; k < num_classes; ++k) {
        std::snprintf(buf, sizeof buf, "%6lld", (long long)confusion[t * num_classes + k]);
        os << buf;
      }
      os << "\n";
    }
  }
  return os.str();
}

Tensor eval_logits(Module& model, const Tensor& images, bool hflip_tta, Tensor* single_view, const Tensor& lengths) {
  Tensor logits = model(images, lengths);
  if (single_view) *single_view = logits;
  if (!hflip_tta) return logits;
  const int64_t W = images.size(-1);
  std::vector<int64_t> rev(W);
  for (int64_t i = 0; i < W; ++i) rev[i] = W - 1 - i;
  Tensor mirrored = index_select(images, images.dim() - 1, from_indices(rev, {W}).to(images.device()));
  return (logits + model(mirrored)) * 0.5;
}

// CTC evaluation (token targets): the mean per-token CTC loss, word error rate of the greedy
// decoding and the fraction of utterances decoded exactly (reported as top-1).
struct CtcEvalAccumulator {
  int64_t n = 0, exact = 0;
  double loss_sum = 0;
  std::vector<std::vector<int64_t>> refs, hyps;
  void add(Module& model, const Batch& b) {
    Tensor lp = model(b.images, b.lengths), per;
    ctc_batch_loss(model, lp, b, &per);
    Tensor in_len = b.lengths.defined() ? model.output_lengths(b.lengths) : Tensor();
    std::vector<std::vector<int64_t>> hyp = ctc_greedy_decode(lp, in_len);
    Tensor tg = b.targets.cpu(), tl = b.target_lengths.cpu();
    const int64_t S = tg.size(1);
    const std::vector<double> pv = per.to_vector();
    for (int64_t i = 0; i < (int64_t)hyp.size(); ++i) {
      const int64_t* row = tg.data<int64_t>() + i * S;
      refs.emplace_back(row, row + tl.data<int64_t>()[i]);
      exact += hyp[i] == refs.back();
      hyps.push_back(std::move(hyp[i]));
      loss_sum += pv[i];
      ++n;
    }
  }
  EvalResult result() const {
    EvalResult r;  // num_classes 0: no per-class recall or confusion matrix for sequences
    r.n = n;
    r.loss = n ? loss_sum / n : 0;
    r.top1 = r.top5 = n ? (double)exact / n : 0;
    r.wer = word_error_rate(refs, hyps);
    return r;
  }
};

EvalResult evaluate(Module& model, const Config& cfg, const Dataset& ds) {
  bool was_training = model.training();
  model.eval();
  NoGrad ng;
  DataLoader loader(std::shared_ptr<const Dataset>(&ds, [](const Dataset*) {}),
                    Transform(transform_config(cfg, ds), /*train=*/false), loader_config(cfg, false));
  // On the model's device; logits and labels come back to the host per batch.
  DeviceLoader dl(loader, model.device());
  dl.set_position(0, 0);
  EvalAccumulator acc(ds.num_classes()), single(ds.num_classes());
  Batch b;
  const bool tta = EvalSpec::from(cfg).hflip_tta;
  if (tta && ds.has_features())
    cfg.fail("eval.hflip_tta", "mirrors images; data set '" + ds.name() +
                                   "' gives audio features, where a flip reverses time; set eval.hflip_tta: false");
  CtcEvalAccumulator ctc;
  while (dl.next(b)) {
    if (b.targets.defined()) {
      ctc.add(model, b);
      continue;
    }
    Tensor plain;
    Tensor labels = b.labels.cpu();
    acc.add(eval_logits(model, b.images, tta, &plain, b.lengths).detach().cpu(), labels);
    if (tta) single.add(plain.detach().cpu(), labels);
  }
  model.train(was_training);
  // NOTE: CTC figures are not reduced across ranks yet: with world > 1 they are this rank's shard's.
  if (ctc.n) return ctc.result();
  dist::ProcessGroup& pg = dist::process_group();  // each rank scored its shard
  if (pg.world() > 1) {
    auto sum = [&](std::vector<double>& v) { pg.allreduce_sum(v); };
    acc.reduce(sum);
    if (tta) single.reduce(sum);
  }
  EvalResult r = acc.result();
  if (tta) {
    EvalResult s = single.result();
    r.hflip_tta = true;
    r.single_view_loss = s.loss;
    r.single_view_top1 = s.top1;
  }
  return r;
}

// Evaluates the EMA weights: copies them into the model, evaluates, and copies the live
// weights back (also when the evaluation throws).
EvalResult evaluate_ema(Module& model, const Ema& ema, const Config& cfg, const Dataset& ds) {
  std::vector<std::pair<std::string, Tensor>> sd = model.state_dict();
  PW_CHECK(sd.size() == ema.shadow.size(), "evaluate_ema: the model has ", sd.size(), " tensors, the EMA ",
           ema.shadow.size());
  struct Swap {
    std::vector<std::pair<std::string, Tensor>>& sd;
    std::vector<Tensor> live;
    ~Swap() {
      for (size_t k = 0; k < live.size(); ++k) copy_into(sd[k].second, live[k]);
    }
  } swap{sd, {}};
  NoGrad ng;
  for (size_t k = 0; k < sd.size(); ++k) {
    PW_CHECK(sd[k].first == ema.shadow[k].first, "evaluate_ema: model tensor '", sd[k].first, "' vs EMA '",
             ema.shadow[k].first, "'");
    swap.live.push_back(sd[k].second.detach().clone());
    copy_into(sd[k].second, ema.shadow[k].second);
  }
  return evaluate(model, cfg, ds);
}

// --- specs ---

TrainSpec TrainSpec::from(const Config& cfg) {
  TrainSpec s;
  s.epochs = cfg.get_int("train.epochs");
  s.batch_size = cfg.get_int("train.batch_size");
  s.seed = cfg.get_int("train.seed");
  s.threads = (int)cfg.get_int("train.threads");
  s.optim.kind = cfg.get_string("train.optimizer");
  s.optim.weight_decay = cfg.get_float("train.weight_decay");
  const std::vector<double> betas = cfg.get_floats("train.betas");
  s.optim.beta1 = betas[0];
  s.optim.beta2 = betas[1];
  s.optim.momentum = cfg.get_float("train.momentum");
  s.optim.nesterov = cfg.get_bool("train.nesterov");
  s.schedule = cfg.get_string("train.schedule");
  s.lr = cfg.get_float("train.lr");
  s.min_lr = cfg.get_float("train.min_lr");
  s.warmup_epochs = cfg.get_float("train.warmup_epochs");
  s.step_size_epochs = cfg.get_int("train.step_size");
  s.gamma = cfg.get_float("train.gamma");
  s.label_smoothing = cfg.get_float("train.label_smoothing");
  s.clip_grad = cfg.get_float("train.clip_grad");
  s.ema_decay = cfg.get_float("train.ema_decay");
  s.log_every = cfg.get_int("train.log_every");
  s.eval_every = cfg.get_int("train.eval_every");
  s.checkpoint_every = cfg.get_int("train.checkpoint_every");
  s.checkpoint_steps = cfg.get_int("train.checkpoint_steps");
  s.keep_checkpoints = (int)cfg.get_int("train.keep_checkpoints");
  return s;
}

LrSchedule TrainSpec::schedule_for(int64_t spe) const {
  LrSchedule sched;
  sched.kind = schedule;
  sched.base_lr = lr;
  sched.min_lr = min_lr;
  sched.total_steps = epochs * spe;
  sched.warmup_steps = (int64_t)std::llround(warmup_epochs * spe);
  sched.step_size = step_size_epochs * spe;
  sched.gamma = gamma;
  return sched;
}

EvalSpec EvalSpec::from(const Config& cfg) {
  EvalSpec s;
  s.batch_size = cfg.get_int("eval.batch_size");
  s.hflip_tta = cfg.get_bool("eval.hflip_tta");
  return s;
}

// --- one step ---

StepOut train_step(Module& model, Optimizer& optim, Ema* ema, const Batch& b, const TrainSpec& spec, double lr,
                   const std::function<void(const Tensor& loss)>& on_loss,
                   const std::function<void()>& after_backward) {
  StepOut out;
  Tensor loss;
  {
    OpProfile::Scope s("forward + loss");
    if (OpProfile* prof = OpProfile::current()) prof->mark();
    loss = loss_of(model, model(b.images, b.lengths), b, spec.label_smoothing);
  }
  out.loss = loss.detach();
  if (on_loss) on_loss(out.loss);
  {
    OpProfile::Scope s("zero_grad");
    optim.zero_grad();
  }
  {
    OpProfile::Scope s("backward");
    loss.backward();
  }
  if (after_backward) {
    OpProfile::Scope s("gradient all-reduce");
    after_backward();
  }
  if (spec.clip_grad > 0) {
    OpProfile::Scope s("clip_grad");
    out.grad_norm = clip_grad_norm_tensor(optim.params, spec.clip_grad);
  }
  {
    OpProfile::Scope s("optimizer");
    optim.step(lr);
  }
  if (ema) {
    OpProfile::Scope s("ema");
    ema->update(model);
  }
  return out;
}

// --- the training loop's parts ---

namespace {

// A new run folder, or the checkpoint of the run to resume (checked against cfg).
LoadedCheckpoint open_run(const Config& cfg, const TrainOptions& opt, std::string& run_dir) {
  LoadedCheckpoint ck;
  if (opt.resume_dir.empty()) {
    run_dir = opt.out_dir.empty() ? default_run_dir(cfg) : opt.out_dir;
    PW_CHECK(!fs::exists(fs::path(run_dir) / "checkpoints" / "latest"), run_dir,
             ": already holds a run; pass --resume ", run_dir, " to continue it or choose another --out");
    fs::create_directories(run_dir);
    if (dist::process_group().rank() == 0)
      write_file_atomic((fs::path(run_dir) / "config.yaml").string(), cfg.to_yaml());
    return ck;
  }
  run_dir = opt.resume_dir;
  std::string dir = latest_checkpoint(opt.resume_dir);
  PW_CHECK(!dir.empty(), opt.resume_dir, ": nothing to resume, this run folder has no checkpoints/latest; ",
           "start a new run with --out instead");
  ck = load_checkpoint(dir);
  PW_CHECK(ck.has_state, dir, ": has weights but no training state (state.safetensors); it cannot be resumed");
  // The checkpoint's config is read back with today's schema: keys added since it
  // was written take their defaults (which keep the old behaviour), so a run that
  // predates a new key still resumes; any real difference is named.
  if (ck.state.config_hash != cfg.hash()) {
    Config old = Config::parse(ck.state.config_yaml, dir + "/state.safetensors");
    if (old.hash() != cfg.hash()) {
      std::string diff;
      for (auto& d : config_diff(old, cfg)) diff += (diff.empty() ? "" : "; ") + d;
      PW_FAIL("--resume ", opt.resume_dir, ": the config differs from the checkpoint's: ",
              diff.empty() ? std::string("(hash mismatch)") : diff,
              ". Resume with the run's own config.yaml, or start a new run.");
    }
  }
  return ck;
}

// Where training starts: step 0, or where the checkpoint left off (weights,
// optimizer moments, EMA and the RNG restored).
TrainState start_state(const Config& cfg, const LoadedCheckpoint& ck, Module& model, Optimizer& optim, Ema* ema) {
  TrainState st;
  st.config_hash = cfg.hash();
  st.config_yaml = cfg.to_yaml();
  if (!ck.has_state) return st;
  model.load_state_dict(ck.model);
  optim.load_state(ck.optimizer);
  if (ema) {
    std::map<std::string, Tensor> m(ck.ema.begin(), ck.ema.end());
    for (auto& [n, t] : ema->shadow) {
      PW_CHECK(m.count(n), ck.dir, ": EMA weights lack '", n, "'");
      copy_into(t, m.at(n));
    }
  }
  st.step = ck.state.step;
  st.epoch = ck.state.epoch;
  st.batch = ck.state.batch;
  default_generator() = ck.state.rng;
  return st;
}

// Sees the loop after every step (st: the steps done, the next batch) and at
// the end of every epoch (st: the next epoch, batch 0).
struct TrainObserver {
  virtual ~TrainObserver() = default;
  virtual void on_step(const TrainState& st, const StepOut& out, double lr, int64_t images) {}
  virtual void on_epoch_end(const TrainState& st) {}
};

// The losses: they stay on the device until a log step, a checkpoint or the
// epoch's end reads them back (on CUDA one sync per log step, not per step; on
// the CPU reading is free and each loss is read before its backward). A
// non-finite loss stops training, naming the step and the last good checkpoint.
struct LossBook {
  MetricsLog& metrics;
  std::vector<double>& losses;    // every loss read, in order (TrainResult::losses)
  const std::string& last_ckpt;   // the last checkpoint written ("" = none)
  bool deferred;                  // on CUDA
  struct Pending {
    int64_t step, epoch, batch;
    Tensor loss;  // (1) detached, on the device
  };
  std::vector<Pending> pending;
  double window_sum = 0, last = 0;  // since the last log line; the last loss read
  int64_t window_count = 0;

  LossBook(MetricsLog& metrics, std::vector<double>& losses, const std::string& last_ckpt, bool deferred)
      : metrics(metrics), losses(losses), last_ckpt(last_ckpt), deferred(deferred) {}

  void add(const TrainState& st, int64_t batch, const Tensor& loss) {
    pending.push_back({st.step, st.epoch, batch, loss});
    if (!deferred) flush();
  }
  void flush() {
    for (const Pending& p : pending) {
      const double v = p.loss.item();
      if (!std::isfinite(v)) {
        metrics.write("{\"step\": " + std::to_string(p.step) + ", \"epoch\": " + std::to_string(p.epoch) +
                      ", \"loss\": null, \"error\": \"non-finite loss\"}");
        PW_FAIL("training stopped: the loss is ", v, " at step ", p.step, " (epoch ", p.epoch, ", batch ", p.batch,
                "); ", last_ckpt.empty() ? std::string("no checkpoint was written yet") : "the last good checkpoint is " + last_ckpt,
                ". Lower train.lr or set train.clip_grad, then resume or restart.");
      }
      losses.push_back(v);
      window_sum += v;
      ++window_count;
      last = v;
    }
    pending.clear();
  }
  double window_mean() const { return window_sum / window_count; }
  void reset_window() {
    window_sum = 0;
    window_count = 0;
  }
};

// Checkpoints every train.checkpoint_steps steps, every train.checkpoint_every
// epochs and after the last; never with an unread loss pending.
struct Checkpointer : TrainObserver {
  const TrainSpec& spec;
  const std::string& run_dir;
  const Module& model;
  const Optimizer& optim;
  const Ema* ema;
  TrainState& st;
  LossBook* losses = nullptr;
  DataParallel* dp = nullptr;  // gathers every rank's state; only rank 0 writes
  std::string last;  // the last checkpoint folder written (or resumed from)

  Checkpointer(const TrainSpec& spec, const std::string& run_dir, const Module& model, const Optimizer& optim,
               const Ema* ema, TrainState& st, std::string resumed_from)
      : spec(spec), run_dir(run_dir), model(model), optim(optim), ema(ema), st(st), last(std::move(resumed_from)) {}
  void save() {
    losses->flush();  // never checkpoint weights a non-finite loss has touched unseen
    st.rng = default_generator();
    if (dp) dp->gather_state(st);
    if (dp && !dp->writes()) {
      char name[32];
      std::snprintf(name, sizeof name, "step_%08lld", (long long)st.step);
      last = (fs::path(run_dir) / "checkpoints" / name).string() + " (written by rank 0)";
      return;
    }
    last = save_checkpoint(run_dir, model, optim, ema, st, spec.keep_checkpoints);
  }
  void on_step(const TrainState& s, const StepOut&, double, int64_t) override {
    if (spec.checkpoint_steps > 0 && s.step % spec.checkpoint_steps == 0) save();
  }
  void on_epoch_end(const TrainState& s) override {
    if (s.epoch == spec.epochs || (spec.checkpoint_every > 0 && s.epoch % spec.checkpoint_every == 0)) save();
  }
};

// metrics.jsonl's step lines every train.log_every steps, and the console: a
// progress bar on a terminal (on CUDA moved at log steps only), else a line per log step.
struct ProgressLog : TrainObserver {
  const TrainSpec& spec;
  MetricsLog& metrics;
  LossBook& losses;
  int64_t steps_per_epoch, first_step;
  bool tty, quiet, deferred;
  Clock::time_point start = Clock::now(), window = Clock::now();
  int64_t images_window = 0;
  const DataLoader* loader = nullptr;  // for the count of bad files skipped (data.skip_bad_files)

  ProgressLog(const TrainSpec& spec, MetricsLog& metrics, LossBook& losses, int64_t spe, int64_t first_step, bool quiet)
      : spec(spec), metrics(metrics), losses(losses), steps_per_epoch(spe), first_step(first_step),
        tty(isatty(fileno(stdout)) && !quiet), quiet(quiet), deferred(losses.deferred) {}

  void on_step(const TrainState& st, const StepOut& out, double lr, int64_t images) override {
    images_window += images;
    const bool log_now = st.step % spec.log_every == 0;
    if (!log_now && !(tty && !deferred)) return;
    if (log_now) losses.flush();
    const double gnorm = out.grad_norm.defined() && log_now ? out.grad_norm.item() : -1;
    const double dt = seconds_since(window);
    const double ips = dt > 0 ? images_window / dt : 0;
    const int64_t total = spec.epochs * steps_per_epoch, done = st.step - first_step, left = total - st.step;
    const double eta = done > 0 ? seconds_since(start) / done * left : 0;
    if (log_now) {
      std::ostringstream line;
      line << "{\"step\": " << st.step << ", \"epoch\": " << st.epoch << ", \"loss\": " << json_num(losses.window_mean())
           << ", \"lr\": " << json_num(lr) << ", \"images_per_s\": " << json_num(ips);
      if (gnorm >= 0) line << ", \"grad_norm\": " << json_num(gnorm);
      if (loader && loader->bad_files() > 0) line << ", \"bad_files_skipped\": " << loader->bad_files();
      line << "}";
      metrics.write(line.str());
    }
    if (tty) {
      int width = 30, fill = (int)(width * (double)(st.batch) / steps_per_epoch);
      std::printf("\repoch %lld/%lld [%s%s] %lld/%lld loss %.4f lr %.2e %.0f img/s ETA %s   ",
                  (long long)st.epoch + 1, (long long)spec.epochs, std::string(fill, '#').c_str(),
                  std::string(width - fill, '.').c_str(), (long long)st.batch, (long long)steps_per_epoch, losses.last,
                  lr, ips, format_eta(eta).c_str());
      std::fflush(stdout);
    } else if (log_now && !quiet) {
      std::printf("epoch %lld step %lld/%lld loss %.4f lr %.3e %.0f img/s ETA %s\n", (long long)st.epoch + 1,
                  (long long)st.step, (long long)total, losses.window_mean(), lr, ips, format_eta(eta).c_str());
      std::fflush(stdout);
    }
    if (log_now) {
      window = Clock::now();
      images_window = 0;
      losses.reset_window();
    }
  }
  void end_line() {
    if (tty) std::printf("\n");
  }
  void on_epoch_end(const TrainState&) override { end_line(); }
};

// Evaluates the live (and EMA) weights every train.eval_every epochs and after
// the last: a line in metrics.jsonl and on the console.
struct Evaluator : TrainObserver {
  const TrainSpec& spec;
  const Config& cfg;
  Module& model;
  const Ema* ema;
  const Dataset& test_ds;
  MetricsLog& metrics;
  Clock::time_point start;  // of training: the lines say the time since
  bool quiet;
  double& test_top1;        // TrainResult::test_top1

  Evaluator(const TrainSpec& spec, const Config& cfg, Module& model, const Ema* ema, const Dataset& test_ds,
            MetricsLog& metrics, Clock::time_point start, bool quiet, double& test_top1)
      : spec(spec), cfg(cfg), model(model), ema(ema), test_ds(test_ds), metrics(metrics), start(start), quiet(quiet),
        test_top1(test_top1) {}

  void on_epoch_end(const TrainState& st) override {
    if (st.epoch != spec.epochs && !(spec.eval_every > 0 && st.epoch % spec.eval_every == 0)) return;
    EvalResult r = evaluate(model, cfg, test_ds);
    EvalResult re = ema ? evaluate_ema(model, *ema, cfg, test_ds) : EvalResult();
    test_top1 = r.top1;
    const double elapsed = seconds_since(start);
    std::ostringstream line;
    line << "{\"step\": " << st.step << ", \"epoch\": " << st.epoch << ", \"test_loss\": " << json_num(r.loss)
         << ", \"test_top1\": " << json_num(r.top1) << ", \"test_top5\": " << json_num(r.top5);
    if (r.hflip_tta)
      line << ", \"single_view_test_loss\": " << json_num(r.single_view_loss)
           << ", \"single_view_test_top1\": " << json_num(r.single_view_top1);
    if (ema)
      line << ", \"ema_test_loss\": " << json_num(re.loss) << ", \"ema_test_top1\": " << json_num(re.top1)
           << ", \"ema_test_top5\": " << json_num(re.top5);
    if (r.wer >= 0) line << ", \"test_wer\": " << json_num(r.wer);
    line << ", \"elapsed_s\": " << json_num(elapsed) << "}";
    metrics.write(line.str());
    if (quiet) return;
    std::printf("epoch %lld: test loss %.4f top-1 %.2f%% top-5 %.2f%%", (long long)st.epoch, r.loss, 100 * r.top1,
                100 * r.top5);
    if (r.hflip_tta) std::printf(" with flip TTA (single view: top-1 %.2f%%)", 100 * r.single_view_top1);
    if (ema) std::printf("; EMA weights: top-1 %.2f%%", 100 * re.top1);
    if (r.wer >= 0) std::printf("; WER %.2f%%", 100 * r.wer);
    std::printf(" (%.0f s)\n", seconds_since(start));
  }
};

}  // namespace

// --- training ---

TrainResult train(const Config& cfg, const TrainOptions& options) {
  const TrainSpec spec = TrainSpec::from(cfg);
  if (spec.threads > 0) omp_set_num_threads(spec.threads);
  const Device device = resolve_device(cfg, options.quiet);
  DataParallel dp(cfg, device);  // the launcher's processes; one without a launcher
  TrainOptions opt = options;
  opt.quiet = opt.quiet || !dp.writes();  // rank 0 speaks
  apply_precision(cfg, device, opt.quiet);
  TrainResult res;
  const LoadedCheckpoint ck = open_run(cfg, opt, res.run_dir);

  // Data, model, optimizer, EMA; the model moves before the optimizer and the EMA
  // are built (their state is created on its device).
  std::shared_ptr<Dataset> train_ds = open_split(cfg, true), test_ds = open_split(cfg, false);
  check_model_matches_data(cfg, *train_ds);
  std::shared_ptr<Module> model = build_model(cfg);  // also seeds the default generator
  model->train();
  model->to(device);
  std::unique_ptr<Optimizer> optim = make_optimizer(spec.optim, model->parameters());
  std::unique_ptr<Ema> ema = spec.ema_decay > 0 ? std::make_unique<Ema>(*model, spec.ema_decay) : nullptr;
  DataLoader loader(train_ds, Transform(transform_config(cfg, *train_ds), /*train=*/true), loader_config(cfg, true),
                    mixup_config(cfg));
  DeviceLoader batches(loader, device);  // pinned, double-buffered H2D copies on CUDA
  const int64_t spe = loader.num_batches();
  PW_CHECK(spe > 0, "train.batch_size ", spec.batch_size, " is larger than the training set (", train_ds->size(),
           " images); lower it");
  const LrSchedule sched = spec.schedule_for(spe);
  TrainState st = start_state(cfg, ck, *model, *optim, ema.get());
  dp.start(*model, ck, st, spe, opt.resume_dir);  // rank 0's weights everywhere, per-rank RNG

  // What watches the loop: losses, progress and metrics, evaluation, checkpoints.
  MetricsLog metrics(dp.writes() ? (fs::path(res.run_dir) / "metrics.jsonl").string() : "/dev/null");
  Checkpointer checkpoints(spec, res.run_dir, *model, *optim, ema.get(), st, ck.dir);
  LossBook losses(metrics, res.losses, checkpoints.last, device == Device::CUDA);
  checkpoints.losses = &losses;
  checkpoints.dp = &dp;
  ProgressLog progress(spec, metrics, losses, spe, st.step, opt.quiet);
  progress.loader = &loader;
  Evaluator evaluator(spec, cfg, *model, ema.get(), *test_ds, metrics, progress.start, opt.quiet, res.test_top1);
  TrainObserver* const observers[] = {&progress, &evaluator, &checkpoints};
  if (!opt.quiet)
    std::cout << "patchwork: training " << cfg.get_string("model.type") << " (" << model->num_parameters()
              << " parameters) on " << train_ds->name() << " (" << train_ds->size() << " images), " << spec.epochs
              << " epochs x " << spe << " steps, run folder " << res.run_dir << "\n"
              << (dp.active() ? "patchwork: data parallel, " + dp.describe(spec.batch_size) + "\n" : "")
              << std::flush;

  while (st.epoch < spec.epochs) {
    batches.set_position(st.epoch, st.batch);
    Batch b;
    while (batches.next(b)) {
      const double lr = sched.at(st.step);
      const StepOut out = train_step(*model, *optim, ema.get(), b, spec, lr,
                                     [&](const Tensor& loss) { losses.add(st, b.index, loss); },
                                     [&] { dp.after_backward(st.step + 1, checkpoints.last); });
      ++st.step;
      st.batch = b.index + 1;
      for (TrainObserver* o : observers) o->on_step(st, out, lr, b.images.size(0) * dp.pg.world());
      if (opt.max_steps >= 0 && st.step >= opt.max_steps) {  // a simulated interruption
        progress.end_line();
        checkpoints.save();
        res.steps = st.step;
        return res;
      }
    }
    losses.flush();
    ++st.epoch;  // the epoch is complete: the next batch is batch 0 of the next epoch
    st.batch = 0;
    for (TrainObserver* o : observers) o->on_epoch_end(st);
  }
  res.steps = st.step;
  if (!opt.quiet && dp.active()) std::cout << "patchwork: " << dp.traffic(st.step - progress.first_step) << "\n";
  if (!opt.quiet) std::cout << "patchwork: done; run folder " << res.run_dir << "\n";
  return res;
}

}  // namespace pw
