#include "trainers/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <set>
#include <sstream>

#include "runtime/check.h"
#include "io/atomic_file.h"
#include "io/json.h"

namespace pw {

// ---------------------------------------------------------------- values ---

const char* config_type_name(ConfigType t) {
  switch (t) {
    case ConfigType::Int: return "integer";
    case ConfigType::Float: return "float";
    case ConfigType::Bool: return "bool";
    case ConfigType::String: return "string";
    case ConfigType::Enum: return "enum";
    case ConfigType::Floats: return "list of floats";
    case ConfigType::Ints: return "list of integers";
  }
  return "?";
}

namespace {

bool same_double(double a, double b) { return a == b && std::signbit(a) == std::signbit(b); }

// Shortest text that parses back to exactly x (std::to_chars guarantees it).
std::string shortest(double x) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, x);
  return std::string(buf, r.ptr);
}

// A float's YAML text: shortest round-trip, with a '.' in the mantissa so
// every YAML reader (PyYAML's 1.1 rules too) sees a float: 1.0, 1.0e-05.
std::string format_float(double x) {
  std::string s = shortest(x);
  if (s.find_first_of(".ein") != std::string::npos) {
    size_t e = s.find('e');
    if (e != std::string::npos && s.find('.') == std::string::npos) s.insert(e, ".0");
    return s;
  }
  return s + ".0";
}

// A number in a range or message: plain shortest text (0, 0.5, 1e-08).
std::string format_bound(double x) { return shortest(x); }

bool ieq(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower((unsigned char)a[i]) != std::tolower((unsigned char)b[i])) return false;
  return true;
}

// Strings are written plain when that is unambiguous to any YAML reader,
// double-quoted (JSON escapes are valid YAML escapes) otherwise.
std::string format_string(const std::string& s) {
  bool plain = !s.empty();
  for (char c : s)
    if (!(std::isalnum((unsigned char)c) || c == '_' || c == '.' || c == '/' || c == '-')) plain = false;
  if (plain && (s[0] == '-' || s[0] == '.')) plain = false;
  static const char* kWords[] = {"true", "false", "yes", "no", "on", "off", "y", "n", "null", "~"};
  for (const char* w : kWords)
    if (ieq(s, w)) plain = false;
  if (plain) {
    char* end = nullptr;
    std::strtod(s.c_str(), &end);
    if (end && *end == '\0') plain = false;  // would read as a number
  }
  return plain ? s : json::quote(s);
}

}  // namespace

bool ConfigValue::operator==(const ConfigValue& o) const {
  if (type != o.type) return false;
  switch (type) {
    case ConfigType::Int: return i == o.i;
    case ConfigType::Float: return same_double(f, o.f);
    case ConfigType::Bool: return b == o.b;
    case ConfigType::String:
    case ConfigType::Enum: return s == o.s;
    case ConfigType::Floats:
      if (fs.size() != o.fs.size()) return false;
      for (size_t k = 0; k < fs.size(); ++k)
        if (!same_double(fs[k], o.fs[k])) return false;
      return true;
    case ConfigType::Ints: return is == o.is;
  }
  return false;
}

std::string format_value(const ConfigValue& v) {
  switch (v.type) {
    case ConfigType::Int: return std::to_string(v.i);
    case ConfigType::Float: return format_float(v.f);
    case ConfigType::Bool: return v.b ? "true" : "false";
    case ConfigType::String:
    case ConfigType::Enum: return format_string(v.s);
    case ConfigType::Floats: {
      std::string s = "[";
      for (size_t k = 0; k < v.fs.size(); ++k) s += (k ? ", " : "") + format_float(v.fs[k]);
      return s + "]";
    }
    case ConfigType::Ints: {
      std::string s = "[";
      for (size_t k = 0; k < v.is.size(); ++k) s += (k ? ", " : "") + std::to_string(v.is[k]);
      return s + "]";
    }
  }
  return "?";
}

// --------------------------------------------------------------- KeySpec ---

