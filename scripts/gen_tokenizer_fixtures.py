#!/usr/bin/env python3
"""Writes the tokenizer test fixtures under tests/fixtures/tokenizers/.

Real tokenizer files cannot be downloaded here, so small tokenizers (vocab ~2000) are trained on
a built-in multilingual corpus with the same components as the real ones:
  llama3/      byte-level BPE, Llama 3 split regex, ignore_merges, <|begin_of_text|> template
  qwen2/       byte-level BPE, NFC, Qwen2 split regex, ChatML special tokens, non-special <think>
  gpt2/        byte-level BPE, ByteLevel(use_regex, add_prefix_space), lstrip/rstrip/single_word tokens
  llama2/      SentencePiece BPE (byte fallback, dummy prefix) as the hub's Llama 2 tokenizer.json
               (Prepend + Replace normalizers, merges ranked by score, TemplateProcessing "<s> $A")
  llama2-metaspace/  the same model with the newer Metaspace(prepend_scheme "first") layout
  gemma/       SentencePiece BPE without dummy prefix, user-defined tokens, Gemma's layout
  llama2-spm/, gemma-spm/  the same SentencePiece models as GGUF-like sources (tokens, scores,
               types) with reference ids from sentencepiece itself
Each folder has cases.json: [{text, ids, ids_plain, ids_no_parse, decoded, decoded_skip}] from the
Hugging Face `tokenizers` library (sentencepiece for the *-spm ones: {text, ids, decoded}).

With --gguf NAME=PATH (real GGUF files: the Gemma 3 default model, the vocabulary-only
ggml-vocab-*.gguf files in the llama-cpp-python source package) it instead writes
gguf-NAME/cases.json [{text, ids_plain, decoded}] with ids from transformers' GGUF tokenizer
conversion (AutoTokenizer.from_pretrained(dir, gguf_file=...)), or for SentencePiece vocabularies
with a dummy prefix from `tokenizers` with the hub's Llama 2 layout (see gguf_fixture); the GGUF files are not committed,
the tests use them when FLAGOS_DEFAULT_MODEL / FLAGOS_TOKENIZER_VOCAB_DIR point at them.

Usage: /work/venv/bin/python scripts/gen_tokenizer_fixtures.py [--gguf NAME=PATH ...]
"""
import argparse
import json
import os
import random
import shutil
import sys
import tempfile

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

SEED = 20240607
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "tokenizers")

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")

CORPUS_PARAGRAPHS = [
    "The quick brown fox jumps over the lazy dog. It's what they'd said: we'll see, you're right, I've done it.",
    "Tokenizers split text into pieces; byte-level BPE never fails because every byte has a token.",
    "In 2024, about 1,234,567 people visited; the price was $19.99 (or 17,50 EUR) on 03/04/2025 at 10:45.",
    "def encode(self, text: str) -> list[int]:\n\treturn [self.vocab[t] for t in text.split()]\n",
    "for (int i = 0; i < n; ++i) {\n    sum += a[i] * b[i];\n}\nreturn sum;\n",
    "人工智能正在改变世界。我们今天学习分词器的工作原理，中文没有空格。",
    "日本語の文章にはひらがな、カタカナ、漢字が混ざっています。東京は大きな都市です。",
    "الذكاء الاصطناعي يغير العالم. اللغة العربية تكتب من اليمين إلى اليسار.",
    "कृत्रिम बुद्धिमत्ता दुनिया को बदल रही है। हिंदी देवनागरी लिपि में लिखी जाती है।",
    "Привет, мир! Русский язык использует кириллицу. Как дела?",
    "한국어 문장은 띄어쓰기를 사용합니다. 서울은 대한민국의 수도입니다.",
    "Ça coûte très cher à Noël : déjà vu, naïve café, façade, œuvre. Über Größe, Straße und Mädchen.",
    "El niño comió paella en España; ¿dónde está la estación? ¡Olé!",
    "Emoji: 😀 😃 👍🏽 ❤️ 👨‍👩‍👧‍👦 🏳️‍🌈 🇫🇷 and more 🚀🔥✨.",
    "Whitespace   runs\t\ttabs\n\n\nnewlines    and trailing spaces   ",
    "JSON: {\"key\": [1, 2, 3], \"nested\": {\"a\": null, \"b\": true}}",
    "URLs like https://example.com/path?query=1&x=y#frag and emails like a.b@c.de appear too.",
    "Mathematics: ∑_{i=1}^{n} x_i² ≥ 0, π ≈ 3.14159, √2 ≈ 1.41421, ∞ − ∞ is undefined.",
    "ΑΒΓΔ αβγδ: Ελληνικά γράμματα. שלום עולם. สวัสดีชาวโลก. Xin chào thế giới.",
]

