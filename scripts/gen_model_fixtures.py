#!/usr/bin/env python3
"""Writes tests/fixtures/model/: small model files for the GGUF / safetensors / loader tests.

gguf/all_types.gguf   every GGUF metadata value type (incl. nested arrays) and every tensor type
                      flagos reads (F32 F16 BF16 F64 I8 I16 I32 I64 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q4_K
                      Q5_K Q6_K); each tensor "t.<type>" has a twin "ref.<type>" (F32) holding what
                      gguf.quants.dequantize (or numpy) says its values are.
gguf/tiny_<arch>.gguf tiny random models with llama.cpp tensor names and metadata for llama,
                      qwen2, qwen3, qwen3moe and gemma3 (+ a Llama 3.1 rope_freqs tensor).
hf/tiny_<arch>/       the same models as Hugging Face directories (config.json, generation_config,
                      model.safetensors; tiny_llama_sharded/ uses an index and two shards;
                      tiny_qwen3_moe/ has per-expert tensors; tiny_gemma3_mm/ is the multimodal
                      layout with text_config and language_model.* names).
manifest.json         the expected config values the tests check.

The same random weights go into the GGUF and the HF form of an architecture (GGUF Llama q/k rows
permuted the way llama.cpp's converter does; Gemma GGUF norms hold 1 + w), so the tests can check
that both loaders produce the same tensors.

Usage: /work/venv/bin/python scripts/gen_model_fixtures.py   (needs numpy, gguf, safetensors)
"""
import json
import os
import shutil

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import GGUFValueType as V
from gguf import GGUFWriter, quants
from safetensors.numpy import save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "model")

# (block elems, block bytes, byte offsets of f16 scale fields) for random valid blocks.
LAYOUT = {T.Q8_0: (32, 34, [0]), T.Q4_0: (32, 18, [0]), T.Q4_1: (32, 20, [0, 2]), T.Q5_0: (32, 22, [0]),
          T.Q5_1: (32, 24, [0, 2]), T.Q4_K: (256, 144, [0, 2]), T.Q5_K: (256, 176, [0, 2]), T.Q6_K: (256, 210, [208])}