namespace {
KeySpec make_spec(ConfigType t, std::string doc) {
  KeySpec k;
  k.type = t;
  k.def.type = t;
  k.doc = std::move(doc);
  return k;
}
}  // namespace

KeySpec KeySpec::Int(int64_t def, std::string doc) {
  KeySpec k = make_spec(ConfigType::Int, std::move(doc));
  k.def.i = def;
  return k;
}
KeySpec KeySpec::Float(double def, std::string doc) {
  KeySpec k = make_spec(ConfigType::Float, std::move(doc));
  k.def.f = def;
  return k;
}
KeySpec KeySpec::Bool(bool def, std::string doc) {
  KeySpec k = make_spec(ConfigType::Bool, std::move(doc));
  k.def.b = def;
  return k;
}
KeySpec KeySpec::String(std::string def, std::string doc) {
  KeySpec k = make_spec(ConfigType::String, std::move(doc));
  k.def.s = std::move(def);
  return k;
}
KeySpec KeySpec::Enum(std::string def, std::vector<std::string> choices, std::string doc) {
  KeySpec k = make_spec(ConfigType::Enum, std::move(doc));
  k.def.s = std::move(def);
  k.choices = std::move(choices);
  return k;
}
KeySpec KeySpec::Floats(std::vector<double> def, std::string doc) {
  KeySpec k = make_spec(ConfigType::Floats, std::move(doc));
  k.def.fs = std::move(def);
  return k;
}
KeySpec KeySpec::Ints(std::vector<int64_t> def, std::string doc) {
  KeySpec k = make_spec(ConfigType::Ints, std::move(doc));
  k.def.is = std::move(def);
  return k;
}

KeySpec& KeySpec::ge(double v) { lo = v; lo_open = false; has_lo = true; return *this; }
KeySpec& KeySpec::gt(double v) { lo = v; lo_open = true; has_lo = true; return *this; }
KeySpec& KeySpec::le(double v) { hi = v; hi_open = false; has_hi = true; return *this; }
KeySpec& KeySpec::lt(double v) { hi = v; hi_open = true; has_hi = true; return *this; }
KeySpec& KeySpec::len(int n) { length = n; return *this; }
KeySpec& KeySpec::runtime() { is_runtime = true; return *this; }

bool KeySpec::in_range(double v) const {
  // Written so that NaN fails every bound.
  if (has_lo && !(lo_open ? v > lo : v >= lo)) return false;
  if (has_hi && !(hi_open ? v < hi : v <= hi)) return false;
  return true;
}

namespace {
std::string range_text(const KeySpec& k) {
  if (k.has_lo && k.has_hi)
    return std::string(" in ") + (k.lo_open ? "(" : "[") + format_bound(k.lo) + ", " + format_bound(k.hi) +
           (k.hi_open ? ")" : "]");
  if (k.has_lo) return std::string(k.lo_open ? " > " : " >= ") + format_bound(k.lo);
  if (k.has_hi) return std::string(k.hi_open ? " < " : " <= ") + format_bound(k.hi);
  return "";
}
std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string s;
  for (size_t k = 0; k < v.size(); ++k) s += (k ? sep : "") + v[k];
  return s;
}
}  // namespace

std::string KeySpec::expected() const {
  std::string n = length >= 0 ? std::to_string(length) + " " : "";
  switch (type) {
    case ConfigType::Int: return "an integer" + range_text(*this);
    case ConfigType::Float: return "a float" + range_text(*this);
    case ConfigType::Bool: return "true or false";
    case ConfigType::String: return "a string";
    case ConfigType::Enum: return "one of " + join(choices, "|");
    case ConfigType::Floats: return "a list of " + n + (length == 1 ? "float" : "floats") + range_text(*this);
    case ConfigType::Ints: return "a list of " + n + (length == 1 ? "integer" : "integers") + range_text(*this);
  }
  return "?";
}

// ---------------------------------------------------------------- Schema ---

namespace {
bool is_name(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!(std::islower((unsigned char)c) || std::isdigit((unsigned char)c) || c == '_')) return false;
  return true;
}

