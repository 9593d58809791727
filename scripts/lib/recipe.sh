# Sourced by the recipe scripts (compare_pos_enc.sh, train_zoo.sh) from the repository root.

# find_patchwork NAME BUILD: prints the patchwork binary: BUILD/patchwork (BUILD absolute or
# relative to the repository root), or the first of build-nocuda, build that has one.
find_patchwork() {
  local name=$1 build=$2 pw
  if [[ -z $build ]]; then
    for d in build-nocuda build; do [[ -x $d/patchwork ]] && { build=$d; break; }; done
  fi
  build=${build:-build}
  [[ $build == /* ]] && pw=$build/patchwork || pw=$PWD/$build/patchwork
  [[ -x $pw ]] || { echo "$name: no patchwork binary at $pw; build first (--build DIR)" >&2; return 1; }
  echo "$pw"
}

# data_subset SUBSET_SCRIPT DATA OUT N_TRAIN N_TEST: the first N images of each split in the
# data set's own format in OUT/data when N_TRAIN or N_TEST is set; prints the data.root to use.
data_subset() {
  local script=$1 data=$2 out=$3 ntr=$4 nte=$5
  if [[ $ntr != 0 || $nte != 0 ]]; then
    python3 "$script" "$data" "$out/data" "$ntr" "$nte" >&2 || return 1
    echo "$out/data"
  else
    echo "$data"
  fi
}
