//! The random streams of a lock-step batch, one per lane, kept word by word: column `i`
//! holds word `i` of every lane's xoshiro256++ state.
//!
//! Most stages of an evaluation take exactly one uniform in every lane (a table or a
//! small-mean inversion draw), and xoshiro256++ is four words of additions, shifts and
//! exclusive ors: laid out in columns, a stage steps every lane with vector instructions
//! ([`Streams::bits`]). Stages that take a varying number of draws (rejection
//! sampling, the rare kinds' classification, normal variates) step one lane at a time
//! through [`Lane`], which is a [`rand::Rng`].
//!
//! The generator is the one `rand` calls `Xoshiro256PlusPlus`, seeded the same way, so a
//! lane's numbers are that generator's numbers (a unit test compares them).

use crate::sim::splitmix::SplitMix64;
use std::convert::Infallible;

/// Every lane's xoshiro256++ state, in columns.
#[derive(Debug, Clone)]
pub(crate) struct Streams {
    s: [Vec<u64>; 4],
}

impl Streams {
    /// One stream per seed, each expanded by SplitMix64 as
    /// `Xoshiro256PlusPlus::seed_from_u64` expands it.
    pub(crate) fn seeded(seeds: impl IntoIterator<Item = u64>) -> Streams {
        let mut s: [Vec<u64>; 4] = Default::default();
        for seed in seeds {
            let mut expand = SplitMix64::new(seed);
            for column in &mut s {
                column.push(expand.next_u64());
            }
        }
        Streams { s }
    }

    /// `count` streams, all zero: room for lanes that [`copy_lane`](Self::copy_lane) fills.
    pub(crate) fn zeroed(count: usize) -> Streams {
        Streams {
            s: std::array::from_fn(|_| vec![0; count]),
        }
    }

    /// Gives lane `to` the stream of lane `from` of `src`.
    pub(crate) fn copy_lane(&mut self, src: &Streams, from: usize, to: usize) {
        for (column, src) in self.s.iter_mut().zip(&src.s) {
            column[to] = src[from];
        }
    }

    /// The number of streams.
    pub(crate) fn count(&self) -> usize {
        self.s[0].len()
    }

    /// Lane `l`'s stream.
    #[inline(always)]
    pub(crate) fn lane(&mut self, l: usize) -> Lane<'_> {
        let [a, b, c, d] = &mut self.s;
        Lane {
            s: [&mut a[l], &mut b[l], &mut c[l], &mut d[l]],
        }
    }

    /// Gives lane `to` the stream of lane `from` (and `from` the stream of `to`).
    pub(crate) fn swap(&mut self, from: usize, to: usize) {
        for column in &mut self.s {
            column.swap(from, to);
        }
    }

    /// One uniform from each of the first `out.len()` lanes, as its 53 bits (the top bits
    /// of the lane's next output), into `out`.
    #[inline]
    pub(crate) fn bits(&mut self, out: &mut [u64]) {
        let n = out.len();
        let [a, b, c, d] = &mut self.s;
        let (a, b, c, d) = (&mut a[..n], &mut b[..n], &mut c[..n], &mut d[..n]);
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has the feature `bits_avx2` is compiled for.
                return unsafe { bits_avx2([a, b, c, d], out) };
            }
        }
        bits_columns([a, b, c, d], out);
    }
}

/// [`bits_columns`] with 256-bit vectors. (Not 512-bit ones: where the CPU has them, they
/// were slower here, clocking the core down.)
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn bits_avx2(s: [&mut [u64]; 4], out: &mut [u64]) {
    bits_columns(s, out);
}

/// Steps every lane of the state columns `s` once, keeping each output's top 53 bits;
/// written so that the compiler turns it into vector code for whatever instructions it is
/// built with.
#[inline(always)]
fn bits_columns([a, b, c, d]: [&mut [u64]; 4], out: &mut [u64]) {
    let n = out.len();
    let (a, b, c, d) = (&mut a[..n], &mut b[..n], &mut c[..n], &mut d[..n]);
    for l in 0..n {
        let mut s = [a[l], b[l], c[l], d[l]];
        let r = step(&mut s);
        [a[l], b[l], c[l], d[l]] = s;
        out[l] = r >> 11;
    }
}

/// One xoshiro256++ step: the output, and the state advanced.
#[inline(always)]
fn step(s: &mut [u64; 4]) -> u64 {
    let r = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
    let t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = s[3].rotate_left(45);
    r
}

/// One lane's stream, borrowed from [`Streams`].
pub(crate) struct Lane<'s> {
    s: [&'s mut u64; 4],
}

impl rand::TryRng for Lane<'_> {
    type Error = Infallible;

    #[inline(always)]
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        // The upper half, as `Xoshiro256PlusPlus` takes it.
        self.try_next_u64().map(|v| (v >> 32) as u32)
    }

    #[inline(always)]
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut s = [*self.s[0], *self.s[1], *self.s[2], *self.s[3]];
        let r = step(&mut s);
        for (to, v) in self.s.iter_mut().zip(s) {
            **to = v;
        }
        Ok(r)
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        rand::rand_core::utils::fill_bytes_via_next_word(dst, || self.try_next_u64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::Xoshiro256PlusPlus;
    use rand::{Rng, SeedableRng};

    #[test]
    fn a_lane_is_rands_xoshiro256plusplus() {
        let seeds = [0u64, 1, 42, u64::MAX, 0x1234_5678_9abc_def0];
        let mut streams = Streams::seeded(seeds);
        let mut reference: Vec<_> = seeds
            .iter()
            .map(|&s| Xoshiro256PlusPlus::seed_from_u64(s))
            .collect();
        for round in 0..200 {
            // Lane by lane, and all lanes at once, in turns.
            if round % 3 == 0 {
                let mut x = vec![0; seeds.len()];
                streams.bits(&mut x);
                for (r, &x) in reference.iter_mut().zip(&x) {
                    assert_eq!(x, super::super::draw::bits(r), "round {round}");
                }
            } else {
                for (l, r) in reference.iter_mut().enumerate() {
                    assert_eq!(streams.lane(l).next_u64(), r.next_u64(), "round {round}");
                }
            }
        }
        // A prefix of the lanes steps only those.
        let mut x = vec![0; 2];
        streams.bits(&mut x);
        for r in &mut reference[..2] {
            super::super::draw::bits(r);
        }
        for (l, r) in reference.iter_mut().enumerate() {
            assert_eq!(streams.lane(l).next_u32(), r.next_u32());
        }
    }
}
