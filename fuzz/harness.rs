//! The fuzz loop shared by the fuzz tests of every crate (included with `#[path]`: test
//! crates cannot depend on one another's test code): seeded mutation of corpus inputs under a
//! case count and a time budget.

use std::fmt::Debug;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::time::{Duration, Instant};

/// xorshift64*: small and deterministic; one per case, so a failing case replays alone.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng((seed ^ 0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        match n {
            0 => 0,
            _ => (self.next_u64() % n as u64) as usize,
        }
    }

    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    pub fn byte(&mut self) -> u8 {
        self.next_u64() as u8
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.byte()).collect()
    }
}

/// Byte values that sit on boundaries of lengths, flags and types.
const INTERESTING: [u8; 12] = [0, 1, 2, 4, 5, 8, 0x0f, 0x40, 0x7f, 0x80, 0xfe, 0xff];

/// `input` with 1 to 4 stacked mutations: bit flips, boundary bytes and words, random
/// bytes, insertions, deletions, truncation, duplicated ranges and splices with `others`.
pub fn mutate(rng: &mut Rng, input: &[u8], others: &[Vec<u8>], max_len: usize) -> Vec<u8> {
    let mut b = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = b.len();
        let at = rng.below(len);
        let run = 1 + rng.below((len - at.min(len)).clamp(1, 64));
        match rng.below(10) {
            0 | 1 if len > 0 => b[at] ^= 1 << rng.below(8),
            2 if len > 0 => b[at] = *rng.pick(&INTERESTING),
            3 if len > 0 => b[at] = rng.byte(),
            4 if len > 1 => {
                let word: u16 = *rng.pick(&[0, 1, 0x7fff, 0x8000, 0xffff, len as u16]);
                let at = at.min(len - 2);
                b[at..at + 2].copy_from_slice(&word.to_be_bytes());
            }
            5 => {
                let n = 1 + rng.below(16);
                let at = rng.below(len + 1);
                let new = rng.bytes(n);
                b.splice(at..at, new);
            }
            6 if len > 0 => {
                b.drain(at..(at + run).min(len));
            }
            7 => b.truncate(rng.below(len + 1)),
            8 if len > 0 => {
                let chunk = b[at..(at + run).min(len)].to_vec();
                let to = rng.below(len + 1);
                b.splice(to..to, chunk);
            }
            _ if !others.is_empty() => {
                let other = rng.pick(others);
                let from = rng.below(other.len() + 1);
                b.truncate(rng.below(len + 1));
                b.extend_from_slice(&other[from..]);
            }
            _ => b.push(rng.byte()),
        }
    }
    b.truncate(max_len);
    b
}

/// The files of `dir` (sorted by name) with the built-in `seeds` that are not among them.
/// A missing or empty directory fails: the corpus is part of the target.
pub fn corpus(dir: &Path, seeds: Vec<(&str, Vec<u8>)>) -> Vec<Vec<u8>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("seed corpus {}: {e}", dir.display()))
        .map(|entry| entry.expect("corpus entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "seed corpus {} is empty", dir.display());
    let mut all: Vec<Vec<u8>> = files
        .iter()
        .map(|path| std::fs::read(path).expect("read corpus file"))
        .collect();
    for (_, seed) in seeds {
        if !all.contains(&seed) {
            all.push(seed);
        }
    }
    all
}

/// Writes the built-in seeds into `dir` as `NN-name.ext` (the `write_corpus` tests).
pub fn write_corpus(dir: &Path, ext: &str, seeds: &[(&str, Vec<u8>)]) {
    std::fs::create_dir_all(dir).expect("create corpus directory");
    for (i, (name, bytes)) in seeds.iter().enumerate() {
        let path = dir.join(format!("{i:02}-{name}.{ext}"));
        std::fs::write(&path, bytes).expect("write corpus file");
    }
}

fn env_number(name: &str) -> Option<f64> {
    let text = std::env::var(name).ok()?;
    let value = text.trim().parse::<f64>();
    Some(value.unwrap_or_else(|_| panic!("{name}={text:?} is not a number")))
}

/// FNV-1a, to derive each target's seed from its name.
fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Checks every corpus entry, then generated inputs until `PROPTEST_CASES` cases (default
/// `default_cases`) have run or `VMKSTACK_FUZZ_SECS` seconds (default 60) have passed.
/// Case `n` uses its own RNG seeded from the target, `n` and `VMKSTACK_FUZZ_SEED`, so a
/// failure names the case that replays it. A failing input is printed in Rust syntax.
pub fn run<T: Debug>(
    target: &str,
    default_cases: u64,
    corpus: &[T],
    mut generate: impl FnMut(&mut Rng, &[T]) -> T,
    check: impl Fn(&T),
) {
    let start = Instant::now();
    let cases = env_number("PROPTEST_CASES").map_or(default_cases, |n| n as u64);
    let budget = Duration::from_secs_f64(env_number("VMKSTACK_FUZZ_SECS").unwrap_or(60.0));
    let base = fnv(target) ^ env_number("VMKSTACK_FUZZ_SEED").map_or(0, |s| s as u64);
    for (i, input) in corpus.iter().enumerate() {
        guard(target, &format!("corpus entry {i}"), input, &check);
    }
    let mut done = 0;
    while done < cases && start.elapsed() < budget {
        let mut rng = Rng::new(base ^ done.wrapping_mul(0xd6e8_feb8_6659_fd93));
        let input = generate(&mut rng, corpus);
        guard(target, &format!("case {done}"), &input, &check);
        done += 1;
    }
    eprintln!(
        "fuzz {target}: {} corpus entries, {done} generated cases in {:.1?}",
        corpus.len(),
        start.elapsed()
    );
}

fn guard<T: Debug>(target: &str, label: &str, input: &T, check: &impl Fn(&T)) {
    if let Err(panic) = panic::catch_unwind(AssertUnwindSafe(|| check(input))) {
        eprintln!("fuzz {target}: {label} failed; input:\n{input:?}");
        panic::resume_unwind(panic);
    }
}
