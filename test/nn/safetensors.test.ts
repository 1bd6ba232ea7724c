import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { decodeSafetensors, encodeSafetensors, readSafetensors, writeSafetensors, type StEntry } from '../../src/nn/safetensors.ts';

const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'noduleseg-st-'));
process.on('exit', () => fs.rmSync(tmpDir, { recursive: true, force: true }));

/** Build a file by hand: u64 LE length, the header text padded with spaces, then raw bytes. */
function assemble(headerJson: string, data: number[], pad = true): Uint8Array {
  let h = Buffer.from(headerJson, 'utf8');
  if (pad) h = Buffer.concat([h, Buffer.alloc((8 - (h.length % 8)) % 8, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  return new Uint8Array(Buffer.concat([len, h, Buffer.from(data)]));
}

test('encodes the exact bytes of the reference format', () => {
  const bytes = encodeSafetensors(
    {
      w: { dtype: 'float32', shape: [2], data: new Float32Array([1, -2]) },
      a: { dtype: 'int64', shape: [1], data: new BigInt64Array([-1n]) },
      m: { dtype: 'bool', shape: [3], data: new Uint8Array([1, 0, 1]) },
      h: { dtype: 'int16', shape: [], data: new Int16Array([258]) },
    },
    { format: 'pt', b: 'x' },
  );
  // Widest dtype first (I64, F32, I16, BOOL), metadata keys sorted, compact JSON.
  const header =
    '{"__metadata__":{"b":"x","format":"pt"},' +
    '"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},' +
    '"w":{"dtype":"F32","shape":[2],"data_offsets":[8,16]},' +
    '"h":{"dtype":"I16","shape":[],"data_offsets":[16,18]},' +
    '"m":{"dtype":"BOOL","shape":[3],"data_offsets":[18,21]}}';
  const expected = assemble(header, [
    0xff,
    0xff,
    0xff,
    0xff,
    0xff,
    0xff,
    0xff,
    0xff, // int64 -1
    0x00,
    0x00,
    0x80,
    0x3f, // float32 1
    0x00,
    0x00,
    0x00,
    0xc0, // float32 -2
    0x02,
    0x01, // int16 258 little-endian
    0x01,
    0x00,
    0x01, // bool
  ]);
  assert.deepEqual(Buffer.from(bytes), Buffer.from(expected));
  assert.equal((8n + Buffer.from(bytes).readBigUInt64LE(0)) % 8n, 0n, 'data section is 8-byte aligned');
});

test('decodes a hand-assembled file, including unsorted header and float64/int32/uint8', () => {
  const header =
    '{"u":{"dtype":"U8","shape":[2],"data_offsets":[12,14]},' +
    '"d":{"dtype":"F64","shape":[1,1],"data_offsets":[0,8]},' +
    '"i":{"dtype":"I32","shape":[1],"data_offsets":[8,12]},"__metadata__":{"k":"v"}}';
  const f = decodeSafetensors(assemble(header, [0, 0, 0, 0, 0, 0, 0xf8, 0x3f, 0xfe, 0xff, 0xff, 0xff, 7, 255]), 'hand.safetensors');
  assert.deepEqual([...f.tensors.keys()], ['d', 'i', 'u']);
  assert.deepEqual(f.metadata, { k: 'v' });
  const d = f.tensors.get('d')!;
  assert.equal(d.dtype, 'float64');
  assert.deepEqual(d.shape, [1, 1]);
  assert.deepEqual(d.data, new Float64Array([1.5]));
  assert.deepEqual(f.tensors.get('i')!.data, new Int32Array([-2]));
  assert.deepEqual(f.tensors.get('u')!.data, new Uint8Array([7, 255]));
});

test('round trip through a file keeps every dtype, shape and value', () => {
  const entries: Record<string, StEntry> = {
    f32: { dtype: 'float32', shape: [2, 3], data: new Float32Array([0.1, -0, Infinity, -3.5, 1e-30, 7]) },
    f64: { dtype: 'float64', shape: [3], data: new Float64Array([Math.PI, -1e300, Number.MIN_VALUE]) },
    i16: { dtype: 'int16', shape: [2], data: new Int16Array([-32768, 32767]) },
    i32: { dtype: 'int32', shape: [1, 1, 2], data: new Int32Array([-(2 ** 31), 2 ** 31 - 1]) },
    i64: { dtype: 'int64', shape: [2], data: new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n]) },
    u8: { dtype: 'uint8', shape: [0], data: new Uint8Array(0) },
    b: { dtype: 'bool', shape: [2, 1], data: new Uint8Array([0, 1]) },
    scalar: { dtype: 'float32', shape: [], data: new Float32Array([42]) },
  };
  const file = path.join(tmpDir, 'rt.safetensors');
  writeSafetensors(file, entries, { note: 'héllo' });
  const back = readSafetensors(file);
  assert.deepEqual(back.metadata, { note: 'héllo' });
  assert.equal(back.tensors.size, Object.keys(entries).length);
  for (const [name, e] of Object.entries(entries)) {
    const got = back.tensors.get(name);
    assert.ok(got, name);
    assert.equal(got.dtype, e.dtype, name);
    assert.deepEqual(got.shape, e.shape, name);
    assert.deepEqual(
      Buffer.from(got.data.buffer, got.data.byteOffset, got.data.byteLength),
      Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength),
      name,
    );
  }
  // No temporary files are left behind.
  assert.deepEqual(
    fs.readdirSync(tmpDir).filter((f) => f.startsWith('.')),
    [],
  );
});

