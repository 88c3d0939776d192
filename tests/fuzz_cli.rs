//! Fuzz target `esxcfg`: the `esxcfg-route` and `esxcfg-vmknic` argument parsers on argvs
//! mutated from `fuzz/corpus/esxcfg/` (one argument per line, the program first) and on argvs
//! drawn from a vocabulary of flags, addresses, numbers, MACs, port groups and junk (non-UTF-8
//! included). Nothing may panic, parsing is deterministic, and what parses is consistent: no
//! host bits in a route, a usable vmknic address, an MTU in range, a unicast MAC.
//!
//! `VMKSTACK_FUZZ_SECS` (default 30) bounds the run, `PROPTEST_CASES` the number of generated
//! cases, `VMKSTACK_FUZZ_SEED` varies them; see `fuzz/README.md`.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

use ipnet::Ipv4Net;
use vmkstack::esxcfg::{
    parse_esxcfg_route, parse_esxcfg_vmknic, RouteCommand, UsageError, VmknicCommand,
};
use vmkstack_routing::host_address_problem;
use vmkstack_vmknic::{MAX_MTU, MIN_MTU};

use harness::Rng;

/// Generated cases by default: about 30 s in a debug build on two cores.
const DEFAULT_CASES: u64 = 60_000;

fn corpus_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/esxcfg"))
}

const PROGRAMS: [&str; 3] = ["esxcfg-route", "esxcfg-vmknic", "/usr/sbin/esxcfg-route"];

const FLAGS: [&str; 36] = [
    "-a",
    "-d",
    "-l",
    "-n",
    "-e",
    "-D",
    "-i",
    "-m",
    "-M",
    "-h",
    "--help",
    "--add",
    "--del",
    "--list",
    "--neighbor-list",
    "--enable-vmknic",
    "--disable-vmknic",
    "--ip",
    "--netmask",
    "--mtu",
    "--mac",
    "--",
    "-",
    "-ai",
    "-an",
    "-la",
    "-x",
    "--bogus",
    "--lis",
    "-l=1",
    "--ip=198.18.1.10",
    "--mtu=9000",
    "-m9000",
    "-i198.18.1.10",
    "-n24",
    "-ah",
];

const VALUES: [&str; 44] = [
    "default",
    "198.18.1.1",
    "198.18.1.10",
    " 198.18.1.10 ",
    "198.18.100.0/24",
    "198.18.100.7/24",
    "0.0.0.0/0",
    "0.0.0.0",
    "198.18.100.0",
    "255.255.255.0",
    "255.0.255.0",
    "255.255.255.255",
    "0",
    "24",
    "/24",
    "31",
    "32",
    "33",
    "198.18.1.255",
    "198.18.1.0",
    "127.0.0.1",
    "224.0.0.1",
    "240.0.0.1",
    "1500",
    "68",
    "67",
    "9000",
    "9001",
    "-1",
    "99999999999999999999",
    " 1500",
    "00:50:56:01:02:03",
    "01:00:5e:00:00:01",
    "00:00:00:00:00:00",
    "00-50-56-01-02-03",
    "zz:zz",
    "iSCSI_SAN",
    "VM Network",
    "",
    " ",
    "é",
    "vmk0",
    "a=b",
    "-5",
];

