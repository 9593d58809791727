#!/usr/bin/env bash
# The position-encoding comparison grid (issue 10): trains one backbone on Fashion-MNIST (or
# CIFAR-10: --dataset cifar10) with each position encoding under the same budget and seed, evaluates every run at the
# training size (28; CIFAR-10 32) and at a larger size (patchwork eval --image-size, learned tables
# interpolated bicubically), and writes docs/pos_enc.md (test top-1 at both sizes,
# parameters, training images/s) and docs/pos_enc.png (test accuracy per epoch and the
# training loss per logged step, one line per encoding).
#
# Needs: a built `patchwork` (--build DIR, default build-nocuda then build), Fashion-MNIST
# at --data DIR (default /usr/share/datasets/fashion-mnist: the four *-ubyte.gz files) or,
# with --dataset cifar10, CIFAR-10's binary version (default data/cifar-10-batches-bin),
# python3 for the subset files and the table, and matplotlib for the plot
# (/opt/torchenv/bin/python if it has it, else `python3 -m pip install matplotlib`;
# without it the table is still written and the plot is skipped, and the doc says so).
#
# The backbone: configs/fashion_mnist/vit.yaml (ViT, patch 4 -> a 7x7 grid + class token;
# CIFAR-10: configs/cifar10/vit.yaml, the same shape on 32x32 RGB -> an 8x8 grid), with model.pos_embed / model.rel_pos / model.attention set per encoding; the relative
# encodings run without an absolute one (pos_embed: none) so that they are compared alone.
#
#   scripts/compare_pos_enc.sh                         # the full budget (vit.yaml's 20 epochs;
#                                                      # hours per encoding on a 2-core CPU: use a GPU)
#   scripts/compare_pos_enc.sh --smoke                 # a tiny budget that proves the pipeline:
#       2 epochs on 1024 training / 500 test images (32 steps), a 2-block model (--set keys below)
#   scripts/compare_pos_enc.sh --epochs 5 --train-subset 10000 --set model.depth=4 ...
#   scripts/compare_pos_enc.sh --dataset cifar10 --epochs 10     # the CIFAR-10 variant (a GPU's job:
#       vit.yaml's 50 epochs are days on 2 CPU cores); writes docs/pos_enc_cifar10.md
#
# Options: --build DIR  --out DIR (run folders; default /tmp/pos_enc_grid)  --eval-size S (36; cifar10 48)
#   --dataset fashion_mnist|cifar10  --data DIR (the data set's folder)
#   --epochs E  --train-subset N --test-subset N (first N images; 0 = all)  --only a,b,c
#   --set k=v (repeatable; added to every run)  --doc PATH (docs/pos_enc.md; cifar10 docs/pos_enc_cifar10.md)  --smoke
#   --keep-results (add to $OUT/results.jsonl instead of starting it afresh: runs an encoding
#   left out before with --only, the doc lists every command)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
ORIG_CMD="scripts/compare_pos_enc.sh $*"

BUILD="" OUT=/tmp/pos_enc_grid EVAL_SIZE="" EPOCHS="" TRAIN_SUBSET=0 TEST_SUBSET=0 ONLY="" SMOKE=0 KEEP=0
DOC="" DATASET=fashion_mnist DATA=""
SETS=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build) BUILD=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --eval-size) EVAL_SIZE=$2; shift 2 ;;
    --epochs) EPOCHS=$2; shift 2 ;;
    --train-subset) TRAIN_SUBSET=$2; shift 2 ;;
    --test-subset) TEST_SUBSET=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --set) SETS+=("$2"); shift 2 ;;
    --doc) DOC=$2; shift 2 ;;
    --dataset) DATASET=$2; shift 2 ;;
    --data) DATA=$2; shift 2 ;;
    --smoke) SMOKE=1; shift ;;
    --keep-results) KEEP=1; shift ;;
    -h|--help) sed -n '2,35p' "$0"; exit 0 ;;
    *) echo "compare_pos_enc.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [[ $SMOKE == 1 ]]; then
  EPOCHS=${EPOCHS:-2}
  [[ $TRAIN_SUBSET == 0 ]] && TRAIN_SUBSET=1024
  [[ $TEST_SUBSET == 0 ]] && TEST_SUBSET=500
  SETS=(model.depth=2 model.dim=64 model.heads=4 model.dim_head=16 model.mlp_dim=128 train.batch_size=64
        train.warmup_epochs=0.2 train.threads=2 data.num_workers=1 "${SETS[@]}")
