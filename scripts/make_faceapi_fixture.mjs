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

const require = createRequire(path.join(process.cwd(), 'package.json'));
const tf = require('@tensorflow/tfjs');
const faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js');

// --- minimal .npy reader (uint8, C order) and stored-zip .npz writer: no extra packages needed ---
function readNpy(file) {
  const buf = fs.readFileSync(file);
  const headerLen = buf.readUInt16LE(8);
  const header = buf.subarray(10, 10 + headerLen).toString('latin1');
  if (!header.includes("'descr': '|u1'") || header.includes("'fortran_order': True")) {
    throw new Error(`${file}: expected a C-order uint8 array, header ${header}`);
  }
  const shape = header.match(/'shape': \(([^)]*)\)/)[1].split(',').filter((s) => s.trim()).map(Number);
  return { shape, data: new Uint8Array(buf.subarray(10 + headerLen)) };
}

function npyBytes(descr, shape, bytes) {
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const pad = 64 - ((10 + header.length + 1) % 64);
  header += ' '.repeat(pad % 64) + '\n';
  const pre = Buffer.alloc(10);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]).copy(pre);
  pre.writeUInt16LE(header.length, 8);
  return Buffer.concat([pre, Buffer.from(header, 'latin1'), Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)]);
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function writeNpz(file, arrays) {
  const parts = [];
  const central = [];
  let offset = 0;
  for (const [name, body] of Object.entries(arrays)) {
    const fname = Buffer.from(`${name}.npy`);
    const crc = crc32(body);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0); local.writeUInt16LE(20, 4); local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18); local.writeUInt32LE(body.length, 22); local.writeUInt16LE(fname.length, 26);
    const cen = Buffer.alloc(46);
    cen.writeUInt32LE(0x02014b50, 0); cen.writeUInt16LE(20, 4); cen.writeUInt16LE(20, 6); cen.writeUInt32LE(crc, 16);
    cen.writeUInt32LE(body.length, 20); cen.writeUInt32LE(body.length, 24); cen.writeUInt16LE(fname.length, 28);
    cen.writeUInt32LE(offset, 42);
    parts.push(local, fname, body);
    central.push(cen, fname);
    offset += 30 + fname.length + body.length;
  }
  const cenBuf = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0); end.writeUInt16LE(central.length / 2, 8); end.writeUInt16LE(central.length / 2, 10);
  end.writeUInt32LE(cenBuf.length, 12); end.writeUInt32LE(offset, 16);
  fs.writeFileSync(file, Buffer.concat([...parts, cenBuf, end]));
}

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
