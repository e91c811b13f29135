#!/usr/bin/env bash
# Fetches real models' vocabulary-only GGUF files (Llama 3 and 2, Qwen 2, GPT-2, Phi-3; shipped in
# the llama-cpp-python source package on PyPI) into ${FLAGOS_CACHE:-~/.cache/flagos}/vocab and
# prints that folder; tests/tokenizer reads it through FLAGOS_TOKENIZER_VOCAB_DIR. Test data only: nothing of it is built, linked or committed.
# Idempotent: a second run only prints the folder.
set -euo pipefail
cache=${FLAGOS_CACHE:-${HOME:-/tmp}/.cache/flagos}/vocab
version=0.3.36
stamp=2
if [ -f "$cache/.done-$version-$stamp" ]; then echo "$cache"; exit 0; fi
mkdir -p "$cache"
echo "[fetch_vocab_tests] downloading the llama-cpp-python $version source package (~77 MB) from PyPI" >&2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --no-binary :all: --dest "$tmp" "llama-cpp-python==$version" >&2
python3 - "$tmp/llama_cpp_python-$version.tar.gz" "$cache" "$version" <<'PY'
import sys, tarfile
sdist, cache, version = sys.argv[1:]
names = ["llama-bpe", "llama-spm", "qwen2", "gpt-2", "phi-3"]
want = {f"llama_cpp_python-{version}/vendor/llama.cpp/models/ggml-vocab-{n}.gguf{e}": f"ggml-vocab-{n}.gguf{e}"
        for n in names for e in ("", ".inp", ".out")}
with tarfile.open(sdist, mode="r:gz") as t:
    for m in t.getmembers():
        if m.name in want:
            with open(f"{cache}/{want.pop(m.name)}", "wb") as out:
                out.write(t.extractfile(m).read())
if want:
    sys.exit("missing in the package: " + ", ".join(sorted(want)))
PY
touch "$cache/.done-$version-$stamp"
echo "$cache"
