#include "nn/registry.h"

#include <map>

#include "runtime/check.h"

namespace pw {

namespace {
struct Entry {
  ModelSpec spec;
  KeySet keys;
};
std::map<std::string, Entry>& table() {
  static std::map<std::string, Entry> t;
  return t;
}
std::string known() {
  std::string s;
  for (auto& [n, e] : table()) s += (s.empty() ? "" : ", ") + n;
  return s;
}
}  // namespace

void register_model(ModelSpec spec) {
  PW_CHECK(!spec.name.empty() && spec.make, "register_model: a model needs a name and a factory");
  PW_CHECK(!table().count(spec.name), "register_model: model type '", spec.name, "' registered twice");
  Entry e;
  e.keys.doc = spec.doc;
  if (spec.declare) {
    try {
      spec.declare(e.keys);
    } catch (const Error& err) {
      PW_FAIL("register_model: model '", spec.name, "': ", err.what());
    }
  }
  for (const auto& [key, k] : e.keys.keys) check_spec("model", key, k);
  std::string name = spec.name;
  e.spec = std::move(spec);
  table().emplace(name, std::move(e));
}

const KeySet* model_keys(const std::string& name) {
  auto it = table().find(name);
  return it == table().end() ? nullptr : &it->second.keys;
}

std::vector<std::string> registered_models() {
  std::vector<std::string> names;
  for (auto& [n, e] : table()) names.push_back(n);
  return names;
}

std::shared_ptr<Module> create_model(const Options& model) {
  const std::string& type = model.get_string("type");
  auto it = table().find(type);
  if (it == table().end()) model.fail("type", "unknown model '" + type + "'; registered models are: " + known());
  return it->second.spec.make(model);
}

}  // namespace pw