fi
source scripts/lib/recipe.sh
PW=$(find_patchwork compare_pos_enc.sh "$BUILD")
PY=python3
if /opt/torchenv/bin/python -c 'import matplotlib' 2>/dev/null; then PY=/opt/torchenv/bin/python; fi
case "$DATASET" in
  fashion_mnist) CONFIG=configs/fashion_mnist/vit.yaml; DATA=${DATA:-/usr/share/datasets/fashion-mnist}
                 EVAL_SIZE=${EVAL_SIZE:-36}; DOC=${DOC:-docs/pos_enc.md}; SIZE=28 SUBSET=scripts/fmnist_subset.py ;;
  cifar10) CONFIG=configs/cifar10/vit.yaml; DATA=${DATA:-data/cifar-10-batches-bin}
           EVAL_SIZE=${EVAL_SIZE:-48}; DOC=${DOC:-docs/pos_enc_cifar10.md}; SIZE=32 SUBSET=scripts/cifar_subset.py ;;
  *) echo "compare_pos_enc.sh: --dataset $DATASET is not fashion_mnist or cifar10" >&2; exit 2 ;;
esac
[[ -d $DATA ]] || { echo "compare_pos_enc.sh: no $DATASET data at $DATA; give its folder with --data DIR" >&2; exit 1; }
mkdir -p "$OUT"

SETS+=("data.root=$(data_subset "$SUBSET" "$DATA" "$OUT" "$TRAIN_SUBSET" "$TEST_SUBSET")")
[[ -n $EPOCHS ]] && SETS+=("train.epochs=$EPOCHS")
SETS+=(train.seed=0 train.eval_every=1 train.log_every=10 train.checkpoint_every=0)

# name | --set keys of the encoding
ENCODINGS=(
  "none|model.pos_embed=none"
  "learned|model.pos_embed=learned"
  "sincos2d|model.pos_embed=sincos2d"
  "sinusoidal|model.pos_embed=sinusoidal"
  "swin|model.pos_embed=none model.rel_pos=swin"
  "irpe|model.pos_embed=none model.rel_pos=irpe"
  "irpe_ctx|model.pos_embed=none model.rel_pos=irpe model.irpe_mode=contextual model.irpe_on=k"
  "alibi|model.pos_embed=none model.rel_pos=alibi"
  "rope2d|model.pos_embed=none model.rel_pos=rope2d"
  "shaw|model.pos_embed=none model.rel_pos=shaw"
  "xl|model.pos_embed=none model.rel_pos=xl"
  "huang|model.pos_embed=none model.rel_pos=huang"
  "sasa|model.pos_embed=none model.attention=sasa model.sasa_kernel=7"
  "linear_elu+learned|model.pos_embed=learned model.attention=linear_elu"
)
# PEG (CPVT) when this build has it
if "$PW" keys --model vit 2>/dev/null | grep -q "peg"; then ENCODINGS+=("peg|model.pos_embed=peg"); fi

