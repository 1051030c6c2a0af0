//! SplitMix64, the small generator that expands one 64-bit seed into many: a trial's seed
//! from (seed, scenario, trial), and each trial's xoshiro256++ state from its seed, as
//! `rand`'s `seed_from_u64` does. Constants from Vigna's reference implementation.

/// A SplitMix64 stream.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first outputs for seed 1234567 of Vigna's splitmix64.c.
    #[test]
    fn matches_the_reference() {
        let mut g = SplitMix64::new(1_234_567);
        assert_eq!(
            [g.next_u64(), g.next_u64(), g.next_u64()],
            [
                6_457_827_717_110_365_317,
                3_203_168_211_198_807_973,
                9_817_491_932_198_370_423
            ]
        );
    }
}
