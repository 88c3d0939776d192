//! Fuzz target `arp`: the vmknic's frame ingress (Ethernet classification and ARP) on mutated
//! frames from `fuzz/corpus/arp/` and on random bytes. Nothing may panic; an ARP reply is
//! only ever sent for one of our addresses, from our MAC, to the requester, and re-parses as a
//! valid reply; nothing that cannot be a neighbour is learned.
//!
//! `VMKSTACK_FUZZ_SECS` (default 30) bounds the run, `PROPTEST_CASES` the number of generated
//! cases, `VMKSTACK_FUZZ_SEED` varies them; see `fuzz/README.md`.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use vmkstack_vmknic::arp::{self, ArpAction, ArpOp, ArpRepr, ARP_LEN};
use vmkstack_vmknic::eth::{self, write_header, DropReason, Ingress, ETH_HDR};
use vmkstack_vmknic::{MacAddr, ETHERTYPE_ARP, ETHERTYPE_IPV4};

use harness::Rng;

const OURS: MacAddr = MacAddr([0x02, 0x50, 0x56, 0x00, 0x00, 0x01]);
const PEER: MacAddr = MacAddr([0x00, 0x50, 0x56, 0x00, 0x00, 0x02]);
const OUR_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// A second address of the same vmknic.
const OUR_IP_2: Ipv4Addr = Ipv4Addr::new(198, 18, 7, 1);
const PEER_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const OTHER_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 3);
/// Longest generated frame (a jumbo frame and then some).
const MAX_FRAME: usize = 9100;
/// Generated cases by default: about 30 s in a debug build on two cores.
const DEFAULT_CASES: u64 = 6_000_000;

fn corpus_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/corpus/arp"))
}

fn arp_frame(op: ArpOp, sha: MacAddr, spa: Ipv4Addr, tha: MacAddr, tpa: Ipv4Addr) -> Vec<u8> {
    arp_frame_to(MacAddr::BROADCAST, op, sha, spa, tha, tpa)
}

fn arp_frame_to(
    dst: MacAddr,
    operation: ArpOp,
    source_mac: MacAddr,
    source_ip: Ipv4Addr,
    target_mac: MacAddr,
    target_ip: Ipv4Addr,
) -> Vec<u8> {
    let repr = ArpRepr {
        operation,
        source_mac,
        source_ip,
        target_mac,
        target_ip,
    };
    let mut frame = vec![0u8; arp::ARP_FRAME_LEN];
    assert_eq!(
        repr.emit_frame(&mut frame, dst, source_mac),
        arp::ARP_FRAME_LEN
    );
    frame
}

/// The built-in seeds (also the files of `fuzz/corpus/arp/`, see `write_corpus`).
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    use ArpOp::{Reply, Request};
    let zero = MacAddr([0; 6]);
    let request = arp_frame(Request, PEER, PEER_IP, zero, OUR_IP);
    let mut padded = request.clone();
    padded.resize(60, 0);
    let mut ipv4 = vec![0u8; ETH_HDR];
    write_header(&mut ipv4, OURS, PEER, ETHERTYPE_IPV4);
    ipv4.extend_from_slice(&[
        0x45, 0x00, 0x00, 0x1e, 0x12, 0x34, 0x40, 0x00, 0x40, 0x11, 0x9c, 0x72, 198, 18, 0, 2, 198,
        19, 0, 2, 0x00, 0x35, 0x00, 0x35, 0x00, 0x0a, 0x00, 0x00, 0xaa, 0xbb,
    ]);
    let mut ipv6 = ipv4.clone();
    ipv6[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
    let mut vlan = request.clone();
    vlan.splice(12..12, [0x81, 0x00, 0x00, 0x07]);
    vec![
        ("request", request.clone()),
        ("request-padded", padded),
        (
            "request-second-address",
            arp_frame(Request, PEER, PEER_IP, zero, OUR_IP_2),
        ),
        (
            "request-unicast",
            arp_frame_to(OURS, Request, PEER, PEER_IP, OURS, OUR_IP),
        ),
        (
            "request-other",
            arp_frame(Request, PEER, PEER_IP, zero, OTHER_IP),
        ),
        (
            "reply-to-us",
            arp_frame_to(OURS, Reply, PEER, PEER_IP, OURS, OUR_IP),
        ),
        (
            "reply-other",
            arp_frame(Reply, PEER, PEER_IP, MacAddr([2, 0, 0, 0, 0, 9]), OTHER_IP),
        ),
        (
            "gratuitous",
            arp_frame(Request, PEER, PEER_IP, zero, PEER_IP),
        ),
        (
            "gratuitous-reply",
            arp_frame(Reply, PEER, PEER_IP, MacAddr::BROADCAST, PEER_IP),
        ),
        (
            "probe",
            arp_frame(Request, PEER, Ipv4Addr::UNSPECIFIED, zero, OUR_IP),
        ),
        ("conflict", arp_frame(Request, PEER, OUR_IP, zero, OUR_IP)),
        ("echo", arp_frame(Request, OURS, OUR_IP, zero, PEER_IP)),
        (
            "multicast-sender",
            arp_frame(
                Request,
                MacAddr([1, 0, 0x5e, 0, 0, 1]),
                PEER_IP,
                zero,
                OUR_IP,
            ),
        ),
        (
            "loopback-sender",
            arp_frame(Request, PEER, Ipv4Addr::LOCALHOST, zero, OUR_IP),
        ),
        ("vlan-tagged", vlan),
        ("ipv4-udp", ipv4),
        ("ipv6", ipv6),
        ("runt", request[..ETH_HDR + 20].to_vec()),
        ("header-only", request[..ETH_HDR].to_vec()),
        ("short-header", request[..10].to_vec()),
    ]
}

