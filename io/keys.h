// Typed configuration keys: what a key accepts (KeySpec), the keys a model or
// data set owns (KeySet), and a resolved section read back by type (Options).
//
// These sit below nn/ and data/ so that a model or a data set declares its own
// keys from its own file; trainers/config.h builds the YAML schema and the
// Config from them. A model's keys, in one list that both declares them (with
// the defaults of a typed struct) and reads them back (KeyBinder):
//   void MyOptions::bind(KeyBinder& b) {
//     b("depths", depths, KeySpec::Ints("blocks per stage").ge(1));
//     b("pool", pool, KeySpec::Enum({"cls", "mean"}, "how tokens become one vector"));
//   }
#pragma once
#include <cstdint>
#include <functional>
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
// The factories without a default are for KeyBinder, which takes the default
// from the bound field: KeySpec::Int("number of blocks").ge(1).
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
  // Without a default (KeyBinder fills it in); Enum takes its first choice.
  static KeySpec Int(std::string doc) { return Int(0, std::move(doc)); }
  static KeySpec Float(std::string doc) { return Float(0.0, std::move(doc)); }
  static KeySpec Bool(std::string doc) { return Bool(false, std::move(doc)); }
  static KeySpec Enum(std::vector<std::string> choices, std::string doc);
  static KeySpec Floats(std::string doc) { return Floats(std::vector<double>{}, std::move(doc)); }
  static KeySpec Ints(std::string doc) { return Ints(std::vector<int64_t>{}, std::move(doc)); }

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
  // Whether v (of this spec's type) is allowed: range, choices, length.
  bool allows(const ConfigValue& v) const;
  // "model.depth: an integer >= 1, default 6. number of transformer blocks"
  std::string describe(const std::string& full_key) const;
};

// Throws pw::Error if `spec` can't be declared as section.key: a bad name, no
// one-line doc, a default of the wrong type or outside its own range (a
// programming mistake, caught at startup).
void check_spec(const std::string& section, const std::string& key, const KeySpec& spec);

class Options;

// The keys one model or data set owns, in declaration order, plus checks over
// several of them (run after loading; they report through Options::fail).
struct KeySet {
  std::string doc;  // one line: what owns these keys ("ViT (Dosovitskiy et al. 2021)")
  std::vector<std::pair<std::string, KeySpec>> keys;
  std::vector<std::function<void(const Options&)>> checks;

  // Declares `key` (checked as check_spec does; `section` only names it in errors).
  void add(const std::string& key, KeySpec spec, const std::string& section = "");
  void add_check(std::function<void(const Options&)> check) { checks.push_back(std::move(check)); }
  const KeySpec* find(const std::string& key) const;
  std::vector<std::string> names() const;
};

// A resolved section: every key with its spec, its value and where the value
// came from ("configs/x.yaml:12", "--set model.depth=8", "" for a default).
// Keys are short ("depth"); errors name them in full ("model.depth").
class Options {
 public:
  struct Entry {
    std::string key;
    KeySpec spec;
    ConfigValue value;
    std::string origin;
  };
  Options() = default;
  // `source` names the config in errors about defaults ("configs/x.yaml").
  Options(std::string section, std::string source) : section_(std::move(section)), source_(std::move(source)) {}
  // Every key of `keys` at its default.
  static Options defaults(const std::string& section, const KeySet& keys, const std::string& source = "defaults");

  // Adds a key at its default; a key already there throws.
  void declare(const std::string& key, const KeySpec& spec);
  // Sets a declared key's value (of its type; not range-checked here).
  void set(const std::string& key, ConfigValue v, std::string origin);

  bool has(const std::string& key) const { return find(key) != nullptr; }
  int64_t get_int(const std::string& key) const;
  double get_float(const std::string& key) const;  // Float keys, and Int keys widened
  bool get_bool(const std::string& key) const;
  const std::string& get_string(const std::string& key) const;  // String and Enum keys
  const std::vector<double>& get_floats(const std::string& key) const;
  const std::vector<int64_t>& get_ints(const std::string& key) const;
  const ConfigValue& value(const std::string& key) const;
  const std::string& origin(const std::string& key) const;

  // Throws pw::Error "<origin>: <section>.<key>: <msg>" (the source for a default).
  [[noreturn]] void fail(const std::string& key, const std::string& msg) const;

  const std::string& section() const { return section_; }
  const std::string& source() const { return source_; }
  void set_source(std::string s) { source_ = std::move(s); }
  const std::vector<Entry>& entries() const { return entries_; }
  const Entry* find(const std::string& key) const;
  Entry* find(const std::string& key);

 private:
  std::string section_, source_;
  std::vector<Entry> entries_;  // declaration order; a section has a few dozen keys at most
  const Entry& entry(const std::string& key, const char* getter) const;
};

// Binds the fields of a typed options struct to keys, so that one list both
// declares the keys (each default is the field's current value) and reads a
// resolved section back into the fields:
//   KeySet keys;    KeyBinder d(keys);  VitOptions::vit().bind(d);    // declare
//   VitOptions o;   KeyBinder r(model); o.bind(r);                     // read
// The spec's own default is ignored; an Enum field's value must be a choice.
class KeyBinder {
 public:
  explicit KeyBinder(KeySet& declare_into, std::string section = "") : out_(&declare_into), section_(std::move(section)) {}
  explicit KeyBinder(const Options& read_from) : in_(&read_from) {}
  bool declaring() const { return out_ != nullptr; }

  void operator()(const std::string& key, int64_t& field, KeySpec spec);
  void operator()(const std::string& key, double& field, KeySpec spec);
  void operator()(const std::string& key, bool& field, KeySpec spec);
  void operator()(const std::string& key, std::string& field, KeySpec spec);  // String or Enum
  void operator()(const std::string& key, std::vector<double>& field, KeySpec spec);
  void operator()(const std::string& key, std::vector<int64_t>& field, KeySpec spec);

 private:
  KeySet* out_ = nullptr;
  const Options* in_ = nullptr;
  std::string section_;
  void declare(const std::string& key, KeySpec spec, ConfigValue def);
};

// Optimal-string-alignment distance (Levenshtein plus adjacent swaps, so
// "dpeth" is 1 from "depth").
size_t edit_distance(std::string_view a, std::string_view b);
// The candidate closest to `word` if it is close enough to be a likely typo,
// else "".
std::string closest_match(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace pw
