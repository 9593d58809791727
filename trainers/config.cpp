#include "trainers/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <set>

#include "io/atomic_file.h"
#include "runtime/check.h"

namespace pw {

namespace {

std::string quoted(const std::string& s) { return "'" + s + "'"; }

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string s;
  for (size_t k = 0; k < v.size(); ++k) s += (k ? sep : "") + v[k];
  return s;
}

bool ieq(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower((unsigned char)a[i]) != std::tolower((unsigned char)b[i])) return false;
  return true;
}

// "section.key" -> {section, key}; {"", ""} when there is no '.'.
std::pair<std::string, std::string> split_key(const std::string& full) {
  size_t dot = full.find('.');
  if (dot == std::string::npos) return {"", ""};
  return {full.substr(0, dot), full.substr(dot + 1)};
}

}  // namespace

// ---------------------------------------------------------------- Schema ---

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
  try {
    check_spec(section, key, spec);
  } catch (const Error& e) {
    throw Error(std::string("Schema::add: ") + e.what());
  }
  PW_CHECK(find(section, key) == nullptr, "Schema::add: '", section, ".", key, "' is declared twice");
  if (!keys_.count(section)) section_order_.push_back(section);
  keys_[section].keys.emplace_back(key, std::move(spec));
}

void Schema::add_check(std::function<void(const Config&)> check) { checks_.push_back(std::move(check)); }

void Schema::add_variants(const std::string& section, Variants v) {
  const KeySpec* sel = find(section, v.selector);
  PW_CHECK(sel && sel->type == ConfigType::String, "Schema::add_variants: '", section, ".", v.selector,
           "' must be a string key declared before");
  PW_CHECK(!variants_.count(section), "Schema::add_variants: section '", section, "' has variants already");
  PW_CHECK(v.names && v.find && !v.noun.empty(), "Schema::add_variants: '", section, "' needs names, find and a noun");
  variants_[section] = std::move(v);
}

bool Schema::has_section(const std::string& section) const { return keys_.count(section) != 0; }

const KeySpec* Schema::find(const std::string& section, const std::string& key) const {
  auto it = keys_.find(section);
  return it == keys_.end() ? nullptr : it->second.find(key);
}

const std::vector<std::pair<std::string, KeySpec>>& Schema::keys(const std::string& section) const {
  auto it = keys_.find(section);
  PW_CHECK(it != keys_.end(), "Schema::keys: no section '", section, "'");
  return it->second.keys;
}

const Variants* Schema::variants(const std::string& section) const {
  auto it = variants_.find(section);
  return it == variants_.end() ? nullptr : &it->second;
}

std::string Schema::describe() const {
  std::string out;
  for (const std::string& sec : section_order_) {
    const Variants* v = variants(sec);
    for (const auto& [key, spec] : keys(sec)) {
      if (v && key == v->selector) {
        KeySpec shown = spec;
        shown.type = ConfigType::Enum;
        shown.def.type = ConfigType::Enum;
        shown.choices = v->names();
        out += shown.describe(sec + "." + key) + "; its own keys: patchwork keys --" + sec + " NAME\n";
      } else {
        out += spec.describe(sec + "." + key) + "\n";
      }
    }
  }
  return out;
}

std::string Schema::describe_variant(const std::string& section, const std::string& name) const {
  const Variants* v = variants(section);
  PW_CHECK(v, "section '", section, "' has no variants");
  const KeySet* keys = v->find(name);
  if (!keys) {
    std::string guess = closest_match(name, v->names());
    PW_FAIL("unknown ", v->noun, " ", quoted(name), guess.empty() ? "" : "; did you mean " + quoted(guess) + "?",
            " (the ", v->noun, "s are ", join(v->names(), ", "), ")");
  }
  std::string out = section + "." + v->selector + ": " + name + (keys->doc.empty() ? "" : " - " + keys->doc) + "\n";
  if (keys->keys.empty()) out += "  (no keys of its own)\n";
  for (const auto& [key, spec] : keys->keys) out += spec.describe(section + "." + key) + "\n";
  return out;
}

ConfigKeys::ConfigKeys(void (*register_fn)(Schema&)) { register_fn(Schema::global()); }