/// A mutated corpus frame (four in five), a fresh ARP frame with random fields, or random
/// bytes.
fn generate(rng: &mut Rng, corpus: &[Vec<u8>]) -> Vec<u8> {
    match rng.below(10) {
        0 => {
            let len = rng.below(100);
            rng.bytes(len)
        }
        1 => {
            let addrs = [OUR_IP, OUR_IP_2, PEER_IP, OTHER_IP, Ipv4Addr::UNSPECIFIED];
            let macs = [OURS, PEER, MacAddr::BROADCAST, MacAddr([0; 6])];
            let mut mac = || match rng.below(3) {
                0 => MacAddr(rng.bytes(6).try_into().expect("six bytes")),
                _ => *rng.pick(&macs),
            };
            let (dst, sha, tha) = (mac(), mac(), mac());
            let op = *rng.pick(&[ArpOp::Request, ArpOp::Reply]);
            let (spa, tpa) = (*rng.pick(&addrs), *rng.pick(&addrs));
            arp_frame_to(dst, op, sha, spa, tha, tpa)
        }
        _ => {
            let seed = rng.pick(corpus);
            harness::mutate(rng, seed, corpus, MAX_FRAME)
        }
    }
}

fn fixed_ours(ip: Ipv4Addr) -> bool {
    ip == OUR_IP || ip == OUR_IP_2
}

/// What `classify` must say, written out independently.
fn expected_class(frame: &[u8], ours: MacAddr) -> Result<Ingress, DropReason> {
    let Some(header) = frame.get(..ETH_HDR) else {
        return Err(DropReason::Truncated);
    };
    if header[..6] != ours.0 && header[..6] != [0xff; 6] {
        return Err(DropReason::NotForUs);
    }
    match u16::from_be_bytes([header[12], header[13]]) {
        ETHERTYPE_IPV4 => Ok(Ingress::Ipv4),
        ETHERTYPE_ARP => Ok(Ingress::Arp),
        _ => Err(DropReason::UnknownEthertype),
    }
}

fn check_frame(frame: &[u8]) {
    check_vmknic(frame, OURS, &fixed_ours, 64);
    // Runt reply buffers.
    check_vmknic(frame, OURS, &fixed_ours, frame.len() % 48);
    // A vmknic whose MAC is the frame's destination and that owns the asked address, so
    // that mutated frames still reach the answering path.
    let dst = frame.first_chunk::<6>().copied().map(MacAddr);
    let target = frame
        .get(ETH_HDR + 24..ETH_HDR + 28)
        .and_then(|b| b.first_chunk::<4>())
        .map(|b| Ipv4Addr::from(*b));
    let mac = dst.filter(MacAddr::is_unicast).unwrap_or(OURS);
    let ours = |ip: Ipv4Addr| fixed_ours(ip) || Some(ip) == target;
    check_vmknic(frame, mac, &ours, 42);
}

