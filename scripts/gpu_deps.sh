#!/usr/bin/env bash
# The Debian packages patchwork builds against, carried to a machine that has
# none of them and no network (the lent GPU machine: CUDA, CMake, ninja and
# PyTorch, but no apt). Two halves:
#
#   scripts/gpu_deps.sh [--download]      here, on Debian 12: apt-get download the
#                                         .debs into .deps/debs (git-ignored; name
#                                         `.deps` in the run tool's carry list)
#   scripts/gpu_deps.sh --extract PREFIX  there: unpack them into PREFIX (dpkg -x,
#                                         else ar + tar, else python3), then print
#                                         the CMake flags and environment to use
#
# After --extract, PREFIX holds:
#   PREFIX/usr/...     the packages as Debian lays them out (headers, CMake
#                      package files, .so files, the Fashion-MNIST .gz files)
#   PREFIX/rtlib/      links to the shared libraries the programs need at run
#                      time (LD_LIBRARY_PATH): libdnnl, libyaml-cpp, libstb, plus
#                      libOpenCL/libz only if the system lacks them, plus
#                      libstdc++/libgcc_s/libgomp from PREFIX/fallback only if the
#                      system lacks them or its libstdc++ is older than GCC 12's
#   PREFIX/env.sh      `source` it: exports PW_DEPS_PREFIX, CMAKE_PREFIX_PATH,
#                      LD_LIBRARY_PATH, PW_FASHION_MNIST
# CMakeLists.txt reads PW_DEPS_PREFIX (cache variable or environment) and
# searches PREFIX/usr before the system for every dependency.
#
# Environment: PW_DEPS_RTLIB_ALL=1 links every carried library into rtlib, even
# those the system has (the dry run on Debian uses it to run on carried libs only).
set -euo pipefail
cd "$(dirname "$0")/.."
DEBS=.deps/debs

# What the build needs (-dev), what those need at run time, and the data set.
# libdnnl-dev's CMake package does find_package(OpenCL REQUIRED): hence the
# OpenCL headers, ocl-icd-opencl-dev (libOpenCL.so) and its loader library.
PKGS=(libdnnl-dev libdnnl2 libyaml-cpp-dev libyaml-cpp0.7 doctest-dev libstb-dev libstb0
      zlib1g-dev zlib1g ocl-icd-opencl-dev ocl-icd-libopencl1 opencl-c-headers opencl-clhpp-headers
      dataset-fashion-mnist)
# Unpacked into PREFIX/fallback, used only if the machine's own are missing or too old
# (libdnnl2 needs libstdc++ >= GCC 12's: GLIBCXX_3.4.30).
FALLBACK=(libstdc++6 libgcc-s1 libgomp1)

# apt-get download PKG... into DIR as DIR/PKG.deb (plain names travel anywhere);
# the versions go to DIR/VERSIONS.txt.
fetch() {
  local dir=$1 tmp p
  shift
  mkdir -p "$dir"
  tmp=$(mktemp -d)
  chmod 755 "$tmp"
  (cd "$tmp" && apt-get download "$@")
  for p in "$@"; do
    mv "$tmp/${p}"_*.deb "$dir/$p.deb"
    echo "$p $(dpkg-deb -f "$dir/$p.deb" Version)" >>"$dir/VERSIONS.txt"
  done
  rm -rf "$tmp"
}