TEST_TEXTS = [
    "",
    " ",
    "Hello world",
    " Hello world",
    "Hello  world   ",
    "hello\nworld\n",
    "I'm sure they'll say it's OK. YOU'RE RIGHT, WE'LL SEE, IT'S FINE. He'D, She'Ve, 'S 'T",
    "don't DON'T Don'T dOn't",
    "Numbers: 1 12 123 1234 12345 123456 1234567 3.14159 1,000,000 ０１２３ ٠١٢٣ १२३",
    "人工智能正在改变世界。",
    "日本語のテキスト、カタカナとひらがな。",
    "مرحبا بالعالم",
    "नमस्ते दुनिया",
    "Ça coûte très cher à Noël. Größe Straße Mädchen.",
    "Emoji 😀👍🏽❤️ family 👨‍👩‍👧‍👦 flag 🏳️‍🌈 🇫🇷🇩🇪",
    "def f(x):\n\tif x > 0:\n\t\treturn x * 2\n\treturn -x\n",
    "int main() {\r\n    printf(\"%d\\n\", 42);\r\n}\r\n",
    "    leading spaces and trailing spaces    ",
    "tabs\t\t\tand\u00a0non-breaking\u3000ideographic\u2003em spaces",
    "line1\n\n\n\nline2\r\n\r\nline3",
    "   \n   \n",
    "a\u0301 e\u0301 n\u0303 (decomposed) vs \u00e1 \u00e9 \u00f1 (composed); \u212b \u1e9b\u0323",
    "\ud55c\uad6d\uc5b4 \u1100\u1161\u11a8",
    "Control\x1ccharacters\x1fand\x7fDEL and \x0bvertical\x0cform feed",
    "Long s: 'ſ 'ſT and Kelvin 'K",
    "<|begin_of_text|>Hello<|eot_id|>",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n<think>\nfour</think>4<|im_end|>",
    "<s>Hello</s> <unk> <start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model",
    "text <mask> here and<mask>there <|endoftext|> end",
    "<|endoftext|><|endoftext|>",
    "almost special <|im_start without end and <|eot_id| and <start_of_turn",
    "zzqx zzqxy zzqx!",
    "https://example.com/a/b?c=d&e=f#g",
    "mixed中文and English混合text123数字",
    "   ",
    "\n",
    "x" * 300,
    " ".join(["word"] * 50),
    "🤖" * 20,
]


def random_texts(rng, count):
    """Random strings over a mix of scripts, digits, punctuation, whitespace and emoji."""
    pools = [
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
        "0123456789",
        " \t\n\r  \u00a0",
        "'.,;:!?-_()[]{}<>/\\\"@#$%^&*+=|~`",
        "äöüßéèêçñåøæœÅÄÖ",
        "人工智能世界中文字",
        "ひらがなカタカナ漢字",
        "абвгдеёжзийклмн",
        "مرحبابالعالم",
        "नमस्तेदुनिया",
        "😀👍🏽❤️🚀🔥✨\u200d",
        "\u0301\u0303\u0308",
    ]
    out = []
    for _ in range(count):
        n = rng.randint(1, 40)
        s = []
        for _ in range(n):
            pool = rng.choice(pools)
            s.append(rng.choice(pool) * rng.choice([1, 1, 1, 2, 3]))
        out.append("".join(s))
    return out


def corpus(rng):
    lines = CORPUS_PARAGRAPHS * 30
    lines += random_texts(rng, 400)
    lines += [" ".join(str(rng.randint(0, 10 ** rng.randint(1, 7))) for _ in range(8)) for _ in range(50)]
    rng.shuffle(lines)
    return lines


def hf_cases(tok, texts):
    cases = []
    for text in texts:
        ids = tok.encode(text, add_special_tokens=True).ids
        ids_plain = tok.encode(text, add_special_tokens=False).ids
        tok.encode_special_tokens = True
        ids_no_parse = tok.encode(text, add_special_tokens=False).ids
        tok.encode_special_tokens = False
        cases.append({
            "text": text,
            "ids": ids,
            "ids_plain": ids_plain,
            "ids_no_parse": ids_no_parse,
            "decoded": tok.decode(ids, skip_special_tokens=False),
            "decoded_skip": tok.decode(ids, skip_special_tokens=True),
        })
    return cases


