// Run configuration: YAML files validated against a schema of typed keys.
//
// A config file has sections (model:, data:, train:, eval:) of keys; every key
// is declared once, with a type, an allowed range, a default and a one-line
// doc (io/keys.h). Loading checks the file against them and turns every
// mistake into one sentence that names the file and line, the key, the value
// and what is allowed:
//   configs/x.yaml:12: unknown key 'model.dpeth' for model 'vit'; did you mean 'model.depth'?
//   configs/x.yaml:7: train.lr: expected a float > 0, got 'fast'
//   --set train.lr=fast: train.lr: expected a float > 0, got 'fast'
//
// The core keys (what every model, data set and run shares) live in
// trainers/config_schema.cpp. A section can also have variants: one of its
// keys picks a set of keys owned elsewhere. `model.type` picks the chosen
// model's keys (nn/registry.h: each model declares them, with its own
// defaults, in its own file) and `data.dataset` the data set's (data/dataset.h).
// So `model.depth` exists when model.type is vit, and a Swin's
// `model.depths: [2, 2, 6, 2]` only when model.type is swin.
//
// Other code may add core keys at static-initialisation time from any .cpp:
//   static pw::ConfigKeys my_keys([](pw::Schema& s) { s.add("train", "foo", ...); });
// NOTE: executables link patchwork_lib whole (CMakeLists.txt), so such a
// registrar runs even in a file nothing else references.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "io/keys.h"

namespace pw {

class Config;

// The keys that one value of a section's selector key brings with it: the
// models for model.type, the data sets for data.dataset.
struct Variants {
  std::string selector;  // the key that picks: "type"
  std::string noun;      // what a value names, in messages: "model", "data set"
  // The known values, for messages and suggestions (aliases left out).
  std::function<std::vector<std::string>()> names;
  // The keys a value brings (aliases resolve too); nullptr for an unknown value.
  std::function<const KeySet*(const std::string&)> find;
};

// The declared sections and keys, in declaration order, plus cross-key checks.
class Schema {
 public:
  // The process-wide schema: the core keys (trainers/config_schema.cpp) plus
  // whatever other code has added.
  static Schema& global();

  // Declares section.key; a key declared twice, or a default outside its own
  // range, throws pw::Error (a programming mistake, caught at startup).
  void add(const std::string& section, const std::string& key, KeySpec spec);
  // A check over several keys, run after loading (e.g. min_lr <= lr). It
  // reports through Config::fail so the error names the line.
  void add_check(std::function<void(const Config&)> check);
  // Makes `section`'s key `v.selector` (a String key declared before) pick
  // extra keys for the section; its value must be one of v.names().
  void add_variants(const std::string& section, Variants v);

  bool has_section(const std::string& section) const;
  // A core key (variant keys are the Config's: Config::section).
  const KeySpec* find(const std::string& section, const std::string& key) const;
  const std::vector<std::string>& sections() const { return section_order_; }
  const std::vector<std::pair<std::string, KeySpec>>& keys(const std::string& section) const;
  const std::vector<std::function<void(const Config&)>>& checks() const { return checks_; }
  const Variants* variants(const std::string& section) const;

  // One line per core key: "model.image_size: an integer >= 1, default 28. input height and width in pixels";
  // a selector lists its values: "model.type: one of simple_vit|vit, default vit. ..."
  std::string describe() const;
  // The keys `name` brings to `section` (e.g. "model", "vit"), one line each
  // after a line naming it; throws naming the known values for an unknown name.
  std::string describe_variant(const std::string& section, const std::string& name) const;

 private:
  std::vector<std::string> section_order_;
  std::map<std::string, KeySet> keys_;
  std::map<std::string, Variants> variants_;
  std::vector<std::function<void(const Config&)>> checks_;
};

// Adds keys to Schema::global() when constructed (see the file comment).
struct ConfigKeys {
  explicit ConfigKeys(void (*register_fn)(Schema&));
};

// Fills `schema` with the core model/data/train/eval keys and checks, and the
// model and data-set variants.
void register_core_config(Schema& schema);

// A resolved configuration: every key of its schema, and of the model and
// data set it names, has a value.
class Config {
 public:
  // All defaults.
  static Config defaults(const Schema& schema = Schema::global());
  // Reads a YAML file, then applies `overrides` ("section.key=value", the
  // --set form) in order, then runs the schema's checks. The file's selector
  // (model.type) is read first, so the chosen model's keys are known before
  // any other key is; an override of it swaps them as set() says.
  static Config load(const std::string& path, const std::vector<std::string>& overrides = {},
                     const Schema& schema = Schema::global());
  // The same for YAML text; `source` names it in errors (a path, "checkpoint").
  static Config parse(const std::string& yaml, const std::string& source,
                      const std::vector<std::string>& overrides = {}, const Schema& schema = Schema::global());

