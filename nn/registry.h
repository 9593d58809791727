// Model registry: a config's `model.type` names a model, and the model owns
// its keys. Each model registers itself from its own .cpp with
// PW_REGISTER_MODEL: its name, the typed keys it adds to the config's model:
// section (with its own defaults, ranges and docs), checks over them, and a
// factory that builds it from the resolved section. Nothing central changes;
// docs/adding_a_model.md walks through one.
//
// The core model keys every model shares (type, image_size, channels,
// num_classes; trainers/config_schema.cpp) are in the section the factory gets
// too; a model must not declare them again.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "io/keys.h"
#include "nn/module.h"

namespace pw {

struct ModelSpec {
  std::string name;  // the model.type value
  std::string doc;   // one line for `patchwork keys --model NAME`
  // Declares the model's own model.<key> keys into `keys`, with its defaults
  // (KeyBinder binds them to a typed struct), and any checks over them.
  std::function<void(KeySet& keys)> declare;
  // Builds the model from the resolved model: section (the core keys and the
  // model's own, all checked already). Parameters are drawn from the default
  // generator, which the caller has seeded.
  std::function<std::shared_ptr<Module>(const Options& model)> make;
};

// Registers a model; a name registered twice, or keys that don't declare
// cleanly, throw pw::Error (at startup).
void register_model(ModelSpec spec);
// The model's own keys (spec.declare run once, at registration); nullptr for
// an unknown name.
const KeySet* model_keys(const std::string& name);
std::vector<std::string> registered_models();  // sorted
// Builds the model `model.get_string("type")` names; an unknown name throws
// naming the registered ones.
std::shared_ptr<Module> create_model(const Options& model);

// Fills a model's options struct from its resolved model: section: the core keys
// (image_size, channels, num_classes) and the model's own, through o.bind(KeyBinder&).
template <class O>
void read_model_options(O& o, const Options& model) {
  o.image_size = model.get_int("image_size");
  o.channels = model.get_int("channels");
  o.num_classes = model.get_int("num_classes");
  KeyBinder read(model);
  o.bind(read);
}

// A ModelSpec::declare from an options struct: its keys, with the values in `defaults`
// as the defaults, and the model's check over several keys (nullptr: none).
template <class O>
std::function<void(KeySet&)> declare_model_keys(O defaults, void (*check)(const Options&)) {
  return [defaults, check](KeySet& k) mutable {
    KeyBinder b(k, "model");
    defaults.bind(b);
    if (check) k.add_check(check);
  };
}

namespace detail {
struct ModelRegistrar {
  explicit ModelRegistrar(ModelSpec spec) { register_model(std::move(spec)); }
};
}  // namespace detail

// NOTE: executables link patchwork_lib as a WHOLE_ARCHIVE (CMakeLists.txt), so a
// model file that nothing references by name still registers itself.
#define PW_CONCAT_(a, b) a##b
#define PW_CONCAT(a, b) PW_CONCAT_(a, b)
#define PW_REGISTER_MODEL(...) \
  static ::pw::detail::ModelRegistrar PW_CONCAT(pw_model_registrar_, __LINE__)(::pw::ModelSpec __VA_ARGS__)

}  // namespace pw