namespace {

std::string unknown_section_msg(const Schema& schema, const std::string& section) {
  std::string guess = closest_match(section, schema.sections());
  if (!guess.empty()) return "unknown section " + quoted(section) + "; did you mean " + quoted(guess) + "?";
  return "unknown section " + quoted(section) + "; the sections are " + join(schema.sections(), ", ");
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
  if (ok && spec.allows(v)) {
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

std::string Config::unknown_key_msg(const std::string& sec, const std::string& key) const {
  const Options& opts = sections_.at(sec);
  std::string full = sec + "." + key;
  const Variants* v = schema_->variants(sec);
  const std::string chosen = v ? opts.get_string(v->selector) : "";
  std::string what = "unknown key " + quoted(full) + (v ? " for " + v->noun + " " + quoted(chosen) : "");
  std::vector<std::string> names;
  for (const auto& e : opts.entries()) names.push_back(e.key);
  std::string guess = closest_match(key, names);
  if (!guess.empty()) return what + "; did you mean " + quoted(sec + "." + guess) + "?";
  // Right key, wrong section (train.dropout for model.dropout)?
  for (const auto& [other, o] : sections_)
    if (o.find(key)) return what + "; did you mean " + quoted(other + "." + key) + "?";
  // A key of another model (model.depths under model.type: vit)?
  if (v) {
    std::vector<std::string> owners;
    for (const std::string& n : v->names())
      if (const KeySet* ks = v->find(n))
        if (ks->find(key)) owners.push_back(n);
    if (!owners.empty())
      return what + "; it is a key of " + v->noun + " " + join(owners, ", ") + ", and " + sec + "." + v->selector +
             " is " + quoted(chosen);
    return what + "; " + v->noun + " " + quoted(chosen) + " has " + join(names, ", ");
  }
  return what + "; section '" + sec + "' has " + join(names, ", ");
}

std::string Config::selector_error(const std::string& sec, const std::string& value) const {
  const Variants* v = schema_->variants(sec);
  std::vector<std::string> names = v->names();
  std::string msg = "expected one of " + join(names, "|") + ", got " + quoted(value);
  std::string guess = closest_match(value, names);
  if (!guess.empty()) msg += "; did you mean " + quoted(guess) + "?";
  return msg;
}

void Config::resolve(const std::string& sec, const std::string& name) {
  Options o(sec, source_);
  for (const auto& [key, spec] : schema_->keys(sec)) o.declare(key, spec);
  const KeySet* extra = nullptr;
  if (const Variants* v = schema_->variants(sec)) {
    extra = v->find(name);
    PW_CHECK(extra, sec, ".", v->selector, ": ", selector_error(sec, name));
    for (const auto& [key, spec] : extra->keys) {
      PW_CHECK(!o.find(key), v->noun, " '", name, "' declares '", sec, ".", key, "', which is a core key already");
      o.declare(key, spec);
    }
    o.set(v->selector, [&] {
      ConfigValue s;
      s.type = ConfigType::String;
      s.s = name;
      return s;
    }(), "");
  }
  sections_[sec] = std::move(o);
  variant_[sec] = extra;
}

Config Config::defaults(const Schema& schema) {
  Config c;
  c.schema_ = std::make_shared<const Schema>(schema);
  c.source_ = "defaults";
  for (const std::string& sec : schema.sections()) {
    const Variants* v = schema.variants(sec);
    c.resolve(sec, v ? schema.find(sec, v->selector)->def.s : "");
  }
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
  for (auto& [name, o] : c.sections_) o.set_source(source);
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    throw Error(at(source, e.mark) + ": not valid YAML: " + e.msg);
  }
  // First pass: the shape of the file, and every entry with where it is.
  struct Entry {
    std::string sec, key;
    YAML::Node key_node, val;
    int line;
  };
  std::vector<Entry> entries;
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
        if (!key_node.IsScalar())
          throw Error(at(source, key_node.Mark(), line) + ": keys in section '" + sec + "' are plain words, got " +
                      show_node(key_node));
        const std::string key = key_node.Scalar();
        const std::string full = sec + "." + key;
        if (key_line.count(full))
          throw Error(at(source, key_node.Mark(), line) + ": key '" + full + "' is set twice (first on line " +
                      std::to_string(key_line[full] + 1) + ")");
        key_line[full] = key_node.Mark().line;
        entries.push_back(Entry{sec, key, key_node, kv.second, line});
      }
    }
  }
  // Reads one entry into the config, checked against the section's keys as resolved now.
  auto read_entry = [&](const Entry& e) {
    const std::string full = e.sec + "." + e.key;
    Options::Entry* slot = c.sections_.at(e.sec).find(e.key);
    if (!slot) throw Error(at(source, e.key_node.Mark(), e.line) + ": " + c.unknown_key_msg(e.sec, e.key));
    int kline = e.key_node.Mark().line;
    ConfigValue v;
    std::string why;
    // An empty value has no position of its own (yaml-cpp puts it on the next line).
    if (!read_value(slot->spec, e.val, &v, &why))
      throw Error(at(source, e.val.IsNull() ? e.key_node.Mark() : e.val.Mark(), kline) + ": " + full + ": " + why);
    slot->value = std::move(v);
    slot->origin = at(source, e.key_node.Mark(), e.line);
  };
  // Selectors first: the file's, then the last override of each, pick the
  // variant keys every other entry is checked against.
  for (const std::string& sec : schema.sections()) {
    const Variants* v = schema.variants(sec);
    if (!v) continue;
    for (const Entry& e : entries)
      if (e.sec == sec && e.key == v->selector) {
        read_entry(e);
        const std::string& name = c.sections_.at(sec).get_string(v->selector);
        if (!v->find(name))
          throw Error(at(source, e.val.IsNull() ? e.key_node.Mark() : e.val.Mark(), e.key_node.Mark().line) + ": " +
                      sec + "." + v->selector + ": " + c.selector_error(sec, name));
        std::string origin = c.sections_.at(sec).origin(v->selector);
        c.resolve(sec, name);
        c.sections_.at(sec).set_source(source);
        c.sections_.at(sec).find(v->selector)->origin = origin;
      }
  }
  for (const Entry& e : entries) {
    const Variants* v = schema.variants(e.sec);
    if (!(v && e.key == v->selector)) read_entry(e);
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
    for (const auto& [sec, o] : sections_)
      if (o.find(full)) throw Error(where + ": expected section.key=value; did you mean '" + sec + "." + full + "'?");
    throw Error(where + ": expected section.key=value, e.g. --set train.lr=0.001");
  }
  const std::string sec = full.substr(0, dot), key = full.substr(dot + 1);
  if (!schema_->has_section(sec)) throw Error(where + ": " + unknown_section_msg(*schema_, sec));
  Options& opts = sections_.at(sec);
  const Options::Entry* slot = opts.find(key);
  if (!slot) throw Error(where + ": " + unknown_key_msg(sec, key));
  const KeySpec spec = slot->spec;
  YAML::Node node;
  try {
    // A string takes the text as typed: paths may hold '#', ': ' or quotes.
    node = spec.type == ConfigType::String ? YAML::Node(text) : YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw Error(where + ": " + full + ": the value is not valid YAML (" + e.msg + ")");
  }
  ConfigValue v;
  std::string why;
  if (!read_value(spec, node, &v, &why)) throw Error(where + ": " + full + ": " + why);
  const Variants* var = schema_->variants(sec);
  if (var && key == var->selector && v.s != opts.get_string(key)) {
    if (!var->find(v.s)) throw Error(where + ": " + full + ": " + selector_error(sec, v.s));
    // Another model: its keys replace the old one's; what was set carries over.
    Options old = opts;
    resolve(sec, v.s);
    Options& now = sections_.at(sec);
    now.set_source(source_);
    for (const Options::Entry& e : old.entries()) {
      if (e.origin.empty() || e.key == key) continue;
      Options::Entry* n = now.find(e.key);
      if (!n || !n->spec.allows(e.value))
        throw Error(where + ": " + sec + "." + e.key + " (set at " + e.origin + ") is " +
                    (n ? "not " + n->spec.expected() : "not a key") + " of " + var->noun + " " + quoted(v.s));
      n->value = e.value;
      n->origin = e.origin;
    }
  }
  Options::Entry* target = opts.find(key);  // opts is the rebuilt section if the selector changed
  target->value = std::move(v);
  target->origin = where;
}