def write_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1)
        f.write("\n")


def byte_level_tokenizer(pattern, specials, nfc=False, ignore_merges=False, use_regex_only=False,
                         add_prefix_space=False, lines=(), vocab_size=2000):
    tok = Tokenizer(models.BPE(ignore_merges=ignore_merges))
    if nfc:
        tok.normalizer = normalizers.NFC()
    if use_regex_only:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=add_prefix_space, use_regex=True)
    else:
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(lines, trainer=trainer)
    tok.add_special_tokens(specials)
    return tok


def add_unreachable_vocab(tok, words):
    """Adds vocabulary entries that no merge produces (exercises ignore_merges); returns a new tokenizer."""
    data = json.loads(tok.to_str())
    next_id = max(data["model"]["vocab"].values()) + 1
    for w in words:
        mapped = "".join(BYTE_TO_CHAR[b] for b in w.encode("utf-8"))
        data["model"]["vocab"][mapped] = next_id
        next_id += 1
    return Tokenizer.from_str(json.dumps(data))


def byte_alphabet():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


BYTE_TO_CHAR = byte_alphabet()


def save_hf(name, tok, config, texts):
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    tok.save(os.path.join(d, "tokenizer.json"))
    if config is not None:
        write_json(os.path.join(d, "tokenizer_config.json"), config)
    write_json(os.path.join(d, "cases.json"), hf_cases(Tokenizer.from_file(os.path.join(d, "tokenizer.json")), texts))


def train_spm(tmp, name, lines, add_dummy_prefix, user_defined, gemma_ids=False):
    import sentencepiece as spm
    path = os.path.join(tmp, "corpus.txt")
    with open(path, "w", encoding="utf-8") as f:
        for line in lines:
            line = line.replace("\n", " ").strip()
            if line:
                f.write(line + "\n")
    prefix = os.path.join(tmp, name)
    spm.SentencePieceTrainer.train(
        input=path, model_prefix=prefix, vocab_size=1000, model_type="bpe", byte_fallback=True,
        character_coverage=0.995, add_dummy_prefix=add_dummy_prefix, split_digits=True,
        allow_whitespace_only_pieces=True, remove_extra_whitespaces=False, normalization_rule_name="identity",
        user_defined_symbols=user_defined, minloglevel=2, num_threads=1,
        **(dict(pad_id=0, eos_id=1, bos_id=2, unk_id=3, bos_piece="<bos>", eos_piece="<eos>") if gemma_ids
           else dict(unk_id=0, bos_id=1, eos_id=2, pad_id=-1)))
    return prefix + ".model"


def spm_source_fixture(name, model_file, texts):
    """GGUF-like source (what llama.cpp's converter stores) and sentencepiece's own ids."""
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2 as pb
    sp = spm.SentencePieceProcessor(model_file=model_file)
    proto = pb.ModelProto()
    with open(model_file, "rb") as f:
        proto.ParseFromString(f.read())
    # GGUF token types: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte.
    type_of = {pb.ModelProto.SentencePiece.NORMAL: 1, pb.ModelProto.SentencePiece.UNKNOWN: 2,
               pb.ModelProto.SentencePiece.CONTROL: 3, pb.ModelProto.SentencePiece.USER_DEFINED: 4,
               pb.ModelProto.SentencePiece.UNUSED: 5, pb.ModelProto.SentencePiece.BYTE: 6}
    source = {
        "tokens": [p.piece for p in proto.pieces],
        "scores": [p.score for p in proto.pieces],
        "types": [type_of[p.type] for p in proto.pieces],
        "add_space_prefix": proto.normalizer_spec.add_dummy_prefix,
        "unk_id": sp.unk_id(), "bos_id": sp.bos_id(), "eos_id": sp.eos_id(),
    }
    d = os.path.join(OUT, name)
    write_json(os.path.join(d, "source.json"), source)
    cases = []
    for text in texts:
        ids = sp.encode(text)
        cases.append({"text": text, "ids": ids, "decoded": sp.decode(ids)})
    write_json(os.path.join(d, "cases.json"), cases)