test('writing replaces an existing file atomically and leaves it intact on failure', () => {
  const file = path.join(tmpDir, 'atomic.safetensors');
  writeSafetensors(file, { a: { dtype: 'float32', shape: [1], data: new Float32Array([1]) } });
  const before = fs.readFileSync(file);
  assert.throws(
    () => writeSafetensors(file, { a: { dtype: 'float32', shape: [2], data: new Float32Array([1]) } }),
    /shape \[2\] \(2 elements\) but 1 values/,
  );
  assert.deepEqual(fs.readFileSync(file), before);
  writeSafetensors(file, { a: { dtype: 'float32', shape: [1], data: new Float32Array([2]) } });
  assert.deepEqual(readSafetensors(file).tensors.get('a')!.data, new Float32Array([2]));
  assert.throws(() => writeSafetensors(path.join(tmpDir, 'no-such-dir', 'x.safetensors'), {}), /cannot write .*no-such-dir/);
});

test('the writer refuses data that does not match its dtype', () => {
  assert.throws(
    () => encodeSafetensors({ a: { dtype: 'float64', shape: [1], data: new Float32Array([1]) } }),
    /"a" is float64 but its data is a Float32Array/,
  );
  assert.throws(() => encodeSafetensors({ a: { dtype: 'float32', shape: [-1], data: new Float32Array(0) } }), /invalid shape/);
});

test('refuses truncated, corrupted and inconsistent files, naming the file and the reason', () => {
  const good = encodeSafetensors({
    a: { dtype: 'float32', shape: [2], data: new Float32Array([1, 2]) },
    b: { dtype: 'float32', shape: [1], data: new Float32Array([3]) },
  });
  const cases: [string, Uint8Array, RegExp][] = [
    ['empty', new Uint8Array(0), /truncated: 0 bytes/],
    ['short length', good.subarray(0, 5), /truncated: 5 bytes/],
    ['cut in header', good.subarray(0, 20), /truncated: header says \d+ bytes of JSON/],
    ['cut in data', good.subarray(0, good.length - 1), /run past the 11 data bytes/],
    ['trailing bytes', new Uint8Array([...good, 0]), /cover 12 data bytes but the file has 13/],
    ['huge header length', Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]), /header length \d+ exceeds/],
    ['bad json', assemble('{"a":{"dtype":"F32",', [0, 0, 0, 0]), /header is not valid JSON/],
    // '{"a":1}' with the key's byte replaced by 0xff, an invalid UTF-8 start byte.
    ['bad utf8', assemble('{"a":1}', []).map((b, i) => (i === 10 ? 0xff : b)), /not valid UTF-8/],
    ['array header', assemble('[1,2]', []), /header is not a JSON object/],
    ['bad dtype', assemble('{"a":{"dtype":"F16","shape":[1],"data_offsets":[0,2]}}', [0, 0]), /"a" has unsupported dtype "F16"/],
    ['bad shape', assemble('{"a":{"dtype":"U8","shape":[1.5],"data_offsets":[0,1]}}', [0]), /"a" has invalid shape/],
    ['bad offsets', assemble('{"a":{"dtype":"U8","shape":[1],"data_offsets":[1,0]}}', [0]), /"a" has invalid data_offsets/],
    ['missing offsets', assemble('{"a":{"dtype":"U8","shape":[1]}}', [0]), /"a" has invalid data_offsets/],
    [
      'byte count',
      assemble('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}', [0, 0, 0, 0]),
      /"a" has 4 bytes but float32 \[2\] needs 8/,
    ],
    [
      'overlap',
      assemble('{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}}', [0, 0, 0]),
      /"b" overlaps the previous tensor/,
    ],
    [
      'gap',
      assemble('{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"U8","shape":[1],"data_offsets":[2,3]}}', [0, 0, 0]),
      /gap in the data before tensor "b"/,
    ],
    ['uncovered', assemble('{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', [0, 0]), /cover 1 data bytes but the file has 2/],
    ['bad metadata', assemble('{"__metadata__":{"k":1}}', []), /"__metadata__" value for "k" is not a string/],
    ['bad bool', assemble('{"a":{"dtype":"BOOL","shape":[1],"data_offsets":[0,1]}}', [2]), /"a" \(BOOL\) holds a byte other than 0 or 1/],
  ];
  for (const [label, bytes, reason] of cases) {
    const file = path.join(tmpDir, `bad-${label.replace(/ /g, '-')}.safetensors`);
    fs.writeFileSync(file, bytes);
    assert.throws(
      () => readSafetensors(file),
      (e: unknown) => {
        assert.ok(e instanceof Error, label);
        assert.ok(e.message.includes(file), `${label}: message names the file: ${e.message}`);
        assert.match(e.message, reason, label);
        return true;
      },
    );
  }
  assert.throws(() => readSafetensors(path.join(tmpDir, 'absent.safetensors')), /cannot read .*absent\.safetensors/);
});
