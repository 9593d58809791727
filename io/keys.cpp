#include "io/keys.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>

#include "io/json.h"
#include "runtime/check.h"

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

KeySpec KeySpec::Enum(std::vector<std::string> choices, std::string doc) {
  std::string def = choices.empty() ? std::string() : choices[0];
  return Enum(std::move(def), std::move(choices), std::move(doc));
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


bool KeySpec::allows(const ConfigValue& v) const {
  if (v.type != type) return false;
  switch (type) {
    case ConfigType::Int: return in_range((double)v.i);
    case ConfigType::Float: return std::isfinite(v.f) && in_range(v.f);
    case ConfigType::Enum: return std::find(choices.begin(), choices.end(), v.s) != choices.end();
    case ConfigType::Floats:
      if (length >= 0 && (int)v.fs.size() != length) return false;
      for (double x : v.fs)
        if (!std::isfinite(x) || !in_range(x)) return false;
      return true;
    case ConfigType::Ints:
      if (length >= 0 && (int)v.is.size() != length) return false;
      for (int64_t x : v.is)
        if (!in_range((double)x)) return false;
      return true;
    default: return true;
  }
}

std::string KeySpec::describe(const std::string& full_key) const {
  return full_key + ": " + expected() + ", default " + format_value(def) + (is_runtime ? " (runtime)" : "") + ". " +
         doc;
}

namespace {
bool is_name(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!(std::islower((unsigned char)c) || std::isdigit((unsigned char)c) || c == '_')) return false;
  return true;
}
}  // namespace

void check_spec(const std::string& section, const std::string& key, const KeySpec& spec) {
  const std::string full = section.empty() ? key : section + "." + key;
  PW_CHECK((section.empty() || is_name(section)) && is_name(key), "'", full,
           "': section and key names are lower-case letters, digits and '_'");
  PW_CHECK(!spec.doc.empty() && spec.doc.find('\n') == std::string::npos, "'", full, "' needs a one-line doc");
  PW_CHECK(spec.def.type == spec.type, "'", full, "': default has the wrong type");
  PW_CHECK(spec.allows(spec.def), "'", full, "': default ", format_value(spec.def), " is not ", spec.expected());
}

// ---------------------------------------------------------------- KeySet ---

void KeySet::add(const std::string& key, KeySpec spec, const std::string& section) {
  check_spec(section, key, spec);
  PW_CHECK(find(key) == nullptr, "'", section.empty() ? key : section + "." + key, "' is declared twice");
  keys.emplace_back(key, std::move(spec));
}

const KeySpec* KeySet::find(const std::string& key) const {
  for (const auto& kv : keys)
    if (kv.first == key) return &kv.second;
  return nullptr;
}

std::vector<std::string> KeySet::names() const {
  std::vector<std::string> n;
  for (const auto& kv : keys) n.push_back(kv.first);
  return n;
}

// --------------------------------------------------------------- Options ---

Options Options::defaults(const std::string& section, const KeySet& keys, const std::string& source) {
  Options o(section, source);
  for (const auto& kv : keys.keys) o.declare(kv.first, kv.second);
  return o;
}

void Options::declare(const std::string& key, const KeySpec& spec) {
  PW_CHECK(!find(key), "Options: '", section_, ".", key, "' is declared twice");
  entries_.push_back(Entry{key, spec, spec.def, ""});
}

void Options::set(const std::string& key, ConfigValue v, std::string origin) {
  Entry* e = find(key);
  PW_CHECK(e, "Options::set: no key '", section_, ".", key, "'");
  PW_CHECK(v.type == e->spec.type, "Options::set: '", section_, ".", key, "' is a ", config_type_name(e->spec.type),
           " key, got a ", config_type_name(v.type));
  e->value = std::move(v);
  e->origin = std::move(origin);
}

const Options::Entry* Options::find(const std::string& key) const {
  for (const Entry& e : entries_)
    if (e.key == key) return &e;
  return nullptr;
}
Options::Entry* Options::find(const std::string& key) {
  for (Entry& e : entries_)
    if (e.key == key) return &e;
  return nullptr;
}

const Options::Entry& Options::entry(const std::string& key, const char* getter) const {
  const Entry* e = find(key);
  if (!e) {
    std::vector<std::string> names;
    for (const Entry& x : entries_) names.push_back(x.key);
    std::string guess = closest_match(key, names);
    throw Error(std::string("config: ") + getter + "(\"" + section_ + "." + key + "\"): no such key" +
                (guess.empty() ? "" : "; did you mean '" + section_ + "." + guess + "'?"));
  }
  return *e;
}