// Whether v (already of spec's type) is allowed: range, choices, length.
bool allowed(const KeySpec& spec, const ConfigValue& v) {
  switch (spec.type) {
    case ConfigType::Int: return spec.in_range((double)v.i);
    case ConfigType::Float: return std::isfinite(v.f) && spec.in_range(v.f);
    case ConfigType::Enum: return std::find(spec.choices.begin(), spec.choices.end(), v.s) != spec.choices.end();
    case ConfigType::Floats:
      if (spec.length >= 0 && (int)v.fs.size() != spec.length) return false;
      for (double x : v.fs)
        if (!std::isfinite(x) || !spec.in_range(x)) return false;
      return true;
    case ConfigType::Ints:
      if (spec.length >= 0 && (int)v.is.size() != spec.length) return false;
      for (int64_t x : v.is)
        if (!spec.in_range((double)x)) return false;
      return true;
    default: return true;
  }
}
}  // namespace

Schema& Schema::global() {
  // Never destroyed: static registrars in other files may run in any order.
  static Schema* s = [] {
    auto* schema = new Schema;
    register_core_config(*schema);
    return schema;
  }();
  return *s;
}

void Schema::add(const std::string& section, const std::string& key, KeySpec spec) {
  PW_CHECK(is_name(section) && is_name(key), "Schema::add: '", section, ".", key,
           "': section and key names are lower-case letters, digits and '_'");
  PW_CHECK(find(section, key) == nullptr, "Schema::add: '", section, ".", key, "' is declared twice");
  PW_CHECK(!spec.doc.empty() && spec.doc.find('\n') == std::string::npos, "Schema::add: '", section, ".", key,
           "' needs a one-line doc");
  PW_CHECK(spec.def.type == spec.type, "Schema::add: '", section, ".", key, "': default has the wrong type");
  PW_CHECK(allowed(spec, spec.def), "Schema::add: '", section, ".", key, "': default ", format_value(spec.def),
           " is not ", spec.expected());
  if (!keys_.count(section)) section_order_.push_back(section);
  keys_[section].emplace_back(key, std::move(spec));
}

void Schema::add_check(std::function<void(const Config&)> check) { checks_.push_back(std::move(check)); }

bool Schema::has_section(const std::string& section) const { return keys_.count(section) != 0; }

const KeySpec* Schema::find(const std::string& section, const std::string& key) const {
  auto it = keys_.find(section);
  if (it == keys_.end()) return nullptr;
  for (const auto& kv : it->second)
    if (kv.first == key) return &kv.second;
  return nullptr;
}

const std::vector<std::pair<std::string, KeySpec>>& Schema::keys(const std::string& section) const {
  auto it = keys_.find(section);
  PW_CHECK(it != keys_.end(), "Schema::keys: no section '", section, "'");
  return it->second;
}

std::string Schema::describe() const {
  std::string out;
  for (const std::string& sec : section_order_)
    for (const auto& kv : keys(sec))
      out += sec + "." + kv.first + ": " + kv.second.expected() + ", default " + format_value(kv.second.def) +
             (kv.second.is_runtime ? " (runtime)" : "") + ". " + kv.second.doc + "\n";
  return out;
}

ConfigKeys::ConfigKeys(void (*register_fn)(Schema&)) { register_fn(Schema::global()); }

// ----------------------------------------------------------- suggestions ---