def spm_to_hf(pieces, unk_id, bos_id, eos_id, style):
    """tokenizer.json laid out as the Hugging Face hub's Llama 2 / Gemma files are: BPE over the
    SentencePiece pieces with merges ranked by the merged piece's score, byte fallback, and
    ' ' -> U+2581 (legacy Llama 2: Prepend + Replace normalizers; "metaspace": Metaspace
    pre-tokenizer with prepend_scheme "first"; Gemma: Replace only, no dummy prefix).
    pieces: [(text, score, type)] with SentencePiece / GGUF types (1 normal, 2 unknown,
    3 control, 4 user-defined, 5 unused, 6 byte)."""
    from tokenizers import AddedToken
    vocab = {}
    for i, (p, _, _) in enumerate(pieces):
        vocab.setdefault(p, i)
    normal = {p: (score, i) for i, (p, score, t) in enumerate(pieces) if t == 1}
    ranked = []
    for token, (score, i) in normal.items():
        for k in range(1, len(token)):
            left, right = token[:k], token[k:]
            if left in normal and right in normal:
                ranked.append((-score, i, left, right))
    merges = [(left, right) for _, _, left, right in sorted(ranked)]
    unk = pieces[unk_id][0]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token=unk, fuse_unk=True, byte_fallback=True))
    dec = [decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse()]
    if style == "llama2":
        tok.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
        dec.append(decoders.Strip(content=" ", left=1, right=0))
    elif style == "metaspace":
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=False)
        dec.append(decoders.Strip(content=" ", left=1, right=0))
    else:
        tok.normalizer = normalizers.Replace(" ", "\u2581")
        # As in Gemma's hub file; a no-op since the normalizer already replaced every space.
        tok.pre_tokenizer = pre_tokenizers.Split(" ", behavior="merged_with_previous")
    tok.decoder = decoders.Sequence(dec)
    tok.add_special_tokens([AddedToken(p, special=True, normalized=False) for p, _, t in pieces if t in (2, 3)])
    tok.add_tokens([AddedToken(p, special=False, normalized=False) for p, _, t in pieces if t == 4])
    bos = pieces[bos_id][0]
    tok.post_processor = processors.TemplateProcessing(single=f"{bos} $A", special_tokens=[(bos, bos_id)])
    config = {"add_bos_token": True, "add_eos_token": False, "bos_token": bos, "eos_token": pieces[eos_id][0],
              "unk_token": unk}
    return tok, config


def spm_model_pieces(model_file):
    from sentencepiece import sentencepiece_model_pb2 as pb
    proto = pb.ModelProto()
    with open(model_file, "rb") as f:
        proto.ParseFromString(f.read())
    t = proto.trainer_spec
    return [(p.piece, p.score, int(p.type)) for p in proto.pieces], t.unk_id, t.bos_id, t.eos_id


def gguf_metadata(path):
    """tokenizer.ggml.* values of a GGUF file (arrays as lists)."""
    from gguf import GGUFReader
    reader = GGUFReader(path)
    out = {}
    for key, field in reader.fields.items():
        if not key.startswith("tokenizer.ggml."):
            continue
        name = key[len("tokenizer.ggml."):]
        is_array = field.types[0].name == "ARRAY"
        is_string = field.types[-1].name == "STRING"
        values = [bytes(field.parts[i]).decode("utf-8") if is_string else field.parts[i].tolist()[0] for i in field.data]
        out[name] = values if is_array else values[0]
    return out


def gguf_fixture(path, name, texts):
    """Reference ids for a real GGUF vocabulary. SentencePiece vocabularies with a dummy prefix
    (Llama 2 style): `tokenizers` with the hub's legacy Llama 2 tokenizer.json layout built from the
    GGUF's pieces (transformers' GGUF conversion uses Metaspace "first", which drops the dummy
    prefix before a leading space, unlike sentencepiece and the hub file). Others: transformers'
    GGUF tokenizer conversion (AutoTokenizer.from_pretrained(dir, gguf_file=...))."""
    meta = gguf_metadata(path)
    n_vocab = len(meta["tokens"])
    if meta["model"] == "llama" and meta.get("add_space_prefix", True):
        pieces = list(zip(meta["tokens"], meta["scores"], meta["token_type"]))
        tok, _ = spm_to_hf(pieces, meta["unknown_token_id"], meta["bos_token_id"], meta["eos_token_id"], "llama2")
        encode = lambda text: tok.encode(text, add_special_tokens=False).ids
        decode = lambda ids: tok.decode(ids, skip_special_tokens=False)
        source = "tokenizers, hub Llama 2 layout from the GGUF pieces"
    else:
        from transformers import AutoTokenizer
        tf = AutoTokenizer.from_pretrained(os.path.dirname(os.path.abspath(path)), gguf_file=os.path.basename(path))
        encode = lambda text: tf(text, add_special_tokens=False)["input_ids"]
        decode = lambda ids: tf.backend_tokenizer.decode(ids, skip_special_tokens=False)
        source = "transformers GGUF conversion"
    cases, skipped = [], 0
    for text in texts:
        ids = encode(text)
        if any(i >= n_vocab for i in ids):  # a token the converter added that the GGUF does not have
            skipped += 1
            continue
        cases.append({"text": text, "ids_plain": ids, "decoded": decode(ids)})
    write_json(os.path.join(OUT, "gguf-" + name, "cases.json"), cases)
    print(f"gguf-{name}: {len(cases)} cases ({source}; {skipped} skipped: ids beyond the vocabulary)")


