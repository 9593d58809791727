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

#include "kernels/ops.h"
#include "data/device_loader.h"
#include "data/loader.h"
#include "nn/registry.h"
#include "io/atomic_file.h"
#include "trainers/checkpoint.h"
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

void set_threads(const Config& cfg) {
  int64_t t = cfg.get_int("train.threads");
  if (t > 0) omp_set_num_threads((int)t);
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
  return l;
}

void check_model_matches_data(const Config& cfg, const Dataset& ds) {
  if (cfg.get_int("model.num_classes") != ds.num_classes())
    cfg.fail("model.num_classes", "is " + std::to_string(cfg.get_int("model.num_classes")) + " but data set '" +
                                      ds.name() + "' has " + std::to_string(ds.num_classes()) +
                                      " classes; set model.num_classes: " + std::to_string(ds.num_classes()));
}

Tensor loss_of(const Tensor& logits, const Batch& b, double label_smoothing) {
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

Tensor eval_logits(Module& model, const Tensor& images, bool hflip_tta, Tensor* single_view) {
  Tensor logits = model(images);
  if (single_view) *single_view = logits;
  if (!hflip_tta) return logits;
  const int64_t W = images.size(-1);
  std::vector<int64_t> rev(W);
  for (int64_t i = 0; i < W; ++i) rev[i] = W - 1 - i;
  Tensor mirrored = index_select(images, images.dim() - 1, from_indices(rev, {W}).to(images.device()));
  return (logits + model(mirrored)) * 0.5;
}

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
  const bool tta = cfg.get_bool("eval.hflip_tta");
  while (dl.next(b)) {
    Tensor plain;
    Tensor labels = b.labels.cpu();
    acc.add(eval_logits(model, b.images, tta, &plain).detach().cpu(), labels);
    if (tta) single.add(plain.detach().cpu(), labels);
  }
  model.train(was_training);
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

// --- training ---

TrainResult train(const Config& cfg, const TrainOptions& opt) {
  set_threads(cfg);
  const Device device = resolve_device(cfg, opt.quiet);
  apply_precision(cfg, device, opt.quiet);
  TrainResult res;
  LoadedCheckpoint ck;
  if (!opt.resume_dir.empty()) {
    res.run_dir = opt.resume_dir;
    std::string dir = latest_checkpoint(opt.resume_dir);
    PW_CHECK(!dir.empty(), opt.resume_dir, ": nothing to resume, this run folder has no checkpoints/latest; ",
             "start a new run with --out instead");
    ck = load_checkpoint(dir);
    PW_CHECK(ck.has_state, dir, ": has weights but no training state (state.safetensors); it cannot be resumed");
    if (ck.state.config_hash != cfg.hash()) {
      Config old = Config::parse(ck.state.config_yaml, dir + "/state.safetensors");
      std::string diff;
      for (auto& d : config_diff(old, cfg)) diff += (diff.empty() ? "" : "; ") + d;
      PW_FAIL("--resume ", opt.resume_dir, ": the config differs from the checkpoint's: ",
              diff.empty() ? std::string("(hash mismatch)") : diff,
              ". Resume with the run's own config.yaml, or start a new run.");
    }
  } else {
    res.run_dir = opt.out_dir.empty() ? default_run_dir(cfg) : opt.out_dir;
    PW_CHECK(!fs::exists(fs::path(res.run_dir) / "checkpoints" / "latest"), res.run_dir,
             ": already holds a run; pass --resume ", res.run_dir, " to continue it or choose another --out");
    fs::create_directories(res.run_dir);
    write_file_atomic((fs::path(res.run_dir) / "config.yaml").string(), cfg.to_yaml());
  }

  std::shared_ptr<Dataset> train_ds = open_split(cfg, true), test_ds = open_split(cfg, false);
  check_model_matches_data(cfg, *train_ds);
  std::shared_ptr<Module> model = build_model(cfg);  // also seeds the default generator
  model->train();
  // Before the optimizer and the EMA are built: their state is created on the model's device.
  model->to(device);

  std::vector<Param> params = model->parameters();
  std::unique_ptr<Optimizer> optim;
  if (cfg.get_string("train.optimizer") == "adamw") {
    auto b = cfg.get_floats("train.betas");
    optim = std::make_unique<AdamW>(params, b[0], b[1], 1e-8, cfg.get_float("train.weight_decay"));
  } else {
    optim = std::make_unique<SGD>(params, cfg.get_float("train.momentum"), cfg.get_float("train.weight_decay"),
                                  cfg.get_bool("train.nesterov"));
  }
  std::unique_ptr<Ema> ema;
  if (cfg.get_float("train.ema_decay") > 0) ema = std::make_unique<Ema>(*model, cfg.get_float("train.ema_decay"));

  DataLoader loader(train_ds, Transform(transform_config(cfg, *train_ds), /*train=*/true),
                    loader_config(cfg, true), mixup_config(cfg));
  DeviceLoader dloader(loader, device);  // pinned, double-buffered H2D copies on CUDA
  int64_t spe = loader.num_batches(), epochs = cfg.get_int("train.epochs");
  PW_CHECK(spe > 0, "train.batch_size ", cfg.get_int("train.batch_size"), " is larger than the training set (",
           train_ds->size(), " images); lower it");
  LrSchedule sched;
  sched.kind = cfg.get_string("train.schedule");
  sched.base_lr = cfg.get_float("train.lr");
  sched.min_lr = cfg.get_float("train.min_lr");
  sched.total_steps = epochs * spe;
  sched.warmup_steps = (int64_t)std::llround(cfg.get_float("train.warmup_epochs") * spe);
  sched.step_size = cfg.get_int("train.step_size") * spe;
  sched.gamma = cfg.get_float("train.gamma");

  TrainState st;
  st.config_hash = cfg.hash();
  st.config_yaml = cfg.to_yaml();
  if (ck.has_state) {
    model->load_state_dict(ck.model);
    optim->load_state(ck.optimizer);
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
  }

  const double ls = cfg.get_float("train.label_smoothing"), clip = cfg.get_float("train.clip_grad");
  const int64_t log_every = cfg.get_int("train.log_every"), eval_every = cfg.get_int("train.eval_every"),
                ckpt_every = cfg.get_int("train.checkpoint_every"), ckpt_steps = cfg.get_int("train.checkpoint_steps");
  const int keep = (int)cfg.get_int("train.keep_checkpoints");
  MetricsLog metrics((fs::path(res.run_dir) / "metrics.jsonl").string());
  bool tty = isatty(fileno(stdout)) && !opt.quiet;
  auto checkpoint = [&]() {
    st.rng = default_generator();
    return save_checkpoint(res.run_dir, *model, *optim, ema.get(), st, keep);
  };
  std::string last_ckpt = ck.dir;
  if (!opt.quiet)
    std::cout << "patchwork: training " << cfg.get_string("model.type") << " (" << model->num_parameters()
              << " parameters) on " << train_ds->name() << " (" << train_ds->size() << " images), " << epochs
              << " epochs x " << spe << " steps, run folder " << res.run_dir << "\n"
              << std::flush;

  auto t_start = Clock::now(), t_window = Clock::now();
  int64_t images_window = 0, steps_at_start = st.step;
  double loss_window = 0;
  int64_t loss_count = 0;
  // Losses (and the gradient norm) stay on the device until a log step, a
  // checkpoint or the epoch's end reads them back: on CUDA one sync per log
  // step, not per step. On the CPU reading is free, and each loss is checked
  // before its backward as ever.
  const bool on_cuda = device == Device::CUDA;
  struct PendingLoss {
    int64_t step, epoch, batch;
    Tensor loss;  // (1) detached, on the device
  };
  std::vector<PendingLoss> pending;
  double lv = 0;  // the last loss read back
  auto flush_losses = [&]() {
    for (const PendingLoss& p : pending) {
      const double v = p.loss.item();
      if (!std::isfinite(v)) {
        metrics.write("{\"step\": " + std::to_string(p.step) + ", \"epoch\": " + std::to_string(p.epoch) +
                      ", \"loss\": null, \"error\": \"non-finite loss\"}");
        PW_FAIL("training stopped: the loss is ", v, " at step ", p.step, " (epoch ", p.epoch, ", batch ", p.batch,
                "); ", last_ckpt.empty() ? std::string("no checkpoint was written yet") : "the last good checkpoint is " + last_ckpt,
                ". Lower train.lr or set train.clip_grad, then resume or restart.");
      }
      res.losses.push_back(v);
      loss_window += v;
      ++loss_count;
      lv = v;
    }
    pending.clear();
  };
  while (st.epoch < epochs) {
    dloader.set_position(st.epoch, st.batch);
    Batch b;
    while (dloader.next(b)) {
      double lr = sched.at(st.step);
      Tensor logits = (*model)(b.images);
      Tensor loss = loss_of(logits, b, ls);
      pending.push_back({st.step, st.epoch, b.index, loss.detach()});
      if (!on_cuda) flush_losses();
      optim->zero_grad();
      loss.backward();
      Tensor gnorm_t = clip > 0 ? clip_grad_norm_tensor(params, clip) : Tensor();
      optim->step(lr);
      if (ema) ema->update(*model);
      ++st.step;
      st.batch = b.index + 1;
      images_window += b.images.size(0);

      bool log_now = st.step % log_every == 0;
      const bool ckpt_now = (ckpt_steps > 0 && st.step % ckpt_steps == 0) || (opt.max_steps >= 0 && st.step >= opt.max_steps);
      if (log_now || ckpt_now) flush_losses();  // never checkpoint weights a non-finite loss has touched unseen
      if (log_now || (tty && !on_cuda)) {  // on CUDA the progress line moves at log steps only
        const double gnorm = gnorm_t.defined() && log_now ? gnorm_t.item() : -1;
        double dt = seconds_since(t_window);
        double ips = dt > 0 ? images_window / dt : 0;
        int64_t done = st.step - steps_at_start, left = epochs * spe - st.step;
        double eta = done > 0 ? seconds_since(t_start) / done * left : 0;
        if (log_now) {
          std::ostringstream line;
          line << "{\"step\": " << st.step << ", \"epoch\": " << st.epoch << ", \"loss\": " << json_num(loss_window / loss_count)
               << ", \"lr\": " << json_num(lr) << ", \"images_per_s\": " << json_num(ips);
          if (gnorm >= 0) line << ", \"grad_norm\": " << json_num(gnorm);
          line << "}";
          metrics.write(line.str());
        }
        if (tty) {
          int width = 30, fill = (int)(width * (double)(st.batch) / spe);
          std::printf("\repoch %lld/%lld [%s%s] %lld/%lld loss %.4f lr %.2e %.0f img/s ETA %s   ",
                      (long long)st.epoch + 1, (long long)epochs, std::string(fill, '#').c_str(),
                      std::string(width - fill, '.').c_str(), (long long)st.batch, (long long)spe, lv, lr, ips,
                      format_eta(eta).c_str());
          std::fflush(stdout);
        } else if (log_now && !opt.quiet) {
          std::printf("epoch %lld step %lld/%lld loss %.4f lr %.3e %.0f img/s ETA %s\n", (long long)st.epoch + 1,
                      (long long)st.step, (long long)(epochs * spe), loss_window / loss_count, lr, ips,
                      format_eta(eta).c_str());
          std::fflush(stdout);
        }
        if (log_now) {
          t_window = Clock::now();
          images_window = 0;
          loss_window = 0;
          loss_count = 0;
        }
      }
      if (ckpt_steps > 0 && st.step % ckpt_steps == 0) last_ckpt = checkpoint();
      if (opt.max_steps >= 0 && st.step >= opt.max_steps) {
        if (tty) std::printf("\n");
        last_ckpt = checkpoint();
        res.steps = st.step;
        return res;
      }
    }
    flush_losses();
    if (tty) std::printf("\n");
    // The epoch is complete: the next batch is batch 0 of the next epoch.
    ++st.epoch;
    st.batch = 0;
    bool last = st.epoch == epochs;
    if (last || (eval_every > 0 && st.epoch % eval_every == 0)) {
      EvalResult r = evaluate(*model, cfg, *test_ds);
      EvalResult re = ema ? evaluate_ema(*model, *ema, cfg, *test_ds) : EvalResult();
      res.test_top1 = r.top1;
      std::ostringstream line;
      line << "{\"step\": " << st.step << ", \"epoch\": " << st.epoch << ", \"test_loss\": " << json_num(r.loss)
           << ", \"test_top1\": " << json_num(r.top1) << ", \"test_top5\": " << json_num(r.top5);
      if (r.hflip_tta)
        line << ", \"single_view_test_loss\": " << json_num(r.single_view_loss)
             << ", \"single_view_test_top1\": " << json_num(r.single_view_top1);
      if (ema)
        line << ", \"ema_test_loss\": " << json_num(re.loss) << ", \"ema_test_top1\": " << json_num(re.top1)
             << ", \"ema_test_top5\": " << json_num(re.top5);
      line << ", \"elapsed_s\": " << json_num(seconds_since(t_start)) << "}";
      metrics.write(line.str());
      if (!opt.quiet) {
        std::printf("epoch %lld: test loss %.4f top-1 %.2f%% top-5 %.2f%%", (long long)st.epoch, r.loss, 100 * r.top1,
                    100 * r.top5);
        if (r.hflip_tta) std::printf(" with flip TTA (single view: top-1 %.2f%%)", 100 * r.single_view_top1);
        if (ema) std::printf("; EMA weights: top-1 %.2f%%", 100 * re.top1);
        std::printf(" (%.0f s)\n", seconds_since(t_start));
      }
    }
    if (last || (ckpt_every > 0 && st.epoch % ckpt_every == 0)) last_ckpt = checkpoint();
  }
  res.steps = st.step;
  if (!opt.quiet) std::cout << "patchwork: done; run folder " << res.run_dir << "\n";
  return res;
}

}  // namespace pw
