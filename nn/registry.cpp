#include "nn/registry.h"

#include <cstdlib>

#include "runtime/check.h"

namespace pw {

namespace {
std::map<std::string, ModelFactory>& table() {
  static std::map<std::string, ModelFactory> t;
  return t;
}
}  // namespace

int64_t ModelArgs::i(const std::string& k, int64_t def) const {
  auto it = values.find(k);
  if (it == values.end()) return def;
  char* end = nullptr;
  long long v = std::strtoll(it->second.c_str(), &end, 10);
  PW_CHECK(end && *end == 0 && !it->second.empty(), "model.", k, ": expected an integer, got '", it->second, "'");
  return v;
}
double ModelArgs::f(const std::string& k, double def) const {
  auto it = values.find(k);
  if (it == values.end()) return def;
  char* end = nullptr;
  double v = std::strtod(it->second.c_str(), &end);
  PW_CHECK(end && *end == 0 && !it->second.empty(), "model.", k, ": expected a number, got '", it->second, "'");
  return v;
}
bool ModelArgs::b(const std::string& k, bool def) const {
  auto it = values.find(k);
  if (it == values.end()) return def;
  if (it->second == "true") return true;
  if (it->second == "false") return false;
  PW_FAIL("model.", k, ": expected true or false, got '", it->second, "'");
}
std::string ModelArgs::s(const std::string& k, const std::string& def) const {
  auto it = values.find(k);
  return it == values.end() ? def : it->second;
}

void register_model(const std::string& type, ModelFactory f) {
  PW_CHECK(!table().count(type), "register_model: model type '", type, "' registered twice");
  table()[type] = std::move(f);
}
std::vector<std::string> registered_models() {
  std::vector<std::string> names;
  for (auto& [n, f] : table()) names.push_back(n);
  return names;
}
std::shared_ptr<Module> create_model(const std::string& type, const ModelArgs& args) {
  auto it = table().find(type);
  if (it == table().end()) {
    std::string known;
    for (auto& [n, f] : table()) known += (known.empty() ? "" : ", ") + n;
    PW_FAIL("model.type: unknown model '", type, "'; registered models are: ", known);
  }
  return it->second(args);
}

}  // namespace pw