download() {
  command -v apt-get >/dev/null || { echo "gpu_deps: no apt-get here: download on Debian 12" >&2; exit 1; }
  local missing=() p
  for p in "${PKGS[@]}"; do [[ -f $DEBS/$p.deb ]] || missing+=("$p"); done
  if ((${#missing[@]})); then fetch "$DEBS" "${missing[@]}"; fi
  missing=()
  for p in "${FALLBACK[@]}"; do [[ -f $DEBS/fallback/$p.deb ]] || missing+=("$p"); done
  if ((${#missing[@]})); then fetch "$DEBS/fallback" "${missing[@]}"; fi
  echo "gpu_deps: $(find "$DEBS" -name '*.deb' | wc -l) packages in $DEBS:"
  (cd "$DEBS" && ls -l ./*.deb fallback/*.deb | awk '{printf "  %9d  %s\n", $5, $NF}')
  local total
  total=$(du -cb "$DEBS" | tail -1 | cut -f1)
  echo "gpu_deps: total $total bytes ($(awk -v b="$total" 'BEGIN {printf "%.1f", b / 1048576}') MiB; the run tool carries 64 MiB with the tree)"
}

# Unpack one .deb into a folder: dpkg -x, else ar + tar, else python3 alone.
unpack() {
  local deb=$1 dest=$2
  mkdir -p "$dest"
  local how=${PW_DEPS_UNPACK:-}  # dpkg | ar | python: force one (to test the fallbacks)
  if [[ -z $how ]]; then
    if command -v dpkg-deb >/dev/null; then how="dpkg"; elif command -v ar >/dev/null; then how="ar"; else how="python"; fi
  fi
  if [[ $how == dpkg ]]; then dpkg-deb -x "$deb" "$dest"; return; fi
  local tmp abs
  tmp=$(mktemp -d)
  abs=$(realpath "$deb")
  if [[ $how == ar ]]; then
    (cd "$tmp" && ar x "$abs")
    local data
    data=$(ls "$tmp"/data.tar.*)
    case "$data" in
      *.zst) zstd -dc "$data" | tar -x -C "$dest" ;;
      *) tar -xf "$data" -C "$dest" ;;  # GNU tar picks xz/gz/bz2 itself
    esac
  else
    python3 - "$deb" "$dest" <<'EOF'
import io, sys, tarfile
deb, dest = sys.argv[1], sys.argv[2]
with open(deb, "rb") as f:
    assert f.read(8) == b"!<arch>\n", "not an ar archive"
    while True:
        head = f.read(60)
        if len(head) < 60:
            sys.exit("no data.tar member in " + deb)
        name, size = head[:16].decode().strip().rstrip("/"), int(head[48:58])
        body = f.read(size)
        f.read(size & 1)
        if name.startswith("data.tar"):
            t = tarfile.open(fileobj=io.BytesIO(body))
            t.extractall(dest, **({"filter": "fully_trusted"} if hasattr(tarfile, "fully_trusted_filter") else {}))
            break
EOF
  fi
  rm -rf "$tmp"
}

# Does the dynamic loader already know this soname (outside PREFIX)?
system_has() { ldconfig -p 2>/dev/null | grep -q "^[[:space:]]*$1 "; }

extract() {
  local prefix=$1
  [[ -d $DEBS ]] || { echo "gpu_deps: no $DEBS here (carry .deps, or run scripts/gpu_deps.sh on Debian first)" >&2; exit 1; }
  mkdir -p "$prefix"
  prefix=$(realpath "$prefix")
  local n=0
  for deb in "$DEBS"/*.deb; do unpack "$deb" "$prefix"; n=$((n + 1)); done
  for deb in "$DEBS"/fallback/*.deb; do [[ -e $deb ]] && unpack "$deb" "$prefix/fallback"; done
  # Debian's absolute symlinks (usr/lib/.../libz.so -> /lib/.../libz.so.1.2.13) would reach
  # the system's files: point them into the prefix.
  local l
  while IFS= read -r l; do ln -sfn "$prefix$(readlink "$l")" "$l"; done \
    < <(find "$prefix/usr" "$prefix/lib" -type l -lname '/*' 2>/dev/null)
  # Some CMake packages (doctest) hard-code their prefix as /usr: make it this one.
  find "$prefix/usr" -name '*.cmake' -exec sed -i "s|set(_IMPORT_PREFIX \"/usr\")|set(_IMPORT_PREFIX \"$prefix/usr\")|" {} +
  local libdir=$prefix/usr/lib/x86_64-linux-gnu rt=$prefix/rtlib
  rm -rf "$rt"
  mkdir -p "$rt"
  # Always: the libraries whose headers we compile against.
  for so in "$libdir"/libdnnl.so.* "$libdir"/libyaml-cpp.so.* "$libdir"/libstb.so.*; do ln -sf "$so" "$rt/"; done
  # Common ones: only where the system has none (or when asked for all).
  for name in libOpenCL.so.1 libz.so.1; do
    if [[ ${PW_DEPS_RTLIB_ALL:-0} == 1 ]] || ! system_has "$name"; then
      ln -sf "$(realpath -e "$libdir/$name" 2>/dev/null || realpath -e "$prefix/lib/x86_64-linux-gnu/$name")" "$rt/$name"
    fi
  done
  local fb=$prefix/fallback/usr/lib/x86_64-linux-gnu
  local sys_cxx
  sys_cxx=$(ldconfig -p 2>/dev/null | sed -n 's/.*libstdc++\.so\.6 (libc6,x86-64) => //p' | head -1)
  if [[ -z $sys_cxx ]] || ! grep -q GLIBCXX_3.4.30 "$sys_cxx"; then
    echo "gpu_deps: system libstdc++ '${sys_cxx:-none}' lacks GLIBCXX_3.4.30: using the carried GCC 12 one" >&2
    ln -sf "$fb"/libstdc++.so.6 "$fb"/libgcc_s.so.1 "$rt/"
  fi
  system_has libgomp.so.1 || ln -sf "$fb/libgomp.so.1" "$rt/"
  local data=$prefix/usr/share/datasets/fashion-mnist
  cat >"$prefix/env.sh" <<EOF
# written by scripts/gpu_deps.sh --extract; source it
export PW_DEPS_PREFIX=$prefix
export CMAKE_PREFIX_PATH=$prefix/usr\${CMAKE_PREFIX_PATH:+:\$CMAKE_PREFIX_PATH}
export LD_LIBRARY_PATH=$rt\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}
export PW_FASHION_MNIST=$data
EOF
  echo "gpu_deps: unpacked $n packages into $prefix"
  echo "gpu_deps: run-time libraries in $rt: $(cd "$rt" && ls | tr '\n' ' ')"
  # Every carried library must resolve (the loader names what it cannot find).
  local bad=0
  for so in "$rt"/*; do
    if LD_LIBRARY_PATH=$rt ldd "$so" 2>&1 | grep -E "not found" >&2; then bad=1; echo "  ^ in $so" >&2; fi
  done
  ((bad == 0)) && echo "gpu_deps: ldd: every library in rtlib resolves"
  [[ -f $data/train-images-idx3-ubyte.gz ]] && echo "gpu_deps: Fashion-MNIST in $data"
  cat <<EOF

Use:
  source $prefix/env.sh
  cmake -S . -B build -G Ninja -DPW_DEPS_PREFIX=$prefix -DCMAKE_PREFIX_PATH=$prefix/usr \\
        -DCMAKE_POLICY_VERSION_MINIMUM=3.5 ...
  build/patchwork train CONFIG --set data.root=$data ...
EOF
  return $bad
}

case "${1:---download}" in
  --download) download ;;
  --extract) [[ $# -eq 2 ]] || { echo "usage: $0 --extract PREFIX" >&2; exit 2; }; extract "$2" ;;
  *) echo "usage: $0 [--download] | --extract PREFIX" >&2; exit 2 ;;
esac
