#!/usr/bin/env python3
"""Writes test/data/tokenizers/corpus.json: the texts the exactness test
compares against Hugging Face `tokenizers`.

Each case is a short text chosen to hit one part of the pipeline (code,
emoji, CJK, whitespace runs, contractions, numbers, NFC, special tokens of
every reference tokenizer, control characters); the last one is a long mixed
document. Run from the repository root:

  python3 scripts/tokenizer/make_corpus.py
"""
import json
import os

CASES = [
    # Plain prose, contractions (the (?i:'s|'t|...) branch, upper case too).
    "Hello world! It's a test: we'll see, they've gone, I'm here, you'd know, we're done.",
    "SHOUTING IT'S THEY'LL WE'VE I'M YOU'D WE'RE",
    "x'S y'T z'Re don'T",
    "x'\u017f long s",
    "  leading spaces and trailing spaces   ",
    # Code.
    "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "#include <vector>\nint main() {\n\tstd::vector<int> v{1, 2, 3};\n\treturn v.size() == 3 ? 0 : 1;\n}\n",
    "const x = async (a, b) => { await fetch(`/api/${a}?q=${b}`); return a ?? b; };\r\n",
    "SELECT id, name FROM users WHERE age >= 18 AND name LIKE '%o%';",
    "if (a&&b||!c) { x+=1; y<<=2; z = a->b.c[0]; } // comment /* block */",
    "    \t\tmixed\t \tindent\n\n\n\nparagraphs\r\n\r\nwindows",
    # Whitespace runs.
    "a  b   c    d     e",
    "     ",
    "\n\n\n",
    "tab\there\t\t\tand\u00a0nbsp\u3000ideographic\u2003em",
    "line\u2028sep\u2029para\x0bvt\x0cff\x85nel",
    "end with newline\n",
    " ",
    "",
    # Numbers.
    "1234567890 12 123 1234 3.14159 1,000,000 -42 0x1F 1e-9",
    "\u0661\u0662\u0663 \u0967\u0968\u0969 \u2460\u2461 \u00bd \u2167",
    # Emoji.
    "I \u2764\ufe0f emoji \U0001F600\U0001F602\U0001F923",
    "family: \U0001F468\u200d\U0001F469\u200d\U0001F467\u200d\U0001F466 thumbs: \U0001F44D\U0001F3FD flag: \U0001F1EF\U0001F1F5",
    "\U0001F680 rocket\U0001F525fire \u2728",
    # CJK and other scripts.
    "\u4f60\u597d\uff0c\u4e16\u754c\uff01\u4eca\u5929\u5929\u6c14\u5f88\u597d\u3002",
    "\u65e5\u672c\u8a9e\u306e\u6587\u7ae0\u3067\u3059\u3002\u30ab\u30bf\u30ab\u30ca\u3082\u3042\u308a\u307e\u3059\u3002",
    "\ud55c\uad6d\uc5b4 \ubb38\uc7a5\uc785\ub2c8\ub2e4.",
    "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440! \u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac \u05e2\u05d1\u05e8\u05d9\u05ea \u0627\u0644\u0639\u0631\u0628\u064a\u0629",
    "\u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e \u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35",
    "Ti\u1ebfng Vi\u1ec7t c\u00f3 d\u1ea5u",
    # NFC: decomposed input (e + combining acute, Hangul jamo).
    "cafe\u0301 re\u0301sume\u0301 A\u030a",
    "\u1100\u1161\u11a8 \u1112\u1161\u11ab",
    "\u212b \u2126 \u0344",
    # Symbols, math, astral letters, private use, unassigned.
    "\u2200x\u2208\u211d: x\u00b2 \u2265 0 \u2211 \u222b \u03c0\u2248 3.14",
    "\U0001D54F \U0001D4D0\U0001D4D1 \ue000\uf8ff \U000E0041",
    "\x1cfile\x1dgroup\x1erecord\x1funit \x00nul\x7fdel",
    "zero\u200bwidth\u200cnon\u200djoiner\ufeffbom",
    # URLs, JSON, markdown.
    "https://example.com/path?query=1&other=two#frag user@example.org",
    "{\"key\": [1, 2.5, true, null], \"nested\": {\"a\": \"b\"}}",
    "# Title\n\n- item **bold** _it_ `code`\n\n```python\nprint('hi')\n```\n",
    # Special tokens of the reference tokenizers, and MiniMax-M2's.
    "<|endoftext|>hello<|endoftext|> <|endoftext|>",
    "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>",
    "<\uff5cbegin\u2581of\u2581sentence\uff5c>hello<\uff5cUser\uff5c>hi<\uff5cAssistant\uff5c>",
    "<|start|>user<|message|>hi<|end|><|start|>assistant",
    "]~!b[]~b]system\nYou are helpful.[e~[\n]~b]user\nhi[e~[\n]~b]ai\n<think>\n",
    "<think>reasoning</think>\n\n<minimax:tool_call><invoke name=\"f\"></invoke></minimax:tool_call>",
    "<|endoftext",
    "<|im_start|><|im_start|>",
    # Long repeats (merge chains, cache).
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "!!!!!!!!!!!!!??????????..........----------==========",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
]

LONG = (
    "The quick brown fox jumps over the lazy dog. " * 3 + "\n"
    "\u8fd9\u662f\u4e00\u4e2a\u6df7\u5408\u7684\u6587\u6863\uff0c\u5305\u542b\u4e2d\u6587\u3001English\u548c\u65e5\u672c\u8a9e\u3002\n"
    "def main():\n    print(\"\u4f60\u597d, world \U0001F30D\")  # \u00e9\u00e8\u00ea\n\n"
    "    \n\t\n"
    "Numbers: 2024-11-27 12:34:56.789, \u00a3100, \u20ac200, \u00a5300, $400.\n"
    "<|endoftext|><|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "Emoji soup: \U0001F469\u200d\U0001F4BB\U0001F9D1\U0001F3FF\u200d\U0001F680\u2764\ufe0f\u200d\U0001F525 end.\n"
    "Trailing whitespace   \n   \n\n  Indented line\r\n"
)
CASES.append(LONG)


def main():
    out = os.path.join("test", "data", "tokenizers", "corpus.json")
    with open(out, "w", encoding="utf-8") as f:
        json.dump({"cases": CASES}, f, ensure_ascii=True, indent=1)
        f.write("\n")
    print("wrote %s (%d cases)" % (out, len(CASES)))


if __name__ == "__main__":
    main()
