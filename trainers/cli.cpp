#include "trainers/cli.h"

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <regex>
#include <sstream>

#include "autograd/function.h"
#include "autograd/profile.h"
#include "kernels/gemm/gemm.h"
#include "data/check.h"
#include "data/dataset.h"
#include "dist/process_group.h"
#include "nn/module.h"
#include "nn/posenc.h"
#include "nn/registry.h"
#include "trainers/bench.h"
#include "trainers/checkpoint.h"
#include "trainers/config.h"
#include "trainers/trainer.h"

namespace fs = std::filesystem;

namespace pw {

namespace {

const char* kUsage =
    "usage:\n"
    "  patchwork train CONFIG [--set section.key=value]... [--out RUN_DIR]\n"
    "  patchwork train [CONFIG] --resume RUN_DIR     (CONFIG defaults to RUN_DIR/config.yaml)\n"
    "  patchwork eval CONFIG --checkpoint PATH [--split test|train] [--ema] [--json] [--set k=v]...\n"
    "                [--image-size S [--interpolate bicubic|bilinear]]   evaluate at another image size\n"
    "  patchwork info CONFIG [--set k=v]...          layers, output shapes, parameters, FLOPs per image\n"
    "  patchwork bench gemm                          float32 GEMM GFLOP/s at ViT shapes\n"
    "  patchwork bench train CONFIG [--steps N] [--threads T] [--device cpu|cuda|auto] [--set k=v]...\n"
    "                                                training images/s, per-op profile\n"
    "  patchwork bench attention [--device cuda|cpu --batch B --heads NH --n N --hd HD --bf16|--fp32 --iters I --threads T]\n"
    "                                          attention kernel speed (CUDA: flash attention TFLOP/s)\n"
    "  patchwork bench attention --device cpu --sasa [--sides S1,S2,... --kernel K --threads T]\n"
    "                                          SASA: the fused local op against the masked O(N^2) form\n"
    "  patchwork data check CONFIG [--set k=v]...    read every sample of both splits once; list unreadable files\n"
    "  patchwork keys                                the core config keys: type, default, range, meaning\n"
    "  patchwork keys --model NAME | --data NAME     the keys a model (model.type) or data set (data.dataset) adds\n";

struct Args {
  std::string config, out, resume, checkpoint, split = "test";
  int64_t image_size = 0;              // eval: evaluate at this size (0: the config's)
  std::string interpolate = "bicubic";  // eval --image-size: how learned tables resize
  std::vector<std::string> sets;
  bool json = false;
  bool ema = false;  // eval: the checkpoint's EMA weights instead of the live ones
};

Args parse(const std::vector<std::string>& a, size_t from) {
  Args r;
  auto value = [&](size_t& i) -> std::string {
    PW_CHECK(i + 1 < a.size(), "option ", a[i], " needs a value");
    return a[++i];
  };
  for (size_t i = from; i < a.size(); ++i) {
    const std::string& s = a[i];
    if (s == "--set") r.sets.push_back(value(i));
    else if (s.rfind("--set=", 0) == 0) r.sets.push_back(s.substr(6));
    else if (s == "--out") r.out = value(i);
    else if (s == "--resume") r.resume = value(i);
    else if (s == "--checkpoint") r.checkpoint = value(i);
    else if (s == "--split") r.split = value(i);
    else if (s == "--image-size") {
      const std::string v = value(i);
      PW_CHECK(!v.empty() && v.find_first_not_of("0123456789") == std::string::npos && std::stoll(v) > 0,
               "--image-size: expected a positive integer (pixels), got '", v, "'");
      r.image_size = std::stoll(v);
    }
    else if (s == "--interpolate") r.interpolate = value(i);
    else if (s == "--json") r.json = true;
    else if (s == "--ema") r.ema = true;
    else if (s.rfind("--", 0) == 0) PW_FAIL("unknown option ", s, "\n", kUsage);
    else {
      PW_CHECK(r.config.empty(), "more than one config file given ('", r.config, "' and '", s, "')");
      r.config = s;
    }
  }
  return r;
}

Config load_config(const Args& a) {
  PW_CHECK(!a.config.empty(), "no config file given\n", kUsage);
  PW_CHECK(fs::exists(a.config), "config file '", a.config, "' does not exist");
  return Config::load(a.config, a.sets);
}

int cmd_train(const Args& a0) {
  Args a = a0;
  if (a.config.empty() && !a.resume.empty()) a.config = (fs::path(a.resume) / "config.yaml").string();
  Config cfg = load_config(a);
  TrainOptions o;
  o.out_dir = a.out;
  o.resume_dir = a.resume;
  TrainResult r;
  try {
    r = train(cfg, o);
  } catch (const std::exception& e) {
    // One rank failing alone would leave the others waiting: stop them all, naming it.
    dist::ProcessGroup& pg = dist::process_group();
    if (pg.world() > 1) pg.abort(std::string("error: ") + e.what());
    throw;
  }
  if (dist::process_group().rank() != 0) return 0;
  std::printf("run folder: %s\n", r.run_dir.c_str());
  if (r.test_top1 >= 0) std::printf("final test top-1: %.2f%%\n", 100 * r.test_top1);
  return 0;
}

int cmd_eval(const Args& a0) {
  Args a = a0;
  PW_CHECK(a.interpolate == "bicubic" || a.interpolate == "bilinear", "--interpolate: expected bicubic or bilinear, "
           "got '", a.interpolate, "'");
  // --image-size S: the model is built for S and the eval transform resizes to S; the
  // checkpoint's grid-sized tables are fitted to it (nn/posenc.h, resolution extrapolation)
  if (a.image_size > 0) a.sets.push_back("model.image_size=" + std::to_string(a.image_size));
  Config cfg = load_config(a);
  PW_CHECK(!a.checkpoint.empty(), "eval needs --checkpoint PATH (a run folder, a checkpoint folder or a .safetensors file)");
  PW_CHECK(a.split == "test" || a.split == "train", "--split: expected test or train, got '", a.split, "'");
  std::shared_ptr<Module> model = build_model(cfg);
  LoadedCheckpoint ck = load_checkpoint(a.checkpoint);
  if (a.ema)
    PW_CHECK(!ck.ema.empty(), a.checkpoint, ": holds no EMA weights (the run had train.ema_decay: 0, or this is a ",
             "weights-only file); evaluate it without --ema");
  try {
    std::map<std::string, Tensor> sd =
        a.ema ? std::map<std::string, Tensor>(ck.ema.begin(), ck.ema.end()) : ck.model;
    if (a.image_size > 0) {
      std::vector<std::string> resized;
      sd = fit_state_dict_to_resolution(*model, std::move(sd), a.interpolate, &resized);
      for (const std::string& n : resized)
        std::fprintf(stderr, "eval --image-size %lld: %s interpolated (%s)\n", (long long)a.image_size, n.c_str(),
                     a.interpolate.c_str());
    }
    model->load_state_dict(sd);
  } catch (const Error& e) {
    PW_FAIL(a.checkpoint, ": does not fit the model of ", a.config, ": ", e.what());
  }
  auto ds = open_split(cfg, a.split == "train");
  EvalResult r = evaluate(*model, cfg, *ds);
  if (a.json) std::printf("%s\n", r.to_json().c_str());
  else std::printf("%s%s on %s (%s split):\n%s", a.checkpoint.c_str(), a.ema ? " (EMA weights)" : "",
                   ds->name().c_str(), a.split.c_str(), r.to_text(ds->class_names()).c_str());
  return 0;
}

std::string human(double v) {
  char buf[32];
  if (v >= 1e9) std::snprintf(buf, sizeof buf, "%.2fG", v / 1e9);
  else if (v >= 1e6) std::snprintf(buf, sizeof buf, "%.2fM", v / 1e6);
  else if (v >= 1e3) std::snprintf(buf, sizeof buf, "%.1fK", v / 1e3);
  else std::snprintf(buf, sizeof buf, "%.0f", v);
  return buf;
}

// Names every module in the tree by its dotted path.
void name_modules(const Module& m, const std::string& prefix, std::map<const Module*, std::string>& names) {
  names[&m] = prefix.empty() ? "(model)" : prefix;
  for (auto& [n, c] : m.children()) name_modules(*c, prefix.empty() ? n : prefix + "." + n, names);
}
int64_t own_params(const Module& m) { return m.num_parameters(); }

int cmd_info(const Args& a) {
  Config cfg = load_config(a);
  std::shared_ptr<Module> model = build_model(cfg);
  model->eval();
  std::map<const Module*, std::string> names;
  name_modules(*model, "", names);
  int64_t C = cfg.get_int("model.channels"), S = cfg.get_int("model.image_size");
  Tensor img = normal({1, C, S, S}, 0, 1);
  ModuleTrace trace;
  {
    NoGrad ng;
    (*model)(img);
  }
  std::printf("%s: %s\n", a.config.c_str(), cfg.get_string("model.type").c_str());
  std::printf("%-44s %-18s %-18s %10s %10s\n", "module", "type", "output", "params", "FLOPs");
  for (auto& e : trace.entries) {
    // Every block has the same internals: show them for the first one only.
    bool repeat = e.depth >= 2 && names[e.module].rfind("blocks.0.", 0) != 0;
    if (e.depth > 2 || repeat) continue;
    std::string indent(2 * e.depth, ' ');
    std::printf("%-44s %-18s %-18s %10s %10s\n", (indent + names[e.module]).c_str(), e.module->type_name(),
                shape_str(e.out).c_str(), human((double)own_params(*e.module)).c_str(), human((double)e.flops).c_str());
  }
  int64_t flops = trace.entries.empty() ? 0 : trace.entries[0].flops;
  std::printf("parameters: %lld (%s)\nFLOPs per image (forward, 2 per multiply-add, GEMM and conv only): %s\n",
              (long long)model->num_parameters(), human((double)model->num_parameters()).c_str(),
              human((double)flops).c_str());
  const dist::LaunchEnv env = dist::launch_env();
  const int64_t bs = cfg.get_int("train.batch_size");
  if (env.world > 1)
    std::printf("global batch: train.batch_size %lld x %d processes (%s) = %lld images per optimizer step\n",
                (long long)bs, env.world, env.launcher.c_str(), (long long)(bs * env.world));
  else
    std::printf("global batch: %lld (one process; launched by mpirun/srun/torchrun it is train.batch_size x the "
                "world size)\n", (long long)bs);
  return 0;
}

int cmd_keys(const std::vector<std::string>& a) {
  const Schema& schema = Schema::global();
  if (a.size() == 2) {
    std::cout << schema.describe();
    std::string models, sets;
    for (const std::string& m : registered_models()) models += (models.empty() ? "" : ", ") + m;
    for (const std::string& d : registered_datasets()) sets += (sets.empty() ? "" : ", ") + d;
    std::cout << "\nmodels (patchwork keys --model NAME): " << models << "\n"
              << "data sets (patchwork keys --data NAME): " << sets << "\n";
    return 0;
  }
  PW_CHECK(a.size() == 4 && (a[2] == "--model" || a[2] == "--data"),
           "keys takes nothing, --model NAME or --data NAME\n", kUsage);
  const std::string& name = a[3];
  if (a[2] == "--model") {
    std::cout << schema.describe_variant("model", name);
    return 0;
  }
  std::cout << schema.describe_variant("data", name);
  const DatasetSpec* d = find_dataset(name);
  auto list = [](const std::vector<float>& v) {
    std::string s;
    char buf[32];
    for (float x : v) {
      std::snprintf(buf, sizeof buf, "%g", (double)x);
      s += (s.empty() ? "" : ", ") + std::string(buf);
    }
    return "[" + s + "]";
  };
  std::string aka;
  for (const std::string& al : d->aliases) aka += (aka.empty() ? "" : ", ") + al;
  if (!aka.empty()) std::cout << "also named: " << aka << "\n";
  std::cout << "default data.root: " << (d->default_root.empty() ? "none" : d->default_root) << "\n";
  std::cout << "images: " << (d->channels ? std::to_string(d->channels) : std::string("?")) << " channel"
            << (d->channels == 1 ? "" : "s") << ", "
            << (d->num_classes ? std::to_string(d->num_classes) + " classes" : std::string("one class per folder"))
            << "\n";
  if (!d->norm.mean.empty())
    std::cout << "data.normalize: mean " << list(d->norm.mean) << ", std " << list(d->norm.std) << "\n";
  return 0;
}

std::string user_message(const std::string& what);

// Opens both splits and decodes every sample once: one line per bad file, a
// summary per split. 0 when all is readable, 1 otherwise.
int cmd_data_check(const Args& a) {
  Config cfg = load_config(a);
  const int threads = (int)cfg.get_int("train.threads");
  int64_t total_bad = 0;
  for (bool train : {true, false}) {
    const char* split = train ? "train" : "test";
    std::shared_ptr<Dataset> ds;
    try {
      ds = open_split(cfg, train);
    } catch (const Error& e) {
      std::cout << split << " split: cannot open: " << user_message(e.what()) << "\n";
      ++total_bad;
      continue;
    }
    std::vector<BadSample> bad = check_dataset(*ds, threads);
    for (const BadSample& b : bad) std::cout << b.path << ": " << user_message(b.reason) << "\n";
    std::cout << split << " split (" << ds->name() << "): " << ds->size() << " samples checked, " << bad.size()
              << " unreadable\n";
    total_bad += (int64_t)bad.size();
  }
  if (total_bad > 0) std::cout << "fix or delete the files above, or set data.skip_bad_files: true to train past them\n";
  std::cout << std::flush;
  return total_bad > 0 ? 1 : 0;
}

// PW_CHECK prefixes "source.cpp:123: " for developers; a user needs only the sentence.
std::string user_message(const std::string& what) {
  std::smatch m;
  static const std::regex prefix(R"(^[^ :]+\.(cpp|h|cu|cuh):[0-9]+: )");
  return std::regex_search(what, m, prefix) ? what.substr(m.length()) : what;
}

}  // namespace

int run_cli(const std::vector<std::string>& args) {
  try {
    std::string cmd = args.size() > 1 ? args[1] : "help";
    if (cmd == "help" || cmd == "--help" || cmd == "-h") {
      std::cout << kUsage;
      return 0;
    }
    if (cmd == "train") return cmd_train(parse(args, 2));
    if (cmd == "eval") return cmd_eval(parse(args, 2));
    if (cmd == "info") return cmd_info(parse(args, 2));
    if (cmd == "keys") return cmd_keys(args);
    if (cmd == "data") {
      PW_CHECK(args.size() > 2 && args[2] == "check", "data: the subcommand is check (patchwork data check CONFIG)\n",
               kUsage);
      return cmd_data_check(parse(args, 3));
    }
    if (cmd == "bench") {
      std::string what = args.size() > 2 ? args[2] : "";
      if (what == "train") return cmd_bench_train(args);
      if (what == "attention") return cmd_bench_attention(args);
      if (what == "gemm") {
        bench_gemm(std::cout);
        return 0;
      }
      std::cerr << "patchwork: unknown benchmark '" << what << "' (available: gemm, train, attention)\n";
      return 2;
    }
    std::cerr << "patchwork: unknown command '" << cmd << "'\n" << kUsage;
    return 2;
  } catch (const Error& e) {
    std::cerr << "patchwork: error: " << user_message(e.what()) << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "patchwork: error: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace pw