  // Applies one "section.key=value" override; the value is read as YAML (a
  // scalar or a flow list like [0.9, 0.99]) and validated like the file's,
  // except that a string key takes the text after '=' exactly as typed.
  // Setting a selector to another value swaps the section's variant keys:
  // values set so far carry over when the new variant has the key, and a
  // value the new one can't take is an error.
  // Cross-key checks are not rerun; call validate() after a batch of set().
  void set(const std::string& assignment);
  void validate() const;  // runs the schema's and the variants' cross-key checks

  bool has(const std::string& key) const;
  int64_t get_int(const std::string& key) const;
  double get_float(const std::string& key) const;  // Float keys, and Int keys widened
  bool get_bool(const std::string& key) const;
  const std::string& get_string(const std::string& key) const;  // String and Enum keys
  const std::vector<double>& get_floats(const std::string& key) const;
  const std::vector<int64_t>& get_ints(const std::string& key) const;
  const ConfigValue& value(const std::string& key) const;

  // One resolved section ("model": the core model keys and the chosen model's
  // own), as a model factory or a data set reads it.
  const Options& section(const std::string& name) const;

  // Where a key's value came from: "configs/x.yaml:12", "--set train.lr=0.1",
  // or "" for a default.
  const std::string& origin(const std::string& key) const;
  const std::string& source() const { return source_; }
  // Throws pw::Error "<origin>: <key>: <msg>" (the file name for a default):
  // for checks made after loading, e.g. "model.num_classes: is 7 but ...".
  [[noreturn]] void fail(const std::string& key, const std::string& msg) const;

  // The resolved config as YAML, one "key: value  # doc" line per key, in
  // schema order (a section's variant keys after its core keys). Parsing it
  // gives back the same config.
  std::string to_yaml() const;
  // "section.key: value" lines, keys sorted, runtime keys left out unless
  // asked: the text identity hashes are taken over.
  std::string canonical(const std::vector<std::string>& sections, bool with_runtime = false) const;
  // FNV-1a 64 of canonical(sections): equal exactly when config_diff is empty.
  uint64_t hash(const std::vector<std::string>& sections = {"model", "data"}) const;

  const Schema& schema() const { return *schema_; }

 private:
  Config() = default;  // a Config always has a schema: use defaults(), load() or parse()
  std::shared_ptr<const Schema> schema_;   // a snapshot: later Schema::add calls don't change it
  std::map<std::string, Options> sections_;  // section name -> its resolved keys
  std::map<std::string, const KeySet*> variant_;  // section -> the keys its selector picked
  std::string source_;

  // Rebuilds `sec` with the keys that `name` picks, every key at its default.
  void resolve(const std::string& sec, const std::string& name);
  // Splits "section.key"; throws naming `getter` when there is no such key.
  const Options::Entry& entry(const std::string& key, const char* getter) const;
  const Options& section_of(const std::string& key, const char* getter) const;  // entry() checked
  std::string unknown_key_msg(const std::string& sec, const std::string& key) const;
  std::string selector_error(const std::string& sec, const std::string& value) const;
};

// The non-runtime keys of `sections` whose values differ, one line each:
//   "model.depth: 6 in the checkpoint, 8 in the config"
// A key only one side has (another model type, an older schema) shows as "absent".
std::vector<std::string> config_diff(const Config& a, const Config& b,
                                     const std::vector<std::string>& sections = {"model", "data"},
                                     const std::string& a_name = "the checkpoint",
                                     const std::string& b_name = "the config");

uint64_t fnv1a64(std::string_view bytes);

}  // namespace pw
