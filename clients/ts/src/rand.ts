// Rand: gamesim's per-tick generator, bit for bit with Go's *rand.Rand over
// math/rand/v2's PCG as gamesim seeds it (docs/gamesim-spec.md, "Rand").
// 64-bit values are bigint; methods whose values always fit in a double
// return number. The generator works on 16-bit limbs in doubles (every
// product and sum stays below 2^53, so exact), not on bigint: a step is
// then a few dozen multiplications, several times faster than bigint's.

import { sha256 } from "./sha256.js";

const M64 = (1n << 64n) - 1n;
const MAX_INT64 = (1n << 63n) - 1n;
// PCG's 128-bit LCG multiplier and increment, and DXSM's multiplier, as
// 16-bit limbs, least significant first.
const MUL = limbs((2549297995355413924n << 64n) | 4865540595714422341n, 8);
const INC = limbs((6364136223846793005n << 64n) | 1442695040888963407n, 8);
const CHEAP_MUL = limbs(0xda942042e4dd58b5n, 4);
const L16 = 65536;
const P32 = 4294967296;

function limbs(v: bigint, n: number): number[] {
  return Array.from({ length: n }, (_, i) => Number((v >> BigInt(16 * i)) & 0xffffn));
}

/** mul64 sets x (4 limbs) to x·m mod 2^64. */
function mul64(x: number[], m: readonly number[]): void {
  const x0 = x[0]!, x1 = x[1]!, x2 = x[2]!, x3 = x[3]!;
  const m0 = m[0]!, m1 = m[1]!, m2 = m[2]!, m3 = m[3]!;
  let v = x0 * m0;
  x[0] = v & 0xffff;
  v = (v - (v & 0xffff)) / L16 + x0 * m1 + x1 * m0;
  x[1] = v & 0xffff;
  v = (v - (v & 0xffff)) / L16 + x0 * m2 + x1 * m1 + x2 * m0;
  x[2] = v & 0xffff;
  v = (v - (v & 0xffff)) / L16 + x0 * m3 + x1 * m2 + x2 * m1 + x3 * m0;
  x[3] = v & 0xffff;
}

const utf8 = new TextEncoder();

/**
 * seedOf returns the seed of a stream from the body of its "_a" (its
 * epoch): the first 16 bytes of the SHA-256 of its UTF-8 bytes, as two
 * little-endian 64-bit words.
 */
export function seedOf(epoch: string): [bigint, bigint] {
  const sum = new DataView(sha256(utf8.encode(epoch)).buffer);
  return [sum.getBigUint64(0, true), sum.getBigUint64(8, true)];
}

/** splitmix64 scrambles a tick number so that neighbouring ticks seed unrelated sequences. */
export function splitmix64(x: bigint): bigint {
  x = (x + 0x9e3779b97f4a7c15n) & M64;
  x = ((x ^ (x >> 30n)) * 0xbf58476d1ce4e5b9n) & M64;
  x = ((x ^ (x >> 27n)) * 0x94d049bb133111ebn) & M64;
  return x ^ (x >> 31n);
}

function checkInt(name: string, n: number, max: number): void {
  if (!Number.isInteger(n) || n <= 0 || n > max) {
    throw new RangeError(`Rand.${name}: n must be an integer from 1 to ${max}, not ${n}`);
  }
}

/**
 * Rand is the simulation's only source of randomness (gamesim's
 * Driver.Rand): a PCG-DXSM generator that SimDriver reseeds at every tick
 * from the stream's seed and the tick. Method names follow Go's
 * math/rand/v2, in camelCase.
 */
export class Rand {
  readonly #s = new Array<number>(8).fill(0); // the 128-bit state, 16-bit limbs, least significant first
  readonly #x = [0, 0, 0, 0]; // the output being made
  // The last output, as two 32-bit halves.
  #hi = 0;
  #lo = 0;

  /** seed sets the generator's 128-bit state (Go's PCG.Seed(hi, lo)). */
  seed(hi: bigint, lo: bigint): void {
    const words = [Number(lo & 0xffffffffn), Number((lo >> 32n) & 0xffffffffn), Number(hi & 0xffffffffn), Number((hi >> 32n) & 0xffffffffn)];
    for (let i = 0; i < 4; i++) {
      this.#s[2 * i] = words[i]! & 0xffff;
      this.#s[2 * i + 1] = words[i]! >>> 16;
    }
  }

