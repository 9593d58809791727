// The core config keys: what every model, data set and run shares. Defaults
// follow PyTorch/timm conventions, sized for a small ViT on Fashion-MNIST that
// trains in minutes on a CPU. A model's own keys (depth, pool, a Swin's
// depths) come from its registration (nn/registry.h), a data set's from its
// own (data/dataset.h): model.type and data.dataset pick them.
#include <string>

#include "data/dataset.h"
#include "nn/registry.h"
#include "trainers/config.h"

namespace pw {

namespace {

void model_keys(Schema& s) {
  auto add = [&](const char* key, KeySpec spec) { s.add("model", key, std::move(spec)); };
  add("type", KeySpec::String("vit", "model name in the model registry"));
  add("image_size", KeySpec::Int(28, "input height and width in pixels").ge(1));
  add("channels", KeySpec::Int(1, "input channels (1 grey, 3 RGB)").ge(1));
  add("num_classes", KeySpec::Int(10, "classifier outputs").ge(1));
  s.add_variants("model", Variants{"type", "model", registered_models, pw::model_keys});
}

void data_keys(Schema& s) {
  auto add = [&](const char* key, KeySpec spec) { s.add("data", key, std::move(spec)); };
  add("dataset", KeySpec::String("fashion_mnist", "which dataset to train and evaluate on"));
  add("root", KeySpec::String("", "dataset directory; \"\" = the dataset's default location").runtime());
  add("num_workers", KeySpec::Int(2, "loader threads decoding and augmenting batches").ge(0).runtime());
  add("prefetch", KeySpec::Int(2, "batches each worker prepares ahead").ge(1).runtime());
  // Runtime: turning it on to resume a run that stopped at a bad file is the point.
  add("skip_bad_files", KeySpec::Bool(false, "replace unreadable image files by the next sample instead of stopping "
                                             "(each reported once; see `patchwork data check`)")
                            .runtime());
  add("crop_padding", KeySpec::Int(0, "random crop after zero-padding by this many pixels (0 = off)").ge(0));
  add("hflip", KeySpec::Bool(false, "random horizontal flips"));
  add("random_erasing", KeySpec::Float(0.0, "probability of erasing a random rectangle (0 = off)").ge(0).le(1));
  add("randaugment_n", KeySpec::Int(0, "RandAugment ops per image (0 = off)").ge(0));
  add("randaugment_m", KeySpec::Int(9, "RandAugment magnitude").ge(0).le(30));
  add("mixup_alpha", KeySpec::Float(0.0, "mixup Beta(alpha, alpha) (0 = off)").ge(0));
  add("cutmix_alpha", KeySpec::Float(0.0, "cutmix Beta(alpha, alpha) (0 = off)").ge(0));
  add("resize", KeySpec::Int(0, "resize the shorter side to this many pixels first (0 = keep)").ge(0));
  add("crop_size", KeySpec::Int(0, "crop to this square (random in training, centre in eval; 0 = off)").ge(0));
  add("normalize", KeySpec::Bool(true, "subtract the dataset mean and divide by its std per channel"));
  s.add_variants("data", Variants{"dataset", "data set", registered_datasets, pw::dataset_keys});
}

void train_keys(Schema& s) {
  auto add = [&](const char* key, KeySpec spec) { s.add("train", key, std::move(spec)); };
  add("epochs", KeySpec::Int(10, "passes over the training set").ge(1));
  add("batch_size", KeySpec::Int(128, "images per optimizer step").ge(1));
  add("optimizer", KeySpec::Enum("adamw", {"adamw", "sgd"}, "update rule"));
  add("lr", KeySpec::Float(1e-3, "peak learning rate, reached after warmup").gt(0));
  add("min_lr", KeySpec::Float(1e-5, "learning rate at the end of the cosine schedule").ge(0));
  add("weight_decay", KeySpec::Float(0.05, "decoupled weight decay (not applied to biases and norms)").ge(0));
  add("betas", KeySpec::Floats({0.9, 0.999}, "AdamW moment decay rates").len(2).ge(0).lt(1));
  add("momentum", KeySpec::Float(0.9, "SGD momentum").ge(0).lt(1));
  add("nesterov", KeySpec::Bool(false, "SGD with Nesterov momentum"));
  add("schedule", KeySpec::Enum("cosine", {"cosine", "step", "constant"}, "learning-rate schedule after warmup"));
  add("warmup_epochs", KeySpec::Float(1.0, "linear warmup from 0 to lr over this many epochs").ge(0));
  add("step_size", KeySpec::Int(30, "step schedule: epochs between decays").ge(1));
  add("gamma", KeySpec::Float(0.1, "step schedule: factor applied at each decay").gt(0).le(1));
  add("clip_grad", KeySpec::Float(0.0, "clip the global gradient norm to this (0 = off)").ge(0));
  add("label_smoothing", KeySpec::Float(0.1, "cross-entropy label smoothing").ge(0).lt(1));
  add("ema_decay", KeySpec::Float(0.0, "exponential moving average of the weights (0 = off; e.g. 0.9998)").ge(0).lt(1));
  add("seed", KeySpec::Int(0, "seed of every random draw: init, shuffling, augmentation, dropout").ge(0));
  add("threads", KeySpec::Int(0, "CPU threads (0 = all cores)").ge(0).runtime());
  add("device", KeySpec::Enum("auto", {"cpu", "cuda", "auto"}, "where to train; auto = cuda when present").runtime());
  add("precision", KeySpec::Enum("fp32", {"fp32", "tf32", "bf16"}, "CUDA math: fp32, tf32 matmuls or bf16 autocast")
                       .runtime());
  add("log_every", KeySpec::Int(50, "steps between progress lines").ge(1).runtime());
  add("eval_every", KeySpec::Int(1, "epochs between evaluations (0 = only at the end)").ge(0).runtime());
  add("checkpoint_every", KeySpec::Int(1, "epochs between checkpoints (0 = only at the end)").ge(0).runtime());
}

void eval_keys(Schema& s) {
  s.add("eval", "batch_size", KeySpec::Int(256, "images per evaluation batch").ge(1).runtime());
  s.add("eval", "hflip_tta",
        KeySpec::Bool(false, "test-time augmentation: average the logits of each image and its mirror image")
            .runtime());
}

void core_checks(Schema& s) {
  s.add_check([](const Config& c) {
    if (c.get_float("train.min_lr") > c.get_float("train.lr"))
      c.fail("train.min_lr", "the schedule's floor " + format_value(c.value("train.min_lr")) +
                                 " is above train.lr " + format_value(c.value("train.lr")) + "; lower train.min_lr");
  });
  s.add_check([](const Config& c) {
    int64_t resize = c.get_int("data.resize"), crop = c.get_int("data.crop_size");
    if (resize > 0 && crop > resize)
      c.fail("data.crop_size", std::to_string(crop) + " is larger than data.resize " + std::to_string(resize) +
                                   "; a crop must fit inside the resized image");
  });
}

}  // namespace

void register_core_config(Schema& schema) {
  model_keys(schema);
  data_keys(schema);
  train_keys(schema);
  eval_keys(schema);
  core_checks(schema);
}

}  // namespace pw