def random_code_point_text(rng, n):
    """Code points from all over Unicode (assigned or not, no surrogates), biased to interesting ranges."""
    out = []
    for _ in range(n):
        r = rng.random()
        if r < 0.3:
            cp = rng.randint(0x20, 0x7E)
        elif r < 0.5:
            cp = rng.choice([0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1F, 0x85, 0xA0, 0x1680, 0x2000, 0x2028,
                             0x2029, 0x202F, 0x205F, 0x3000, 0x200B, 0xFEFF, 0x180E])
        elif r < 0.8:
            cp = rng.randint(0x80, 0xFFFF)
        else:
            cp = rng.randint(0x10000, 0x10FFFF)
        if 0xD800 <= cp <= 0xDFFF:
            cp = 0x41
        out.append(chr(cp))
    return "".join(out)


REGEX_TEXTS = [
    "'s 'S 'ſ 't 'T 're 'RE 'Re 'rE 've 'VE 'm 'M 'll 'LL 'lL 'd 'D 'K 'k 'x",
    "it's IT'S It'S they're THEY'RE we've WE'VE I'm I'M you'll YOU'LL he'd HE'D",
    "a  b   c\t\td \n\n e \r\n f \u2028 g \u0085 h \x1c i \u00a0\u00a0 j \u3000 k",
    "x    \n    y\n\n   \n z   ",
    "1 22 333 4444 55555 666666 ١٢٣٤ ߁߂߃ ⅠⅡⅢ ½¾ ①②③ 𝟘𝟙𝟚",
    "Ŝ̷̡ḩ̗̝o̯̓ö́t́̂ c̃omb̈́ining ̀marks",
    "!!! ??? ... ,,, ;;; ::: --- ___ ((( ))) [[[ ]]] {{{ }}}",
    " !x ?y .z \n!a\n",
]


def pretokenize_fixture(texts, rng):
    """Pieces of the Split(Regex, isolated) pre-tokenizer for each known pattern."""
    patterns = {"gpt2": r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+",
                "llama3": LLAMA3_PATTERN, "qwen2": QWEN2_PATTERN}
    all_texts = list(texts) + REGEX_TEXTS
    all_texts += [random_code_point_text(rng, rng.randint(1, 60)) for _ in range(200)]
    out = {"texts": all_texts, "pieces": {}}
    for name, pattern in patterns.items():
        split = pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False)
        out["pieces"][name] = [[p for p, _ in split.pre_tokenize_str(t)] for t in all_texts]
    write_json(os.path.join(OUT, "pretokenize.json"), out)


