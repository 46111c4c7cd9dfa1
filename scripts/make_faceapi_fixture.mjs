// Reproduction fixture for ferhub's face-api expression net: upstream's own code (face-api's Node build on
// pure TF.js, CPU backend) loads face_expression_model from the npm package and classifies fixed inputs.
//
// Run once, in a throwaway folder (never inside the repo; tfjs-node is not needed and would fetch a native
// binary at install):
//   mkdir /tmp/faceapi-fixture && cd /tmp/faceapi-fixture && npm init -y
//   npm install @vladmandic/face-api@1.7.15 @tensorflow/tfjs@4.22.0 @tensorflow/tfjs-backend-wasm@4.22.0
//   python /path/to/ferhub/scripts/fixture_inputs.py --size 112 --out inputs.npy
//   node /path/to/ferhub/scripts/make_faceapi_fixture.mjs inputs.npy /path/to/ferhub/tests/fixtures/faceapi_expression.npz
// (the wasm backend package is only there because face-api's Node build requires it; we run on "cpu").
// Writes an .npz with `inputs` (uint8 N,112,112,3 RGB), `logits` and `probabilities` (float32 N,7, in
// face-api's label order neutral, happy, sad, angry, fearful, disgusted, surprised) and `versions`.

import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { npyBytes, readNpy, writeNpz } from './npz.mjs';

const require = createRequire(path.join(process.cwd(), 'package.json'));
const tf = require('@tensorflow/tfjs');
const faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js');

async function main() {
  const [inputsPath, outPath] = process.argv.slice(2);
  if (!inputsPath || !outPath) throw new Error('usage: node make_faceapi_fixture.mjs INPUTS.npy OUT.npz');
  await tf.setBackend('cpu');
  await tf.ready();
  const modelDir = path.join(path.dirname(require.resolve('@vladmandic/face-api/package.json')), 'model');
  await faceapi.nets.faceExpressionNet.loadFromDisk(modelDir);

  const { shape, data } = readNpy(inputsPath);
  const [n, h, w, c] = shape;
  if (h !== 112 || w !== 112 || c !== 3) throw new Error(`inputs must be (N, 112, 112, 3), got ${shape}`);
  const logits = new Float32Array(n * 7);
  const probs = new Float32Array(n * 7);
  for (let i = 0; i < n; i += 1) {
    const img = tf.tensor3d(data.subarray(i * h * w * c, (i + 1) * h * w * c), [h, w, c], 'int32');
    const netInput = await faceapi.toNetInput(img);
    const z = faceapi.nets.faceExpressionNet.runNet(netInput);
    logits.set(z.dataSync(), i * 7);
    const p = await faceapi.nets.faceExpressionNet.forward(img); // upstream's public path: softmax(runNet)
    probs.set(p.dataSync(), i * 7);
    tf.dispose([img, z, p]);
  }
  const versions = Buffer.from(`face-api ${faceapi.version} tfjs ${tf.version.tfjs} backend ${tf.getBackend()}`);
  writeNpz(outPath, {
    inputs: npyBytes('|u1', shape, data),
    logits: npyBytes('<f4', [n, 7], logits),
    probabilities: npyBytes('<f4', [n, 7], probs),
    versions: npyBytes('|u1', [versions.length], new Uint8Array(versions)),
  });
  console.log(`wrote ${outPath}: ${n} inputs; ${versions}`);
}

main().catch((e) => { console.error(e); process.exit(1); });