/// The built-in seeds: the documented forms of both commands, and a few refused ones.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let argvs: [(&str, &[&str]); 26] = [
        ("route-show", &["esxcfg-route"]),
        ("route-set", &["esxcfg-route", "198.18.1.1"]),
        (
            "route-add-default",
            &["esxcfg-route", "-a", "default", "198.18.1.1"],
        ),
        (
            "route-add-prefix",
            &["esxcfg-route", "-a", "198.18.100.0/24", "198.18.1.1"],
        ),
        (
            "route-add-netmask",
            &[
                "esxcfg-route",
                "-a",
                "198.18.100.0",
                "255.255.255.0",
                "198.18.1.1",
            ],
        ),
        (
            "route-add-zero",
            &["esxcfg-route", "-a", "0.0.0.0/0", "198.18.1.1"],
        ),
        (
            "route-add-host-bits",
            &["esxcfg-route", "-a", "198.18.100.7/24", "198.18.1.1"],
        ),
        ("route-del-default", &["esxcfg-route", "-d", "default"]),
        (
            "route-del-prefix",
            &["esxcfg-route", "--del", "198.18.100.0/24", "198.18.1.1"],
        ),
        (
            "route-del-netmask",
            &["esxcfg-route", "-d", "198.18.100.0", "255.255.255.0"],
        ),
        ("route-list", &["esxcfg-route", "-l"]),
        ("route-neighbors", &["esxcfg-route", "--neighbor-list"]),
        ("route-help", &["esxcfg-route", "-h"]),
        (
            "route-two-actions",
            &["esxcfg-route", "-a", "-d", "default"],
        ),
        ("vmknic-list", &["esxcfg-vmknic", "-l"]),
        (
            "vmknic-add",
            &[
                "esxcfg-vmknic",
                "-a",
                "-i",
                "198.18.1.10",
                "-n",
                "255.255.255.0",
                "iSCSI_SAN",
            ],
        ),
        (
            "vmknic-add-all",
            &[
                "esxcfg-vmknic",
                "--add",
                "--ip",
                "198.18.1.10",
                "--netmask",
                "24",
                "--mtu",
                "9000",
                "--mac",
                "00:50:56:01:02:03",
                "VM Network",
            ],
        ),
        (
            "vmknic-add-network-address",
            &["esxcfg-vmknic", "-a", "-i", "198.18.1.0", "-n", "24", "x"],
        ),
        ("vmknic-del", &["esxcfg-vmknic", "-d", "iSCSI_SAN"]),
        ("vmknic-enable", &["esxcfg-vmknic", "-e", "iSCSI_SAN"]),
        ("vmknic-disable", &["esxcfg-vmknic", "-D", "iSCSI_SAN"]),
        ("vmknic-mtu", &["esxcfg-vmknic", "-m", "9000", "iSCSI_SAN"]),
        (
            "vmknic-address",
            &[
                "esxcfg-vmknic",
                "-i",
                "198.18.1.11",
                "-n",
                "255.255.255.0",
                "iSCSI_SAN",
            ],
        ),
        ("vmknic-no-action", &["esxcfg-vmknic", "iSCSI_SAN"]),
        (
            "vmknic-mtu-and-mac",
            &[
                "esxcfg-vmknic",
                "-m",
                "1500",
                "-M",
                "00:50:56:01:02:03",
                "p",
            ],
        ),
        ("vmknic-help", &["esxcfg-vmknic", "--help"]),
    ];
    argvs
        .iter()
        .map(|(name, argv)| (*name, format!("{}\n", argv.join("\n")).into_bytes()))
        .collect()
}

/// A corpus file as an argv: one argument per line.
fn argv_of(file: &[u8]) -> Vec<OsString> {
    let file = file.strip_suffix(b"\n").unwrap_or(file);
    file.split(|&b| b == b'\n')
        .map(|arg| OsString::from_vec(arg.to_vec()))
        .collect()
}

fn word(rng: &mut Rng) -> OsString {
    match rng.below(10) {
        0..=3 => rng.pick(&FLAGS).into(),
        4..=8 => rng.pick(&VALUES).into(),
        _ => {
            let len = rng.below(12);
            OsString::from_vec(rng.bytes(len))
        }
    }
}

/// A fresh argv from the vocabulary, or a corpus argv with arguments inserted, replaced,
/// removed, swapped, joined with `=`, mutated byte by byte, or a different program name.
fn generate(rng: &mut Rng, corpus: &[Vec<OsString>]) -> Vec<OsString> {
    if rng.one_in(4) {
        let mut argv = vec![OsString::from(*rng.pick(&PROGRAMS))];
        argv.extend((0..rng.below(8)).map(|_| word(rng)));
        return argv;
    }
    let mut argv = rng.pick(corpus).clone();
    for _ in 0..1 + rng.below(3) {
        let len = argv.len();
        let at = 1 + rng.below(len.max(1));
        match rng.below(10) {
            0 | 1 => argv.insert(at.min(len), word(rng)),
            2 if at < len => argv[at] = word(rng),
            // A value for a value: keeps the form and reaches the value checks.
            3 | 8 if at < len => {
                argv[at] = match argv[at].as_bytes().first() {
                    Some(b'-') => rng.pick(&FLAGS).into(),
                    _ => rng.pick(&VALUES).into(),
                }
            }
            4 if at < len => {
                argv.remove(at);
            }
            5 if at + 1 < len => argv.swap(at, at + 1),
            6 if at + 1 < len => {
                let next = argv.remove(at + 1);
                let mut joined = argv[at].clone();
                joined.push("=");
                joined.push(next);
                argv[at] = joined;
            }
            7 if at < len => {
                let bytes = argv[at].as_bytes().to_vec();
                argv[at] = OsString::from_vec(harness::mutate(rng, &bytes, &[], 64));
            }
            _ => argv[0] = rng.pick(&PROGRAMS).into(),
        }
    }
    argv
}

fn check_argv(argv: &[OsString]) {
    let args: Vec<String> = argv
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    check_route(argv, &args);
    check_vmknic(argv, &args);
}

/// True when some argument names this address as written (the parsers only trim spaces).
fn written(args: &[String], ip: impl ToString) -> bool {
    let ip = ip.to_string();
    args.iter().any(|a| a.contains(&ip))
}

fn check_usage_error(e: &UsageError, program: &str, args: &[String]) {
    let text = e.to_string();
    assert!(!text.trim().is_empty());
    match e {
        UsageError::Help(usage) => {
            let asked = args.iter().any(|a| a.starts_with('-') && a.contains('h'));
            assert!(asked, "help nobody asked for");
            assert!(usage.contains(program), "{usage}");
        }
        UsageError::Invalid { invocation, .. } => {
            assert_eq!(invocation.program, program);
            assert!(text.starts_with(program), "{text}");
        }
        UsageError::Flags(_) => {}
    }
}

