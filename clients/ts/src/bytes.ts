// ByteWriter and ByteReader write and read the fixed encodings a canonical
// snapshot is made of, exactly as Go's encoding/binary writes them
// (docs/gamesim-spec.md, "Encodings"): unsigned and zig-zag varints
// (binary.AppendUvarint, binary.AppendVarint), big-endian fixed widths,
// float64 as its IEEE 754 bits, strings as a uvarint length and their
// UTF-8 bytes.

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder("utf-8", { fatal: true });
const M64 = (1n << 64n) - 1n;

/** ByteWriter appends to a growing buffer. */
export class ByteWriter {
  #buf = new Uint8Array(256);
  #len = 0;

  /** length returns how many bytes were written. */
  get length(): number {
    return this.#len;
  }

  #grow(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    const b = new Uint8Array(Math.max(this.#buf.length * 2, this.#len + n));
    b.set(this.#buf.subarray(0, this.#len));
    this.#buf = b;
  }

  /** byte appends one byte. */
  byte(v: number): this {
    this.#grow(1);
    this.#buf[this.#len++] = v & 0xff;
    return this;
  }

  /** bytes appends b. */
  bytes(b: Uint8Array): this {
    this.#grow(b.length);
    this.#buf.set(b, this.#len);
    this.#len += b.length;
    return this;
  }

  /** uvarint appends v, 0 ≤ v < 2^64, as binary.AppendUvarint does. */
  uvarint(v: number | bigint): this {
    let x = BigInt(v);
    if (x < 0n || x > M64) throw new RangeError(`uvarint: ${v} is not a uint64`);
    while (x >= 0x80n) {
      this.byte(Number(x & 0x7fn) | 0x80);
      x >>= 7n;
    }
    return this.byte(Number(x));
  }

  /** varint appends v, -2^63 ≤ v < 2^63, zig-zag encoded, as binary.AppendVarint does. */
  varint(v: number | bigint): this {
    const x = BigInt(v);
    if (x < -(1n << 63n) || x >= 1n << 63n) throw new RangeError(`varint: ${v} is not an int64`);
    return this.uvarint(x < 0n ? ((-x) << 1n) - 1n : x << 1n);
  }

  /** uint32 appends v big-endian in 4 bytes. */
  uint32(v: number): this {
    this.#grow(4);
    new DataView(this.#buf.buffer).setUint32(this.#len, v >>> 0);
    this.#len += 4;
    return this;
  }

  /** uint64 appends v (a uint64, or an int64 as its two's complement) big-endian in 8 bytes. */
  uint64(v: number | bigint): this {
    this.#grow(8);
    new DataView(this.#buf.buffer).setBigUint64(this.#len, BigInt(v) & M64);
    this.#len += 8;
    return this;
  }

  /** float64 appends the IEEE 754 bits of v big-endian (math.Float64bits). */
  float64(v: number): this {
    this.#grow(8);
    new DataView(this.#buf.buffer).setFloat64(this.#len, v);
    this.#len += 8;
    return this;
  }

  /** string appends the UTF-8 bytes of s after their length as a uvarint. */
  string(s: string): this {
    const b = utf8.encode(s);
    return this.uvarint(b.length).bytes(b);
  }

  /** finish returns the bytes written (a copy). */
  finish(): Uint8Array {
    return this.#buf.slice(0, this.#len);
  }
}

/** ByteReader reads what a ByteWriter wrote; every method throws a RangeError when the bytes are cut short or malformed. */
export class ByteReader {
  #b: Uint8Array;
  #off = 0;

  constructor(b: Uint8Array) {
    this.#b = b;
  }

  /** remaining returns how many bytes are left to read. */
  get remaining(): number {
    return this.#b.length - this.#off;
  }

  #need(n: number): void {
    if (this.#off + n > this.#b.length) throw new RangeError("ByteReader: cut short");
  }

  byte(): number {
    this.#need(1);
    return this.#b[this.#off++]!;
  }

  bytes(n: number): Uint8Array {
    this.#need(n);
    const v = this.#b.subarray(this.#off, this.#off + n);
    this.#off += n;
    return v;
  }

  /** uvarintBig reads a uvarint as binary.Uvarint does (at most 10 bytes, no overflow). */
  uvarintBig(): bigint {
    let x = 0n;
    for (let i = 0, s = 0n; i < 10; i++, s += 7n) {
      const c = this.byte();
      if (c < 0x80) {
        if (i === 9 && c > 1) throw new RangeError("ByteReader: uvarint overflows 64 bits");
        return x | (BigInt(c) << s);
      }
      x |= BigInt(c & 0x7f) << s;
    }
    throw new RangeError("ByteReader: uvarint overflows 64 bits");
  }

  /** uvarint reads a uvarint that must fit in a double exactly. */
  uvarint(): number {
    return safe(this.uvarintBig());
  }

  varintBig(): bigint {
    const ux = this.uvarintBig();
    return ux & 1n ? -(ux >> 1n) - 1n : ux >> 1n;
  }

  /** varint reads a varint that must fit in a double exactly. */
  varint(): number {
    return safe(this.varintBig());
  }

  uint32(): number {
    this.#need(4);
    const v = new DataView(this.#b.buffer, this.#b.byteOffset).getUint32(this.#off);
    this.#off += 4;
    return v;
  }

  uint64(): bigint {
    this.#need(8);
    const v = new DataView(this.#b.buffer, this.#b.byteOffset).getBigUint64(this.#off);
    this.#off += 8;
    return v;
  }

  float64(): number {
    this.#need(8);
    const v = new DataView(this.#b.buffer, this.#b.byteOffset).getFloat64(this.#off);
    this.#off += 8;
    return v;
  }

  /** string reads a uvarint length and that many bytes of valid UTF-8. */
  string(): string {
    try {
      return utf8Strict.decode(this.bytes(this.uvarint()));
    } catch (e) {
      if (e instanceof RangeError) throw e;
      throw new RangeError("ByteReader: a string that is not UTF-8");
    }
  }
}

function safe(v: bigint): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new RangeError(`ByteReader: ${v} does not fit in a double; read it as a bigint`);
  }
  return Number(v);
}