  /** state returns the generator's state (hi, lo), for tests and tools. */
  state(): [bigint, bigint] {
    let hi = 0n;
    let lo = 0n;
    for (let i = 3; i >= 0; i--) {
      hi = (hi << 16n) | BigInt(this.#s[i + 4]!);
      lo = (lo << 16n) | BigInt(this.#s[i]!);
    }
    return [hi, lo];
  }

  /** reseed derives the state for tick k of the stream whose seed is seed (seedOf). */
  reseed(seed: readonly [bigint, bigint], k: number | bigint): void {
    this.seed(seed[0] ^ splitmix64(BigInt(k) & M64), seed[1]);
  }

  /** next steps the generator and leaves its output in #hi and #lo. */
  #next(): void {
    const s = this.#s;
    // state = state·MUL + INC mod 2^128
    const s0 = s[0]!, s1 = s[1]!, s2 = s[2]!, s3 = s[3]!, s4 = s[4]!, s5 = s[5]!, s6 = s[6]!, s7 = s[7]!;
    const m0 = MUL[0]!, m1 = MUL[1]!, m2 = MUL[2]!, m3 = MUL[3]!, m4 = MUL[4]!, m5 = MUL[5]!, m6 = MUL[6]!, m7 = MUL[7]!;
    let v = s0 * m0 + INC[0]!;
    s[0] = v & 0xffff;
    v = (v - (v & 0xffff)) / L16 + s0 * m1 + s1 * m0 + INC[1]!;
    s[1] = v & 0xffff;
    v = (v - (v & 0xffff)) / L16 + s0 * m2 + s1 * m1 + s2 * m0 + INC[2]!;
    s[2] = v & 0xffff;
    v = (v - (v & 0xffff)) / L16 + s0 * m3 + s1 * m2 + s2 * m1 + s3 * m0 + INC[3]!;
    s[3] = v & 0xffff;
    v = (v - (v & 0xffff)) / L16 + s0 * m4 + s1 * m3 + s2 * m2 + s3 * m1 + s4 * m0 + INC[4]!;
    s[4] = v & 0xffff;
    v = (v - (v & 0xffff)) / L16 + s0 * m5 + s1 * m4 + s2 * m3 + s3 * m2 + s4 * m1 + s5 * m0 + INC[5]!;
    s[5] = v & 0xffff;
    v = (v - (v & 0xffff)) / L16 + s0 * m6 + s1 * m5 + s2 * m4 + s3 * m3 + s4 * m2 + s5 * m1 + s6 * m0 + INC[6]!;
    s[6] = v & 0xffff;
    v = (v - (v & 0xffff)) / L16 + s0 * m7 + s1 * m6 + s2 * m5 + s3 * m4 + s4 * m3 + s5 * m2 + s6 * m1 + s7 * m0 + INC[7]!;
    s[7] = v & 0xffff;

    // DXSM: x = hi; x ^= x >> 32; x *= CHEAP_MUL; x ^= x >> 48; x *= lo | 1
    const x = this.#x;
    x[0] = s[4]! ^ s[6]!;
    x[1] = s[5]! ^ s[7]!;
    x[2] = s[6]!;
    x[3] = s[7]!;
    mul64(x, CHEAP_MUL);
    x[0] = x[0]! ^ x[3]!;
    mul64(x, [s[0]! | 1, s[1]!, s[2]!, s[3]!]);
    this.#hi = x[3]! * L16 + x[2]!;
    this.#lo = x[1]! * L16 + x[0]!;
  }

  /** uint64 returns a uniformly distributed 64-bit value: PCG's next output. */
  uint64(): bigint {
    this.#next();
    return (BigInt(this.#hi) << 32n) | BigInt(this.#lo);
  }

  /** int64 returns a non-negative 63-bit value. */
  int64(): bigint {
    this.#next();
    return (BigInt(this.#hi & 0x7fffffff) << 32n) | BigInt(this.#lo);
  }

  /** uint32 returns the high 32 bits of a value. */
  uint32(): number {
    this.#next();
    return this.#hi;
  }

  /** int32 returns a non-negative 31-bit value: the high 31 bits of a value. */
  int32(): number {
    this.#next();
    return this.#hi >>> 1;
  }

  /** int is Go's Int with a 64-bit int: int64. */
  int(): bigint {
    return this.int64();
  }

  /** uint is Go's Uint with a 64-bit uint: uint64. */
  uint(): bigint {
    return this.uint64();
  }

  /** uint64N returns a value in [0, n), 0 < n < 2^64 (Lemire's method, as Go's uint64n). */
  uint64N(n: bigint): bigint {
    if (n <= 0n || n > M64) throw new RangeError(`Rand.uint64N: n must be from 1 to 2^64-1, not ${n}`);
    return this.#uint64nBig(n);
  }

  /** uintN is uint64N (Go's UintN with a 64-bit uint). */
  uintN(n: bigint): bigint {
    return this.uint64N(n);
  }

  /** int64N returns a value in [0, n), 0 < n < 2^63. */
  int64N(n: bigint): bigint {
    if (n <= 0n || n > MAX_INT64) throw new RangeError(`Rand.int64N: n must be from 1 to 2^63-1, not ${n}`);
    return this.#uint64nBig(n);
  }

  /** intN returns a value in [0, n), for an integer n from 1 to 2^53-1 (use int64N beyond). */
  intN(n: number): number {
    checkInt("intN", n, Number.MAX_SAFE_INTEGER);
    return this.#uint64n(n);
  }

  /** int32N returns a value in [0, n), 0 < n < 2^31. */
  int32N(n: number): number {
    checkInt("int32N", n, 0x7fffffff);
    return this.#uint64n(n);
  }

  /** uint32N returns a value in [0, n), 0 < n < 2^32. */
  uint32N(n: number): number {
    checkInt("uint32N", n, 0xffffffff);
    return this.#uint64n(n);
  }

  /** float64 returns a value in [0, 1): the low 53 bits of a value over 2^53. */
  float64(): number {
    this.#next();
    return ((this.#hi & 0x1fffff) * P32 + this.#lo) / 9007199254740992;
  }

  /** float32 returns a float32 in [0, 1): the low 24 bits of uint32() over 2^24. */
  float32(): number {
    this.#next();
    return (this.#hi & 0xffffff) / 16777216;
  }

  /** perm returns a permutation of [0, n): shuffle of the identity. */
  perm(n: number): number[] {
    const p = Array.from({ length: n }, (_, i) => i);
    this.shuffle(n, (i, j) => {
      const t = p[i]!;
      p[i] = p[j]!;
      p[j] = t;
    });
    return p;
  }

  /** shuffle calls swap(i, j) for i from n-1 down to 1, with j = uint64N(i+1) (Fisher–Yates). */
  shuffle(n: number, swap: (i: number, j: number) => void): void {
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`Rand.shuffle: n must be a non-negative integer, not ${n}`);
    for (let i = n - 1; i > 0; i--) swap(i, this.#uint64n(i + 1));
  }

  /** uint64n is Go's uint64n for 1 ≤ n < 2^53, without bigint but where a draw is rejected. */
  #uint64n(n: number): number {
    if (n <= P32 && (n & (n - 1)) === 0) {
      this.#next();
      return n === P32 ? this.#lo : (this.#lo & (n - 1)) >>> 0; // a power of two: mask
    }
    const m = n / P32;
    if (Number.isInteger(m) && (m & (m - 1)) === 0) {
      this.#next();
      return (this.#hi & (m - 1)) * P32 + this.#lo; // a power of two above 2^32: mask
    }
    // The 128-bit product of the output and n, in 16-bit limbs: hi is
    // limbs 4 to 7, lo limbs 0 to 3.
    const n0 = n % L16, n1 = Math.floor(n / L16) % L16, n2 = Math.floor(n / P32) % L16, n3 = Math.floor(n / (P32 * L16));
    let thresh = -1; // (2^64 − n) mod n, once needed
    for (;;) {
      this.#next();
      const x0 = this.#lo & 0xffff, x1 = this.#lo >>> 16, x2 = this.#hi & 0xffff, x3 = this.#hi >>> 16;
      let v = x0 * n0;
      const p0 = v & 0xffff;
      v = (v - (v & 0xffff)) / L16 + x0 * n1 + x1 * n0;
      const p1 = v & 0xffff;
      v = (v - (v & 0xffff)) / L16 + x0 * n2 + x1 * n1 + x2 * n0;
      const p2 = v & 0xffff;
      v = (v - (v & 0xffff)) / L16 + x0 * n3 + x1 * n2 + x2 * n1 + x3 * n0;
      const p3 = v & 0xffff;
      v = (v - (v & 0xffff)) / L16 + x1 * n3 + x2 * n2 + x3 * n1;
      const p4 = v & 0xffff;
      v = (v - (v & 0xffff)) / L16 + x2 * n3 + x3 * n2;
      const p5 = v & 0xffff;
      v = (v - (v & 0xffff)) / L16 + x3 * n3;
      const hi = v * P32 + p5 * L16 + p4; // below n, so below 2^53
      // lo < n only when its top 11 bits are 0: then it fits in a double.
      if (p3 >= 32) return hi;
      const lo = ((p3 * L16 + p2) * L16 + p1) * L16 + p0;
      if (lo >= n) return hi; // and so at least thresh, which is below n
      if (thresh < 0) thresh = Number(((1n << 64n) - BigInt(n)) % BigInt(n));
      if (lo >= thresh) return hi;
    }
  }

  /** uint64nBig is Go's uint64n for any 1 ≤ n < 2^64, on bigint. */
  #uint64nBig(n: bigint): bigint {
    if ((n & (n - 1n)) === 0n) return this.uint64() & (n - 1n); // a power of two: mask
    let p = this.uint64() * n;
    let lo = p & M64;
    if (lo < n) {
      const thresh = ((1n << 64n) - n) % n;
      while (lo < thresh) {
        p = this.uint64() * n;
        lo = p & M64;
      }
    }
    return p >> 64n;
  }
}