void Config::validate() const {
  for (const auto& check : schema_->checks()) check(*this);
  for (const auto& [sec, keys] : variant_)
    if (keys)
      for (const auto& check : keys->checks) check(sections_.at(sec));
}

const Options::Entry& Config::entry(const std::string& key, const char* getter) const {
  auto [sec, k] = split_key(key);
  auto it = sections_.find(sec);
  const Options::Entry* e = it == sections_.end() ? nullptr : it->second.find(k);
  if (!e) {
    std::vector<std::string> names;
    for (const auto& [s, o] : sections_)
      for (const auto& x : o.entries()) names.push_back(s + "." + x.key);
    std::string guess = closest_match(key, names);
    throw Error(std::string("config: ") + getter + "(\"" + key + "\"): no such key" +
                (guess.empty() ? "" : "; did you mean '" + guess + "'?"));
  }
  return *e;
}


bool Config::has(const std::string& key) const {
  auto [sec, k] = split_key(key);
  auto it = sections_.find(sec);
  return it != sections_.end() && it->second.find(k) != nullptr;
}
// The typed getters: entry() names a missing key (with a guess across every
// section); the section's own getter checks the type, with the same message.
const Options& Config::section_of(const std::string& key, const char* getter) const {
  entry(key, getter);
  return sections_.at(split_key(key).first);
}
int64_t Config::get_int(const std::string& key) const {
  return section_of(key, "get_int").get_int(split_key(key).second);
}
double Config::get_float(const std::string& key) const {
  return section_of(key, "get_float").get_float(split_key(key).second);
}
bool Config::get_bool(const std::string& key) const {
  return section_of(key, "get_bool").get_bool(split_key(key).second);
}
const std::string& Config::get_string(const std::string& key) const {
  return section_of(key, "get_string").get_string(split_key(key).second);
}
const std::vector<double>& Config::get_floats(const std::string& key) const {
  return section_of(key, "get_floats").get_floats(split_key(key).second);
}
const std::vector<int64_t>& Config::get_ints(const std::string& key) const {
  return section_of(key, "get_ints").get_ints(split_key(key).second);
}
const ConfigValue& Config::value(const std::string& key) const { return entry(key, "value").value; }
const std::string& Config::origin(const std::string& key) const { return entry(key, "origin").origin; }

