#!/usr/bin/env python3
"""Writes the seed corpora of the libFuzzer targets: tests/fuzz/corpus/<target>/.

fuzz_gguf/             a micro model GGUF (1 layer, vocab 8, metadata of many types, F32/F16/Q8_0
                       tensors), the same cut short, with a bad magic, and a metadata-only file
fuzz_safetensors/      small safetensors files (valid, bad offsets, bad JSON) and config.json texts
fuzz_tokenizer_json/   tokenizer.json files shrunk from tests/fixtures/tokenizers/ to ~200 tokens
                       (BPE/ByteLevel, Split regex, Metaspace/byte fallback) plus broken ones

Seeds are small so the fuzzer mutates them quickly. Usage: /work/venv/bin/python scripts/gen_fuzz_corpus.py
"""
import json
import os
import shutil

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import GGUFValueType as V
from gguf import GGUFWriter, quants

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "tests", "fuzz", "corpus")


def micro_gguf(path, arch="qwen3"):
    rng = np.random.default_rng(7)
    w = GGUFWriter(path, arch)
    w.add_block_count(1)
    w.add_context_length(128)
    w.add_embedding_length(32)
    w.add_feed_forward_length(32)
    w.add_head_count(2)
    w.add_head_count_kv(1)
    w.add_key_length(16)
    w.add_value_length(16)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_rope_freq_base(10000.0)
    w.add_key_value("x.nested", [[1, 2], [3]], V.ARRAY, sub_type=V.ARRAY)
    w.add_key_value("x.f64", 0.5, V.FLOAT64)
    w.add_key_value("x.i8", -3, V.INT8)
    w.add_tokenizer_model("gpt2")
    w.add_token_list(["a", "b", "ab", "<|im_end|>", "c", "d", "cd", "<s>"])
    w.add_token_types([1, 1, 1, 3, 1, 1, 1, 3])
    w.add_token_merges(["a b", "c d"])
    w.add_bos_token_id(7)
    w.add_eos_token_id(3)
    w.add_chat_template("{% for m in messages %}{{ m.content }}{% endfor %}")
    r = lambda *s: (rng.standard_normal(s) * 0.1).astype(np.float32)
    w.add_tensor("token_embd.weight", r(8, 32).astype(np.float16), raw_dtype=T.F16)
    w.add_tensor("output_norm.weight", r(32))
    p = "blk.0."
    for n, shape in (("attn_q", (32, 32)), ("attn_k", (16, 32)), ("attn_v", (16, 32)), ("attn_output", (32, 32)),
                     ("ffn_gate", (32, 32)), ("ffn_up", (32, 32))):
        w.add_tensor(p + n + ".weight", r(*shape).astype(np.float16), raw_dtype=T.F16)
    w.add_tensor(p + "ffn_down.weight", quants.quantize(r(32, 32), T.Q8_0), raw_dtype=T.Q8_0)
    for n, size in (("attn_norm", 32), ("ffn_norm", 32), ("attn_q_norm", 16), ("attn_k_norm", 16)):
        w.add_tensor(p + n + ".weight", r(size))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def gguf_corpus(d):
    micro_gguf(os.path.join(d, "micro_qwen3.gguf"))
    data = open(os.path.join(d, "micro_qwen3.gguf"), "rb").read()
    open(os.path.join(d, "truncated.gguf"), "wb").write(data[: len(data) // 3])
    open(os.path.join(d, "bad_magic.gguf"), "wb").write(b"GGUX" + data[4:600])
    w = GGUFWriter(os.path.join(d, "metadata_only.gguf"), "gemma3")
    w.add_uint32("general.alignment", 64)
    w.add_key_value("x.bools", [True, False], V.ARRAY, sub_type=V.BOOL)
    w.add_key_value("x.u64", 2**63 + 5, V.UINT64)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.close()


def safetensors_file(header, data):
    h = json.dumps(header, separators=(",", ":")).encode()
    return len(h).to_bytes(8, "little") + h + data


def safetensors_corpus(d):
    f32 = np.arange(6, dtype=np.float32).tobytes()
    files = {
        "valid.safetensors": safetensors_file({"__metadata__": {"format": "pt"},
                                               "a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
                                               "b": {"dtype": "BF16", "shape": [2], "data_offsets": [24, 28]},
                                               "c": {"dtype": "I64", "shape": [], "data_offsets": [28, 36]}},
                                              f32 + b"\x80\x3f\x00\x40" + (7).to_bytes(8, "little")),
        "bad_offsets.safetensors": safetensors_file({"a": {"dtype": "F16", "shape": [4], "data_offsets": [2, 40]}}, f32),
        "bad_json.safetensors": b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":{\"dtype\":",
    }
    for name, data in files.items():
        open(os.path.join(d, name), "wb").write(data)
    for src in ("tiny_qwen3_moe", "tiny_gemma3_mm", "tiny_llama", "tiny_qwen2"):
        shutil.copy(os.path.join(ROOT, "tests", "fixtures", "model", "hf", src, "config.json"),
                    os.path.join(d, f"config_{src}.json"))


def shrink_tokenizer(path, keep):
    t = json.load(open(path))
    m = t["model"]
    vocab = {k: v for k, v in m["vocab"].items() if v < keep} if isinstance(m.get("vocab"), dict) else m.get("vocab")
    if isinstance(m.get("vocab"), list):  # Unigram: [[piece, score], ...]
        vocab = m["vocab"][:keep]
    m["vocab"] = vocab
    if "merges" in m:
        def parts(mg):
            return mg if isinstance(mg, list) else mg.split(" ", 1)
        m["merges"] = [mg for mg in m["merges"]
                       if all(p in vocab for p in parts(mg)) and "".join(parts(mg)) in vocab][:keep]
    removed = [a["content"] for a in t.get("added_tokens", []) if a["id"] >= keep]
    t["added_tokens"] = [a for a in t.get("added_tokens", []) if a["id"] < keep]
    if any(json.dumps(r) in json.dumps(t.get("post_processor")) for r in removed):
        t["post_processor"] = None  # it names special tokens the shrunk vocabulary lost
    return json.dumps(t, ensure_ascii=False, separators=(",", ":"))


def tokenizer_corpus(d):
    src = os.path.join(ROOT, "tests", "fixtures", "tokenizers")
    for name in ("gpt2", "llama3", "qwen2", "gemma", "llama2-metaspace", "llama2"):
        p = os.path.join(src, name, "tokenizer.json")
        if os.path.exists(p):
            text = shrink_tokenizer(p, 300)
            open(os.path.join(d, f"{name}.json"), "w").write(text)
    open(os.path.join(d, "truncated.json"), "w").write(text[: len(text) // 2])
    open(os.path.join(d, "wrong_types.json"), "w").write(
        '{"model":{"type":"BPE","vocab":{"a":0,"b":"1"},"merges":[["a","b"]]},"added_tokens":[{"id":-5,"content":7}]}')


def main():
    for target, fill in (("fuzz_gguf", gguf_corpus), ("fuzz_safetensors", safetensors_corpus),
                         ("fuzz_tokenizer_json", tokenizer_corpus)):
        d = os.path.join(OUT, target)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        fill(d)


if __name__ == "__main__":
    main()