def unicode_fixture(rng):
    """NFC of strings rich in combining marks and Hangul, and general categories of random code points."""
    import unicodedata2 as unicodedata  # Unicode 15.0, as scripts/gen_unicode_tables.py
    marks = [0x300, 0x301, 0x302, 0x303, 0x308, 0x323, 0x327, 0x328, 0x31B, 0x345, 0x5B0, 0x93C, 0x94D, 0x3099, 0x309A]
    bases = "aeiouAEIOUcnsyzwhtKÅ" + "\u212b\u1e9b\u0958\u0344\u0f73\u2126\u00c5\u1100\u1161\u11a8\uac00\ub098\u30ab\u30cf"
    nfc = []
    for _ in range(300):
        s = []
        for _ in range(rng.randint(1, 12)):
            r = rng.random()
            if r < 0.5:
                s.append(rng.choice(bases))
            elif r < 0.85:
                s.append(chr(rng.choice(marks)))
            elif r < 0.95:
                s.append(chr(rng.randint(0x1100, 0x1112)) + chr(rng.randint(0x1161, 0x1175)) +
                         (chr(rng.randint(0x11A8, 0x11C2)) if rng.random() < 0.5 else ""))
            else:
                s.append(unicodedata.normalize("NFD", chr(rng.randint(0xC0, 0x24F))))
        text = "".join(s)
        nfc.append([text, unicodedata.normalize("NFC", text)])
    cps = sorted({rng.randint(0, 0x10FFFF) for _ in range(3000)} | set(range(0, 0x250)))
    cats = [[cp, unicodedata.category(chr(cp))] for cp in cps]
    write_json(os.path.join(OUT, "unicode.json"), {"unicode_version": unicodedata.unidata_version, "nfc": nfc,
                                                   "categories": cats})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gguf", action="append", default=[], metavar="NAME=PATH",
                    help="only write gguf-NAME/cases.json for the GGUF at PATH (repeatable)")
    args = ap.parse_args()
    rng = random.Random(SEED)
    print(f"seed {SEED}")
    texts = TEST_TEXTS + random_texts(rng, 60)
    lines = corpus(rng)

    if args.gguf:
        for spec in args.gguf:
            name, path = spec.split("=", 1)
            gguf_fixture(path, name, texts)
        return

    pretokenize_fixture(texts, random.Random(SEED + 1))
    unicode_fixture(random.Random(SEED + 2))
    llama3 = byte_level_tokenizer(LLAMA3_PATTERN, [], ignore_merges=True, lines=lines)
    # Vocabulary first: `tokenizers` renumbers added tokens after the model's vocabulary on load.
    llama3 = add_unreachable_vocab(llama3, [" zzqx", "zzqx!"])
    llama3.add_special_tokens(["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                               "<|eot_id|>"])
    bos = llama3.token_to_id("<|begin_of_text|>")
    llama3.post_processor = processors.TemplateProcessing(single="<|begin_of_text|> $A", special_tokens=[("<|begin_of_text|>", bos)])
    save_hf("llama3", llama3, {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"}, texts)

    from tokenizers import AddedToken
    qwen2 = byte_level_tokenizer(QWEN2_PATTERN, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], nfc=True, lines=lines)
    qwen2.add_tokens([AddedToken("<think>", special=False, normalized=False),
                      AddedToken("</think>", special=False, normalized=False)])
    qwen2.post_processor = processors.ByteLevel(trim_offsets=False)
    save_hf("qwen2", qwen2, {"add_bos_token": False, "bos_token": None, "eos_token": "<|im_end|>",
                             "pad_token": "<|endoftext|>"}, texts)

    gpt2 = byte_level_tokenizer(None, [], use_regex_only=True, add_prefix_space=True, lines=lines)
    gpt2.add_special_tokens(["<|endoftext|>", AddedToken("<mask>", lstrip=True, rstrip=True, special=True)])
    gpt2.add_tokens([AddedToken("here", single_word=True, special=False)])
    save_hf("gpt2", gpt2, {"eos_token": "<|endoftext|>"}, texts)

    tmp = tempfile.mkdtemp()
    llama2_model = train_spm(tmp, "llama2", lines, add_dummy_prefix=True, user_defined=[])
    gemma_model = train_spm(tmp, "gemma", lines, add_dummy_prefix=False,
                            user_defined=["<start_of_turn>", "<end_of_turn>", "<table>", "<h1>"], gemma_ids=True)
    spm_source_fixture("llama2-spm", llama2_model, texts)
    spm_source_fixture("gemma-spm", gemma_model, texts)
    for name, model_file, style in [("llama2", llama2_model, "llama2"), ("llama2-metaspace", llama2_model, "metaspace"),
                                    ("gemma", gemma_model, "gemma")]:
        pieces, unk_id, bos_id, eos_id = spm_model_pieces(model_file)
        tok, config = spm_to_hf(pieces, unk_id, bos_id, eos_id, style)
        save_hf(name, tok, config, texts)
    shutil.rmtree(tmp)
    for name in sorted(os.listdir(OUT)):
        path = os.path.join(OUT, name)
        files = [os.path.join(path, f) for f in os.listdir(path)] if os.path.isdir(path) else [path]
        size = sum(os.path.getsize(f) for f in files)
        print(f"{name}: {size // 1024} KB")


if __name__ == "__main__":
    sys.exit(main())