RESULTS=$OUT/results.jsonl
if [[ $KEEP == 0 ]]; then : > "$RESULTS"; : > "$OUT/commands.txt"; fi
echo "$ORIG_CMD" >> "$OUT/commands.txt"
for e in "${ENCODINGS[@]}"; do
  name=${e%%|*}
  keys=${e#*|}
  if [[ -n $ONLY && ",$ONLY," != *",$name,"* ]]; then continue; fi
  args=()
  for s in "${SETS[@]}" $keys; do args+=(--set "$s"); done
  run=$OUT/runs/$name
  rm -rf "$run"
  echo "== $name: $keys" >&2
  "$PW" train "$CONFIG" "${args[@]}" --out "$run" > "$OUT/$name.train.log" 2>&1 ||
    { echo "compare_pos_enc.sh: $name failed to train; see $OUT/$name.train.log" >&2; exit 1; }
  params=$("$PW" info "$CONFIG" "${args[@]}" | sed -n 's/^parameters: \([0-9]*\).*/\1/p')
  # the evaluation gets the run's keys (data.root, model size); --image-size overrides model.image_size
  "$PW" eval "$CONFIG" "${args[@]}" --checkpoint "$run" --json > "$OUT/$name.evalT.json" 2> "$OUT/$name.evalT.log"
  "$PW" eval "$CONFIG" "${args[@]}" --checkpoint "$run" --image-size "$EVAL_SIZE" --json \
    > "$OUT/$name.eval$EVAL_SIZE.json" 2> "$OUT/$name.evalS.log" ||
    { echo "compare_pos_enc.sh: $name failed to evaluate at $EVAL_SIZE; see $OUT/$name.evalS.log" >&2; exit 1; }
  "$PY" - "$name" "$keys" "$params" "$run/metrics.jsonl" "$OUT/$name.evalT.json" "$OUT/$name.eval$EVAL_SIZE.json" \
    >> "$RESULTS" <<'EOF'
import json, sys
name, keys, params, metrics, eT, eS = sys.argv[1:7]
steps, evals = [], []
for line in open(metrics):
    m = json.loads(line)
    if "images_per_s" in m and m.get("loss") is not None:
        steps.append((m["step"], m["loss"], m["images_per_s"]))
    if "test_top1" in m:
        evals.append((m["epoch"], m["test_top1"]))
ips = sorted(s[2] for s in steps[1:] or steps)
print(json.dumps({"name": name, "keys": keys, "params": int(params), "top1_train_size": json.load(open(eT))["top1"],
                  "top1_eval_size": json.load(open(eS))["top1"], "images_per_s": ips[len(ips) // 2] if ips else None,
                  "loss_curve": [(s, l) for s, l, _ in steps], "acc_curve": evals}))
EOF
done

# the doc and the plot
"$PY" - "$RESULTS" "$DOC" "$EVAL_SIZE" "$SMOKE" "${EPOCHS:-vit.yaml}" "$TRAIN_SUBSET" "$TEST_SUBSET" \
  "$(printf '%s ' "${SETS[@]}")" "$OUT/commands.txt" "$DATASET" "$CONFIG" "$SIZE" <<'EOF'
import datetime, json, os, sys
res_path, doc, S, smoke, epochs, ntr, nte, sets, cmds, dataset, config, size = sys.argv[1:13]
dname = {"fashion_mnist": "Fashion-MNIST", "cifar10": "CIFAR-10"}[dataset]
grid = int(S) // 4
cmd = "`, then `".join(l.strip() for l in open(cmds) if l.strip())
rows = [json.loads(l) for l in open(res_path)]
png = os.path.splitext(doc)[0] + ".png"
plot_note = ""
try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(1, 2, figsize=(12, 4.5))
    for r in rows:
        if r["acc_curve"]:
            ax[0].plot([e for e, _ in r["acc_curve"]], [100 * a for _, a in r["acc_curve"]], marker="o", label=r["name"])
        if r["loss_curve"]:
            ax[1].plot([s for s, _ in r["loss_curve"]], [l for _, l in r["loss_curve"]], label=r["name"])
    ax[0].set_xlabel("epoch"); ax[0].set_ylabel("test top-1 (%)"); ax[0].set_title(f"{dname} test accuracy (training size {size})")
    ax[1].set_xlabel("step"); ax[1].set_ylabel("training loss (window mean)"); ax[1].set_title("training loss")
    ax[1].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plot_note = f"![accuracy and loss curves]({os.path.basename(png)})"
except ImportError:
    plot_note = "(no plot: matplotlib is not installed; `python3 -m pip install matplotlib` and rerun)"
now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
lines = [f"# Position encodings compared on {dname} (issue 10)", ""]
if smoke == "1":
    lines += ["**SMOKE BUDGET — these numbers do not rank the encodings.** This table comes from a tiny run "
              "that only proves the pipeline (training, evaluation at two sizes, table and plot) works end to end "
              "on a shared 2-core CPU: a 2-block model, "
              f"{epochs} epochs on the first {ntr} training images ({int(ntr) * int(epochs) // 64} steps of 64), tested on "
              f"the first {nte} test images, on a shared 2-core machine under heavy load (so images/s is not a speed "
              "measurement either). "
              "Differences of a few points are noise at this budget. Run the full grid on a GPU "
              "(`scripts/compare_pos_enc.sh` without --smoke) for numbers that mean something.", ""]
lines += [f"Command: `{cmd}` (finished {now}; the train, eval and info outputs are in the --out folder).", "",
          f"Backbone: {config} (ViT, patch 4, class token) with `{sets.strip()}` on every run; "
          "seed 0 for all. Relative encodings run without an absolute one (pos_embed: none). "
          f"\"top-1 @{S}\" is `patchwork eval --image-size {S}`: the test images resized to {S}x{S} (a {grid}x{grid} grid), "
          "learned tables interpolated bicubically, fixed tables recomputed, relative tables as they are "
          "(Swin's table interpolated; nn/posenc.h). images/s: the median of the logged training steps (CPU, "
          "train.threads as set).", "",
          f"| encoding | params | test top-1 @{size} | test top-1 @{S} | train images/s | keys |",
          "|---|---:|---:|---:|---:|---|"]
for r in rows:
    ips = f"{r['images_per_s']:.0f}" if r["images_per_s"] else "-"
    lines.append(f"| {r['name']} | {r['params']:,} | {100 * r['top1_train_size']:.2f}% | "
                 f"{100 * r['top1_eval_size']:.2f}% | {ips} | `{r['keys']}` |")
lines += ["", plot_note, ""]
open(doc, "w").write("\n".join(lines))
print("wrote", doc, "and", png if plot_note.startswith("!") else "(no plot)")
EOF
