#include "trainers/checkpoint.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "io/atomic_file.h"
#include "io/safetensors.h"

namespace fs = std::filesystem;

namespace pw {

namespace {
const char* kStateFormat = "patchwork-train-state-1";

std::string step_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step_%08lld", (long long)step);
  return buf;
}
std::vector<std::pair<std::string, Tensor>> with_prefix(const std::string& p,
                                                        const std::vector<std::pair<std::string, Tensor>>& v) {
  std::vector<std::pair<std::string, Tensor>> out;
  for (auto& [n, t] : v) out.emplace_back(p + n, t);
  return out;
}
// Checkpoints hold host copies: a CUDA model's tensors are copied to the cpu
// (load_state_dict / load_state copy them back onto the model's device).
std::vector<std::pair<std::string, Tensor>> on_host(std::vector<std::pair<std::string, Tensor>> v) {
  for (auto& nt : v)
    if (nt.second.defined() && nt.second.device() != Device::CPU) nt.second = nt.second.detach().cpu();
  return v;
}
const std::string& meta(const SafetensorsFile& f, const std::string& key) {
  auto it = f.metadata.find(key);
  PW_CHECK(it != f.metadata.end(), f.path, ": training state has no '", key,
           "' entry; the file is not a patchwork checkpoint or is from an incompatible version");
  return it->second;
}
int64_t meta_int(const SafetensorsFile& f, const std::string& key) {
  const std::string& s = meta(f, key);
  try {
    size_t used = 0;
    long long v = std::stoll(s, &used);
    PW_CHECK(used == s.size(), "");
    return v;
  } catch (...) {
    PW_FAIL(f.path, ": training-state entry '", key, "' is '", s, "', not an integer; the checkpoint is corrupted");
  }
}
uint64_t meta_u64(const SafetensorsFile& f, const std::string& key) {
  const std::string& s = meta(f, key);
  try {
    size_t used = 0;
    unsigned long long v = std::stoull(s, &used);
    PW_CHECK(used == s.size(), "");
    return v;
  } catch (...) {
    PW_FAIL(f.path, ": training-state entry '", key, "' is '", s, "', not an integer; the checkpoint is corrupted");
  }
}
}  // namespace

std::string save_checkpoint(const std::string& run_dir, const Module& model, const Optimizer& opt, const Ema* ema,
                            const TrainState& st, int keep) {
  fs::path root = fs::path(run_dir) / "checkpoints";
  fs::create_directories(root);
  std::string name = step_name(st.step);
  fs::path tmp = root / (name + ".tmp"), dst = root / name;
  fs::remove_all(tmp);
  fs::create_directories(tmp);

  save_safetensors((tmp / "model.safetensors").string(), on_host(model.state_dict()),
                   {{"format", "pt"}, {"patchwork_step", std::to_string(st.step)}});
  auto tensors = with_prefix("optimizer.", on_host(opt.state()));
  if (ema) {
    auto e = with_prefix("ema.", on_host(ema->shadow));
    tensors.insert(tensors.end(), e.begin(), e.end());
  }
  std::map<std::string, std::string> md = {
      {"format", kStateFormat},
      {"step", std::to_string(st.step)},
      {"epoch", std::to_string(st.epoch)},
      {"batch", std::to_string(st.batch)},
      {"rng_seed", std::to_string(st.rng.seed)},
      {"rng_offset", std::to_string(st.rng.offset)},
      {"config_hash", std::to_string(st.config_hash)},
      {"config", st.config_yaml},
      {"ema", ema ? "1" : "0"},
      {"world_size", std::to_string(st.world_size)},
  };
  if (!st.rank_rngs.empty()) {
    std::string r;
    for (const Generator& g : st.rank_rngs) r += (r.empty() ? "" : ";") + std::to_string(g.seed) + ":" + std::to_string(g.offset);
    md["rank_rngs"] = r;
  }
  save_safetensors((tmp / "state.safetensors").string(), tensors, md);

  // Rewriting a step that exists (a data-parallel resume with another world size
  // renumbers the steps): the old folder is moved aside, not deleted, until the new one
  // is in place, and latest_checkpoint() falls back to it, so no moment lacks a whole one.
  const fs::path aside = root / (name + ".old");
  fs::remove_all(aside);
  if (fs::exists(dst)) fs::rename(dst, aside);
  fs::rename(tmp, dst);
  write_file_atomic((root / "latest").string(), name + "\n");
  fs::remove_all(aside);

  // Keep the newest `keep` checkpoints (the one just written included).
  std::vector<std::string> steps;
  for (auto& e : fs::directory_iterator(root)) {
    std::string n = e.path().filename().string();
    if (e.is_directory() && n.rfind("step_", 0) == 0 && n.find('.') == std::string::npos) steps.push_back(n);
  }
  std::sort(steps.begin(), steps.end());
  for (size_t i = 0; i + keep < steps.size(); ++i)
    if (steps[i] != name) fs::remove_all(root / steps[i]);
  return dst.string();
}

