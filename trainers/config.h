// Run configuration: YAML files validated against a schema of typed keys.
//
// A config file has sections (model:, data:, train:, eval:) of keys; every key
// is declared once, with a type, an allowed range, a default and a one-line
// doc, in a Schema. Loading checks the file against it and turns every mistake
// into one sentence that names the file and line, the key, the value and what
// is allowed:
//   configs/x.yaml:12: unknown key 'model.dpeth'; did you mean 'model.depth'?
//   configs/x.yaml:7: train.lr: expected a float > 0, got 'fast'
//   --set train.lr=fast: train.lr: expected a float > 0, got 'fast'
//
// The core keys live in trainers/config_schema.cpp. A model or dataset adds
// its own from its registration code, with no central list to edit:
//   Schema::global().add("model", "window_size", KeySpec::Int(7, "Swin attention window").ge(1));
// or, at static-initialisation time, from any .cpp:
//   static pw::ConfigKeys swin_keys([](pw::Schema& s) { s.add("model", "window_size", ...); });
// NOTE: patchwork_lib is a static library: the linker drops a .cpp whose
// symbols nothing references, static registrars included. Put ConfigKeys in
// the same file as code that is referenced (e.g. the model's factory).
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pw {

enum class ConfigType { Int, Float, Bool, String, Enum, Floats, Ints };
const char* config_type_name(ConfigType t);  // "integer", "float", ...

// One value of a key; only the member for its type is meaningful.
struct ConfigValue {
  ConfigType type = ConfigType::Int;
  int64_t i = 0;                 // Int
  double f = 0;                  // Float
  bool b = false;                // Bool
  std::string s;                 // String, Enum
  std::vector<double> fs;        // Floats
  std::vector<int64_t> is;       // Ints
  bool operator==(const ConfigValue& o) const;
  bool operator!=(const ConfigValue& o) const { return !(*this == o); }
};

// The YAML text of a value as written in a resolved config: 6, 0.001, true,
// cls, "a path", [0.9, 0.999]. Floats are the shortest text that reads back
// bit-exact, always with a '.' so they stay floats (1.0, 1.0e-05).
std::string format_value(const ConfigValue& v);

// A declared key: type, default, allowed values and doc.
//   KeySpec::Float(1e-3, "peak learning rate").gt(0)
//   KeySpec::Enum("cls", {"cls", "mean"}, "how tokens become one vector")
struct KeySpec {
  ConfigType type = ConfigType::Int;
  ConfigValue def;
  std::string doc;
  // Numbers (and every item of a list) must lie in this range.
  double lo = -1e308, hi = 1e308;
  bool lo_open = false, hi_open = false;
  bool has_lo = false, has_hi = false;
  std::vector<std::string> choices;  // Enum
  int length = -1;                   // Floats/Ints: required length, -1 any
  // A runtime knob (worker count, paths, device): it doesn't change what is
  // trained, so identity hashes and config diffs skip it.
  bool is_runtime = false;

  static KeySpec Int(int64_t def, std::string doc);
  static KeySpec Float(double def, std::string doc);
  static KeySpec Bool(bool def, std::string doc);
  static KeySpec String(std::string def, std::string doc);
  static KeySpec Enum(std::string def, std::vector<std::string> choices, std::string doc);
  static KeySpec Floats(std::vector<double> def, std::string doc);
  static KeySpec Ints(std::vector<int64_t> def, std::string doc);

  KeySpec& ge(double v);  // value >= v
  KeySpec& gt(double v);  // value > v
  KeySpec& le(double v);  // value <= v
  KeySpec& lt(double v);  // value < v
  KeySpec& len(int n);    // lists: exactly n items
  KeySpec& runtime();

  // What the key accepts, for error messages: "a float > 0",
  // "an integer in [1, 64]", "one of cls|mean", "a list of 2 floats in [0, 1)".
  std::string expected() const;
  bool in_range(double v) const;
};

class Config;

// The declared sections and keys, in declaration order, plus cross-key checks.
class Schema {
 public:
  // The process-wide schema: the core keys (trainers/config_schema.cpp) plus
  // whatever models and datasets have added.
  static Schema& global();

  // Declares section.key; a key declared twice, or a default outside its own
  // range, throws pw::Error (a programming mistake, caught at startup).
  void add(const std::string& section, const std::string& key, KeySpec spec);
  // A check over several keys, run after loading (e.g. patch_size divides
  // image_size). It reports through Config::fail so the error names the line.
  void add_check(std::function<void(const Config&)> check);

  bool has_section(const std::string& section) const;
  const KeySpec* find(const std::string& section, const std::string& key) const;
  const std::vector<std::string>& sections() const { return section_order_; }
  const std::vector<std::pair<std::string, KeySpec>>& keys(const std::string& section) const;
  const std::vector<std::function<void(const Config&)>>& checks() const { return checks_; }

  // One line per key: "model.depth: integer >= 1, default 6. number of transformer blocks"
  std::string describe() const;

 private:
  std::vector<std::string> section_order_;
  std::map<std::string, std::vector<std::pair<std::string, KeySpec>>> keys_;
  std::vector<std::function<void(const Config&)>> checks_;
};

// Adds keys to Schema::global() when constructed (see the file comment).
struct ConfigKeys {
  explicit ConfigKeys(void (*register_fn)(Schema&));
};

// Fills `schema` with the core model/data/train/eval keys and checks.
void register_core_config(Schema& schema);

// A resolved configuration: every key of its schema has a value.
class Config {
 public:
  // All defaults.
  static Config defaults(const Schema& schema = Schema::global());
  // Reads a YAML file, then applies `overrides` ("section.key=value", the
  // --set form) in order, then runs the schema's checks.
  static Config load(const std::string& path, const std::vector<std::string>& overrides = {},
                     const Schema& schema = Schema::global());
  // The same for YAML text; `source` names it in errors (a path, "checkpoint").
  static Config parse(const std::string& yaml, const std::string& source,
                      const std::vector<std::string>& overrides = {}, const Schema& schema = Schema::global());

  // Applies one "section.key=value" override; the value is read as YAML (a
  // scalar or a flow list like [0.9, 0.99]) and validated like the file's,
  // except that a string key takes the text after '=' exactly as typed.
  // Cross-key checks are not rerun; call validate() after a batch of set().
  void set(const std::string& assignment);
  void validate() const;  // runs the schema's cross-key checks

  bool has(const std::string& key) const { return values_.count(key) != 0; }
  int64_t get_int(const std::string& key) const;
  double get_float(const std::string& key) const;  // Float keys, and Int keys widened
  bool get_bool(const std::string& key) const;
  const std::string& get_string(const std::string& key) const;  // String and Enum keys
  const std::vector<double>& get_floats(const std::string& key) const;
  const std::vector<int64_t>& get_ints(const std::string& key) const;
  const ConfigValue& value(const std::string& key) const;

  // Where a key's value came from: "configs/x.yaml:12", "--set train.lr=0.1",
  // or "" for a default.
  const std::string& origin(const std::string& key) const;
  const std::string& source() const { return source_; }
  // Throws pw::Error "<origin>: <key>: <msg>" (the file name for a default):
  // for checks made after loading, e.g. "model.type: unknown model 'vitt'".
  [[noreturn]] void fail(const std::string& key, const std::string& msg) const;

  // The resolved config as YAML, one "key: value  # doc" line per key, in
  // schema order. Parsing it gives back the same config.
  std::string to_yaml() const;
  // "section.key: value" lines, keys sorted, runtime keys left out unless
  // asked: the text identity hashes are taken over.
  std::string canonical(const std::vector<std::string>& sections, bool with_runtime = false) const;
  // FNV-1a 64 of canonical(sections): equal exactly when config_diff is empty.
  uint64_t hash(const std::vector<std::string>& sections = {"model", "data"}) const;

  const Schema& schema() const { return *schema_; }

 private:
  Config() = default;  // a Config always has a schema: use defaults(), load() or parse()
  struct Slot {
    ConfigValue value;
    std::string origin;
  };
  std::shared_ptr<const Schema> schema_;  // a snapshot: later Schema::add calls don't change it
  std::map<std::string, Slot> values_;    // "section.key" -> value
  std::string source_;

  const Slot& slot(const std::string& key, const char* getter) const;
  friend std::vector<std::string> config_diff(const Config&, const Config&, const std::vector<std::string>&,
                                              const std::string&, const std::string&);
};

// The non-runtime keys of `sections` whose values differ, one line each:
//   "model.depth: 6 in the checkpoint, 8 in the config"
// A key only one side's schema knows shows as "absent".
std::vector<std::string> config_diff(const Config& a, const Config& b,
                                     const std::vector<std::string>& sections = {"model", "data"},
                                     const std::string& a_name = "the checkpoint",
                                     const std::string& b_name = "the config");

uint64_t fnv1a64(std::string_view bytes);

// Optimal-string-alignment distance (Levenshtein plus adjacent swaps, so
// "dpeth" is 1 from "depth").
size_t edit_distance(std::string_view a, std::string_view b);
// The candidate closest to `word` if it is close enough to be a likely typo,
// else "".
std::string closest_match(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace pw
