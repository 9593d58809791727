// Model registry: a config's `model.type` names a factory. Models register
// themselves from their own .cpp with PW_REGISTER_MODEL; nothing central changes.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "nn/module.h"

namespace pw {

// The `model:` block of a config as strings; typed getters with defaults.
struct ModelArgs {
  std::map<std::string, std::string> values;
  bool has(const std::string& k) const { return values.count(k) > 0; }
  int64_t i(const std::string& k, int64_t def) const;
  double f(const std::string& k, double def) const;
  bool b(const std::string& k, bool def) const;
  std::string s(const std::string& k, const std::string& def) const;
};

using ModelFactory = std::function<std::shared_ptr<Module>(const ModelArgs&)>;

void register_model(const std::string& type, ModelFactory f);
std::shared_ptr<Module> create_model(const std::string& type, const ModelArgs& args);
std::vector<std::string> registered_models();

namespace detail {
struct ModelRegistrar {
  ModelRegistrar(const std::string& type, ModelFactory f) { register_model(type, std::move(f)); }
};
}  // namespace detail

// NOTE: executables link patchwork_lib as a WHOLE_ARCHIVE (CMakeLists.txt), so a
// model file that nothing references by name still registers itself.
#define PW_CONCAT_(a, b) a##b
#define PW_CONCAT(a, b) PW_CONCAT_(a, b)
#define PW_REGISTER_MODEL(type, ...) \
  static ::pw::detail::ModelRegistrar PW_CONCAT(pw_model_registrar_, __LINE__)(type, __VA_ARGS__)

}  // namespace pw
