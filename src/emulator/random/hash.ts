/**
 * Deterministic randomness for the emulator. Traffic is a function of (key, minute), so instead of a stream of
 * random numbers each draw is a hash of its coordinates: any minute can be computed alone, in any order, and the
 * same scenario and seed give the same numbers on every machine (only 32-bit integer arithmetic is involved).
 */

/** murmur3's finaliser: a fast 32-bit avalanche. */
function fmix(h: number): number {
  let x = h;
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}

/** A 32-bit hash of up to three integers (a seed, a minute, a salt). */
export function hash3(a: number, b: number, c: number): number {
  let h = fmix((a ^ 0x9e3779b9) >>> 0);
  h = fmix((h ^ Math.imul(b | 0, 0xcc9e2d51)) >>> 0);
  h = fmix((h ^ Math.imul((c | 0) + 0x1b873593, 0x27d4eb2f)) >>> 0);
  return h;
}

/** [0, 1) from a 32-bit hash. */
export function unit(h: number): number {
  return h / 4294967296;
}

/** A 32-bit hash of a string (FNV-1a, then mixed): stable seeds from ids and names. */
export function hashString(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return fmix(h >>> 0);
}

/** mulberry32: a seeded sequence, for generating scenarios and drawing fault shares. */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** `length` base62 characters derived from a string: ids and key hints that look real and never change. */
export function base62From(text: string, length: number): string {
  let out = '';
  let h = hashString(text);
  for (let i = 0; out.length < length; i++) {
    h = hash3(h, i, 0x5bd1e995);
    let x = h;
    for (let j = 0; j < 5 && out.length < length; j++) {
      out += BASE62[x % 62];
      x = Math.floor(x / 62);
    }
  }
  return out;
}