size_t edit_distance(std::string_view a, std::string_view b) {
  // d[i][j]: distance between a[:i] and b[:j], three rows kept.
  std::vector<size_t> pp(b.size() + 1), p(b.size() + 1), c(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) p[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    c[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      c[j] = std::min({p[j] + 1, c[j - 1] + 1, p[j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) c[j] = std::min(c[j], pp[j - 2] + 1);
    }
    std::swap(pp, p);
    std::swap(p, c);
  }
  return p[b.size()];
}

std::string closest_match(const std::string& word, const std::vector<std::string>& candidates) {
  std::string w = word;
  for (char& ch : w) ch = (char)std::tolower((unsigned char)ch);
  size_t limit = w.size() <= 3 ? 1 : w.size() <= 6 ? 2 : 3;
  std::string best;
  size_t best_d = limit + 1;
  for (const std::string& c : candidates) {
    size_t d = edit_distance(w, c);
    if (d < best_d) {
      best_d = d;
      best = c;
    }
  }
  return best;
}

namespace {

std::string quoted(const std::string& s) { return "'" + s + "'"; }

std::string unknown_section_msg(const Schema& schema, const std::string& section) {
  std::string guess = closest_match(section, schema.sections());
  if (!guess.empty()) return "unknown section " + quoted(section) + "; did you mean " + quoted(guess) + "?";
  return "unknown section " + quoted(section) + "; the sections are " + join(schema.sections(), ", ");
}

std::string unknown_key_msg(const Schema& schema, const std::string& section, const std::string& key) {
  std::string full = section + "." + key;
  std::vector<std::string> names;
  for (const auto& kv : schema.keys(section)) names.push_back(kv.first);
  std::string guess = closest_match(key, names);
  if (!guess.empty()) return "unknown key " + quoted(full) + "; did you mean " + quoted(section + "." + guess) + "?";
  // Right key, wrong section (train.dropout for model.dropout)?
  for (const std::string& other : schema.sections())
    if (schema.find(other, key)) return "unknown key " + quoted(full) + "; did you mean " + quoted(other + "." + key) + "?";
  return "unknown key " + quoted(full) + "; section '" + section + "' has " + join(names, ", ");
}

// How a YAML node reads in an error: 'fast', [0.9, 2], a mapping, nothing.
std::string show_node(const YAML::Node& n, bool top = true) {
  switch (n.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined: return top ? "nothing" : "null";
    case YAML::NodeType::Scalar: return top ? quoted(n.Scalar()) : n.Scalar();
    case YAML::NodeType::Sequence: {
      std::string s = "[";
      size_t k = 0;
      for (const auto& item : n) s += (k++ ? ", " : "") + show_node(item, false);
      return s + "]";
    }
    case YAML::NodeType::Map: return "a mapping";
  }
  return "?";
}

bool parse_int(const std::string& s, int64_t* out) {
  if (s.empty()) return false;
  size_t start = (s[0] == '+' || s[0] == '-') ? 1 : 0;
  if (start == s.size()) return false;
  for (size_t k = start; k < s.size(); ++k)
    if (!std::isdigit((unsigned char)s[k])) return false;
  errno = 0;
  long long v = std::strtoll(s.c_str(), nullptr, 10);
  if (errno == ERANGE) return false;
  *out = v;
  return true;
}

bool parse_float(const std::string& s, double* out) {
  if (s.empty() || std::isspace((unsigned char)s[0])) return false;
  // Hex floats and "inf"/"nan" spellings aren't YAML numbers.
  for (char c : s)
    if (!(std::isdigit((unsigned char)c) || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-')) return false;
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size() || errno == ERANGE || !std::isfinite(v)) return false;
  *out = v;
  return true;
}

bool parse_bool(const std::string& s, bool* out) {
  for (const char* t : {"true", "yes", "on"})
    if (ieq(s, t)) return *out = true, true;
  for (const char* f : {"false", "no", "off"})
    if (ieq(s, f)) return *out = false, true;
  return false;
}

// Reads `node` as a value of `spec`; on failure sets *why to
// "expected <what is allowed>, got <value>".
bool read_value(const KeySpec& spec, const YAML::Node& node, ConfigValue* out, std::string* why) {
  ConfigValue v;
  v.type = spec.type;
  bool ok = false;
  bool scalar = node.IsScalar();
  const std::string text = scalar ? node.Scalar() : "";
  switch (spec.type) {
    case ConfigType::Int: ok = scalar && parse_int(text, &v.i); break;
    case ConfigType::Float: ok = scalar && parse_float(text, &v.f); break;
    case ConfigType::Bool: ok = scalar && parse_bool(text, &v.b); break;
    case ConfigType::String:
      ok = scalar || node.IsNull();  // "root:" with nothing means ""
      v.s = text;
      break;
    case ConfigType::Enum: ok = scalar; v.s = text; break;
    case ConfigType::Floats:
    case ConfigType::Ints:
      ok = node.IsSequence();
      if (ok)
        for (const auto& item : node) {
          if (!item.IsScalar()) { ok = false; break; }
          if (spec.type == ConfigType::Floats) {
            double x;
            ok = parse_float(item.Scalar(), &x);
            v.fs.push_back(x);
          } else {
            int64_t x;
            ok = parse_int(item.Scalar(), &x);
            v.is.push_back(x);
          }
          if (!ok) break;
        }
      break;
  }
  if (ok && allowed(spec, v)) {
    *out = std::move(v);
    return true;
  }
  *why = "expected " + spec.expected() + ", got " + show_node(node);
  if (spec.type == ConfigType::Enum && scalar) {
    std::string guess = closest_match(text, spec.choices);
    if (!guess.empty()) *why += "; did you mean " + quoted(guess) + "?";
  }
  return false;
}

// "file:line" for a node (yaml-cpp lines are 0-based); `fallback` when the
// node has no position (an empty value).
std::string at(const std::string& source, const YAML::Mark& m, int fallback_line = -1) {
  int line = m.line >= 0 ? m.line : fallback_line;
  return line >= 0 ? source + ":" + std::to_string(line + 1) : source;
}

}  // namespace

// ---------------------------------------------------------------- Config ---

Config Config::defaults(const Schema& schema) {
  Config c;
  c.schema_ = std::make_shared<const Schema>(schema);
  c.source_ = "defaults";
  for (const std::string& sec : schema.sections())
    for (const auto& kv : schema.keys(sec)) c.values_[sec + "." + kv.first] = Slot{kv.second.def, ""};
  return c;
}

Config Config::load(const std::string& path, const std::vector<std::string>& overrides, const Schema& schema) {
  std::string text;
  try {
    text = read_file(path);
  } catch (const Error& e) {
    throw Error(std::string("config: ") + e.what());
  }
  return parse(text, path, overrides, schema);
}

Config Config::parse(const std::string& yaml, const std::string& source, const std::vector<std::string>& overrides,
                     const Schema& schema) {
  Config c = defaults(schema);
  c.source_ = source;
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    throw Error(at(source, e.mark) + ": not valid YAML: " + e.msg);
  }
  if (!root.IsNull()) {
    if (!root.IsMap())
      throw Error(at(source, root.Mark(), 0) + ": expected a mapping of sections (" + join(schema.sections(), ":, ") +
                  ":), got " + show_node(root));
    std::map<std::string, int> section_line;
    std::map<std::string, int> key_line;
    for (const auto& sec_kv : root) {
      const YAML::Node& sec_node = sec_kv.first;
      int line = sec_node.Mark().line;
      if (!sec_node.IsScalar())
        throw Error(at(source, sec_node.Mark()) + ": section names are plain words, got " + show_node(sec_node));
      const std::string sec = sec_node.Scalar();
      if (!schema.has_section(sec)) throw Error(at(source, sec_node.Mark()) + ": " + unknown_section_msg(schema, sec));
      if (section_line.count(sec))
        throw Error(at(source, sec_node.Mark()) + ": section '" + sec + "' appears twice (first on line " +
                    std::to_string(section_line[sec] + 1) + ")");
      section_line[sec] = line;
      const YAML::Node& body = sec_kv.second;
      if (body.IsNull()) continue;  // "eval:" with nothing under it
      if (!body.IsMap())
        throw Error(at(source, body.Mark(), line) + ": section '" + sec + "' must be a mapping of keys, got " +
                    show_node(body));
      for (const auto& kv : body) {
        const YAML::Node& key_node = kv.first;
        int kline = key_node.Mark().line;
        if (!key_node.IsScalar())
          throw Error(at(source, key_node.Mark(), line) + ": keys in section '" + sec + "' are plain words, got " +
                      show_node(key_node));
        const std::string key = key_node.Scalar();
        const std::string full = sec + "." + key;
        const KeySpec* spec = schema.find(sec, key);
        if (!spec) throw Error(at(source, key_node.Mark(), line) + ": " + unknown_key_msg(schema, sec, key));
        if (key_line.count(full))
          throw Error(at(source, key_node.Mark(), line) + ": key '" + full + "' is set twice (first on line " +
                      std::to_string(key_line[full] + 1) + ")");
        key_line[full] = kline;
        ConfigValue v;
        std::string why;
        const YAML::Node& val = kv.second;
        // An empty value has no position of its own (yaml-cpp puts it on the next line).
        if (!read_value(*spec, val, &v, &why))
          throw Error(at(source, val.IsNull() ? key_node.Mark() : val.Mark(), kline) + ": " + full + ": " + why);
        c.values_[full] = Slot{std::move(v), at(source, key_node.Mark(), line)};
      }
    }
  }
  for (const std::string& o : overrides) c.set(o);
  c.validate();
  return c;
}

void Config::set(const std::string& assignment) {
  const std::string where = "--set " + assignment;
  size_t eq = assignment.find('=');
  if (eq == std::string::npos) throw Error(where + ": expected section.key=value, e.g. --set train.lr=0.001");
  std::string full = assignment.substr(0, eq);
  const std::string text = assignment.substr(eq + 1);
  size_t dot = full.find('.');
  if (dot == std::string::npos || dot == 0 || dot + 1 == full.size()) {
    for (const std::string& sec : schema_->sections())
      if (schema_->find(sec, full))
        throw Error(where + ": expected section.key=value; did you mean '" + sec + "." + full + "'?");
    throw Error(where + ": expected section.key=value, e.g. --set train.lr=0.001");
  }
  const std::string sec = full.substr(0, dot), key = full.substr(dot + 1);
  if (!schema_->has_section(sec)) throw Error(where + ": " + unknown_section_msg(*schema_, sec));
  const KeySpec* spec = schema_->find(sec, key);
  if (!spec) throw Error(where + ": " + unknown_key_msg(*schema_, sec, key));
  YAML::Node node;
  try {
    // A string takes the text as typed: paths may hold '#', ': ' or quotes.
    node = spec->type == ConfigType::String ? YAML::Node(text) : YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw Error(where + ": " + full + ": the value is not valid YAML (" + e.msg + ")");
  }
  ConfigValue v;
  std::string why;
  if (!read_value(*spec, node, &v, &why)) throw Error(where + ": " + full + ": " + why);
  values_[full] = Slot{std::move(v), where};
}

void Config::validate() const {
  for (const auto& check : schema_->checks()) check(*this);
}

const Config::Slot& Config::slot(const std::string& key, const char* getter) const {
  auto it = values_.find(key);
  if (it == values_.end()) {
    std::vector<std::string> names;
    for (const auto& kv : values_) names.push_back(kv.first);
    std::string guess = closest_match(key, names);
    throw Error(std::string("config: ") + getter + "(\"" + key + "\"): no such key" +
                (guess.empty() ? "" : "; did you mean '" + guess + "'?"));
  }
  return it->second;
}

namespace {
[[noreturn]] void wrong_type(const char* getter, const std::string& key, ConfigType t) {
  throw Error(std::string("config: ") + getter + "(\"" + key + "\"): " + key + " is a" +
              (t == ConfigType::Int ? "n " : " ") + config_type_name(t) + " key");
}
}  // namespace

int64_t Config::get_int(const std::string& key) const {
  const ConfigValue& v = slot(key, "get_int").value;
  if (v.type != ConfigType::Int) wrong_type("get_int", key, v.type);
  return v.i;
}
double Config::get_float(const std::string& key) const {
  const ConfigValue& v = slot(key, "get_float").value;
  if (v.type == ConfigType::Int) return (double)v.i;
  if (v.type != ConfigType::Float) wrong_type("get_float", key, v.type);
  return v.f;
}
bool Config::get_bool(const std::string& key) const {
  const ConfigValue& v = slot(key, "get_bool").value;
  if (v.type != ConfigType::Bool) wrong_type("get_bool", key, v.type);
  return v.b;
}
const std::string& Config::get_string(const std::string& key) const {
  const ConfigValue& v = slot(key, "get_string").value;
  if (v.type != ConfigType::String && v.type != ConfigType::Enum) wrong_type("get_string", key, v.type);
  return v.s;
}
const std::vector<double>& Config::get_floats(const std::string& key) const {
  const ConfigValue& v = slot(key, "get_floats").value;
  if (v.type != ConfigType::Floats) wrong_type("get_floats", key, v.type);
  return v.fs;
}
const std::vector<int64_t>& Config::get_ints(const std::string& key) const {
  const ConfigValue& v = slot(key, "get_ints").value;
  if (v.type != ConfigType::Ints) wrong_type("get_ints", key, v.type);
  return v.is;
}
const ConfigValue& Config::value(const std::string& key) const { return slot(key, "value").value; }
const std::string& Config::origin(const std::string& key) const { return slot(key, "origin").origin; }

void Config::fail(const std::string& key, const std::string& msg) const {
  const std::string& o = origin(key);
  throw Error((o.empty() ? source_ : o) + ": " + key + ": " + msg);
}

std::string Config::to_yaml() const {
  std::string out = "# patchwork config, resolved: defaults filled in, overrides applied.\n";
  constexpr size_t kCommentColumn = 34;
  for (const std::string& sec : schema_->sections()) {
    out += sec + ":\n";
    for (const auto& kv : schema_->keys(sec)) {
      std::string line = "  " + kv.first + ": " + format_value(values_.at(sec + "." + kv.first).value);
      line.append(line.size() + 2 < kCommentColumn ? kCommentColumn - line.size() : 2, ' ');
      out += line + "# " + kv.second.doc + "\n";
    }
  }
  return out;
}

std::string Config::canonical(const std::vector<std::string>& sections, bool with_runtime) const {
  std::string out;
  for (const std::string& sec : sections) {
    PW_CHECK(schema_->has_section(sec), "Config::canonical: no section '", sec, "'");
    std::vector<std::string> keys;
    for (const auto& kv : schema_->keys(sec))
      if (with_runtime || !kv.second.is_runtime) keys.push_back(kv.first);
    std::sort(keys.begin(), keys.end());
    for (const std::string& k : keys) out += sec + "." + k + ": " + format_value(values_.at(sec + "." + k).value) + "\n";
  }
  return out;
}

uint64_t Config::hash(const std::vector<std::string>& sections) const { return fnv1a64(canonical(sections)); }

std::vector<std::string> config_diff(const Config& a, const Config& b, const std::vector<std::string>& sections,
                                     const std::string& a_name, const std::string& b_name) {
  std::vector<std::string> out;
  for (const std::string& sec : sections) {
    std::set<std::string> keys;
    for (const Config* c : {&a, &b})
      if (c->schema_->has_section(sec))
        for (const auto& kv : c->schema_->keys(sec))
          if (!kv.second.is_runtime) keys.insert(kv.first);
    for (const std::string& k : keys) {
      const std::string full = sec + "." + k;
      auto ia = a.values_.find(full), ib = b.values_.find(full);
      bool in_a = ia != a.values_.end(), in_b = ib != b.values_.end();
      if (in_a && in_b && ia->second.value == ib->second.value) continue;
      out.push_back(full + ": " + (in_a ? format_value(ia->second.value) : "absent") + " in " + a_name + ", " +
                    (in_b ? format_value(ib->second.value) : "absent") + " in " + b_name);
    }
  }
  return out;
}

uint64_t fnv1a64(std::string_view bytes) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

}  // namespace pw
