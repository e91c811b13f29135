#!/usr/bin/env python3
"""Reference outputs of the default model (Gemma 3 270M, GGUF Q4_K_M) from HF transformers.

transformers loads the same GGUF file (dequantizing every weight to f32) and its tokenizer; for
three fixed prompts this writes the prompt token ids, the first 32 greedily generated ids, and the
64 largest logits (ids + values) at the last prompt position and at each of the first 8 decode
steps. tests/engine/test_default_model.cpp compares the engine against it.

usage: scripts/gen_default_model_reference.py MODEL.gguf [OUT.json]
needs: torch, transformers, accelerate, gguf, sentencepiece (e.g. a venv; not a product dependency)
"""
import json
import os
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

PROMPTS = [
    "The capital of France is",
    "Here is a short poem about the ocean:\n",
    "def fibonacci(n):\n",
]
N_GEN = 32
N_LOGIT_STEPS = 8
TOPK = 64


def main():
    gguf = sys.argv[1]
    out_path = sys.argv[2] if len(sys.argv) > 2 else os.path.join(
        os.path.dirname(__file__), "..", "tests", "fixtures", "default_model", "reference.json")
    d, f = os.path.split(os.path.abspath(gguf))
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32)
    model.eval()
    cases = []
    for text in PROMPTS:
        ids = tok(text, return_tensors="pt").input_ids
        steps = []
        cur = ids
        past = None
        generated = []
        with torch.no_grad():
            for step in range(N_GEN):
                out = model(input_ids=cur if past is None else cur[:, -1:], past_key_values=past, use_cache=True)
                past = out.past_key_values
                logits = out.logits[0, -1].float()
                nxt = int(torch.argmax(logits))
                if step < N_LOGIT_STEPS:
                    v, i = torch.topk(logits, TOPK)
                    steps.append({"ids": i.tolist(), "logits": [round(float(x), 5) for x in v]})
                generated.append(nxt)
                cur = torch.cat([cur, torch.tensor([[nxt]])], dim=1)
        cases.append({
            "prompt": text,
            "prompt_ids": ids[0].tolist(),
            "greedy_ids": generated,
            "greedy_text": tok.decode(generated),
            "topk_steps": steps,
        })
        print(repr(text), "->", repr(tok.decode(generated)))
    ref = {
        "model": f,
        "generator": "scripts/gen_default_model_reference.py (HF transformers, GGUF dequantized to f32)",
        "transformers": __import__("transformers").__version__,
        "torch": torch.__version__,
        "cases": cases,
    }
    with open(out_path, "w") as fh:
        json.dump(ref, fh, indent=1)
    print("wrote", out_path)


if __name__ == "__main__":
    main()
