#!/usr/bin/env python3
"""Renders MiniMax-M2's published chat template on the chat test cases.

The template (test/data/tokenizers/minimax-m2/chat_template.jinja, sha256
967ff7e3...ea001, the MiniMaxAI/MiniMax-M2 chat_template.jinja as carried by
llama.cpp's models/templates/MiniMax-M2.jinja) is rendered with Jinja2 set up
the way transformers' apply_chat_template does it: a sandboxed environment
with trim_blocks and lstrip_blocks, the loopcontrols extension, a tojson
filter that is json.dumps (ensure_ascii=False by default) and a
raise_exception global. The output, test/data/tokenizers/minimax-m2/
chat_cases.json, is what ChatTemplateTest compares m2c's renderer with byte
for byte.

Usage, from the repository root (needs the jinja2 module):
  python3 scripts/tokenizer/render_chat_reference.py
"""
import json
import os

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

DIR = os.path.join("test", "data", "tokenizers", "minimax-m2")

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a given location",
        "parameters": {
            "type": "object",
            "properties": {
                "location": {"type": "string", "description": "City and state, e.g., 'San Francisco, CA'"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1},
            },
            "required": ["location", "unit"],
        },
    },
}
SEARCH = {
    "type": "function",
    "function": {
        "name": "search_web",
        "description": "Search the web. Quotes \"like this\" and ünïcödé 天气 stay as they are.\nSecond line.",
        "parameters": {
            "type": "object",
            "properties": {
                "query_list": {"type": "array", "items": {"type": "string"}},
                "options": {"type": "object", "properties": {"safe": {"type": "boolean"}, "top_k": {"type": "number"}}},
            },
            "required": ["query_list"],
        },
    },
}

CASES = [
    {
        "name": "system_and_user",
        "messages": [
            {"role": "system", "content": "You are a concise assistant."},
            {"role": "user", "content": "What is 2+2?"},
        ],
    },
    {
        "name": "user_only_default_identity",
        "messages": [{"role": "user", "content": "Hi there!\nTwo lines."}],
    },
    {
        "name": "empty_system_content_and_date",
        "messages": [
            {"role": "system", "content": "", "current_date": "2025-11-27", "current_location": "Paris"},
            {"role": "user", "content": "Hello"},
        ],
    },
    {
        "name": "no_generation_prompt",
        "messages": [
            {"role": "system", "content": "S"},
            {"role": "user", "content": "U"},
            {"role": "assistant", "content": "A"},
        ],
        "add_generation_prompt": False,
    },
    {
        "name": "multi_turn_think_blocks",
        "messages": [
            {"role": "system", "content": "You are helpful."},
            {"role": "user", "content": "First question?"},
            {"role": "assistant", "content": "<think>\nThinking about the first question.\n</think>\n\nFirst answer."},
            {"role": "user", "content": "Second question?"},
            {"role": "assistant", "content": "Second answer.", "reasoning_content": "Reasoning kept after the last user turn."},
        ],
        "add_generation_prompt": False,
    },
    {
        "name": "multi_turn_then_prompt",
        "messages": [
            {"role": "user", "content": "Q1"},
            {"role": "assistant", "content": "<think>r1</think>A1"},
            {"role": "user", "content": "Q2"},
            {"role": "assistant", "content": "\n\nA2 with newlines around\n", "reasoning_content": "r2"},
            {"role": "user", "content": "Q3"},
        ],
    },
    {
        "name": "think_close_without_open",
        "messages": [
            {"role": "user", "content": "Q"},
            {"role": "assistant", "content": "only reasoning here\n</think>\n\nthe answer"},
        ],
    },
    {
        "name": "tools_and_tool_results",
        "messages": [
            {"role": "system", "content": "You can use tools."},
            {"role": "user", "content": "Weather in Paris and news about it?"},
            {
                "role": "assistant",
                "content": "<think>\nI should call both tools.\n</think>\n\nLet me check.",
                "tool_calls": [
                    {"type": "function", "function": {"name": "get_weather", "arguments": {"location": "Paris, FR", "unit": "celsius", "days": 3}}},
                    {"type": "function", "function": {"name": "search_web", "arguments": {"query_list": ["Paris \"weather\"", "天气"], "options": {"safe": True, "top_k": 2.5}}}},
                ],
            },
            {"role": "tool", "content": "{\"temp\": 12, \"sky\": \"cloudy\"}"},
            {"role": "tool", "content": "No news.\nSecond line."},
            {"role": "assistant", "content": "It is 12 degrees and cloudy.", "reasoning_content": "Both tools answered."},
            {"role": "user", "content": "Thanks! Tomorrow?"},
        ],
        "tools": [WEATHER, SEARCH],
    },
    {
        "name": "tool_call_without_content",
        "messages": [
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": "", "reasoning_content": "Need the tool.", "tool_calls": [
                {"type": "function", "function": {"name": "get_weather", "arguments": {"location": "Oslo", "unit": "celsius", "flag": None, "ratio": 0.1, "big": 1e16}}},
            ]},
            {"role": "tool", "content": "-3"},
        ],
        "tools": [WEATHER],
    },
    {
        "name": "content_parts",
        "messages": [
            {"role": "system", "content": [{"type": "text", "text": "Part one. "}, {"type": "text", "text": "Part two."}]},
            {"role": "user", "content": [{"type": "text", "text": "Hello "}, {"type": "image"}, {"type": "text", "text": "world"}]},
        ],
    },
]


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def main():
    with open(os.path.join(DIR, "chat_template.jinja"), encoding="utf-8") as f:
        source = f.read()
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    template = env.from_string(source)
    out = []
    for case in CASES:
        add = case.get("add_generation_prompt", True)
        kwargs = {"messages": case["messages"], "add_generation_prompt": add,
                  "bos_token": "]~!b[", "eos_token": "[e~[", "unk_token": "]!d~["}
        if "tools" in case:
            kwargs["tools"] = case["tools"]
        rendered = template.render(**kwargs)
        out.append({"name": case["name"], "messages": case["messages"], "tools": case.get("tools"),
                    "add_generation_prompt": add, "expected": rendered})
    path = os.path.join(DIR, "chat_cases.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"template_sha256": "967ff7e387676f4b4340585da0585416532f1e6c5ee3f1ede64b2c21ef7ea001",
                   "renderer": "jinja2 %s (transformers' apply_chat_template settings)" % jinja2.__version__,
                   "cases": out}, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print("wrote %s (%d cases)" % (path, len(out)))


if __name__ == "__main__":
    main()
