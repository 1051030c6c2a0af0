//! `i % d` for a fixed divisor without a division instruction: the simulator's hot loop
//! looks up the daily traffic cycle at every scrape span, and a 64-bit division there cost
//! more than the rest of the lookup.

/// `i % d` for a fixed 32-bit `d` by a multiplication and a shift (Lemire, Kaser and Kurz,
/// "Faster remainder by direct computation", 2019).
#[derive(Debug, Clone, Copy)]
pub struct FastMod {
    d: u32,
    m: u64,
}

impl FastMod {
    pub fn new(d: u32) -> FastMod {
        let d = d.max(1);
        FastMod {
            d,
            m: (u64::MAX / u64::from(d)).wrapping_add(1),
        }
    }

    /// `i % d`: exact for every `i` below 2^32, a plain division above.
    #[inline]
    pub fn of(self, i: usize) -> usize {
        match u32::try_from(i) {
            Ok(a) => {
                let low = self.m.wrapping_mul(u64::from(a));
                ((u128::from(low) * u128::from(self.d)) >> 64) as usize
            }
            Err(_) => i % self.d as usize,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_remainder_is_the_remainder() {
        for d in [1u32, 2, 3, 7, 11_520, 86_400, 1 << 20, u32::MAX] {
            let f = FastMod::new(d);
            for i in (0..5000usize)
                .chain([
                    d as usize - 1,
                    d as usize,
                    d as usize + 1,
                    u32::MAX as usize,
                ])
                .chain((0..64).map(|k| (k as usize * 2_654_435_761) % (1 << 32)))
                .chain([1usize << 40])
            {
                assert_eq!(f.of(i), i % d as usize, "{i} % {d}");
            }
        }
    }
}
