// Rand: gamesim's per-tick generator, bit for bit with Go's *rand.Rand over
// math/rand/v2's PCG as gamesim seeds it (docs/gamesim-spec.md, "Rand").
// 64-bit values are bigint; methods whose values always fit in a double
// return number.

import { sha256 } from "./sha256.js";

const M64 = (1n << 64n) - 1n;
const M128 = (1n << 128n) - 1n;
const MAX_INT64 = (1n << 63n) - 1n;
// PCG's 128-bit LCG multiplier and increment, and DXSM's multiplier.
const MUL = (2549297995355413924n << 64n) | 4865540595714422341n;
const INC = (6364136223846793005n << 64n) | 1442695040888963407n;
const CHEAP_MUL = 0xda942042e4dd58b5n;

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
  #hi = 0n;
  #lo = 0n;

  /** seed sets the generator's 128-bit state (Go's PCG.Seed(hi, lo)). */
  seed(hi: bigint, lo: bigint): void {
    this.#hi = hi & M64;
    this.#lo = lo & M64;
  }

  /** state returns the generator's state (hi, lo), for tests and tools. */
  state(): [bigint, bigint] {
    return [this.#hi, this.#lo];
  }

  /** reseed derives the state for tick k of the stream whose seed is seed (seedOf). */
  reseed(seed: readonly [bigint, bigint], k: number | bigint): void {
    this.seed(seed[0] ^ splitmix64(BigInt(k) & M64), seed[1]);
  }

  /** uint64 returns a uniformly distributed 64-bit value: PCG's next output. */
  uint64(): bigint {
    const s = (((this.#hi << 64n) | this.#lo) * MUL + INC) & M128;
    let hi = s >> 64n;
    const lo = s & M64;
    this.#hi = hi;
    this.#lo = lo;
    hi ^= hi >> 32n;
    hi = (hi * CHEAP_MUL) & M64;
    hi ^= hi >> 48n;
    return (hi * (lo | 1n)) & M64;
  }

  /** int64 returns a non-negative 63-bit value. */
  int64(): bigint {
    return this.uint64() & MAX_INT64;
  }

  /** uint32 returns the high 32 bits of a value. */
  uint32(): number {
    return Number(this.uint64() >> 32n);
  }

  /** int32 returns a non-negative 31-bit value: the high 31 bits of a value. */
  int32(): number {
    return Number(this.uint64() >> 33n);
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
    return this.#uint64n(n);
  }

  /** uintN is uint64N (Go's UintN with a 64-bit uint). */
  uintN(n: bigint): bigint {
    return this.uint64N(n);
  }

  /** int64N returns a value in [0, n), 0 < n < 2^63. */
  int64N(n: bigint): bigint {
    if (n <= 0n || n > MAX_INT64) throw new RangeError(`Rand.int64N: n must be from 1 to 2^63-1, not ${n}`);
    return this.#uint64n(n);
  }

  /** intN returns a value in [0, n), for an integer n from 1 to 2^53-1 (use int64N beyond). */
  intN(n: number): number {
    checkInt("intN", n, Number.MAX_SAFE_INTEGER);
    return Number(this.#uint64n(BigInt(n)));
  }

  /** int32N returns a value in [0, n), 0 < n < 2^31. */
  int32N(n: number): number {
    checkInt("int32N", n, 0x7fffffff);
    return Number(this.#uint64n(BigInt(n)));
  }

  /** uint32N returns a value in [0, n), 0 < n < 2^32. */
  uint32N(n: number): number {
    checkInt("uint32N", n, 0xffffffff);
    return Number(this.#uint64n(BigInt(n)));
  }

  /** float64 returns a value in [0, 1): the low 53 bits of a value over 2^53. */
  float64(): number {
    return Number(this.uint64() & 0x1fffffffffffffn) / 9007199254740992;
  }

  /** float32 returns a float32 in [0, 1): the low 24 bits of uint32() over 2^24. */
  float32(): number {
    return Number((this.uint64() >> 32n) & 0xffffffn) / 16777216;
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
    for (let i = n - 1; i > 0; i--) swap(i, Number(this.#uint64n(BigInt(i + 1))));
  }

  #uint64n(n: bigint): bigint {
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
