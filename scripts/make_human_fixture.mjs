// Reproduction fixture for ferhub's human-emotion model: TF.js itself (pure @tensorflow/tfjs, CPU backend, in
// Node) executes the graph model `models/emotion.json` + `emotion.bin` of the npm package @vladmandic/human.
//
// Run once, in a throwaway folder (never inside the repo):
//   mkdir /tmp/human-fixture && cd /tmp/human-fixture && npm init -y
//   npm install @tensorflow/tfjs@4.22.0 && npm pack --ignore-scripts @vladmandic/human@3.3.6
//   tar xzf vladmandic-human-3.3.6.tgz package/models/emotion.json package/models/emotion.bin
//   python /path/to/ferhub/scripts/fixture_inputs.py --size 64 --channels 1 --out inputs.npy
//   node /path/to/ferhub/scripts/make_human_fixture.mjs package/models inputs.npy /path/to/ferhub/tests/fixtures/human_emotion.npz
// The input is what human's emotion.predict feeds the graph: (gray/255 - 0.5) * 2, shape (N, 64, 64, 1).
// Writes an .npz with `inputs` (uint8 N,64,64 gray), `probabilities` (float32 N,7, the graph's softmax output in
// its label order angry, disgust, fear, happy, sad, surprise, neutral) and `versions`.

import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { npyBytes, readNpy, writeNpz } from './npz.mjs';

const require = createRequire(path.join(process.cwd(), 'package.json'));
const tf = require('@tensorflow/tfjs');

async function main() {
  const [modelDir, inputsPath, outPath] = process.argv.slice(2);
  if (!outPath) throw new Error('usage: node make_human_fixture.mjs MODEL_DIR INPUTS.npy OUT.npz');
  await tf.setBackend('cpu');
  await tf.ready();
  const json = JSON.parse(fs.readFileSync(path.join(modelDir, 'emotion.json'), 'utf8'));
  const group = json.weightsManifest[0];
  const bin = fs.readFileSync(path.join(modelDir, group.paths[0]));
  const model = await tf.loadGraphModel(tf.io.fromMemory({
    modelTopology: json.modelTopology,
    weightSpecs: group.weights,
    weightData: bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength),
    format: json.format,
    generatedBy: json.generatedBy,
    convertedBy: json.convertedBy,
    signature: json.signature,
    userDefinedMetadata: json.userDefinedMetadata,
  }));

  const { shape, data } = readNpy(inputsPath);
  const [n, h, w] = shape;
  if (h !== 64 || w !== 64 || (shape.length === 4 && shape[3] !== 1)) throw new Error(`inputs must be (N, 64, 64[, 1]), got ${shape}`);
  const x = tf.tidy(() => tf.tensor4d(Float32Array.from(data), [n, 64, 64, 1]).div(255).sub(0.5).mul(2));
  const y = model.execute(x);
  const probs = new Float32Array(y.dataSync());
  const versions = Buffer.from(`human 3.3.6 models/emotion.json tfjs ${tf.version.tfjs} backend ${tf.getBackend()}`);
  writeNpz(outPath, {
    inputs: npyBytes('|u1', [n, 64, 64], data),
    probabilities: npyBytes('<f4', [n, 7], probs),
    versions: npyBytes('|u1', [versions.length], new Uint8Array(versions)),
  });
  console.log(`wrote ${outPath}: ${n} inputs; ${versions}`);
}

main().catch((e) => { console.error(e); process.exit(1); });
