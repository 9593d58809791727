#include "data/dataset.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>

#include "runtime/check.h"

namespace pw {

namespace {
struct Entry {
  DatasetSpec spec;
  KeySet keys;
};
std::map<std::string, Entry>& table() {
  static std::map<std::string, Entry> t;
  return t;
}
std::map<std::string, std::string>& aliases() {  // alias -> name
  static std::map<std::string, std::string> a;
  return a;
}
const Entry* lookup(const std::string& name) {
  auto a = aliases().find(name);
  auto it = table().find(a == aliases().end() ? name : a->second);
  return it == table().end() ? nullptr : &it->second;
}
std::string known() {
  std::string s;
  for (auto& [n, e] : table()) s += (s.empty() ? "" : ", ") + n;
  return s;
}
}  // namespace

void register_dataset(DatasetSpec spec) {
  PW_CHECK(!spec.name.empty() && spec.open, "register_dataset: a data set needs a name and an open function");
  PW_CHECK(!lookup(spec.name), "register_dataset: data set '", spec.name, "' registered twice");
  for (const std::string& a : spec.aliases)
    PW_CHECK(!lookup(a) && !aliases().count(a), "register_dataset: alias '", a, "' of '", spec.name, "' is taken");
  PW_CHECK(spec.norm.mean.size() == spec.norm.std.size(), "register_dataset: '", spec.name,
           "': mean and std have different lengths");
  Entry e;
  e.keys.doc = spec.doc;
  if (spec.declare) {
    try {
      spec.declare(e.keys);
    } catch (const Error& err) {
      PW_FAIL("register_dataset: data set '", spec.name, "': ", err.what());
    }
  }
  for (const std::string& a : spec.aliases) aliases()[a] = spec.name;
  std::string name = spec.name;
  e.spec = std::move(spec);
  table().emplace(name, std::move(e));
}

const DatasetSpec* find_dataset(const std::string& name) {
  const Entry* e = lookup(name);
  return e ? &e->spec : nullptr;
}

const KeySet* dataset_keys(const std::string& name) {
  const Entry* e = lookup(name);
  return e ? &e->keys : nullptr;
}

std::vector<std::string> registered_datasets() {
  std::vector<std::string> names;
  for (auto& [n, e] : table()) names.push_back(n);
  return names;
}

void require_root(const std::string& name, const std::string& root) {
  PW_CHECK(!root.empty(), "open_dataset: data set '", name,
           "' has no default location; set data.root to the folder holding its files");
}

std::shared_ptr<Dataset> open_dataset(const Options& data, bool train) {
  const std::string& name = data.get_string("dataset");
  const Entry* e = lookup(name);
  PW_CHECK(e, "open_dataset: unknown data set '", name, "'; use one of ", known());
  std::string root = data.get_string("root");
  if (root.empty()) root = e->spec.default_root;
  return e->spec.open(root, data, train);
}

std::shared_ptr<Dataset> open_dataset(const std::string& name, const std::string& root, bool train) {
  const Entry* e = lookup(name);
  PW_CHECK(e, "open_dataset: unknown data set '", name, "'; use one of ", known());
  Options data = Options::defaults("data", e->keys, "open_dataset");
  KeySpec s = KeySpec::String("", "data set name");
  data.declare("dataset", s);
  data.declare("root", s);
  ConfigValue v;
  v.type = ConfigType::String;
  v.s = name;
  data.set("dataset", v, "");
  v.s = root;
  data.set("root", v, "");
  return open_dataset(data, train);
}

Normalization normalization_for(const std::string& name) {
  const Entry* e = lookup(name);
  PW_CHECK(e && !e->spec.norm.mean.empty(), "normalization_for: no statistics for data set '", name, "'; use one of ",
           known(), ", or give mean/std explicitly");
  return e->spec.norm;
}

std::vector<uint8_t> read_sample_file(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr)
    throw BadSampleError(path, std::string("cannot open it (") + std::strerror(errno) +
                                   "); check that it exists and is readable");
  std::vector<uint8_t> bytes;
  std::fseek(f, 0, SEEK_END);
  long size = std::ftell(f);
  std::fseek(f, 0, SEEK_SET);
  if (size > 0) {
    bytes.resize((size_t)size);
    bytes.resize(std::fread(bytes.data(), 1, bytes.size(), f));
  }
  std::fclose(f);
  return bytes;
}

}  // namespace pw