namespace {
[[noreturn]] void wrong_type(const char* getter, const std::string& key, ConfigType t) {
  throw Error(std::string("config: ") + getter + "(\"" + key + "\"): " + key + " is a" +
              (t == ConfigType::Int ? "n " : " ") + config_type_name(t) + " key");
}
}  // namespace

int64_t Options::get_int(const std::string& key) const {
  const ConfigValue& v = entry(key, "get_int").value;
  if (v.type != ConfigType::Int) wrong_type("get_int", section_ + "." + key, v.type);
  return v.i;
}
double Options::get_float(const std::string& key) const {
  const ConfigValue& v = entry(key, "get_float").value;
  if (v.type == ConfigType::Int) return (double)v.i;
  if (v.type != ConfigType::Float) wrong_type("get_float", section_ + "." + key, v.type);
  return v.f;
}
bool Options::get_bool(const std::string& key) const {
  const ConfigValue& v = entry(key, "get_bool").value;
  if (v.type != ConfigType::Bool) wrong_type("get_bool", section_ + "." + key, v.type);
  return v.b;
}
const std::string& Options::get_string(const std::string& key) const {
  const ConfigValue& v = entry(key, "get_string").value;
  if (v.type != ConfigType::String && v.type != ConfigType::Enum) wrong_type("get_string", section_ + "." + key, v.type);
  return v.s;
}
const std::vector<double>& Options::get_floats(const std::string& key) const {
  const ConfigValue& v = entry(key, "get_floats").value;
  if (v.type != ConfigType::Floats) wrong_type("get_floats", section_ + "." + key, v.type);
  return v.fs;
}
const std::vector<int64_t>& Options::get_ints(const std::string& key) const {
  const ConfigValue& v = entry(key, "get_ints").value;
  if (v.type != ConfigType::Ints) wrong_type("get_ints", section_ + "." + key, v.type);
  return v.is;
}
const ConfigValue& Options::value(const std::string& key) const { return entry(key, "value").value; }
const std::string& Options::origin(const std::string& key) const { return entry(key, "origin").origin; }

void Options::fail(const std::string& key, const std::string& msg) const {
  const std::string& o = origin(key);
  throw Error((o.empty() ? source_ : o) + ": " + section_ + "." + key + ": " + msg);
}

// ------------------------------------------------------------- KeyBinder ---

void KeyBinder::declare(const std::string& key, KeySpec spec, ConfigValue def) {
  PW_CHECK(def.type == spec.type || (def.type == ConfigType::String && spec.type == ConfigType::Enum), "KeyBinder: '",
           key, "': a ", config_type_name(def.type), " field bound to a ", config_type_name(spec.type), " key");
  def.type = spec.type;
  spec.def = std::move(def);
  out_->add(key, std::move(spec), section_);
}

void KeyBinder::operator()(const std::string& key, int64_t& field, KeySpec spec) {
  if (!declaring()) { field = in_->get_int(key); return; }
  ConfigValue d;
  d.type = ConfigType::Int;
  d.i = field;
  declare(key, std::move(spec), d);
}
void KeyBinder::operator()(const std::string& key, double& field, KeySpec spec) {
  if (!declaring()) { field = in_->get_float(key); return; }
  ConfigValue d;
  d.type = ConfigType::Float;
  d.f = field;
  declare(key, std::move(spec), d);
}
void KeyBinder::operator()(const std::string& key, bool& field, KeySpec spec) {
  if (!declaring()) { field = in_->get_bool(key); return; }
  ConfigValue d;
  d.type = ConfigType::Bool;
  d.b = field;
  declare(key, std::move(spec), d);
}
void KeyBinder::operator()(const std::string& key, std::string& field, KeySpec spec) {
  if (!declaring()) { field = in_->get_string(key); return; }
  ConfigValue d;
  d.type = ConfigType::String;
  d.s = field;
  declare(key, std::move(spec), d);
}
void KeyBinder::operator()(const std::string& key, std::vector<double>& field, KeySpec spec) {
  if (!declaring()) { field = in_->get_floats(key); return; }
  ConfigValue d;
  d.type = ConfigType::Floats;
  d.fs = field;
  declare(key, std::move(spec), d);
}
void KeyBinder::operator()(const std::string& key, std::vector<int64_t>& field, KeySpec spec) {
  if (!declaring()) { field = in_->get_ints(key); return; }
  ConfigValue d;
  d.type = ConfigType::Ints;
  d.is = field;
  declare(key, std::move(spec), d);
}

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

}  // namespace pw