fn check_route(argv: &[OsString], args: &[String]) {
    let result = parse_esxcfg_route(argv.iter().cloned());
    assert_eq!(result, parse_esxcfg_route(argv.iter().cloned()));
    let command = match result {
        Ok(command) => command,
        Err(e) => return check_usage_error(&e, "esxcfg-route", args),
    };
    let json = serde_json::to_string(&command).expect("encode");
    assert_eq!(
        serde_json::from_str::<RouteCommand>(&json).ok(),
        Some(command.clone())
    );
    let network_ok = |n: &Ipv4Net| n.trunc() == *n && n.prefix_len() >= 1;
    match command {
        RouteCommand::SetDefault(gw) => assert!(written(args, gw), "{gw}"),
        RouteCommand::ClearDefault { gateway } => {
            assert!(gateway.is_none_or(|gw| written(args, gw)));
        }
        RouteCommand::Add { network, gateway } => {
            assert!(network_ok(&network), "route to {network}");
            assert!(written(args, gateway));
        }
        RouteCommand::Delete { network, gateway } => {
            assert!(network_ok(&network), "route to {network}");
            assert!(gateway.is_none_or(|gw| written(args, gw)));
        }
        RouteCommand::ShowDefault | RouteCommand::List | RouteCommand::Neighbors => {}
    }
}

fn check_vmknic(argv: &[OsString], args: &[String]) {
    let result = parse_esxcfg_vmknic(argv.iter().cloned());
    assert_eq!(result, parse_esxcfg_vmknic(argv.iter().cloned()));
    let command = match result {
        Ok(command) => command,
        Err(e) => return check_usage_error(&e, "esxcfg-vmknic", args),
    };
    let json = serde_json::to_string(&command).expect("encode");
    assert_eq!(
        serde_json::from_str::<VmknicCommand>(&json).ok(),
        Some(command.clone())
    );
    let portgroup_ok = |p: &String| !p.trim().is_empty() && args.contains(p);
    let address_ok = |ip, len| {
        let net = Ipv4Net::new(ip, len).expect("prefix length 0-32");
        (1..=32).contains(&len) && host_address_problem(net).is_none() && written(args, ip)
    };
    let mtu_ok = |m: u16| (MIN_MTU..=MAX_MTU).contains(&m);
    match command {
        VmknicCommand::Add {
            portgroup,
            ip,
            prefix_len,
            mtu,
            mac,
        } => {
            assert!(portgroup_ok(&portgroup), "port group {portgroup:?}");
            assert!(address_ok(ip, prefix_len), "{ip}/{prefix_len}");
            assert!(mtu.is_none_or(mtu_ok), "MTU {mtu:?}");
            assert!(mac.is_none_or(|m| m.is_unicast()), "MAC {mac:?}");
        }
        VmknicCommand::SetAddress {
            portgroup,
            ip,
            prefix_len,
        } => {
            assert!(portgroup_ok(&portgroup), "port group {portgroup:?}");
            assert!(address_ok(ip, prefix_len), "{ip}/{prefix_len}");
        }
        VmknicCommand::SetMtu { portgroup, mtu } => {
            assert!(portgroup_ok(&portgroup), "port group {portgroup:?}");
            assert!(mtu_ok(mtu), "MTU {mtu}");
        }
        VmknicCommand::Delete { portgroup }
        | VmknicCommand::Enable { portgroup }
        | VmknicCommand::Disable { portgroup } => {
            assert!(portgroup_ok(&portgroup), "port group {portgroup:?}");
        }
        VmknicCommand::List => {}
    }
}

#[test]
fn fuzz_esxcfg() {
    let corpus = harness::corpus(&corpus_dir(), seeds());
    let argvs: Vec<Vec<OsString>> = corpus.iter().map(|f| argv_of(f)).collect();
    let check = |argv: &Vec<OsString>| check_argv(argv);
    harness::run("esxcfg", DEFAULT_CASES, &argvs, generate, check);
}

/// Rewrites `fuzz/corpus/esxcfg/` from the built-in seeds.
#[test]
#[ignore = "writes the seed corpus; run with --ignored when the seeds change"]
fn write_corpus() {
    harness::write_corpus(&corpus_dir(), "argv", &seeds());
}
/// The fuzz loop. Test crates cannot share a module, so each crate's `tests/fuzz.rs` carries
/// the same copy (see `fuzz/README.md`).
#[allow(dead_code)] // The same copy in every crate: not every target uses every helper.
mod harness {
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
    /// `default_cases`) have run or `VMKSTACK_FUZZ_SECS` seconds (default 30) have passed.
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
        let budget = Duration::from_secs_f64(env_number("VMKSTACK_FUZZ_SECS").unwrap_or(30.0));
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
}
