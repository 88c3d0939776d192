//! Fuzz target `arp`: the vmknic's frame ingress (Ethernet classification and ARP) on mutated
//! frames from `fuzz/corpus/arp/` and on random bytes. Nothing may panic; an ARP reply is
//! only ever sent for one of our addresses, from our MAC, to the requester, and re-parses as a
//! valid reply; nothing that cannot be a neighbour is learned.
//!
//! `VMKSTACK_FUZZ_SECS` (default 60) bounds the run, `PROPTEST_CASES` the number of generated
//! cases, `VMKSTACK_FUZZ_SEED` varies them; see `fuzz/README.md`.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use vmkstack_vmknic::arp::{self, ArpAction, ArpOp, ArpRepr, ARP_LEN};
use vmkstack_vmknic::eth::{self, write_header, Ingress, LinkDrop, ETHERTYPE_IPV6, ETH_HDR};
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
/// Generated cases by default: more than fit in the one-minute budget of a debug build on two
/// cores, so that the budget ends the run.
const DEFAULT_CASES: u64 = 18_000_000;

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
fn expected_class(frame: &[u8], ours: MacAddr) -> Result<Ingress, LinkDrop> {
    let Some(header) = frame.get(..ETH_HDR) else {
        return Err(LinkDrop::Truncated);
    };
    let ethertype = u16::from_be_bytes([header[12], header[13]]);
    let v6_multicast = ethertype == ETHERTYPE_IPV6 && header[..2] == [0x33, 0x33];
    if header[..6] != ours.0 && header[..6] != [0xff; 6] && !v6_multicast {
        return Err(LinkDrop::NotForUs);
    }
    match ethertype {
        ETHERTYPE_IPV4 => Ok(Ingress::Ipv4),
        ETHERTYPE_ARP => Ok(Ingress::Arp),
        ETHERTYPE_IPV6 => Ok(Ingress::Ipv6),
        _ => Err(LinkDrop::UnknownEthertype),
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
            assert_eq!(e, LinkDrop::BadArp);
            assert!(untouched(0));
            let is_arp = header.is_some_and(|h| h[12..] == ETHERTYPE_ARP.to_be_bytes());
            let accepted = is_arp
                && matches!(class, Ok(Ingress::Arp) | Err(LinkDrop::NotForUs))
                && parsed.is_ok_and(|r| r.source_mac.is_unicast());
            assert!(!accepted, "a valid ARP frame was refused");
            return;
        }
        Ok(action) => action,
    };
    assert!(matches!(class, Ok(Ingress::Arp) | Err(LinkDrop::NotForUs)));
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
                assert_eq!(action.drop, Some(LinkDrop::Other));
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
/// The fuzz loop, shared by every crate's fuzz tests (`fuzz/harness.rs`).
#[allow(dead_code)] // Not every target uses every helper.
#[path = "../../fuzz/harness.rs"]
mod harness;
