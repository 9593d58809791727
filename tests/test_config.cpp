// Config: schema validation, error messages (exact text: they are the user
// interface), --set overrides, the resolved-YAML round trip, identity hashes
// and diffs, and schema extension.
#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "runtime/check.h"
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
// Registered at static-initialisation time, like a model's own keys would be.
ConfigKeys register_extra(extra_keys);

}  // namespace

TEST_CASE("defaults fill every key with its declared type") {
  Config c = Config::defaults();
  CHECK(c.get_string("model.type") == "vit");
  CHECK(c.get_int("model.depth") == 6);
  CHECK(c.get_float("train.lr") == doctest::Approx(1e-3));
  CHECK(c.get_float("model.depth") == 6.0);  // integers widen
  CHECK(c.get_string("model.qkv_bias") == "auto");  // the model type decides
  CHECK(c.get_string("model.pool") == "auto");
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
        "configs/x.yaml:3: unknown key 'model.dpeth'; did you mean 'model.depth'?");
  CHECK(error_of("train:\n  lr: 0.1\n  wieght_decay: 0.1\n") ==
        "configs/x.yaml:3: unknown key 'train.wieght_decay'; did you mean 'train.weight_decay'?");
  // The right key in the wrong section.
  CHECK(error_of("train:\n  dropout: 0.1\n") == "configs/x.yaml:2: unknown key 'train.dropout'; did you mean 'model.dropout'?");
  // Nothing close: list what the section has.
  std::string e = error_of("eval:\n  frobnicate: 1\n");
  CHECK(e == "configs/x.yaml:2: unknown key 'eval.frobnicate'; section 'eval' has batch_size, hflip_tta");
  CHECK(error_of("modle:\n  depth: 4\n") == "configs/x.yaml:1: unknown section 'modle'; did you mean 'model'?");
  CHECK(error_of("model:\n  depth: 4\noptimizer:\n  lr: 1\n") ==
        "configs/x.yaml:3: unknown section 'optimizer'; the sections are model, data, train, eval");
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
  CHECK(error_of("model:\n  pool: max\n") == "configs/x.yaml:2: model.pool: expected one of auto|cls|mean, got 'max'");
  CHECK(error_of("model:\n  pool: men\n") ==
        "configs/x.yaml:2: model.pool: expected one of auto|cls|mean, got 'men'; did you mean 'mean'?");
  CHECK(error_of("data:\n  dataset: cifar\n") ==
        "configs/x.yaml:2: data.dataset: expected one of fashion_mnist|mnist|cifar10|cifar100|image_folder, got "
        "'cifar'; did you mean 'cifar10'?");
  CHECK(error_of("data:\n  hflip: maybe\n") == "configs/x.yaml:2: data.hflip: expected true or false, got 'maybe'");
  CHECK(Config::parse("model:\n  qkv_bias: true\n", "x.yaml").get_string("model.qkv_bias") == "true");
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
        "configs/x.yaml:1: expected a mapping of sections (model:, data:, train:, eval:), got [model, train]");
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
  CHECK(set_error("model.dpeth=6") == "--set model.dpeth=6: unknown key 'model.dpeth'; did you mean 'model.depth'?");
  CHECK(set_error("modl.depth=6") == "--set modl.depth=6: unknown section 'modl'; did you mean 'model'?");
  CHECK(set_error("train.lr") == "--set train.lr: expected section.key=value, e.g. --set train.lr=0.001");
  CHECK(set_error("lr=0.1") == "--set lr=0.1: expected section.key=value; did you mean 'train.lr'?");
  CHECK(set_error("train.betas=[0.9") ==
        "--set train.betas=[0.9: train.betas: the value is not valid YAML (end of sequence flow not found)");
  CHECK(set_error("train.betas=0.9,0.99") ==
        "--set train.betas=0.9,0.99: train.betas: expected a list of 2 floats in [0, 1), got '0.9,0.99'");
  CHECK(set_error("model.pool=avg") == "--set model.pool=avg: model.pool: expected one of auto|cls|mean, got 'avg'");
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
  Config c = parse("model:\n  depth: 9\n  pool: mean\ndata:\n  dataset: cifar10\n",
                   {"train.lr=0.00030000000000000003", "train.min_lr=3e-300", "train.betas=[0.5, 0.98765432101234]",
                    "data.root=C:\\data \"quoted\" # not a comment", "model.type=yes", "data.train_split=1.5",
                    "data.test_split=caf\xc3\xa9/tab\there", "train.warmup_epochs=2", "model.dropout=0.1"});
  std::string yaml = c.to_yaml();
  Config back = Config::parse(yaml, "run/config.yaml");
  CHECK(back.canonical(back.schema().sections(), true) == c.canonical(c.schema().sections(), true));
  CHECK(back.to_yaml() == yaml);
  CHECK(back.get_string("data.root") == "C:\\data \"quoted\" # not a comment");
  CHECK(back.get_string("model.type") == "yes");
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
  CHECK(base.canonical({"model"}).rfind("model.attn_dropout: 0.0\nmodel.channels: 1\n", 0) == 0);
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
                       "configs/swin.yaml:2: unknown key 'model.window_sise'; did you mean 'model.window_size'?", Error);
  // The global schema doesn't know window_size: a different model identity.
  Config plain = Config::defaults();
  CHECK(plain.hash() != c.hash());
  CHECK(config_diff(plain, Config::defaults(s), {"model"}) ==
        std::vector<std::string>{"model.window_size: absent in the checkpoint, 7 in the config"});
  // A Config keeps the schema it was loaded with.
  Config after = Config::parse(c.to_yaml(), "run/config.yaml", {}, c.schema());
  CHECK(after.get_int("model.window_size") == 4);

  CHECK_THROWS_WITH_AS(s.add("model", "depth", KeySpec::Int(1, "again")), doctest::Contains("declared twice"), Error);
  CHECK_THROWS_WITH_AS(s.add("model", "bad", KeySpec::Float(2.0, "out of its range").lt(1)),
                       doctest::Contains("default 2.0 is not a float < 1"), Error);
  CHECK_THROWS_WITH_AS(s.add("model", "Bad.Name", KeySpec::Int(1, "x")), doctest::Contains("lower-case"), Error);
  CHECK_THROWS_WITH_AS(s.add("model", "nodoc", KeySpec::Int(1, "")), doctest::Contains("one-line doc"), Error);
  CHECK_THROWS_AS(s.add("model", "bad_enum", KeySpec::Enum("c", {"a", "b"}, "default not a choice")), Error);
  CHECK(s.describe().find("model.depth: an integer >= 1, default 6. number of transformer blocks\n") !=
        std::string::npos);
}

TEST_CASE("edit distance counts swaps as one edit") {
  CHECK(edit_distance("dpeth", "depth") == 1);
  CHECK(edit_distance("", "abc") == 3);
  CHECK(edit_distance("kitten", "sitting") == 3);
  CHECK(closest_match("LR", {"lr", "seed"}) == "lr");
  CHECK(closest_match("zzzzzz", {"lr", "seed"}) == "");
}
