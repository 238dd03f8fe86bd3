//! A small deterministic generator (xorshift64) for tests whose input is random but must
//! reproduce: a fixed seed gives the same sequence on every run.

pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max + 1);
        (0..n).map(|_| self.next() as u8).collect()
    }
    /// `seed` with a few bytes flipped, inserted or cut.
    pub fn mutate(&mut self, seed: &[u8]) -> Vec<u8> {
        let mut data = seed.to_vec();
        for _ in 0..1 + self.below(4) {
            match self.below(3) {
                0 if !data.is_empty() => {
                    let i = self.below(data.len());
                    data[i] = self.next() as u8;
                }
                1 => {
                    let i = self.below(data.len() + 1);
                    data.insert(i, self.next() as u8);
                }
                _ if !data.is_empty() => {
                    let i = self.below(data.len());
                    data.truncate(i);
                }
                _ => {}
            }
        }
        data
    }
}