std::string latest_checkpoint(const std::string& run_dir) {
  fs::path latest = fs::path(run_dir) / "checkpoints" / "latest";
  if (!fs::exists(latest)) return "";
  std::string name = read_file(latest.string());
  while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.pop_back();
  fs::path dir = fs::path(run_dir) / "checkpoints" / name;
  if (!name.empty() && !fs::exists(dir) && fs::is_directory(dir.string() + ".old")) dir = dir.string() + ".old";
  PW_CHECK(!name.empty() && name.find('/') == std::string::npos && fs::is_directory(dir), latest.string(),
           ": names checkpoint '", name, "', which does not exist; delete the file to start over or restore the folder");
  return dir.string();
}

LoadedCheckpoint load_checkpoint(const std::string& path) {
  LoadedCheckpoint ck;
  PW_CHECK(fs::exists(path), "checkpoint '", path, "' does not exist; pass a run folder, a checkpoint folder or a ",
           "model.safetensors file");
  fs::path model_file;
  if (fs::is_directory(path)) {
    std::string dir = path;
    if (fs::exists(fs::path(path) / "checkpoints")) {
      dir = latest_checkpoint(path);
      PW_CHECK(!dir.empty(), path, ": this run folder has no checkpoint yet (checkpoints/latest is missing)");
    }
    ck.dir = dir;
    model_file = fs::path(dir) / "model.safetensors";
    PW_CHECK(fs::exists(model_file), dir, ": no model.safetensors in this checkpoint folder");
  } else {
    model_file = path;
  }
  SafetensorsFile m = load_safetensors(model_file.string());
  ck.model = m.tensors;

  fs::path state_file = model_file.parent_path() / "state.safetensors";
  if (ck.dir.empty() || !fs::exists(state_file)) return ck;
  SafetensorsFile s = load_safetensors(state_file.string());
  PW_CHECK(meta(s, "format") == kStateFormat, state_file.string(), ": training-state format '", meta(s, "format"),
           "', expected '", kStateFormat, "'");
  ck.has_state = true;
  ck.state.step = meta_int(s, "step");
  ck.state.epoch = meta_int(s, "epoch");
  ck.state.batch = meta_int(s, "batch");
  ck.state.rng.seed = meta_u64(s, "rng_seed");
  ck.state.rng.offset = meta_u64(s, "rng_offset");
  ck.state.config_hash = meta_u64(s, "config_hash");
  ck.state.config_yaml = meta(s, "config");
  // Checkpoints from before data-parallel training: one process.
  ck.state.world_size = s.metadata.count("world_size") ? meta_int(s, "world_size") : 1;
  if (s.metadata.count("rank_rngs")) {
    std::string v = meta(s, "rank_rngs");
    size_t at = 0;
    while (at <= v.size()) {
      size_t end = v.find(';', at);
      if (end == std::string::npos) end = v.size();
      std::string item = v.substr(at, end - at);
      unsigned long long seed = 0, offset = 0;
      char tail = 0;
      PW_CHECK(std::sscanf(item.c_str(), "%llu:%llu%c", &seed, &offset, &tail) == 2, state_file.string(),
               ": training-state entry 'rank_rngs' has '", item, "', not SEED:OFFSET; the checkpoint is corrupted");
      Generator g(seed);
      g.offset = offset;
      ck.state.rank_rngs.push_back(g);
      at = end + 1;
    }
    PW_CHECK((int64_t)ck.state.rank_rngs.size() == ck.state.world_size, state_file.string(), ": holds ",
             ck.state.rank_rngs.size(), " ranks' RNG states for a world of ", ck.state.world_size,
             "; the checkpoint is corrupted");
  }
  auto it = m.metadata.find("patchwork_step");
  PW_CHECK(it != m.metadata.end() && it->second == std::to_string(ck.state.step), model_file.string(),
           ": weights are from a different step than ", state_file.string(), "; the checkpoint folder was mixed up");
  for (auto& [n, t] : s.tensors) {
    if (n.rfind("optimizer.", 0) == 0) ck.optimizer.emplace_back(n.substr(10), t);
    else if (n.rfind("ema.", 0) == 0) ck.ema.emplace_back(n.substr(4), t);
  }
  return ck;
}

}  // namespace pw