def random_blocks(rng, qtype, rows, cols):
    be, bb, f16_offs = LAYOUT[qtype]
    nb = rows * cols // be
    raw = rng.integers(0, 256, size=(nb, bb), dtype=np.uint8)
    for off in f16_offs:
        h = (rng.standard_normal(nb) * 0.05).astype(np.float16)
        raw[:, off:off + 2] = h.view(np.uint8).reshape(nb, 2)
    return raw.reshape(rows, cols // be * bb)


def write_all_types(rng):
    w = GGUFWriter(os.path.join(OUT, "gguf", "all_types.gguf"), "test")
    w.add_uint8("t.u8", 200)
    w.add_int8("t.i8", -100)
    w.add_uint16("t.u16", 60000)
    w.add_int16("t.i16", -30000)
    w.add_uint32("t.u32", 4000000000)
    w.add_int32("t.i32", -2000000000)
    w.add_uint64("t.u64", 2**63 - 1)
    w.add_int64("t.i64", -(2**62))
    w.add_float32("t.f32", 0.25)
    w.add_float64("t.f64", -1.0e300)
    w.add_bool("t.bool", True)
    w.add_string("t.string", "héllo ▁wörld")
    w.add_key_value("t.empty_string", "", V.STRING)  # add_string skips empty strings
    w.add_key_value("t.arr_u8", [1, 2, 255], V.ARRAY, sub_type=V.UINT8)
    w.add_key_value("t.arr_i16", [-3, 7], V.ARRAY, sub_type=V.INT16)
    w.add_key_value("t.arr_u64", [2**40, 5], V.ARRAY, sub_type=V.UINT64)
    w.add_key_value("t.arr_f32", [0.5, -2.0, 3.25], V.ARRAY, sub_type=V.FLOAT32)
    w.add_key_value("t.arr_f64", [1e-300], V.ARRAY, sub_type=V.FLOAT64)
    w.add_key_value("t.arr_bool", [True, False, True], V.ARRAY, sub_type=V.BOOL)
    w.add_key_value("t.arr_str", ["a", "", "ccc"], V.ARRAY, sub_type=V.STRING)
    w.add_key_value("t.arr_nested", [[1, 2], [3], [4, 5, 6]], V.ARRAY, sub_type=V.ARRAY)
    w.add_key_value("t.arr_nested_str", [["x", "yy"], ["zzz"]], V.ARRAY, sub_type=V.ARRAY)
    plain = {T.F32: np.float32, T.F16: np.float16, T.F64: np.float64, T.I8: np.int8, T.I16: np.int16,
             T.I32: np.int32, T.I64: np.int64}
    for qt, npt in plain.items():
        x = (rng.standard_normal((3, 5)) * 50).astype(npt)
        w.add_tensor(f"t.{qt.name}", x, raw_dtype=qt)
        w.add_tensor(f"ref.{qt.name}", x.astype(np.float32))
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    bf = (x.view(np.uint32) >> 16).astype(np.uint16)  # truncation is fine: the reference is what is stored
    w.add_tensor("t.BF16", bf.view(np.uint8).reshape(2, 3, 8), raw_dtype=T.BF16)
    w.add_tensor("ref.BF16", (bf.astype(np.uint32) << 16).view(np.float32))
    for qt in LAYOUT:
        be = LAYOUT[qt][0]
        rows, cols = 3, 2 * max(be, 32) if be == 32 else 256
        blocks = random_blocks(rng, qt, rows, cols)
        w.add_tensor(f"t.{qt.name}", blocks, raw_dtype=qt)
        w.add_tensor(f"ref.{qt.name}", quants.dequantize(blocks, qt).astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


# ------------------------------------------------------------------------------------------------ tiny models

VOCAB, HIDDEN, INTER, HEADS, KV_HEADS = 64, 32, 64, 4, 2
# Llama gets head_dim 32 so that two rope frequencies fall between the llama3 plateaus.
HEAD_DIMS = {"llama": 32, "qwen2": 8, "qwen3": 8, "qwen3_moe": 8, "gemma3": 8}
EXPERTS, EXPERTS_USED, MOE_INTER = 4, 2, 32
GEN_EOS = 5


def tiny_weights(rng, arch, n_layers):
    """HF-named float32 weights of a tiny model of `arch`."""
    r = lambda *s: (rng.standard_normal(s) * 0.1).astype(np.float32)
    HEAD_DIM = HEAD_DIMS[arch]
    q, kv = HEADS * HEAD_DIM, KV_HEADS * HEAD_DIM
    w = {"model.embed_tokens.weight": r(VOCAB, HIDDEN), "model.norm.weight": r(HIDDEN)}
    if arch not in ("gemma3",):
        w["lm_head.weight"] = r(VOCAB, HIDDEN)
    for i in range(n_layers):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = r(HIDDEN)
        w[p + "post_attention_layernorm.weight"] = r(HIDDEN)
        if arch == "gemma3":
            w[p + "pre_feedforward_layernorm.weight"] = r(HIDDEN)
            w[p + "post_feedforward_layernorm.weight"] = r(HIDDEN)
        w[p + "self_attn.q_proj.weight"] = r(q, HIDDEN)
        w[p + "self_attn.k_proj.weight"] = r(kv, HIDDEN)
        w[p + "self_attn.v_proj.weight"] = r(kv, HIDDEN)
        w[p + "self_attn.o_proj.weight"] = r(HIDDEN, q)
        if arch == "qwen2":
            w[p + "self_attn.q_proj.bias"] = r(q)
            w[p + "self_attn.k_proj.bias"] = r(kv)
            w[p + "self_attn.v_proj.bias"] = r(kv)
        if arch in ("qwen3", "qwen3_moe", "gemma3"):
            w[p + "self_attn.q_norm.weight"] = r(HEAD_DIM)
            w[p + "self_attn.k_norm.weight"] = r(HEAD_DIM)
        if arch == "qwen3_moe":
            w[p + "mlp.gate.weight"] = r(EXPERTS, HIDDEN)
            for e in range(EXPERTS):
                w[p + f"mlp.experts.{e}.gate_proj.weight"] = r(MOE_INTER, HIDDEN)
                w[p + f"mlp.experts.{e}.up_proj.weight"] = r(MOE_INTER, HIDDEN)
                w[p + f"mlp.experts.{e}.down_proj.weight"] = r(HIDDEN, MOE_INTER)
        else:
            w[p + "mlp.gate_proj.weight"] = r(INTER, HIDDEN)
            w[p + "mlp.up_proj.weight"] = r(INTER, HIDDEN)
            w[p + "mlp.down_proj.weight"] = r(HIDDEN, INTER)
    return w


def hf_config(arch):
    HEAD_DIM = HEAD_DIMS[arch]
    base = {"vocab_size": VOCAB, "hidden_size": HIDDEN, "intermediate_size": INTER,
            "num_hidden_layers": 2, "num_attention_heads": HEADS, "num_key_value_heads": KV_HEADS,
            "max_position_embeddings": 2048,
            "rms_norm_eps": 1e-5, "torch_dtype": "bfloat16", "bos_token_id": 1, "eos_token_id": 2}
    if arch == "llama":
        return {**base, "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu",
                "rope_theta": 500000.0, "tie_word_embeddings": False, "attention_bias": False, "head_dim": HEAD_DIM,
                "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                 "original_max_position_embeddings": 256, "rope_type": "llama3"},
                "eos_token_id": [2, 3]}
    if arch == "qwen2":
        return {**base, "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_act": "silu",
                "rope_theta": 1000000.0, "tie_word_embeddings": False, "use_sliding_window": False,
                "sliding_window": 4096, "max_window_layers": 21}
    if arch == "qwen3":
        return {**base, "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "hidden_act": "silu",
                "rope_theta": 1000000.0, "tie_word_embeddings": False, "head_dim": HEAD_DIM, "attention_bias": False,
                "rope_scaling": None}
    if arch == "qwen3_moe":
        return {**base, "architectures": ["Qwen3MoeForCausalLM"], "model_type": "qwen3_moe", "hidden_act": "silu",
                "rope_theta": 1000000.0, "tie_word_embeddings": False, "head_dim": HEAD_DIM, "num_experts": EXPERTS,
                "num_experts_per_tok": EXPERTS_USED, "moe_intermediate_size": MOE_INTER, "norm_topk_prob": True,
                "decoder_sparse_step": 1, "mlp_only_layers": []}
    if arch == "gemma3":
        return {**base, "architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text",
                "hidden_activation": "gelu_pytorch_tanh", "head_dim": HEAD_DIM, "query_pre_attn_scalar": HEAD_DIM,
                "rope_theta": 1000000.0, "rope_local_base_freq": 10000.0, "sliding_window": 512,
                "sliding_window_pattern": 6, "final_logit_softcapping": None, "attn_logit_softcapping": None,
                "rope_scaling": None, "rms_norm_eps": 1e-6, "eos_token_id": [1, 60], "bos_token_id": 2,
                "num_hidden_layers": 7}
    raise ValueError(arch)


GGUF_ARCH = {"llama": "llama", "qwen2": "qwen2", "qwen3": "qwen3", "qwen3_moe": "qwen3moe", "gemma3": "gemma3"}
GGUF_NAMES = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
              "self_attn.o_proj": "attn_output", "self_attn.q_norm": "attn_q_norm", "self_attn.k_norm": "attn_k_norm",
              "input_layernorm": "attn_norm", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
              "mlp.down_proj": "ffn_down", "mlp.gate": "ffn_gate_inp"}


def permute_for_gguf(w, n_head):
    """llama.cpp's converter reorders Llama q/k rows from halves to interleaved pairs per head."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def to_gguf_tensors(weights, arch, n_layers):
    out = {}
    gemma = arch == "gemma3"
    for name, x in weights.items():
        if name == "model.embed_tokens.weight":
            out["token_embd.weight"] = x
            continue
        if name == "model.norm.weight":
            out["output_norm.weight"] = x + 1 if gemma else x
            continue
        if name == "lm_head.weight":
            out["output.weight"] = x
            continue
        parts = name.split(".")
        layer, rest = parts[2], ".".join(parts[3:])
        if ".experts." in rest:
            continue  # stacked below
        base, suffix = rest.rsplit(".", 1)
        if base == "post_attention_layernorm":
            g = "post_attention_norm" if gemma else "ffn_norm"
        elif base == "pre_feedforward_layernorm":
            g = "ffn_norm"
        elif base == "post_feedforward_layernorm":
            g = "post_ffw_norm"
        else:
            g = GGUF_NAMES[base]
        if gemma and base.endswith("norm"):
            x = x + 1
        if arch == "llama" and base == "self_attn.q_proj":
            x = permute_for_gguf(x, HEADS)
        if arch == "llama" and base == "self_attn.k_proj":
            x = permute_for_gguf(x, KV_HEADS)
        out[f"blk.{layer}.{g}.{suffix}"] = x
    if arch == "qwen3_moe":
        for i in range(n_layers):
            for proj, g in (("gate_proj", "ffn_gate_exps"), ("up_proj", "ffn_up_exps"), ("down_proj", "ffn_down_exps")):
                out[f"blk.{i}.{g}.weight"] = np.stack(
                    [weights[f"model.layers.{i}.mlp.experts.{e}.{proj}.weight"] for e in range(EXPERTS)])
    return out


def llama3_factors(theta, dim, factor, low, high, orig):
    freqs = 1.0 / theta ** (np.arange(0, dim, 2, dtype=np.float64) / dim)
    out = []
    for f in freqs:
        wavelen = 2 * np.pi / f
        if wavelen < orig / high:
            out.append(1.0)
        elif wavelen > orig / low:
            out.append(factor)
        else:
            s = (orig / wavelen - low) / (high - low)
            out.append(1.0 / ((1 - s) / factor + s))
    return np.array(out, dtype=np.float32)


def tiny_vocab():
    toks = ["<unk>", "<s>", "</s>", "<|eot_id|>"] + [f"t{i}" for i in range(4, VOCAB - 4)] + ["<end_of_turn>", "a", "b", "ab"]
    types = [2, 3, 3, 3] + [1] * (VOCAB - 8) + [3, 1, 1, 1]
    return toks, types


def write_tiny_gguf(arch, weights, rng):
    ga = GGUF_ARCH[arch]
    cfg = hf_config(arch)
    w = GGUFWriter(os.path.join(OUT, "gguf", f"tiny_{ga}.gguf"), ga)
    w.add_name(f"tiny {arch}")
    n_layers = cfg["num_hidden_layers"]
    w.add_block_count(n_layers)
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(HIDDEN)
    w.add_feed_forward_length(INTER)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_key_length(HEAD_DIMS[arch])
    w.add_value_length(HEAD_DIMS[arch])
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_rope_freq_base(cfg["rope_theta"])
    if arch == "qwen3_moe":
        w.add_expert_count(EXPERTS)
        w.add_expert_used_count(EXPERTS_USED)
        w.add_expert_feed_forward_length(MOE_INTER)
    if arch == "gemma3":
        w.add_sliding_window(cfg["sliding_window"])
    if arch == "qwen2":
        w.add_key_value(f"{ga}.rope.scaling.type", "yarn", V.STRING)
        w.add_key_value(f"{ga}.rope.scaling.factor", 4.0, V.FLOAT32)
        w.add_key_value(f"{ga}.rope.scaling.original_context_length", 32768, V.UINT32)
    toks, types = tiny_vocab()
    w.add_tokenizer_model("llama" if arch in ("llama", "gemma3") else "gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(toks)
    w.add_token_types(types)
    if arch in ("llama", "gemma3"):
        w.add_token_scores([float(-i) for i in range(VOCAB)])
    else:
        w.add_token_merges(["a b"])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(True)
    w.add_chat_template("{{ messages }}")
    tensors = to_gguf_tensors(weights, arch, n_layers)
    for name, x in tensors.items():
        if x.ndim >= 2 and name.startswith("blk.0.ffn"):
            # Exercise quantized weights: Q8_0 rows of `x`.
            q = quants.quantize(x.reshape(-1, x.shape[-1]), T.Q8_0)
            w.add_tensor(name, q.reshape(*x.shape[:-1], q.shape[-1]), raw_dtype=T.Q8_0)
        elif x.ndim >= 2:
            w.add_tensor(name, x.astype(np.float16), raw_dtype=T.F16)
        else:
            w.add_tensor(name, x)
    if arch == "llama":
        rs = cfg["rope_scaling"]
        w.add_tensor("rope_freqs.weight", llama3_factors(cfg["rope_theta"], HEAD_DIMS[arch], rs["factor"], rs["low_freq_factor"],
                                                         rs["high_freq_factor"], rs["original_max_position_embeddings"]))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def bf16(x):
    """Round-to-nearest-even float32 -> bfloat16 bits."""
    u = x.astype(np.float32).view(np.uint32)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def write_hf_dir(name, cfg, weights, shards=1, prefix=""):
    d = os.path.join(OUT, "hf", name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    inner = cfg.get("text_config", cfg)
    with open(os.path.join(d, "generation_config.json"), "w") as f:  # adds end-of-generation id 5
        json.dump({"bos_token_id": inner["bos_token_id"], "eos_token_id": [GEN_EOS], "do_sample": True}, f)
    # safetensors.numpy has no bfloat16: store bf16 bits as uint16 and patch the header dtype.
    names = sorted(weights)
    groups = [names[i::shards] for i in range(shards)]
    index = {}
    for s, group in enumerate(groups):
        fn = "model.safetensors" if shards == 1 else f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        path = os.path.join(d, fn)
        save_file({prefix + n: bf16(weights[n]) for n in group}, path)
        patch_dtype(path, "U16", "BF16")
        for n in group:
            index[prefix + n] = fn
    if shards > 1:
        with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": 0}, "weight_map": index}, f, indent=1)


def tiny_tokenizer_json():
    """A byte-level BPE tokenizer.json over the fixtures' 64-token vocabulary (loader tests only)."""
    toks, _ = tiny_vocab()
    toks = list(toks)
    toks[56:59] = ["<|im_start|>", "<|im_end|>", "<|endoftext|>"]
    vocab = {t: i for i, t in enumerate(toks)}
    added = [{"id": i, "content": toks[i], "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i in (56, 57, 58)]
    return {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": None,
            "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": True},
            "post_processor": None, "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                                                "use_regex": True},
            "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                      "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                      "vocab": vocab, "merges": [["a", "b"]]}}


CHAT_TEMPLATE = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"


def write_tokenizer_files(name, config_chat_template, jinja=None):
    d = os.path.join(OUT, "hf", name)
    with open(os.path.join(d, "tokenizer.json"), "w") as f:
        json.dump(tiny_tokenizer_json(), f, indent=1)
    cfg = {"eos_token": "<|im_end|>", "bos_token": None, "pad_token": "<|endoftext|>", "add_bos_token": False,
           "model_max_length": 2048}
    if config_chat_template is not None:
        cfg["chat_template"] = config_chat_template
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    if jinja is not None:
        with open(os.path.join(d, "chat_template.jinja"), "w") as f:
            f.write(jinja)


def patch_dtype(path, old, new):
    with open(path, "rb") as f:
        data = f.read()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    for k, v in header.items():
        if k != "__metadata__" and v["dtype"] == old:
            v["dtype"] = new
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(len(h).to_bytes(8, "little") + h + data[8 + n:])


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(os.path.join(OUT, "gguf"))
    os.makedirs(os.path.join(OUT, "hf"))
    rng = np.random.default_rng(20250301)
    write_all_types(rng)
    for arch in ("llama", "qwen2", "qwen3", "qwen3_moe", "gemma3"):
        weights = tiny_weights(rng, arch, hf_config(arch)["num_hidden_layers"])
        write_tiny_gguf(arch, weights, rng)
        write_hf_dir(f"tiny_{arch}", hf_config(arch), weights)
        if arch == "qwen3":  # chat template as a string in tokenizer_config.json
            write_tokenizer_files("tiny_qwen3", CHAT_TEMPLATE)
        if arch == "qwen2":  # as a list of named templates
            write_tokenizer_files("tiny_qwen2", [{"name": "tool_use", "template": "tools"},
                                                 {"name": "default", "template": CHAT_TEMPLATE}])
        if arch == "qwen3_moe":  # chat_template.jinja wins over tokenizer_config.json
            write_tokenizer_files("tiny_qwen3_moe", "ignored", jinja=CHAT_TEMPLATE)
        if arch == "llama":
            write_hf_dir("tiny_llama_sharded", hf_config(arch), weights, shards=2)
        if arch == "gemma3":
            text = hf_config(arch)
            mm = {"architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3",
                  "text_config": text, "vision_config": {"hidden_size": 8}}
            extra = {"vision_tower.vision_model.embeddings.patch_embedding.weight": np.zeros((4, 4), np.float32)}
            write_hf_dir("tiny_gemma3_mm", mm, {**weights, **extra}, prefix="")
            # Rename to the multimodal layout: language_model.model.* / language_model.lm_head.*
            d = os.path.join(OUT, "hf", "tiny_gemma3_mm")
            os.remove(os.path.join(d, "model.safetensors"))
            renamed = {("" if n.startswith("vision_tower.") else "language_model.") + n: x for n, x in {**weights, **extra}.items()}
            save_file({n: bf16(x) for n, x in renamed.items()}, os.path.join(d, "model.safetensors"))
            patch_dtype(os.path.join(d, "model.safetensors"), "U16", "BF16")


if __name__ == "__main__":
    main()