const Options& Config::section(const std::string& name) const {
  auto it = sections_.find(name);
  PW_CHECK(it != sections_.end(), "Config::section: no section '", name, "'");
  return it->second;
}

void Config::fail(const std::string& key, const std::string& msg) const {
  const std::string& o = origin(key);
  throw Error((o.empty() ? source_ : o) + ": " + key + ": " + msg);
}

std::string Config::to_yaml() const {
  std::string out = "# patchwork config, resolved: defaults filled in, overrides applied.\n";
  constexpr size_t kCommentColumn = 34;
  for (const std::string& sec : schema_->sections()) {
    out += sec + ":\n";
    for (const Options::Entry& e : sections_.at(sec).entries()) {
      std::string line = "  " + e.key + ": " + format_value(e.value);
      line.append(line.size() + 2 < kCommentColumn ? kCommentColumn - line.size() : 2, ' ');
      out += line + "# " + e.spec.doc + "\n";
    }
  }
  return out;
}

std::string Config::canonical(const std::vector<std::string>& sections, bool with_runtime) const {
  std::string out;
  for (const std::string& sec : sections) {
    PW_CHECK(sections_.count(sec), "Config::canonical: no section '", sec, "'");
    std::map<std::string, const Options::Entry*> keys;  // sorted
    for (const Options::Entry& e : sections_.at(sec).entries())
      if (with_runtime || !e.spec.is_runtime) keys[e.key] = &e;
    for (const auto& [k, e] : keys) out += sec + "." + k + ": " + format_value(e->value) + "\n";
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
      if (c->schema().has_section(sec))
        for (const Options::Entry& e : c->section(sec).entries())
          if (!e.spec.is_runtime) keys.insert(e.key);
    for (const std::string& k : keys) {
      const std::string full = sec + "." + k;
      bool in_a = a.has(full), in_b = b.has(full);
      if (in_a && in_b && a.value(full) == b.value(full)) continue;
      out.push_back(full + ": " + (in_a ? format_value(a.value(full)) : "absent") + " in " + a_name + ", " +
                    (in_b ? format_value(b.value(full)) : "absent") + " in " + b_name);
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
