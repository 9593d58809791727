// Config: schema validation, error messages (exact text: they are the user
// interface), --set overrides, the resolved-YAML round trip, identity hashes
// and diffs, schema extension, and the keys models and data sets own.
#include <algorithm>
#include <doctest/doctest.h>

#include <cstdio>
#include <iostream>
#include <sstream>
#include <fstream>
#include <string>

#include "nn/registry.h"
#include "runtime/check.h"
#include "trainers/cli.h"
#include "trainers/config.h"

using namespace pw;

namespace {

// Parses YAML text as if it were the file configs/x.yaml.
Config parse(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  return Config::parse(yaml, "configs/x.yaml", overrides);
}

// The message parse() throws, or "" if it doesn't.
std::string error_of(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  try {
    parse(yaml, overrides);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::string set_error(const std::string& assignment) {
  Config c = Config::defaults();
  try {
    c.set(assignment);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

void extra_keys(Schema& s) {
  s.add("model", "test_window", KeySpec::Int(7, "a key registered from outside the core schema").ge(1));
}
// Registered at static-initialisation time, like a trainer's own keys.
ConfigKeys register_extra(extra_keys);

// A model with list keys, registered from this file as a model file would:
// a Swin-like hierarchy (per-stage depths, ratios and attention kinds).
struct StagesOptions {
  std::vector<int64_t> depths = {2, 2, 6, 2};
  std::vector<double> mlp_ratios = {4.0, 4.0, 4.0, 4.0};
  std::vector<std::string> kinds = {"window", "window", "global", "global"};
  int64_t window = 7;
  double drop_path = 0.1;
  bool shift = true;
  std::string norm = "layer";
  void bind(KeyBinder& b) {
    b("depths", depths, KeySpec::Ints("blocks per stage").ge(1));
    b("mlp_ratios", mlp_ratios, KeySpec::Floats("MLP width / dim per stage").gt(0));
    b("window", window, KeySpec::Int("attention window").ge(1).le(64));
    b("drop_path", drop_path, KeySpec::Float("stochastic depth rate").ge(0).lt(1));
    b("shift", shift, KeySpec::Bool("shifted windows in every other block"));
    b("norm", norm, KeySpec::Enum({"layer", "batch"}, "normalisation layer"));
  }
};
std::vector<StagesOptions> built;  // what the factory was given
PW_REGISTER_MODEL({"test_stages", "a hierarchical test model with per-stage list keys",
                   [](KeySet& k) {
                     KeyBinder b(k, "model");
                     StagesOptions{}.bind(b);
                     k.add("stage_kinds", KeySpec::String("window,window,global,global", "attention kind per stage"),
                           "model");
                     k.add_check([](const Options& m) {
                       if (m.get_ints("depths").size() != m.get_floats("mlp_ratios").size())
                         m.fail("mlp_ratios", "has " + std::to_string(m.get_floats("mlp_ratios").size()) +
                                                  " stages but model.depths has " +
                                                  std::to_string(m.get_ints("depths").size()));
                     });
                   },
                   [](const Options& m) -> std::shared_ptr<Module> {
                     StagesOptions o;
                     KeyBinder r(m);
                     o.bind(r);
                     built.push_back(o);
                     return std::make_shared<Module>();
                   }});

// What `patchwork ARGS...` prints to stdout, and its exit code.
std::pair<int, std::string> cli(std::vector<std::string> args) {
  args.insert(args.begin(), "patchwork");
  std::ostringstream out;
  std::streambuf* old = std::cout.rdbuf(out.rdbuf());
  int rc = run_cli(args);
  std::cout.rdbuf(old);
  return {rc, out.str()};
}

}  // namespace

TEST_CASE("defaults fill every key with its declared type") {
  Config c = Config::defaults();
  CHECK(c.get_string("model.type") == "vit");
  CHECK(c.get_int("model.depth") == 6);
  CHECK(c.get_float("train.lr") == doctest::Approx(1e-3));
  CHECK(c.get_float("model.depth") == 6.0);  // integers widen
  CHECK(c.get_bool("model.qkv_bias"));  // ViT's own defaults: model.type is vit
  CHECK(c.get_string("model.pool") == "cls");
  CHECK(c.get_floats("train.betas") == std::vector<double>{0.9, 0.999});
  CHECK(c.origin("model.depth") == "");
  for (const char* sec : {"model", "data", "train", "eval"}) CHECK(c.schema().has_section(sec));
  CHECK(c.get_int("model.test_window") == 7);  // the static registrar ran
}

TEST_CASE("a file sets values and remembers their lines") {
  Config c = parse(
      "model:\n"
      "  depth: 8\n"
      "  pool: mean\n"
      "train:\n"
      "  lr: 5.0e-4\n"
      "  betas: [0.9, 0.95]\n"
      "  nesterov: yes\n"
      "data:\n"
      "  root: /data/fmnist\n"
      "eval:\n");
  CHECK(c.get_int("model.depth") == 8);
  CHECK(c.get_string("model.pool") == "mean");
  CHECK(c.get_float("train.lr") == 5e-4);
  CHECK(c.get_floats("train.betas") == std::vector<double>{0.9, 0.95});
  CHECK(c.get_bool("train.nesterov"));
  CHECK(c.get_string("data.root") == "/data/fmnist");
  CHECK(c.get_int("model.heads") == 3);  // untouched: default
  CHECK(c.origin("model.depth") == "configs/x.yaml:2");
  CHECK(c.origin("train.lr") == "configs/x.yaml:5");
  CHECK(parse("").get_int("model.depth") == 6);  // an empty file is all defaults
}

TEST_CASE("unknown keys and sections name the line and suggest the closest name") {
  CHECK(error_of("model:\n  depth: 4\n  dpeth: 6\n") ==
        "configs/x.yaml:3: unknown key 'model.dpeth' for model 'vit'; did you mean 'model.depth'?");
  CHECK(error_of("train:\n  lr: 0.1\n  wieght_decay: 0.1\n") ==
        "configs/x.yaml:3: unknown key 'train.wieght_decay'; did you mean 'train.weight_decay'?");
  // The right key in the wrong section.
  CHECK(error_of("train:\n  dropout: 0.1\n") == "configs/x.yaml:2: unknown key 'train.dropout'; did you mean 'model.dropout'?");
  // Nothing close: list what the section has.
  std::string e = error_of("eval:\n  frobnicate: 1\n");
  CHECK(e == "configs/x.yaml:2: unknown key 'eval.frobnicate'; section 'eval' has batch_size, hflip_tta");
  CHECK(error_of("modle:\n  depth: 4\n") == "configs/x.yaml:1: unknown section 'modle'; did you mean 'model'?");
  CHECK(error_of("model:\n  depth: 4\noptimizer:\n  lr: 1\n") ==
        "configs/x.yaml:3: unknown section 'optimizer'; the sections are model, data, train, eval, dist");
}

TEST_CASE("wrong types and out-of-range values say what is allowed") {
  CHECK(error_of("train:\n  lr: fast\n") == "configs/x.yaml:2: train.lr: expected a float > 0, got 'fast'");
  CHECK(error_of("train:\n  lr: 0\n") == "configs/x.yaml:2: train.lr: expected a float > 0, got '0'");
  CHECK(error_of("train:\n  lr: .inf\n") == "configs/x.yaml:2: train.lr: expected a float > 0, got '.inf'");
  CHECK(error_of("model:\n  depth: 6.5\n") == "configs/x.yaml:2: model.depth: expected an integer >= 1, got '6.5'");
  CHECK(error_of("model:\n  depth: 0\n") == "configs/x.yaml:2: model.depth: expected an integer >= 1, got '0'");
  CHECK(error_of("model:\n  dropout: 1\n") == "configs/x.yaml:2: model.dropout: expected a float in [0, 1), got '1'");
  CHECK(error_of("data:\n  randaugment_m: 31\n") ==
        "configs/x.yaml:2: data.randaugment_m: expected an integer in [0, 30], got '31'");
  CHECK(error_of("model:\n  pool: max\n") == "configs/x.yaml:2: model.pool: expected one of cls|mean, got 'max'");
  CHECK(error_of("model:\n  pool: men\n") ==
        "configs/x.yaml:2: model.pool: expected one of cls|mean, got 'men'; did you mean 'mean'?");
  CHECK(error_of("data:\n  dataset: cifar\n") ==
        "configs/x.yaml:2: data.dataset: expected one of audio_ctc|audio_folder|cifar10|cifar100|fashion_mnist|image_folder|mnist, got "
        "'cifar'; did you mean 'cifar10'?");
  CHECK(error_of("data:\n  hflip: maybe\n") == "configs/x.yaml:2: data.hflip: expected true or false, got 'maybe'");
  CHECK_FALSE(Config::parse("model:\n  qkv_bias: false\n", "x.yaml").get_bool("model.qkv_bias"));
  CHECK(error_of("model:\n  qkv_bias: auto\n") == "configs/x.yaml:2: model.qkv_bias: expected true or false, got 'auto'");
  CHECK(error_of("train:\n  betas: [0.9]\n") ==
        "configs/x.yaml:2: train.betas: expected a list of 2 floats in [0, 1), got [0.9]");
  CHECK(error_of("train:\n  betas: [0.9, 1.5]\n") ==
        "configs/x.yaml:2: train.betas: expected a list of 2 floats in [0, 1), got [0.9, 1.5]");
  CHECK(error_of("train:\n  betas: 0.9\n") ==
        "configs/x.yaml:2: train.betas: expected a list of 2 floats in [0, 1), got '0.9'");
  CHECK(error_of("train:\n  betas: [0.9, [1]]\n") ==
        "configs/x.yaml:2: train.betas: expected a list of 2 floats in [0, 1), got [0.9, [1]]");
  CHECK(error_of("model:\n  depth: {a: 1}\n") == "configs/x.yaml:2: model.depth: expected an integer >= 1, got a mapping");
  CHECK(error_of("model:\n  depth:\n") == "configs/x.yaml:2: model.depth: expected an integer >= 1, got nothing");
  CHECK(error_of("model:\n  depth: 99999999999999999999\n") ==
        "configs/x.yaml:2: model.depth: expected an integer >= 1, got '99999999999999999999'");
  // Values on a later line than their key are reported where they are.
  CHECK(error_of("train:\n  betas:\n    - 0.9\n    - 2\n") ==
        "configs/x.yaml:3: train.betas: expected a list of 2 floats in [0, 1), got [0.9, 2]");
}

TEST_CASE("malformed files") {
  CHECK(error_of("model:\n  depth: 4\n  depth: 5\n") ==
        "configs/x.yaml:3: key 'model.depth' is set twice (first on line 2)");
  CHECK(error_of("model:\n  depth: 4\ntrain:\n  lr: 0.1\nmodel:\n  heads: 2\n") ==
        "configs/x.yaml:5: section 'model' appears twice (first on line 1)");
  CHECK(error_of("- model\n- train\n") ==
        "configs/x.yaml:1: expected a mapping of sections (model:, data:, train:, eval:, dist:), got [model, train]");
  CHECK(error_of("model: 6\n") == "configs/x.yaml:1: section 'model' must be a mapping of keys, got '6'");
  std::string e = error_of("model:\n  depth: [4\n  heads: 2\n");
  CHECK(e.rfind("configs/x.yaml:", 0) == 0);
  CHECK(e.find("not valid YAML") != std::string::npos);
  CHECK_THROWS_WITH_AS(Config::load("no/such/config.yaml"),
                       "config: cannot open 'no/such/config.yaml': No such file or directory", Error);
}

TEST_CASE("Config::load reads a file and names it in errors") {
  const char* path = "test_config_load.yaml";
  {
    std::ofstream f(path);
    f << "# a comment line\nmodel:\n  depth: 3\n  heads: 2\ntrain:\n  lr: fast\n";
  }
  // The file is checked before overrides apply: --set can't mask a bad file.
  CHECK_THROWS_WITH_AS(Config::load(path, {"train.lr=0.01"}),
                       "test_config_load.yaml:6: train.lr: expected a float > 0, got 'fast'", Error);
  {
    std::ofstream f(path);
    f << "# a comment line\nmodel:\n  depth: 3\n  heads: 2\ntrain:\n  lr: 0.5\n";
  }
  Config c = Config::load(path, {"train.lr=0.01"});
  CHECK(c.get_int("model.depth") == 3);
  CHECK(c.get_float("train.lr") == 0.01);
  CHECK(c.origin("model.heads") == "test_config_load.yaml:4");
  CHECK(c.source() == "test_config_load.yaml");
  std::remove(path);
}

TEST_CASE("--set overrides are validated the same way") {
  Config c = parse("model:\n  depth: 4\n", {"model.depth=8", "train.betas=[0.8, 0.9]", "data.root=/tmp/my data",
                                            "train.nesterov=true", "model.pool=mean"});
  CHECK(c.get_int("model.depth") == 8);
  CHECK(c.get_floats("train.betas") == std::vector<double>{0.8, 0.9});
  CHECK(c.get_string("data.root") == "/tmp/my data");
  CHECK(c.get_bool("train.nesterov"));
  CHECK(c.origin("model.depth") == "--set model.depth=8");
  CHECK(Config::defaults().get_string("data.root") == "");
  c.set("data.root=");  // empty means "", the default location
  CHECK(c.get_string("data.root") == "");

  CHECK(set_error("train.lr=fast") == "--set train.lr=fast: train.lr: expected a float > 0, got 'fast'");
  CHECK(set_error("train.lr=-1") == "--set train.lr=-1: train.lr: expected a float > 0, got '-1'");
  CHECK(set_error("model.dpeth=6") ==
        "--set model.dpeth=6: unknown key 'model.dpeth' for model 'vit'; did you mean 'model.depth'?");
  CHECK(set_error("modl.depth=6") == "--set modl.depth=6: unknown section 'modl'; did you mean 'model'?");
  CHECK(set_error("train.lr") == "--set train.lr: expected section.key=value, e.g. --set train.lr=0.001");
  CHECK(set_error("lr=0.1") == "--set lr=0.1: expected section.key=value; did you mean 'train.lr'?");
  CHECK(set_error("train.betas=[0.9") ==
        "--set train.betas=[0.9: train.betas: the value is not valid YAML (end of sequence flow not found)");
  CHECK(set_error("train.betas=0.9,0.99") ==
        "--set train.betas=0.9,0.99: train.betas: expected a list of 2 floats in [0, 1), got '0.9,0.99'");
  CHECK(set_error("model.pool=avg") == "--set model.pool=avg: model.pool: expected one of cls|mean, got 'avg'");
  // Errors from a load's override list carry the same text.
  CHECK(error_of("", {"train.lr=fast"}) == "--set train.lr=fast: train.lr: expected a float > 0, got 'fast'");
}

TEST_CASE("cross-key checks name where the offending value came from") {
  CHECK(error_of("model:\n  image_size: 32\n  patch_size: 5\n") ==
        "configs/x.yaml:3: model.patch_size: 5 does not divide model.image_size 32; pick a divisor of it");
  CHECK(error_of("", {"model.patch_size=3"}) ==
        "--set model.patch_size=3: model.patch_size: 3 does not divide model.image_size 28; pick a divisor of it");
  // The offending key is a default: the file is named.
  CHECK(error_of("train:\n  lr: 1.0e-6\n") ==
        "configs/x.yaml: train.min_lr: the schedule's floor 1.0e-05 is above train.lr 1.0e-06; lower train.min_lr");
  CHECK(error_of("data:\n  resize: 32\n  crop_size: 40\n") ==
        "configs/x.yaml:3: data.crop_size: 40 is larger than data.resize 32; a crop must fit inside the resized image");
  Config c = Config::defaults();
  c.set("model.patch_size=5");  // set() alone doesn't run cross-key checks...
  CHECK_THROWS_AS(c.validate(), Error);  // ...validate() does
}

TEST_CASE("typed access checks the key and its type") {
  Config c = Config::defaults();
  CHECK_THROWS_WITH_AS(c.get_int("model.dpth"), "config: get_int(\"model.dpth\"): no such key; did you mean 'model.depth'?",
                       Error);
  CHECK_THROWS_WITH_AS(c.get_int("model.dropout"), "config: get_int(\"model.dropout\"): model.dropout is a float key", Error);
  CHECK_THROWS_WITH_AS(c.get_bool("model.depth"), "config: get_bool(\"model.depth\"): model.depth is an integer key", Error);
  CHECK_THROWS_WITH_AS(c.get_floats("train.lr"), "config: get_floats(\"train.lr\"): train.lr is a float key", Error);
  CHECK_THROWS_AS(c.get_string("train.betas"), Error);
  CHECK_THROWS_AS(c.get_ints("train.betas"), Error);
  CHECK(c.has("train.lr"));
  CHECK_FALSE(c.has("train.learning_rate"));
}

TEST_CASE("the resolved YAML reads back to the same config") {
  Config c = parse("model:\n  type: simple_vit\n  depth: 9\n  pool: cls\ndata:\n  dataset: image_folder\n",
                   {"train.lr=0.00030000000000000003", "train.min_lr=3e-300", "train.betas=[0.5, 0.98765432101234]",
                    "data.root=C:\\data \"quoted\" # not a comment", "data.train_split=yes",
                    "data.test_split=caf\xc3\xa9/tab\there", "train.warmup_epochs=2", "model.dropout=0.1"});
  std::string yaml = c.to_yaml();
  Config back = Config::parse(yaml, "run/config.yaml");
  CHECK(back.canonical(back.schema().sections(), true) == c.canonical(c.schema().sections(), true));
  CHECK(back.to_yaml() == yaml);
  CHECK(back.get_string("data.root") == "C:\\data \"quoted\" # not a comment");
  CHECK(back.get_string("model.type") == "simple_vit");
  CHECK(back.get_string("model.pool") == "cls");  // set, against SimpleViT's default
  CHECK_FALSE(back.get_bool("model.qkv_bias"));   // SimpleViT's default
  CHECK(back.get_string("data.train_split") == "yes");
  Config number = parse("", {"data.root=1.5"});  // a string that reads as a number stays a string
  CHECK(Config::parse(number.to_yaml(), "r").get_string("data.root") == "1.5");
  CHECK(back.get_string("data.test_split") == "caf\xc3\xa9/tab\there");
  CHECK(back.get_float("train.lr") == 0.00030000000000000003);
  CHECK(back.get_float("train.min_lr") == 3e-300);
  // Floats always carry a '.', so other YAML readers see floats too.
  CHECK(yaml.find("  warmup_epochs: 2.0 ") != std::string::npos);
  CHECK(yaml.find("  min_lr: 3.0e-300 ") != std::string::npos);
  CHECK(yaml.find("  depth: 9 ") != std::string::npos);
  CHECK(yaml.find("# number of transformer blocks\n") != std::string::npos);
  CHECK(Config::parse(Config::defaults().to_yaml(), "d").canonical({"model", "data", "train", "eval"}, true) ==
        Config::defaults().canonical({"model", "data", "train", "eval"}, true));
}

TEST_CASE("identity hash covers model and data, not runtime knobs or training") {
  CHECK(fnv1a64("") == 0xcbf29ce484222325ull);  // FNV-1a reference vectors
  CHECK(fnv1a64("a") == 0xaf63dc4c8601ec8cull);
  CHECK(fnv1a64("foobar") == 0x85944171f73967e8ull);

  Config base = Config::defaults();
  uint64_t h = base.hash();
  CHECK(h == fnv1a64(base.canonical({"model", "data"})));
  CHECK(base.canonical({"model"}).rfind("model.attention: softmax\nmodel.attn_dropout: 0.0\nmodel.channels: 1\n", 0) == 0);
  CHECK(parse("", {"train.lr=0.1", "data.num_workers=7", "data.root=/elsewhere", "train.device=cpu"}).hash() == h);
  CHECK(parse("", {"model.depth=8"}).hash() != h);
  CHECK(parse("", {"data.hflip=true"}).hash() != h);
  CHECK(parse("", {"train.lr=0.1"}).hash({"model", "data", "train"}) != base.hash({"model", "data", "train"}));

  Config ckpt = parse("", {"model.depth=6", "model.pool=mean", "data.num_workers=9"});
  Config now = parse("", {"model.depth=8", "model.pool=mean", "train.lr=0.5"});
  CHECK(config_diff(ckpt, now) == std::vector<std::string>{"model.depth: 6 in the checkpoint, 8 in the config"});
  CHECK(config_diff(ckpt, ckpt).empty());
  CHECK(config_diff(ckpt, now, {"model", "train"}, "A", "B") ==
        std::vector<std::string>{"model.depth: 6 in A, 8 in B", "train.lr: 0.001 in A, 0.5 in B"});
  CHECK_THROWS_AS(base.canonical({"modle"}), Error);
}

TEST_CASE("schemas extend without a central list") {
  Schema s = Schema::global();
  s.add("model", "window_size", KeySpec::Int(7, "Swin attention window").ge(1));
  s.add("swin", "shift", KeySpec::Bool(true, "shifted windows in every other block"));
  Config c = Config::parse("model:\n  window_size: 4\nswin:\n  shift: false\n", "configs/swin.yaml", {}, s);
  CHECK(c.get_int("model.window_size") == 4);
  CHECK_FALSE(c.get_bool("swin.shift"));
  CHECK_THROWS_WITH_AS(Config::parse("model:\n  window_sise: 4\n", "configs/swin.yaml", {}, s),
                       "configs/swin.yaml:2: unknown key 'model.window_sise' for model 'vit'; did you mean "
                       "'model.window_size'?",
                       Error);
  // The global schema doesn't know window_size: a different model identity.
  Config plain = Config::defaults();
  CHECK(plain.hash() != c.hash());
  CHECK(config_diff(plain, Config::defaults(s), {"model"}) ==
        std::vector<std::string>{"model.window_size: absent in the checkpoint, 7 in the config"});
  // A Config keeps the schema it was loaded with.
  Config after = Config::parse(c.to_yaml(), "run/config.yaml", {}, c.schema());
  CHECK(after.get_int("model.window_size") == 4);

  CHECK_THROWS_WITH_AS(s.add("model", "image_size", KeySpec::Int(1, "again")), doctest::Contains("declared twice"),
                       Error);
  CHECK_THROWS_WITH_AS(s.add("model", "bad", KeySpec::Float(2.0, "out of its range").lt(1)),
                       doctest::Contains("default 2.0 is not a float < 1"), Error);
  CHECK_THROWS_WITH_AS(s.add("model", "Bad.Name", KeySpec::Int(1, "x")), doctest::Contains("lower-case"), Error);
  CHECK_THROWS_WITH_AS(s.add("model", "nodoc", KeySpec::Int(1, "")), doctest::Contains("one-line doc"), Error);
  CHECK_THROWS_AS(s.add("model", "bad_enum", KeySpec::Enum("c", {"a", "b"}, "default not a choice")), Error);
  CHECK(s.describe().find("model.image_size: an integer >= 1, default 28. input height and width in pixels\n") !=
        std::string::npos);
  CHECK(s.describe_variant("model", "vit").find("model.depth: an integer >= 1, default 6. number of transformer "
                                                "blocks\n") != std::string::npos);
}

TEST_CASE("edit distance counts swaps as one edit") {
  CHECK(edit_distance("dpeth", "depth") == 1);
  CHECK(edit_distance("", "abc") == 3);
  CHECK(edit_distance("kitten", "sitting") == 3);
  CHECK(closest_match("LR", {"lr", "seed"}) == "lr");
  CHECK(closest_match("zzzzzz", {"lr", "seed"}) == "");
}

TEST_CASE("each model brings its own keys and defaults") {
  Config simple = parse("model:\n  type: simple_vit\n");
  Config vit = parse("model:\n  type: vit\n");
  // One key, two models, two defaults: no "auto" values left to resolve later.
  CHECK(simple.get_string("model.pool") == "mean");
  CHECK(vit.get_string("model.pool") == "cls");
  CHECK_FALSE(simple.get_bool("model.qkv_bias"));
  CHECK(vit.get_bool("model.qkv_bias"));
  CHECK(simple.get_string("model.patch_embed") == "linear");
  CHECK(vit.get_string("model.patch_embed") == "conv");
  CHECK(simple.get_string("model.pos_embed") == "sincos2d");
  CHECK(vit.get_string("model.pos_embed") == "learned");
  CHECK(simple.get_string("model.init") == "torch");
  CHECK(vit.get_string("model.init") == "timm");
  CHECK(simple.get_int("model.depth") == vit.get_int("model.depth"));  // shared defaults stay shared
  CHECK(simple.hash() != vit.hash());
  CHECK(config_diff(simple, vit, {"model"}, "A", "B") ==
        std::vector<std::string>{"model.init: torch in A, timm in B", "model.patch_embed: linear in A, conv in B",
                                 "model.pool: mean in A, cls in B", "model.pos_embed: sincos2d in A, learned in B",
                                 "model.qkv_bias: false in A, true in B", "model.type: simple_vit in A, vit in B"});
  // The resolved file names every value, so it means the same whatever the defaults become.
  CHECK(simple.to_yaml().find("  pool: mean ") != std::string::npos);
  CHECK(vit.to_yaml().find("  qkv_bias: true ") != std::string::npos);
  // The section a factory gets: core keys and the model's own, read by type.
  const Options& m = vit.section("model");
  CHECK(m.get_int("image_size") == 28);
  CHECK(m.get_int("dim") == 192);
  CHECK_THROWS_WITH_AS(m.get_int("dpth"), "config: get_int(\"model.dpth\"): no such key; did you mean 'model.depth'?",
                       Error);
}

// The registered models joined by sep (the list grows as model files are added).
static std::string models_joined(const std::string& sep) {
  std::string r;
  for (const std::string& m : registered_models()) r += (r.empty() ? "" : sep) + m;
  return r;
}

TEST_CASE("the model type is checked against the registry") {
  CHECK(error_of("model:\n  type: vitt\n") ==
        "configs/x.yaml:2: model.type: expected one of " + models_joined("|") + ", got 'vitt'; did you mean 'vit'?");
  CHECK(error_of("", {"model.type=vitt"}) ==
        "--set model.type=vitt: model.type: expected one of " + models_joined("|") + ", got 'vitt'; did you mean "
        "'vit'?");
  CHECK(error_of("data:\n  dataset: svhn\n") ==
        "configs/x.yaml:2: data.dataset: expected one of audio_ctc|audio_folder|cifar10|cifar100|fashion_mnist|image_folder|mnist, got "
        "'svhn'");
  // An alias names the same data set and brings its keys.
  CHECK(parse("data:\n  dataset: imagenet\n  train_split: /data/in1k/train\n").get_string("data.train_split") ==
        "/data/in1k/train");
}

TEST_CASE("a key the chosen model lacks names the key and the model") {
  // A typo: the suggestion comes from this model's keys.
  CHECK(error_of("model:\n  type: test_stages\n  dephts: [2, 2]\n") ==
        "configs/x.yaml:3: unknown key 'model.dephts' for model 'test_stages'; did you mean 'model.depths'?");
  // Another model's key: the message lists every registered model that has it.
  std::string with_heads;
  for (const std::string& m : registered_models()) {
    const std::vector<std::string> keys = model_keys(m)->names();
    if (std::find(keys.begin(), keys.end(), "heads") != keys.end()) with_heads += m + ", ";
  }
  CHECK(with_heads.find("vit, ") != std::string::npos);
  CHECK(error_of("model:\n  type: test_stages\n  heads: 4\n") ==
        "configs/x.yaml:3: unknown key 'model.heads' for model 'test_stages'; it is a key of model " + with_heads +
            "and model.type is 'test_stages'");
  CHECK(error_of("model:\n  type: vit\n  depths: [2, 2]\n") ==
        "configs/x.yaml:3: unknown key 'model.depths' for model 'vit'; did you mean 'model.depth'?");
  CHECK(error_of("model:\n  window: 4\n") ==
        "configs/x.yaml:2: unknown key 'model.window' for model 'vit'; it is a key of model test_stages, and "
        "model.type is 'vit'");
  // Nothing close anywhere: the model's keys are listed.
  CHECK(error_of("model:\n  type: test_stages\n  frobnicate: 1\n") ==
        "configs/x.yaml:3: unknown key 'model.frobnicate' for model 'test_stages'; model 'test_stages' has type, "
        "image_size, channels, num_classes, test_window, depths, mlp_ratios, window, drop_path, shift, norm, "
        "stage_kinds");
  // A data set's keys exist only for it.
  CHECK(error_of("data:\n  train_split: /x\n") ==
        "configs/x.yaml:2: unknown key 'data.train_split' for data set 'fashion_mnist'; it is a key of data set "
        "image_folder, and data.dataset is 'fashion_mnist'");
}

TEST_CASE("list keys: per-stage integers and floats, checked item by item") {
  built.clear();
  Config c = parse("model:\n  type: test_stages\n  depths: [2, 2, 18, 2]\n  mlp_ratios: [4, 4, 3.5, 4]\n");
  CHECK(c.get_ints("model.depths") == std::vector<int64_t>{2, 2, 18, 2});
  CHECK(c.get_floats("model.mlp_ratios") == std::vector<double>{4, 4, 3.5, 4});
  CHECK(c.get_int("model.window") == 7);  // the model's default
  CHECK(c.to_yaml().find("  depths: [2, 2, 18, 2] ") != std::string::npos);
  CHECK(Config::parse(c.to_yaml(), "run/config.yaml").canonical({"model"}) == c.canonical({"model"}));
  create_model(c.section("model"));
  REQUIRE(built.size() == 1);
  CHECK(built[0].depths == std::vector<int64_t>{2, 2, 18, 2});
  CHECK(built[0].mlp_ratios[2] == 3.5);
  CHECK(built[0].norm == "layer");
  CHECK(built[0].shift);

  CHECK(error_of("model:\n  type: test_stages\n  depths: [2, 0, 6, 2]\n  mlp_ratios: [4, 4, 4, 4]\n") ==
        "configs/x.yaml:3: model.depths: expected a list of integers >= 1, got [2, 0, 6, 2]");
  CHECK(error_of("model:\n  type: test_stages\n  depths: 2\n") ==
        "configs/x.yaml:3: model.depths: expected a list of integers >= 1, got '2'");
  CHECK(error_of("model:\n  type: test_stages\n  norm: group\n") ==
        "configs/x.yaml:3: model.norm: expected one of layer|batch, got 'group'");
  // The model's own cross-key check, against the line of the offending key.
  CHECK(error_of("model:\n  type: test_stages\n  depths: [2, 2, 6]\n") ==
        "configs/x.yaml: model.mlp_ratios: has 4 stages but model.depths has 3");
  CHECK(error_of("model:\n  type: test_stages\n  mlp_ratios: [4, 4]\n") ==
        "configs/x.yaml:3: model.mlp_ratios: has 2 stages but model.depths has 4");
  CHECK(error_of("model:\n  type: test_stages\n", {"model.depths=[1, 1]", "model.mlp_ratios=[2, 2]"}) == "");
}

TEST_CASE("overriding model.type swaps the model's keys and keeps what was set") {
  Config c = parse("model:\n  type: vit\n  depth: 3\n  image_size: 32\n", {"model.type=simple_vit"});
  CHECK(c.get_string("model.type") == "simple_vit");
  CHECK(c.get_int("model.depth") == 3);            // set in the file, SimpleViT has it too
  CHECK(c.get_int("model.image_size") == 32);      // a core key
  CHECK(c.get_string("model.pool") == "mean");     // SimpleViT's default, not ViT's
  CHECK(c.origin("model.depth") == "configs/x.yaml:3");
  CHECK(error_of("model:\n  type: vit\n  depth: 3\n", {"model.type=test_stages"}) ==
        "--set model.type=test_stages: model.depth (set at configs/x.yaml:3) is not a key of model 'test_stages'");
  Config d = Config::defaults();
  d.set("model.type=test_stages");
  d.set("model.depths=[1, 2]");
  d.set("model.mlp_ratios=[1, 2]");
  d.validate();
  CHECK(d.get_ints("model.depths") == std::vector<int64_t>{1, 2});
  CHECK_FALSE(d.has("model.depth"));
}

TEST_CASE("patchwork keys lists the core keys; --model and --data a model's or data set's own") {
  auto [rc, core] = cli({"keys"});
  CHECK(rc == 0);
  CHECK(core.find("model.type: one of " + models_joined("|") + ", default vit. model name in the model registry; "
                  "its own keys: patchwork keys --model NAME\n") != std::string::npos);
  CHECK(core.find("train.lr: a float > 0, default 0.001. peak learning rate, reached after warmup\n") !=
        std::string::npos);
  CHECK(core.find("model.depth") == std::string::npos);  // a model's key, not a core one
  CHECK(core.find("models (patchwork keys --model NAME): " + models_joined(", ") + "\n") != std::string::npos);

  auto [rc2, vit] = cli({"keys", "--model", "vit"});
  CHECK(rc2 == 0);
  CHECK(vit.rfind("model.type: vit - ViT (Dosovitskiy et al. 2021)", 0) == 0);
  CHECK(vit.find("model.depth: an integer >= 1, default 6. number of transformer blocks\n") != std::string::npos);
  CHECK(vit.find("model.pool: one of cls|mean, default cls. ") != std::string::npos);
  CHECK(vit.find("model.qkv_bias: true or false, default true. ") != std::string::npos);
  CHECK(vit.find("model.dropout: a float in [0, 1), default 0.0. ") != std::string::npos);
  auto [rc3, simple] = cli({"keys", "--model", "simple_vit"});
  CHECK(simple.find("model.pool: one of cls|mean, default mean. ") != std::string::npos);
  auto [rc4, stages] = cli({"keys", "--model", "test_stages"});
  CHECK(stages.find("model.depths: a list of integers >= 1, default [2, 2, 6, 2]. blocks per stage\n") !=
        std::string::npos);
  CHECK(stages.find("model.mlp_ratios: a list of floats > 0, default [4.0, 4.0, 4.0, 4.0]. ") != std::string::npos);

  auto [rc5, folder] = cli({"keys", "--data", "image_folder"});
  CHECK(rc5 == 0);
  CHECK(folder.find("data.train_split: a string, default \"\" (runtime). ") != std::string::npos);
  CHECK(folder.find("also named: imagenet\n") != std::string::npos);
  auto [rc6, fmnist] = cli({"keys", "--data", "fashion_mnist"});
  CHECK(fmnist.find("default data.root: /usr/share/datasets/fashion-mnist\n") != std::string::npos);
  CHECK(fmnist.find("images: 1 channel, 10 classes\n") != std::string::npos);

  CHECK(cli({"keys", "--model", "vitt"}).first == 1);  // "unknown model 'vitt'; did you mean 'vit'? ..."
  const std::string unknown = "unknown model 'vitt'; did you mean 'vit'? (the models are " + models_joined(", ") + ")";
  CHECK_THROWS_WITH_AS(Schema::global().describe_variant("model", "vitt"), doctest::Contains(unknown.c_str()),
                       Error);
}

TEST_CASE("KeyBinder declares from the struct and reads back into it") {
  KeySet keys;
  KeyBinder d(keys, "model");
  StagesOptions defaults;
  defaults.window = 5;
  defaults.bind(d);
  REQUIRE(keys.find("window"));
  CHECK(keys.find("window")->def.i == 5);
  CHECK(keys.find("norm")->type == ConfigType::Enum);
  CHECK(keys.find("depths")->def.is == std::vector<int64_t>{2, 2, 6, 2});
  Options o = Options::defaults("model", keys);
  StagesOptions back;
  KeyBinder r(o);
  back.bind(r);
  CHECK(back.window == 5);
  // A default outside its own range is caught when the model registers.
  StagesOptions bad;
  bad.window = 100;
  KeySet k2;
  KeyBinder d2(k2, "model");
  CHECK_THROWS_WITH_AS(bad.bind(d2), doctest::Contains("'model.window': default 100 is not an integer in [1, 64]"),
                       Error);
}
