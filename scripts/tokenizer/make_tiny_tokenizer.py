#!/usr/bin/env python3
"""Builds test/data/tokenizers/tiny/tokenizer.json: a byte-level BPE
tokenizer.json in MiniMax-M2's layout small enough for the `tiny` model
(vocab_size 512): 256 byte tokens, 247 merges learned on a small English and
code sample, and MiniMax-M2's chat special tokens (ids 503-511).

Needs the `regex` module (for \\p{L} in the split pattern). Run from the
repository root:
  python3 scripts/tokenizer/make_tiny_tokenizer.py
"""
import collections
import json
import os

import regex

SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
         r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
VOCAB_SIZE = 512
# (content, special): special tokens vanish from decoded text with
# skip_special_tokens; the think and tool-call markers stay visible.
ADDED = [
    ("]~!b[", True), ("]~b]", True), ("[e~[", True), ("]!d~[", True), ("]!p~[", True),
    ("<think>", False), ("</think>", False),
    ("<minimax:tool_call>", False), ("</minimax:tool_call>", False),
]
SAMPLE = """
The quick brown fox jumps over the lazy dog. Hello, world! What is the weather
like today? It is sunny and warm in the city, with a light wind from the west.
You are a helpful assistant. Answer the question and explain your reasoning.
The user asked for the answer, so the assistant thinks first and then answers.
def main():
    for i in range(10):
        print("hello", i)
    return 0
int main(void) { return printf("%d\\n", 42); }
Numbers 0 1 2 3 4 5 6 7 8 9 10 100 2024 and the end of the text.
<invoke name="get_weather"><parameter name="location">Paris</parameter></invoke>
"""


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def main():
    byte_char = bytes_to_unicode()
    words = collections.Counter()
    for piece in regex.findall(SPLIT, SAMPLE * 4):
        words[tuple(byte_char[b] for b in piece.encode("utf-8"))] += 1
    vocab = {byte_char[b]: b for b in range(256)}
    merges = []
    target = VOCAB_SIZE - len(ADDED)
    while len(vocab) < target:
        pairs = collections.Counter()
        for word, count in words.items():
            for a, b in zip(word, word[1:]):
                pairs[(a, b)] += count
        if not pairs:
            break
        # Most frequent pair; ties broken by the pair itself for determinism.
        (a, b), _ = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))
        merges.append(a + " " + b)
        vocab[a + b] = len(vocab)
        merged = collections.Counter()
        for word, count in words.items():
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and word[i] == a and word[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            merged[tuple(out)] += count
        words = merged
    added = [{"id": len(vocab) + i, "content": c, "single_word": False, "lstrip": False,
              "rstrip": False, "normalized": False, "special": s} for i, (c, s) in enumerate(ADDED)]
    assert len(vocab) + len(added) <= VOCAB_SIZE
    tok = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": SPLIT}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False},
        ]},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False,
                           "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                    "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": merges},
    }
    out_dir = os.path.join("test", "data", "tokenizers", "tiny")
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "tokenizer.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print("wrote %s: %d model tokens, %d merges, %d added" % (path, len(vocab), len(merges), len(added)))


if __name__ == "__main__":
    main()