/// One received frame on a vmknic with MAC `our_mac`, owning the addresses `ours` accepts,
/// with `out_len` bytes for a reply.
fn check_vmknic(frame: &[u8], our_mac: MacAddr, ours: &dyn Fn(Ipv4Addr) -> bool, out_len: usize) {
    let class = eth::classify(frame, our_mac);
    assert_eq!(class, expected_class(frame, our_mac));
    let header = frame.first_chunk::<ETH_HDR>();
    assert_eq!(
        eth::src_mac(frame),
        header.map(|h| MacAddr(h[6..12].try_into().expect("six bytes")))
    );
    assert_eq!(
        eth::payload(frame),
        frame.get(ETH_HDR..).unwrap_or_default()
    );

    // Parse and emit round trip: the 28 bytes read are the 28 bytes written.
    let payload = eth::payload(frame);
    let parsed = ArpRepr::parse(payload);
    if let Ok(repr) = parsed {
        let mut buf = [0u8; ARP_LEN];
        assert_eq!(repr.emit(&mut buf), ARP_LEN);
        assert_eq!(buf[..], payload[..ARP_LEN]);
        assert_eq!(ArpRepr::parse(&buf), Ok(repr));
    }

    const FILL: u8 = 0xa5;
    let mut out = vec![FILL; out_len];
    let action = arp::handle(frame, our_mac, ours, &mut out);
    let untouched = |from: usize| out[from..].iter().all(|&b| b == FILL);
    let action = match action {
        Err(e) => {
            assert_eq!(e, DropReason::BadArp);
            assert!(untouched(0));
            let is_arp = header.is_some_and(|h| h[12..] == ETHERTYPE_ARP.to_be_bytes());
            let accepted = is_arp
                && matches!(class, Ok(Ingress::Arp) | Err(DropReason::NotForUs))
                && parsed.is_ok_and(|r| r.source_mac.is_unicast());
            assert!(!accepted, "a valid ARP frame was refused");
            return;
        }
        Ok(action) => action,
    };
    assert!(matches!(
        class,
        Ok(Ingress::Arp) | Err(DropReason::NotForUs)
    ));
    let repr = parsed.expect("a handled ARP frame parses");
    assert!(repr.source_mac.is_unicast(), "non-unicast sender accepted");
    if repr.source_mac == our_mac {
        assert_eq!(action, ArpAction::default(), "our own frame echoed back");
        assert!(untouched(0));
        return;
    }
    if let Some((ip, mac)) = action.learn {
        assert_eq!((ip, mac), (repr.source_ip, repr.source_mac));
        let bogus = ip.is_unspecified()
            || ip.is_broadcast()
            || ip.is_multicast()
            || ip.is_loopback()
            || ours(ip);
        assert!(!bogus, "learned {ip}");
        assert_ne!(mac, our_mac);
    }
    let asks_us = repr.operation == ArpOp::Request
        && ours(repr.target_ip)
        && repr.source_ip != repr.target_ip;
    match action.reply_len {
        Some(len) => {
            assert!(asks_us, "answered {repr:?}");
            assert_eq!(len, arp::ARP_FRAME_LEN);
            assert!(len <= out_len);
            assert!(untouched(len));
            assert_eq!(action.drop, None);
            assert!(!action.update_only || action.learn.is_none());
            let reply = &out[..len];
            assert_eq!(eth::classify(reply, repr.source_mac), Ok(Ingress::Arp));
            assert_eq!(eth::src_mac(reply), Some(our_mac));
            let back = ArpRepr::parse(eth::payload(reply)).expect("our reply parses");
            let want = ArpRepr {
                operation: ArpOp::Reply,
                source_mac: our_mac,
                source_ip: repr.target_ip,
                target_mac: repr.source_mac,
                target_ip: repr.source_ip,
            };
            assert_eq!(back, want);
            assert!(ours(back.source_ip), "answered for {}", back.source_ip);
        }
        None => {
            assert!(untouched(0));
            if asks_us {
                assert!(out_len < arp::ARP_FRAME_LEN, "request for us not answered");
                assert_eq!(action.drop, Some(DropReason::Other));
            }
        }
    }
}

#[test]
fn fuzz_arp() {
    let corpus = harness::corpus(&corpus_dir(), seeds());
    harness::run("arp", DEFAULT_CASES, &corpus, generate, |f| check_frame(f));
}

/// Rewrites `fuzz/corpus/arp/` from the built-in seeds.
#[test]
#[ignore = "writes the seed corpus; run with --ignored when the seeds change"]
fn write_corpus() {
    harness::write_corpus(&corpus_dir(), "bin", &seeds());
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
