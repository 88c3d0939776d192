//! Fuzz targets of the stack's pure parsers, each on mutated inputs from its seed corpus in
//! `fuzz/corpus/<target>/` and on random inputs:
//!
//! - `ipv4`: IPv4 frame ingress (header validation, TTL decrement, ICMP errors, fragmentation);
//! - `offload`: the virtio-net header before a frame (checked against its packet, partial
//!   checksums finished, TCP super-frames segmented);
//! - `storage`: the iSCSI and ONC RPC reply decoders of the storage probes;
//! - `control`: the control-request parser (valid requests round-trip);
//! - `config`: the configuration parser (valid files round-trip, errors name the file).
//!
//! `VMKSTACK_FUZZ_SECS` (default 60) bounds each run, `PROPTEST_CASES` the number of generated
//! cases, `VMKSTACK_FUZZ_SEED` varies them; see `fuzz/README.md`.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use smoltcp::wire::{checksum, Icmpv4Message, Icmpv4Packet, IpProtocol, Ipv4Packet};
use vmkstack_api::{
    parse_request, Action, ErrorKind, Request, Response, MAX_LINE, PROTOCOL_VERSION,
};
use vmkstack_stack::config::{RawForward, RawNetstack, RawRoute, RawRoute6, RawVmknic};
use vmkstack_stack::packet::{
    check_offload, decrement_ttl, finish_checksum, fragment, is_martian, may_send_icmp_error,
    parse_ipv4, segment_tcp, write_icmp_error, IcmpError, Ipv4Info, ICMP_ERROR_MAX_LEN,
    ICMP_ERROR_TTL,
};
use vmkstack_stack::{Config, ConfigError, RawConfig};
use vmkstack_storage_wire::{
    self as storage, parse_exports, parse_getport, parse_login_response, parse_reply,
    parse_text_response, pdu_len, record_len, session, IscsiError, RpcError, BHS_LEN, MAX_ENTRIES,
};
use vmkstack_vmknic::eth::{self, write_header, ETH_HDR};
use vmkstack_vmknic::{MacAddr, VnetHdr, ETHERTYPE_IPV4, VNET_HDR_LEN};

use harness::Rng;

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/corpus")).join(target)
}

// ---------------------------------------------------------------------------------------------
// ipv4

const OURS: MacAddr = MacAddr([0x02, 0x50, 0x56, 0x00, 0x00, 0x01]);
const PEER: MacAddr = MacAddr([0x00, 0x50, 0x56, 0x00, 0x00, 0x02]);
const SRC: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const DST: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 2);
const ROUTER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 254);
/// Longest generated frame.
const MAX_FRAME: usize = 9100;
/// Generated `ipv4` cases by default: more than fit in the one-minute budget of a debug build on two
/// cores, so that the budget ends the run.
const IPV4_CASES: u64 = 600_000;

/// Router Alert (copied), NOP, Timestamp (not copied) and EOL padding: 16 bytes.
const OPTIONS: [u8; 16] = [0x94, 4, 0, 0, 1, 0x44, 8, 5, 0, 0, 0, 0, 0, 0, 0, 0];
/// Options, copied or not, well-formed or not, for generated headers.
const OPTION_PIECES: [&[u8]; 12] = [
    &[0],
    &[1],
    &[0x94, 4, 0, 0],
    &[0x44, 8, 5, 0, 0, 0, 0, 0],
    &[7, 11, 4, 198, 18, 0, 1, 0, 0, 0, 0],
    &[0x83, 7, 4, 198, 19, 0, 1],
    &[0x89, 7, 4, 198, 19, 0, 1],
    &[0x82, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    &[0x44, 0],
    &[0x44, 1],
    &[0x83, 40],
    &[0x99],
];

/// Fields of a generated IPv4 packet.
#[derive(Clone, Copy)]
struct Ip<'a> {
    proto: IpProtocol,
    options: &'a [u8],
    dont_frag: bool,
    more_frags: bool,
    frag_offset: u16,
    ttl: u8,
    src: Ipv4Addr,
    dst: Ipv4Addr,
}

const UDP: Ip = Ip {
    proto: IpProtocol::Udp,
    options: &[],
    dont_frag: false,
    more_frags: false,
    frag_offset: 0,
    ttl: 64,
    src: SRC,
    dst: DST,
};

/// An IPv4 packet with a valid header checksum (`options` is padded to 4 bytes).
fn ipv4(ip: Ip, payload: &[u8]) -> Vec<u8> {
    let mut options = ip.options.to_vec();
    options.resize(options.len().next_multiple_of(4).min(40), 0);
    let header_len = 20 + options.len();
    let mut buf = vec![0u8; header_len + payload.len()];
    buf[20..header_len].copy_from_slice(&options);
    buf[header_len..].copy_from_slice(payload);
    let mut p = Ipv4Packet::new_unchecked(&mut buf[..]);
    p.set_version(4);
    p.set_header_len(header_len as u8);
    p.set_total_len((header_len + payload.len()).min(0xffff) as u16);
    p.set_ident(0xbeef);
    p.clear_flags();
    p.set_dont_frag(ip.dont_frag);
    p.set_more_frags(ip.more_frags);
    p.set_frag_offset(ip.frag_offset);
    p.set_hop_limit(ip.ttl);
    p.set_next_header(ip.proto);
    p.set_src_addr(ip.src);
    p.set_dst_addr(ip.dst);
    p.fill_checksum();
    buf
}

/// `packet` in an Ethernet frame to our MAC.
fn frame(packet: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; ETH_HDR];
    write_header(&mut f, OURS, PEER, ETHERTYPE_IPV4);
    f.extend_from_slice(packet);
    f
}

/// An ICMP echo request or reply with `data`.
fn echo(msg: Icmpv4Message, data: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 8 + data.len()];
    buf[8..].copy_from_slice(data);
    let mut icmp = Icmpv4Packet::new_unchecked(&mut buf[..]);
    icmp.set_msg_type(msg);
    icmp.set_msg_code(0);
    icmp.set_echo_ident(0x1234);
    icmp.set_echo_seq_no(7);
    icmp.fill_checksum();
    buf
}

/// An ICMP error about `original`, as the stack writes it.
fn icmp_error(kind: IcmpError, original: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; 1500];
    let len = write_icmp_error(&mut out, kind, original, ROUTER, 0x4242);
    assert!(len > 0, "seed ICMP error");
    out.truncate(len);
    out
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + 3) as u8).collect()
}

/// The built-in `ipv4` seeds: Ethernet frames carrying IPv4.
fn ipv4_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let udp = |len: usize| {
        let mut d = pattern(len);
        if len >= 8 {
            d[..8].copy_from_slice(&[0x13, 0x88, 0x00, 0x35, (len >> 8) as u8, len as u8, 0, 0]);
        }
        d
    };
    let small = ipv4(
        Ip {
            dont_frag: true,
            ..UDP
        },
        &udp(10),
    );
    let big = ipv4(UDP, &udp(4000));
    let tcp_syn = [
        0xc3, 0x50, 0x0c, 0xbc, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0,
    ];
    let icmp = |msg, data: &[u8]| {
        let p = Ip {
            proto: IpProtocol::Icmp,
            ..UDP
        };
        ipv4(p, &echo(msg, data))
    };
    let mut padded = frame(&small);
    padded.resize(60.max(padded.len() + 16), 0);
    vec![
        ("udp-df", frame(&small)),
        ("udp-padded", padded),
        ("udp-4000", frame(&big)),
        ("udp-1472", frame(&ipv4(UDP, &udp(1480)))),
        (
            "udp-options",
            frame(&ipv4(
                Ip {
                    options: &OPTIONS,
                    ..UDP
                },
                &udp(1400),
            )),
        ),
        (
            "udp-record-route",
            frame(&ipv4(
                Ip {
                    options: &[7, 39, 4],
                    ..UDP
                },
                &udp(700),
            )),
        ),
        (
            "first-fragment",
            frame(&ipv4(
                Ip {
                    more_frags: true,
                    ..UDP
                },
                &udp(1480),
            )),
        ),
        (
            "middle-fragment",
            frame(&ipv4(
                Ip {
                    more_frags: true,
                    frag_offset: 1480,
                    ..UDP
                },
                &pattern(1480),
            )),
        ),
        (
            "last-fragment",
            frame(&ipv4(
                Ip {
                    frag_offset: 2960,
                    ..UDP
                },
                &pattern(1040),
            )),
        ),
        (
            "fragment-near-64k",
            frame(&ipv4(
                Ip {
                    frag_offset: 63000,
                    ..UDP
                },
                &pattern(2000),
            )),
        ),
        (
            "echo-request",
            frame(&icmp(Icmpv4Message::EchoRequest, &pattern(56))),
        ),
        (
            "echo-reply",
            frame(&icmp(Icmpv4Message::EchoReply, &pattern(56))),
        ),
        (
            "echo-big",
            frame(&icmp(Icmpv4Message::EchoRequest, &pattern(3000))),
        ),
        (
            "time-exceeded",
            frame(&icmp_error(IcmpError::TimeExceeded, &big)),
        ),
        (
            "frag-needed",
            frame(&icmp_error(IcmpError::FragNeeded { mtu: 1400 }, &big)),
        ),
        (
            "port-unreachable",
            frame(&icmp_error(IcmpError::PortUnreachable, &small)),
        ),
        (
            "tcp-syn",
            frame(&ipv4(
                Ip {
                    proto: IpProtocol::Tcp,
                    dont_frag: true,
                    ..UDP
                },
                &tcp_syn,
            )),
        ),
        ("ttl-1", frame(&ipv4(Ip { ttl: 1, ..UDP }, &udp(20)))),
        ("ttl-0", frame(&ipv4(Ip { ttl: 0, ..UDP }, &udp(20)))),
        (
            "broadcast",
            frame(&ipv4(
                Ip {
                    dst: Ipv4Addr::BROADCAST,
                    ..UDP
                },
                &udp(20),
            )),
        ),
        (
            "martian-source",
            frame(&ipv4(
                Ip {
                    src: Ipv4Addr::LOCALHOST,
                    ..UDP
                },
                &udp(20),
            )),
        ),
        (
            "bad-option",
            frame(&ipv4(
                Ip {
                    options: &[0x44, 9, 5, 0],
                    ..UDP
                },
                &udp(2000),
            )),
        ),
        ("header-only", frame(&ipv4(UDP, &[]))),
    ]
}

/// Makes a mutated IPv4 header plausible again: version 4, often the total length of the
/// bytes there, and a correct checksum, so that mutations get past the checksum.
fn repair(rng: &mut Rng, frame: &mut [u8]) {
    let Some(ip) = frame.get_mut(ETH_HDR..).filter(|ip| ip.len() >= 20) else {
        return;
    };
    if rng.one_in(2) {
        ip[0] = 0x40 | (ip[0] & 0x0f);
    }
    if rng.one_in(2) {
        let total = ip.len().min(0xffff) as u16;
        ip[2..4].copy_from_slice(&total.to_be_bytes());
    }
    let header_len = usize::from(ip[0] & 0x0f) * 4;
    if let Some(header) = ip.get_mut(..header_len).filter(|h| h.len() >= 20) {
        header[10..12].fill(0);
        let sum = !checksum::data(header);
        header[10..12].copy_from_slice(&sum.to_be_bytes());
    }
}

/// A fresh packet with random header fields and options (valid checksum), a mutated corpus
/// frame (usually repaired), or random bytes.
fn generate_ipv4(rng: &mut Rng, corpus: &[Vec<u8>]) -> Vec<u8> {
    match rng.below(10) {
        0 => {
            let len = rng.below(200);
            rng.bytes(len)
        }
        1 | 2 => {
            let mut options = Vec::new();
            for _ in 0..rng.below(5) {
                let piece = *rng.pick::<&[u8]>(&OPTION_PIECES);
                options.extend_from_slice(piece);
            }
            options.truncate(40);
            let addrs = [SRC, DST, ROUTER, Ipv4Addr::BROADCAST, Ipv4Addr::UNSPECIFIED];
            let mut addr = || match rng.below(3) {
                0 => Ipv4Addr::from(rng.next_u64() as u32),
                _ => *rng.pick(&addrs),
            };
            let (src, dst) = (addr(), addr());
            let proto = *rng.pick(&[IpProtocol::Udp, IpProtocol::Icmp, IpProtocol::Tcp]);
            let ip = Ip {
                proto,
                options: &options,
                dont_frag: rng.one_in(3),
                more_frags: rng.one_in(3),
                frag_offset: (rng.below(8192) as u16 * 8) & if rng.one_in(2) { 0 } else { !0 },
                ttl: *rng.pick(&[0, 1, 2, 64, 255]),
                src,
                dst,
            };
            let len = *rng.pick(&[0, 1, 7, 8, 9, 100, 548, 1480, 1481, 4000]);
            let payload = match proto {
                IpProtocol::Icmp if rng.one_in(2) => {
                    let msg = Icmpv4Message::from(*rng.pick(&[0u8, 3, 5, 8, 11, 13, 15, 17, 42]));
                    echo(msg, &pattern(len))
                }
                _ => pattern(len),
            };
            frame(&ipv4(ip, &payload))
        }
        _ => {
            let seed = rng.pick(corpus);
            let mut f = harness::mutate(rng, seed, corpus, MAX_FRAME);
            if !rng.one_in(4) {
                repair(rng, &mut f);
            }
            f
        }
    }
}

/// The `ipv4` target's checks on one Ethernet frame (also the AFL target `ipv4`).
pub fn check_ipv4_frame(frame: &[u8]) {
    let _ = eth::classify(frame, OURS);
    match frame.get(ETH_HDR..) {
        Some(packet) if !packet.is_empty() => check_packet(packet),
        _ => check_packet(frame),
    }
}

/// Every packet function on one received IPv4 packet (no Ethernet header).
fn check_packet(p: &[u8]) {
    let parsed = parse_ipv4(p);
    let view = Ipv4Packet::new_checked(p);
    match (&parsed, &view) {
        (Ok(info), Ok(v)) => {
            assert!(v.verify_checksum(), "accepted a bad checksum");
            assert_eq!(v.version(), 4);
            assert_eq!(info.header_len, usize::from(v.header_len()));
            assert!((20..=60).contains(&info.header_len));
            assert!(info.header_len <= info.total_len && info.total_len <= p.len());
            assert_eq!(info.total_len, usize::from(v.total_len()));
            let fields = (info.src, info.dst, info.ttl, info.protocol);
            assert_eq!(fields, (v.src_addr(), v.dst_addr(), v.hop_limit(), p[9]));
            let flags = (info.dont_frag, info.more_frags, info.frag_offset);
            assert_eq!(flags, (v.dont_frag(), v.more_frags(), v.frag_offset()));
            assert_eq!(info.has_options, info.header_len > 20);
            let martian = is_martian(info.src) || is_martian(info.dst);
            assert_eq!(info.check_addresses().is_err(), martian);
        }
        (Ok(info), Err(_)) => panic!("parse_ipv4 accepted what smoltcp refuses: {info:?}"),
        (Err(e), Ok(v)) => {
            let fine = v.version() == 4 && v.verify_checksum();
            assert!(!fine, "parse_ipv4 refused ({e:?}) a packet smoltcp accepts");
        }
        (Err(_), Err(_)) => {}
    }

    check_decrement_ttl(p, parsed.ok());
    check_may_send(p, parsed.ok());
    let kinds = [
        IcmpError::TimeExceeded,
        IcmpError::NetUnreachable,
        IcmpError::HostUnreachable,
        IcmpError::FragNeeded { mtu: 1400 },
        IcmpError::PortUnreachable,
    ];
    for kind in kinds {
        check_icmp_error(p, parsed.ok(), kind, 1500);
    }
    let small = p.len() % 97;
    check_icmp_error(p, parsed.ok(), kinds[p.len() % kinds.len()], small);
    for mtu in [68, 576, 1500] {
        check_fragment(p, parsed.ok(), mtu, usize::from(mtu));
    }
    let mtu = (p.len() as u16).wrapping_mul(13) % 1600;
    check_fragment(p, parsed.ok(), mtu, usize::from(mtu));
    check_fragment(p, parsed.ok(), 1500, p.len() % 700);
}

fn check_decrement_ttl(p: &[u8], parsed: Option<Ipv4Info>) {
    let mut q = p.to_vec();
    decrement_ttl(&mut q);
    let ttl = match Ipv4Packet::new_checked(p) {
        Ok(v) if v.hop_limit() > 0 => v.hop_limit(),
        _ => {
            assert_eq!(q, p, "changed a packet it cannot decrement");
            return;
        }
    };
    let changed: Vec<usize> = (0..p.len()).filter(|&i| p[i] != q[i]).collect();
    assert!(
        changed.iter().all(|i| [8, 10, 11].contains(i)),
        "{changed:?}"
    );
    assert_eq!(q[8], ttl - 1);
    if let Some(info) = parsed {
        let v = Ipv4Packet::new_checked(&q[..]).expect("still a packet");
        assert!(v.verify_checksum(), "checksum broken by the TTL decrement");
        let after = parse_ipv4(&q).expect("still valid");
        assert_eq!(
            after,
            Ipv4Info {
                ttl: ttl - 1,
                ..info
            }
        );
    }
}

fn check_may_send(p: &[u8], parsed: Option<Ipv4Info>) {
    if !may_send_icmp_error(p) {
        return;
    }
    let info = parsed.expect("may_send_icmp_error on an invalid packet");
    assert_eq!(info.frag_offset, 0);
    assert!(!is_martian(info.src), "error to martian {}", info.src);
    assert!(!info.dst.is_multicast() && !info.dst.is_broadcast());
    if info.protocol == 1 {
        let icmp = &p[info.header_len..info.total_len];
        let queries = [0, 8, 9, 10, 13, 14, 15, 16, 17, 18];
        assert!(
            icmp.len() >= 8 && queries.contains(&icmp[0]),
            "about {icmp:?}"
        );
    }
}

fn check_icmp_error(p: &[u8], parsed: Option<Ipv4Info>, kind: IcmpError, out_len: usize) {
    let mut out = vec![0u8; out_len];
    let n = write_icmp_error(&mut out, kind, p, ROUTER, 0x4242);
    let Some(info) = parsed else {
        assert_eq!(n, 0, "ICMP error about an invalid packet");
        return;
    };
    let room = out_len.min(ICMP_ERROR_MAX_LEN).saturating_sub(28);
    let quote = info.total_len.min(room);
    if quote < info.total_len.min(info.header_len + 8) {
        assert_eq!(n, 0, "quote shorter than the header + 8 bytes");
        return;
    }
    assert_eq!(n, 28 + quote);
    let ip = Ipv4Packet::new_checked(&out[..n]).expect("error packet parses");
    assert!(ip.verify_checksum());
    assert_eq!(usize::from(ip.total_len()), n);
    assert_eq!((ip.src_addr(), ip.dst_addr()), (ROUTER, info.src));
    assert_eq!((ip.hop_limit(), ip.ident()), (ICMP_ERROR_TTL, 0x4242));
    assert!(!ip.dont_frag() && !ip.more_frags() && ip.frag_offset() == 0);
    assert_eq!(ip.next_header(), IpProtocol::Icmp);
    assert!(parse_ipv4(&out[..n]).is_ok());
    let icmp = Icmpv4Packet::new_checked(ip.payload()).expect("ICMP parses");
    assert!(icmp.verify_checksum());
    let (msg, code, mtu) = match kind {
        IcmpError::TimeExceeded => (Icmpv4Message::TimeExceeded, 0, 0),
        IcmpError::NetUnreachable => (Icmpv4Message::DstUnreachable, 0, 0),
        IcmpError::HostUnreachable => (Icmpv4Message::DstUnreachable, 1, 0),
        IcmpError::PortUnreachable => (Icmpv4Message::DstUnreachable, 3, 0),
        IcmpError::FragNeeded { mtu } => (Icmpv4Message::DstUnreachable, 4, mtu),
    };
    assert_eq!((icmp.msg_type(), icmp.msg_code()), (msg, code));
    assert_eq!(out[26..28], mtu.to_be_bytes());
    assert_eq!(out[28..n], p[..quote]);
    assert!(!may_send_icmp_error(&out[..n]), "an error about an error");
}

fn check_fragment(p: &[u8], parsed: Option<Ipv4Info>, mtu: u16, scratch_len: usize) {
    let mut scratch = vec![0u8; scratch_len];
    let mut frags: Vec<Vec<u8>> = Vec::new();
    let result = fragment(p, mtu, &mut scratch, |f| frags.push(f.to_vec()));
    let count = match result {
        Err(e) => {
            assert!(
                frags.is_empty(),
                "{} fragments emitted before {e:?}",
                frags.len()
            );
            if let Some(info) = parsed {
                assert!(
                    info.total_len > usize::from(mtu),
                    "{e:?} for a packet that fits"
                );
            }
            return;
        }
        Ok(count) => count,
    };
    let info = parsed.expect("fragmented an invalid packet");
    assert_eq!(count, frags.len());
    if info.total_len <= usize::from(mtu) {
        assert_eq!(frags, [&p[..info.total_len]]);
        return;
    }
    assert!(!info.dont_frag, "fragmented a DF packet");
    let mut data = Vec::new();
    for (k, f) in frags.iter().enumerate() {
        let last = k + 1 == frags.len();
        assert!(f.len() <= usize::from(mtu).min(scratch_len));
        let fi = parse_ipv4(f).expect("a fragment is a valid packet");
        assert_eq!(fi.total_len, f.len());
        let same = (fi.src, fi.dst, fi.ttl, fi.protocol, &f[1..2], &f[4..6]);
        assert_eq!(
            same,
            (
                info.src,
                info.dst,
                info.ttl,
                info.protocol,
                &p[1..2],
                &p[4..6]
            )
        );
        assert!(!fi.dont_frag);
        assert_eq!(fi.more_frags, !last || info.more_frags);
        assert_eq!(
            usize::from(fi.frag_offset),
            usize::from(info.frag_offset) + data.len()
        );
        let chunk = &f[fi.header_len..];
        if !last {
            assert!(
                !chunk.is_empty() && chunk.len() % 8 == 0,
                "{} bytes",
                chunk.len()
            );
        }
        if k == 0 {
            assert_eq!(
                f[20..fi.header_len],
                p[20..info.header_len],
                "first keeps options"
            );
        } else {
            assert!(fi.header_len <= info.header_len);
        }
        data.extend_from_slice(chunk);
    }
    assert_eq!(
        data,
        p[info.header_len..info.total_len],
        "reassembly differs"
    );
}

#[test]
fn fuzz_ipv4() {
    let corpus = harness::corpus(&corpus_dir("ipv4"), ipv4_seeds());
    let check = |f: &Vec<u8>| check_ipv4_frame(f);
    harness::run("ipv4", IPV4_CASES, &corpus, generate_ipv4, check);
}

// ---------------------------------------------------------------------------------------------
// offload

/// Generated `offload` cases by default: more than fit in the one-minute budget of a debug build on two
/// cores, so that the budget ends the run.
const OFFLOAD_CASES: u64 = 900_000;

/// A TCP packet SRC -> DST with `payload` and its checksum left partial (the pseudo-header
/// sum), as a TSO sender hands it over.
fn tcp_partial(payload: &[u8], flags: u8) -> Vec<u8> {
    let mut seg = vec![0u8; 20];
    seg[0..2].copy_from_slice(&3260u16.to_be_bytes());
    seg[2..4].copy_from_slice(&50000u16.to_be_bytes());
    seg[4..8].copy_from_slice(&0xfff0_0000u32.to_be_bytes());
    seg[12] = 5 << 4;
    seg[13] = flags;
    seg.extend_from_slice(payload);
    let pseudo = checksum::pseudo_header_v4(&SRC, &DST, IpProtocol::Tcp, seg.len() as u32);
    seg[16..18].copy_from_slice(&pseudo.to_be_bytes());
    ipv4(
        Ip {
            proto: IpProtocol::Tcp,
            dont_frag: true,
            ..UDP
        },
        &seg,
    )
}

/// A virtio-net header followed by the IP packet (the Ethernet header is implied: offsets in
/// the header count it).
fn vnet(h: VnetHdr, packet: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; VNET_HDR_LEN];
    h.write(&mut b);
    b.extend_from_slice(packet);
    b
}

fn tso(gso_size: u16) -> VnetHdr {
    VnetHdr {
        flags: VnetHdr::NEEDS_CSUM,
        gso_type: VnetHdr::GSO_TCPV4,
        hdr_len: (ETH_HDR + 40) as u16,
        gso_size,
        csum_start: (ETH_HDR + 20) as u16,
        csum_offset: 16,
    }
}

fn offload_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let big = pattern(20_000);
    let udp = ipv4(UDP, &pattern(300));
    let partial_udp = VnetHdr {
        flags: VnetHdr::NEEDS_CSUM,
        csum_start: (ETH_HDR + 20) as u16,
        csum_offset: 6,
        ..VnetHdr::default()
    };
    vec![
        ("tso-1448", vnet(tso(1448), &tcp_partial(&big, 0x18))),
        (
            "tso-ecn-fin",
            vnet(
                VnetHdr {
                    gso_type: 0x81,
                    ..tso(536)
                },
                &tcp_partial(&big, 0x99),
            ),
        ),
        (
            "tso-one-segment",
            vnet(tso(8948), &tcp_partial(&pattern(100), 0x10)),
        ),
        ("tso-empty", vnet(tso(1448), &tcp_partial(&[], 0x10))),
        (
            "csum-tcp",
            vnet(
                VnetHdr {
                    gso_type: 0,
                    ..tso(0)
                },
                &tcp_partial(&pattern(999), 0x18),
            ),
        ),
        ("csum-udp", vnet(partial_udp, &udp)),
        ("plain", vnet(VnetHdr::default(), &udp)),
        (
            "ufo",
            vnet(
                VnetHdr {
                    gso_type: 3,
                    ..tso(1448)
                },
                &udp,
            ),
        ),
        (
            "bad-offset",
            vnet(
                VnetHdr {
                    csum_offset: 60_000,
                    ..partial_udp
                },
                &udp,
            ),
        ),
    ]
}

/// A mutated seed (the header mostly kept valid-looking) or random bytes.
fn generate_offload(rng: &mut Rng, corpus: &[Vec<u8>]) -> Vec<u8> {
    let seed = rng.pick(corpus);
    let mut b = if rng.one_in(20) {
        let len = rng.below(300);
        rng.bytes(len)
    } else {
        harness::mutate(rng, seed, corpus, 66_000)
    };
    // Keep the IP header's checksum right most of the time, so that the offload code runs.
    if b.len() > VNET_HDR_LEN + 20 && !rng.one_in(4) {
        let ip = &mut b[VNET_HDR_LEN..];
        ip[0] = 0x45;
        let total = ip.len().min(0xffff) as u16;
        if rng.one_in(2) {
            ip[2..4].copy_from_slice(&total.to_be_bytes());
        }
        ip[10..12].fill(0);
        let sum = !checksum::data(&ip[..20]);
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
    }
    b
}

/// The `offload` target's checks on a virtio-net header and packet (also the AFL target
/// `offload`).
pub fn check_offload_input(b: &[u8]) {
    let hdr = VnetHdr::read(b);
    let Some(pkt) = b.get(VNET_HDR_LEN..) else {
        return;
    };
    let Ok(info) = parse_ipv4(pkt) else {
        return;
    };
    let Ok(o) = check_offload(&hdr, pkt, &info) else {
        return;
    };
    assert!(o.wire_len <= info.total_len);
    let mut p = pkt[..info.total_len].to_vec();
    if let Some((start, field)) = o.csum {
        assert!(
            start >= info.header_len && field + 2 <= info.total_len,
            "{o:?}"
        );
        let before = u16::from_be_bytes([p[field], p[field + 1]]);
        finish_checksum(&mut p, &info, start, field);
        // The finished field cancels what the covered bytes (with the old field) summed to.
        let after = checksum::data(&p[start..]);
        let udp_zero =
            info.protocol == 17 && u16::from_be_bytes([p[field], p[field + 1]]) == 0xffff;
        assert!(
            udp_zero || checksum::combine(&[after, before]) == !0,
            "{o:?}"
        );
    }
    if let Some(gso) = o.gso_size {
        let thl = usize::from(pkt[info.header_len + 12] >> 4) * 4;
        let payload = &pkt[info.header_len + thl..info.total_len];
        let mut scratch = vec![0u8; 9216];
        let mut data = Vec::new();
        let mut count = 0;
        let res = segment_tcp(pkt, &info, gso, &mut scratch, |seg| {
            let si = parse_ipv4(seg).expect("a segment parses");
            assert_eq!(si.total_len, seg.len());
            assert!(si.total_len <= o.wire_len);
            let t = &seg[si.header_len..];
            let len = t.len() as u32;
            let pseudo = checksum::pseudo_header_v4(&si.src, &si.dst, IpProtocol::Tcp, len);
            assert_eq!(
                checksum::combine(&[pseudo, checksum::data(t)]),
                !0,
                "TCP checksum"
            );
            data.extend_from_slice(&t[thl..]);
            count += 1;
        });
        match res {
            Ok(n) => {
                assert_eq!(n, count);
                assert_eq!(n, payload.len().div_ceil(usize::from(gso)).max(1));
                assert_eq!(data, payload, "segments carry the payload in order");
            }
            Err(_) => assert_eq!(count, 0, "nothing emitted on error"),
        }
    }
}

#[test]
fn fuzz_offload() {
    let corpus = harness::corpus(&corpus_dir("offload"), offload_seeds());
    let check = |b: &Vec<u8>| check_offload_input(b);
    harness::run("offload", OFFLOAD_CASES, &corpus, generate_offload, check);
}

// ---------------------------------------------------------------------------------------------
// storage

/// Generated `storage` cases by default: more than fit in the one-minute budget of a debug build on two
/// cores, so that the budget ends the run.
const STORAGE_CASES: u64 = 22_500_000;
const XID: u32 = 0x5641_4b01;

/// Bytes from hex digits; whitespace separates words for the reader.
fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let digit = |d: u8| char::from(d).to_digit(16).expect("hex digit") as u8;
    digits
        .chunks(2)
        .map(|p| digit(p[0]) << 4 | digit(p[1]))
        .collect()
}

/// An iSCSI response PDU with `opcode`, `flags`, status and a data segment (padded).
fn iscsi(opcode: u8, flags: u8, status: [u8; 2], data: &[u8]) -> Vec<u8> {
    let mut pdu = vec![0u8; BHS_LEN];
    pdu[0] = opcode;
    pdu[1] = flags;
    pdu[5..8].copy_from_slice(&(data.len() as u32).to_be_bytes()[1..]);
    pdu[14..16].copy_from_slice(&1u16.to_be_bytes());
    pdu[24..28].copy_from_slice(&0x1234_5678u32.to_be_bytes());
    pdu[28..32].copy_from_slice(&1u32.to_be_bytes());
    pdu[36..38].copy_from_slice(&status);
    pdu.extend_from_slice(data);
    pdu.resize(pdu.len().next_multiple_of(4), 0);
    pdu
}

/// An RPC record: `words` after the xid and REPLY, cut into fragments of `split` bytes.
fn rpc_reply(words: &[u32], tail: &[u8], split: usize) -> Vec<u8> {
    let mut message: Vec<u8> = [XID, 1]
        .iter()
        .chain(words)
        .flat_map(|w| w.to_be_bytes())
        .collect();
    message.extend_from_slice(tail);
    let mut record = Vec::new();
    let chunks: Vec<&[u8]> = message.chunks(split.max(1)).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let last = if i + 1 == chunks.len() {
            0x8000_0000
        } else {
            0
        };
        record.extend_from_slice(&(last | chunk.len() as u32).to_be_bytes());
        record.extend_from_slice(chunk);
    }
    record
}

/// XDR of a MOUNT export list.
fn exports(list: &[(&str, &[&str])]) -> Vec<u8> {
    let mut out = Vec::new();
    let string = |out: &mut Vec<u8>, s: &str| {
        out.extend_from_slice(&(s.len() as u32).to_be_bytes());
        out.extend_from_slice(s.as_bytes());
        out.resize(out.len().next_multiple_of(4), 0);
    };
    for (path, groups) in list {
        out.extend_from_slice(&1u32.to_be_bytes());
        string(&mut out, path);
        for g in *groups {
            out.extend_from_slice(&1u32.to_be_bytes());
            string(&mut out, g);
        }
        out.extend_from_slice(&0u32.to_be_bytes());
    }
    out.extend_from_slice(&0u32.to_be_bytes());
    out
}

/// The built-in `storage` seeds: iSCSI responses and ONC RPC reply records.
fn storage_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let login_keys = b"TargetPortalGroupTag=1\0HeaderDigest=None\0DataDigest=None\0\
        DefaultTime2Wait=2\0DefaultTime2Retain=0\0IFMarker=No\0OFMarker=No\0\
        ErrorRecoveryLevel=0\0";
    let targets = b"TargetName=iqn.2001-04.com.example:storage.disk1\0\
        TargetAddress=198.18.100.20:3260,1\0TargetAddress=198.19.100.20:3260,2\0\
        TargetName=iqn.2001-04.com.example:storage.disk2\0\
        TargetAddress=198.18.100.20:3260,1\0";
    let export_list = exports(&[
        ("/srv/nfs/vmfs", &["198.18.0.0/15", "esx01"]),
        ("/export/iso", &["*"]),
        ("/export/all", &[]),
    ]);
    let mut ahs = iscsi(0x23, 0x87, [0, 0], login_keys);
    ahs[4] = 1;
    ahs.splice(BHS_LEN..BHS_LEN, [0u8; 4]);
    vec![
        ("login", iscsi(0x23, 0x87, [0, 0], login_keys)),
        ("login-continue", iscsi(0x23, 0x05, [0, 0], login_keys)),
        (
            "login-redirect",
            iscsi(0x23, 0, [1, 1], b"TargetAddress=198.18.100.21:3260,1\0"),
        ),
        ("login-auth-failed", iscsi(0x23, 0, [2, 1], &[])),
        ("login-ahs", ahs),
        ("text", iscsi(0x24, 0x80, [0, 0], targets)),
        ("text-continued", iscsi(0x24, 0x40, [0, 0], targets)),
        (
            "text-orphan-address",
            iscsi(0x24, 0x80, [0, 0], b"TargetAddress=1.2.3.4:3260,1\0"),
        ),
        ("reject", iscsi(0x3f, 0x80, [0, 0], &[0; 48])),
        (
            "getport",
            rpc_reply(&[0, 0, 0, 0, 0, 20048], &[], usize::MAX),
        ),
        (
            "getport-fragments",
            rpc_reply(&[0, 0, 0, 0, 0, 2049], &[], 12),
        ),
        (
            "getport-zero",
            rpc_reply(&[0, 0, 0, 0, 0, 0], &[], usize::MAX),
        ),
        (
            "exports",
            rpc_reply(&[0, 0, 0, 0], &export_list, usize::MAX),
        ),
        (
            "exports-fragments",
            rpc_reply(&[0, 0, 0, 0], &export_list, 20),
        ),
        (
            "verifier",
            rpc_reply(&[0, 2, 4, 0xdead_beef, 0, 9], &[], usize::MAX),
        ),
        (
            "prog-mismatch",
            rpc_reply(&[0, 0, 0, 2, 3, 3], &[], usize::MAX),
        ),
        ("proc-unavail", rpc_reply(&[0, 0, 0, 3], &[], usize::MAX)),
        ("rpc-mismatch", rpc_reply(&[1, 0, 2, 2], &[], usize::MAX)),
        ("auth-error", rpc_reply(&[1, 1, 5], &[], usize::MAX)),
        (
            "call",
            storage::rpc_call(XID, storage::MOUNT, 3, storage::MOUNTPROC3_EXPORT, &[]),
        ),
        ("exports-body", export_list),
        ("getport-body", hex("00004e50")),
    ]
}

/// A mutated seed, a seed record re-cut into fragments, a PDU around random keys, or random
/// bytes.
fn generate_storage(rng: &mut Rng, corpus: &[Vec<u8>]) -> Vec<u8> {
    match rng.below(12) {
        0 => {
            let len = rng.below(300);
            rng.bytes(len)
        }
        1 => {
            let keys = ["TargetName", "TargetAddress", "X", "", "=", "TargetName="];
            let values = ["iqn.x", "1.2.3.4:3260,1", "", "é", "\u{fffd}"];
            let mut data = Vec::new();
            for _ in 0..rng.below(8) {
                data.extend_from_slice(rng.pick(&keys).as_bytes());
                if !rng.one_in(5) {
                    data.push(b'=');
                }
                data.extend_from_slice(rng.pick(&values).as_bytes());
                data.push(if rng.one_in(8) { 0xff } else { 0 });
            }
            let op = *rng.pick(&[0x23, 0x24, 0x63, 0x64]);
            let status = [rng.below(4) as u8, rng.below(12) as u8];
            iscsi(op, rng.byte(), status, &data)
        }
        2 => {
            let words: Vec<u32> = (0..rng.below(12))
                .map(|_| *rng.pick(&[0, 1, 2, 3, 5, 6, 0x8000_0000, 0xffff_ffff, 400, 401]))
                .collect();
            let split = *rng.pick(&[1, 4, 5, 8, 64, usize::MAX]);
            rpc_reply(&words, &[], split)
        }
        _ => {
            let seed = rng.pick(corpus);
            harness::mutate(rng, seed, corpus, 70_000)
        }
    }
}

fn check_storage(b: &[u8]) {
    // iSCSI
    let len = pdu_len(b);
    assert_eq!(len.is_none(), b.len() < BHS_LEN);
    if let Some(n) = len {
        assert!(n >= BHS_LEN && n % 4 == 0, "pdu_len {n}");
        assert_eq!(pdu_len(&b[..BHS_LEN]), Some(n));
    }
    let login = parse_login_response(b);
    match &login {
        Ok(r) => {
            assert_eq!((r.status_class, b[0] & 0x3f), (0, 0x23));
            assert!(len.is_some_and(|n| n <= b.len()));
        }
        Err(IscsiError::Rejected { class, .. }) => assert_ne!(*class, 0),
        Err(_) => {}
    }
    let text = parse_text_response(b);
    if let Ok(targets) = &text {
        assert_eq!(b[0] & 0x3f, 0x24);
        assert!(b[1] & 0x80 != 0, "continued response accepted");
        assert!(targets.len() <= MAX_ENTRIES);
        assert!(targets.iter().all(|t| t.portals.len() <= MAX_ENTRIES));
    }
    if let Some(n) = len.filter(|&n| n <= b.len()) {
        // Bytes after the PDU belong to the next one.
        assert_eq!(parse_login_response(&b[..n]), login);
        assert_eq!(parse_text_response(&b[..n]), text);
    }
    // The read test's view of a BHS and its SCSI data decoders.
    if let Some(h) = session::Bhs::new(b) {
        assert_eq!(Some(BHS_LEN + h.following()), len);
        assert!(h.following().is_multiple_of(4) && h.data_len() + h.ahs_len() <= h.following());
        let _ = (
            h.itt(),
            h.stat_sn(),
            h.max_cmd_sn(),
            h.has_status(),
            h.residual(),
        );
    }
    if let Ok(luns) = session::parse_report_luns(b) {
        assert!(luns.len() <= MAX_ENTRIES && luns.len() * 8 + 8 <= b.len());
        let numbers = luns.iter().filter_map(session::lun_number);
        assert!(numbers.into_iter().all(|n| n < 0x4000), "14-bit LUNs");
    }
    if let Ok(i) = session::parse_inquiry(b) {
        assert!(i.qualifier < 8 && i.device_type < 32);
    }
    if let Ok((_, block)) = session::parse_read_capacity16(b) {
        assert_ne!(block, 0);
    }
    if let Some((key, _, _)) = session::parse_sense(b) {
        assert!(key < 16);
    }

    // ONC RPC
    let record = record_len(b);
    let xid = b
        .get(4..8)
        .map_or(XID, |w| u32::from_be_bytes([w[0], w[1], w[2], w[3]]));
    let reply = parse_reply(b, xid);
    match record {
        Some(n) => {
            assert!((4..=b.len()).contains(&n), "record_len {n}");
            assert_eq!(record_len(&b[..n]), Some(n));
            assert_eq!(record_len(&b[..n - 1]), None);
            // Bytes after the record belong to the next one.
            assert_eq!(parse_reply(&b[..n], xid), reply);
        }
        None => assert_eq!(reply, Err(RpcError::Truncated)),
    }
    if let Ok(body) = &reply {
        assert!(body.len() <= b.len());
        check_rpc_body(body);
    }
    check_rpc_body(b);
    check_rpc_body(b.get(28..).unwrap_or_default());
}

fn check_rpc_body(body: &[u8]) {
    if let Ok(port) = parse_getport(body) {
        assert_ne!(port, 0);
        assert_eq!(body[..4], u32::from(port).to_be_bytes());
    }
    if let Ok(list) = parse_exports(body) {
        assert!(list.len() <= MAX_ENTRIES);
        assert!(list.iter().all(|e| e.groups.len() <= MAX_ENTRIES));
    }
}

#[test]
fn fuzz_storage() {
    let corpus = harness::corpus(&corpus_dir("storage"), storage_seeds());
    let check = |b: &Vec<u8>| check_storage(b);
    harness::run("storage", STORAGE_CASES, &corpus, generate_storage, check);
}

// ---------------------------------------------------------------------------------------------
// control

/// Generated `control` cases by default: more than fit in the one-minute budget of a debug build on two
/// cores, so that the budget ends the run.
const CONTROL_CASES: u64 = 1_500_000;

/// One request of every shape, with and without the optional fields.
fn control_actions() -> Vec<Action> {
    let s = |t: &str| t.to_string();
    let vmknic = RawVmknic {
        name: s("vmk2"),
        portgroup: s("Storage B"),
        ip: s("198.18.2.1"),
        netmask: Some(s("255.255.255.0")),
        prefix_len: None,
        extra_addresses: vec![s("198.18.9.1/24")],
        mac: Some(s("00:50:56:aa:bb:cc")),
        mtu: Some(9000),
        enabled: Some(false),
        tap: Some(s("vmks2")),
        bridge: Some(s("br-lab")),
        netns: Some(s("wire")),
        netstack: None,
        gateway: Some(s("198.18.2.254")),
        ipv6: vec![s("2001:db8:2::1/64")],
        ipv6_autoconf: Some(true),
        ipv6_dhcp: Some(true),
        ipv6_enabled: Some(true),
    };
    vec![
        Action::VmknicList,
        Action::VmknicAdd {
            vmknic,
            netstack: None,
        },
        Action::VmknicAdd {
            vmknic: RawVmknic {
                name: s("vmk1"),
                portgroup: s("VMotion"),
                ip: s("198.18.1.1/24"),
                ..RawVmknic::default()
            },
            netstack: Some(s("defaultTcpipStack")),
        },
        Action::VmknicRemove { vmknic: s("vmk1") },
        Action::VmknicEnable {
            vmknic: s("iSCSI_SAN"),
        },
        Action::VmknicDisable { vmknic: s("vmk0") },
        Action::VmknicSetMtu {
            vmknic: s("vmk0"),
            mtu: 1500,
        },
        Action::VmknicSetAddress {
            vmknic: s("vmk0"),
            ip: s("198.18.0.5/24"),
            gateway: None,
        },
        Action::RouteList,
        Action::RouteAdd {
            network: s("198.18.100.0/24"),
            gateway: s("198.18.1.1"),
        },
        Action::RouteRemove {
            network: s("198.18.100.0/24"),
            gateway: None,
        },
        Action::RouteRemove {
            network: s("198.18.100.0/24"),
            gateway: Some(s("198.18.1.1")),
        },
        Action::RouteGet {
            destination: s("198.18.100.20"),
            source: None,
        },
        Action::RouteGet {
            destination: s("198.18.100.20"),
            source: Some(s("198.18.2.1")),
        },
        Action::NetstackList,
        Action::NetstackGet { name: s("vmotion") },
        Action::NetstackAdd { name: s("vmotion") },
        Action::NetstackRemove { name: s("vmotion") },
        Action::VmknicSetIpv6Autoconf {
            vmknic: s("vmk1"),
            enabled: true,
        },
        Action::VmknicSetIpv6 {
            vmknic: s("vmk1"),
            enabled: Some(true),
            autoconf: None,
            dhcp: Some(true),
        },
        Action::VmknicSetGateway {
            vmknic: s("vmk1"),
            gateway: Some(s("198.18.1.1")),
        },
        Action::VmknicSetGateway {
            vmknic: s("vmk1"),
            gateway: None,
        },
        Action::GatewayShow,
        Action::GatewaySet {
            gateway: s("198.18.1.1"),
        },
        Action::GatewayClear { gateway: None },
        Action::GatewayClear {
            gateway: Some(s("198.18.1.1")),
        },
        Action::NeighborList,
        Action::NeighborRemove {
            ip: s("198.18.1.7"),
            vmknic: None,
        },
        Action::NeighborRemove {
            ip: s("198.18.1.7"),
            vmknic: Some(s("vmk1")),
        },
        Action::Stats,
        Action::Ping {
            destination: s("198.18.1.1"),
            vmknic: Some(s("vmk1")),
            size: 56,
            df: true,
            ttl: 64,
            timeout_ms: 1000,
            seq: 3,
            next_hop: Some(s("198.18.1.254")),
        },
        Action::Ping {
            destination: s("198.18.1.1"),
            vmknic: None,
            size: 8972,
            df: false,
            ttl: 1,
            timeout_ms: 0,
            seq: 65535,
            next_hop: None,
        },
        Action::ForwardAdd {
            listen: s("127.0.0.1:13260"),
            remote: s("198.18.100.20:3260"),
            vmknic: Some(s("vmk1")),
            max_connections: Some(8),
        },
        Action::ForwardAdd {
            listen: s("127.0.0.1:12049"),
            remote: s("198.18.100.20:2049"),
            vmknic: None,
            max_connections: None,
        },
        Action::ForwardList,
        Action::ForwardRemove {
            listen: s("127.0.0.1:13260"),
        },
        Action::StorageProbe {
            kind: s("iscsi"),
            host: s("198.18.100.20"),
            port: Some(3260),
            vmknic: Some(s("vmk1")),
            timeout_ms: 3000,
            read_test_secs: Some(5),
        },
        Action::StorageProbe {
            kind: s("nfs"),
            host: s("198.18.100.20"),
            port: None,
            vmknic: None,
            timeout_ms: 3000,
            read_test_secs: None,
        },
        Action::TcpProbe {
            destination: s("198.18.100.20"),
            port: 3260,
            vmknic: None,
            source: None,
            timeout_ms: 1000,
        },
        Action::TcpProbe {
            destination: s("198.18.100.20"),
            port: 3260,
            vmknic: None,
            source: Some(s("198.18.1.100")),
            timeout_ms: 1000,
        },
    ]
}

/// The built-in `control` seeds: every request shape, plus lines that must be refused.
fn control_seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds: Vec<(String, Vec<u8>)> = control_actions()
        .into_iter()
        .map(|action| {
            let request = Request {
                v: PROTOCOL_VERSION,
                netstack: None,
                action,
            };
            let line = serde_json::to_string(&request).expect("encode request");
            let op = serde_json::to_value(&request.action).expect("encode action")["op"]
                .as_str()
                .expect("op")
                .to_string();
            (op, line.into_bytes())
        })
        .collect();
    let refused = [
        ("unknown-op", r#"{"v":1,"action":{"op":"reboot"}}"#),
        (
            "unknown-field",
            r#"{"v":1,"action":{"op":"route_list","x":1}}"#,
        ),
        (
            "top-level-field",
            r#"{"v":1,"action":{"op":"stats"},"pad":"x"}"#,
        ),
        ("version-2", r#"{"v":2,"action":{"op":"route_list"}}"#),
        ("no-version", r#"{"action":{"op":"route_list"}}"#),
        ("float-version", r#"{"v":1.0,"action":{"op":"route_list"}}"#),
        ("duplicate-key", r#"{"v":1,"action":{"op":"stats"},"v":1}"#),
        (
            "missing-field",
            r#"{"v":1,"action":{"op":"route_add","network":"x"}}"#,
        ),
        (
            "ttl-256",
            r#"{"v":1,"action":{"op":"ping","destination":"1.2.3.4","size":1,"ttl":256,"timeout_ms":1,"seq":1}}"#,
        ),
        ("array", "[]"),
        ("not-json", "{"),
        ("empty", ""),
    ];
    seeds.extend(refused.map(|(n, l)| (n.to_string(), l.as_bytes().to_vec())));
    seeds
}

/// JSON values and keys that meet the request types at their edges.
const JSON_VALUES: [&str; 24] = [
    "0",
    "1",
    "-1",
    "1.5",
    "1e400",
    "255",
    "256",
    "65536",
    "4294967296",
    "18446744073709551616",
    "null",
    "true",
    "\"\"",
    "\"vmk0\"",
    "\"198.18.1.1\"",
    "\"198.18.0.0/15\"",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "\"\u{1F600}\"",
    "[]",
    "{}",
    "{\"op\":\"stats\"}",
    "[1,2]",
    "\"route_list\"",
];
const JSON_KEYS: [&str; 12] = [
    "v", "action", "op", "vmknic", "network", "gateway", "mtu", "ttl", "x", "", "port", "size",
];

/// A mutated line: bytes, a JSON value or key swapped, a field added, deep nesting, or a line
/// beyond the length limit.
fn generate_control(rng: &mut Rng, corpus: &[Vec<u8>]) -> String {
    let seed: &Vec<u8> = rng.pick(corpus);
    let seed = String::from_utf8_lossy(seed).into_owned();
    match rng.below(12) {
        0..=2 => {
            let bytes = harness::mutate(rng, seed.as_bytes(), corpus, 4096);
            String::from_utf8_lossy(&bytes).into_owned()
        }
        3..=5 => {
            // Replace the value after a random ':' (up to the next ',' or '}').
            let colons: Vec<usize> = seed.match_indices(':').map(|(i, _)| i).collect();
            let Some(&at) = colons.get(rng.below(colons.len())) else {
                return seed;
            };
            let end = seed[at..].find([',', '}']).map_or(seed.len(), |e| at + e);
            format!("{}:{}{}", &seed[..at], rng.pick(&JSON_VALUES), &seed[end..])
        }
        6 | 7 => {
            // Replace a quoted string (key or value).
            let quotes: Vec<usize> = seed.match_indices('"').map(|(i, _)| i).collect();
            if quotes.len() < 2 {
                return seed;
            }
            let i = rng.below(quotes.len() - 1);
            let (a, b) = (quotes[i], quotes[i + 1]);
            let word = match rng.below(2) {
                0 => rng.pick(&JSON_KEYS).to_string(),
                _ => rng.pick(&JSON_VALUES).trim_matches('"').to_string(),
            };
            format!("{}\"{word}\"{}", &seed[..a], &seed[b + 1..])
        }
        8 | 9 => {
            // Add a field to a random object.
            let braces: Vec<usize> = seed.match_indices('{').map(|(i, _)| i).collect();
            let Some(&at) = braces.get(rng.below(braces.len())) else {
                return seed;
            };
            let field = format!("\"{}\":{},", rng.pick(&JSON_KEYS), rng.pick(&JSON_VALUES));
            format!("{}{field}{}", &seed[..=at], &seed[at + 1..])
        }
        10 => {
            let depth = *rng.pick(&[100, 127, 128, 129, 5000]);
            let open = if rng.one_in(2) { "[" } else { "{\"a\":" };
            let close = if open == "[" { "]" } else { "}" };
            format!(
                "{{\"v\":1,\"action\":{}1{}}}",
                open.repeat(depth),
                close.repeat(depth)
            )
        }
        _ => match rng.below(3) {
            0 => format!(
                "{seed}{}",
                " ".repeat(MAX_LINE + 1 - seed.len().min(MAX_LINE))
            ),
            1 => format!("{seed}{}", " ".repeat(MAX_LINE - seed.len().min(MAX_LINE))),
            _ => {
                let len = rng.below(100);
                String::from_utf8_lossy(&rng.bytes(len)).into_owned()
            }
        },
    }
}

/// The `control` target's checks on one request line (also the AFL target `control`).
pub fn check_control(line: &str) {
    match parse_request(line) {
        Ok(request) => {
            assert!(line.len() <= MAX_LINE);
            assert_eq!(request.v, PROTOCOL_VERSION);
            let again = serde_json::to_string(&request).expect("encode request");
            assert_eq!(
                parse_request(&again),
                Ok(request.clone()),
                "sent again: {again}"
            );
            let _ = request.action.changes_state();
            // The daemon's typed parse: never panics; a refusal is `invalid` with a message.
            if let Err(e) = vmkstack_stack::control::command::parse(request.action) {
                assert_eq!(e.kind, ErrorKind::Invalid, "{}", e.message);
                assert!(!e.message.is_empty());
            }
        }
        Err(e) => {
            assert!(!e.message.is_empty());
            if line.len() > MAX_LINE {
                assert_eq!(e.kind, ErrorKind::TooLong);
            }
            let response = Response::err(e);
            let text = response.to_line();
            assert!(text.ends_with('\n') && !text.trim_end().contains('\n'));
            let back: Response = serde_json::from_str(&text).expect("response parses");
            assert_eq!(back, response);
        }
    }
}

#[test]
fn fuzz_control() {
    let seeds = control_seeds();
    let named: Vec<(&str, Vec<u8>)> = seeds.iter().map(|(n, b)| (&n[..], b.clone())).collect();
    let corpus = harness::corpus(&corpus_dir("control"), named);
    let lines: Vec<String> = corpus
        .iter()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect();
    let as_bytes: Vec<Vec<u8>> = corpus;
    let generate = |rng: &mut Rng, _: &[String]| generate_control(rng, &as_bytes);
    let check = |line: &String| check_control(line);
    harness::run("control", CONTROL_CASES, &lines, generate, check);
}

// ---------------------------------------------------------------------------------------------
// config

/// Generated `config` cases by default: more than fit in the one-minute budget of a debug build on two
/// cores, so that the budget ends the run.
const CONFIG_CASES: u64 = 450_000;

/// A configuration with every key, written by `to_toml` (so it round-trips by construction).
fn full_config() -> String {
    let s = |t: &str| t.to_string();
    let raw = RawConfig {
        netstack: Some(s("defaultTcpipStack")),
        forwarding: Some(true),
        offloads: Some(false),
        busy_poll_us: Some(50),
        io: Some(s("syscalls")),
        workers: Some(2),
        default_gateway: Some(s("198.18.1.1")),
        control_group: Some(s("vmkadmin")),
        mac_style: Some(s("vmware")),
        metrics_listen: Some(s("127.0.0.1:9469")),
        ipv6_default_gateway: Some(s("fe80::1%vmk1")),
        routes6: vec![RawRoute6 {
            network: s("2001:db8:100::/48"),
            gateway: s("2001:db8:1::1"),
        }],
        vmknics: vec![
            RawVmknic {
                name: s("vmk0"),
                portgroup: s("Management Network"),
                ip: s("198.18.0.1/24"),
                ..RawVmknic::default()
            },
            RawVmknic {
                name: s("vmk1"),
                portgroup: s("iSCSI_SAN"),
                ip: s("198.18.1.10"),
                netmask: Some(s("255.255.255.0")),
                extra_addresses: vec![s("198.18.11.10/24"), s("198.18.12.10/32")],
                mac: Some(s("00:50:56:6a:01:02")),
                mtu: Some(9000),
                enabled: Some(false),
                tap: Some(s("vmks1")),
                bridge: Some(s("br-san")),
                netns: Some(s("storage")),
                ipv6: vec![s("2001:db8:1::10/64"), s("2001:db8:11::10/64")],
                ..RawVmknic::default()
            },
            RawVmknic {
                name: s("vmk2"),
                portgroup: s("VMotion"),
                ip: s("198.18.2.10"),
                prefix_len: Some(31),
                mtu: Some(68),
                ..RawVmknic::default()
            },
            RawVmknic {
                name: s("vmk3"),
                portgroup: s("vMotion-B"),
                // The same subnet as vmk1 on another netstack: allowed.
                ip: s("198.18.1.10/24"),
                netstack: Some(s("vmotion")),
                gateway: Some(s("198.18.1.254")),
                ..RawVmknic::default()
            },
        ],
        routes: vec![
            RawRoute {
                network: s("198.18.100.0/24"),
                netmask: None,
                gateway: s("198.18.1.1"),
            },
            RawRoute {
                network: s("10.0.0.0"),
                netmask: Some(s("255.0.0.0")),
                gateway: s("198.18.9.9"),
            },
        ],
        forwards: vec![
            RawForward {
                listen: s("127.0.0.1:13260"),
                remote: s("198.18.100.20:3260"),
                vmknic: Some(s("vmk1")),
                max_connections: Some(4096),
                netstack: None,
            },
            RawForward {
                listen: s("127.0.0.1:12049"),
                remote: s("198.18.100.20:2049"),
                vmknic: None,
                max_connections: None,
                netstack: Some(s("vmotion")),
            },
        ],
        netstacks: vec![RawNetstack {
            name: s("vmotion"),
            forwarding: Some(false),
            default_gateway: Some(s("198.18.50.1")),
            routes: vec![RawRoute {
                network: s("198.18.60.0/24"),
                netmask: None,
                gateway: s("198.18.50.1"),
            }],
            ipv6_default_gateway: None,
            routes6: Vec::new(),
        }],
    };
    toml::to_string(&raw).expect("encode config")
}

const SEED_TOML: &str = r#"# The ESX article: a default gateway on neither vmknic subnet.
netstack = "defaultTcpipStack"
default_gateway = "192.168.0.254"

[[vmknic]]
name = "vmk0"
portgroup = "iSCSI_SAN"
ip = "192.168.1.100"
netmask = "255.255.255.0"

[[vmknic]]
name = "vmk1"
portgroup = "VMotion"
ip = "192.168.2.100"
netmask = "255.255.255.0"
"#;

const SHARED_SUBNET_TOML: &str = r#"default_gateway = "192.168.1.1"

[[vmknic]]
name = "vmk3"
portgroup = "B"
ip = "192.168.1.101/24"

[[vmknic]]
name = "vmk1"
portgroup = "A"
ip = "192.168.1.100/24"

[[route]]
network = "192.168.100.0/24"
gateway = "192.168.1.1"
"#;

const INLINE_TOML: &str = "vmknic = [{ name = \"vmk0\", portgroup = \"p\", ip = \
    \"10.0.0.1/8\", mtu = 1500 }]\nroute = [{ network = \"172.16.0.0/12\", gateway = \
    \"10.0.0.254\" }]\n";

/// The built-in `config` seeds.
fn config_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let bad = "netstack = \"a b\"\ncontrol_group = \"x:y\"\n\n[[vmknic]]\nname = \"vmk01\"\n\
        portgroup = \" \"\nip = \"127.0.0.1/8\"\nmtu = 9001\nmac = \"01:00:5e:00:00:01\"\n\
        tap = \"a-very-long-tap-name\"\n\n[[route]]\nnetwork = \"192.168.100.7/24\"\n\
        gateway = \"x\"\n\n[[forward]]\nlisten = \"127.0.0.1:0\"\nremote = \"nowhere\"\n\
        max_connections = 0\n";
    vec![
        ("full", full_config().into_bytes()),
        ("esx-article", SEED_TOML.as_bytes().to_vec()),
        ("shared-subnet", SHARED_SUBNET_TOML.as_bytes().to_vec()),
        ("inline-tables", INLINE_TOML.as_bytes().to_vec()),
        ("empty", Vec::new()),
        ("every-problem", bad.as_bytes().to_vec()),
        (
            "unknown-key",
            b"[[vmknic]]\nname = \"vmk0\"\nspeed = 10\n".to_vec(),
        ),
        ("syntax-error", b"[[vmknic]\nname = vmk0\n".to_vec()),
    ]
}

/// Lines that meet the configuration's rules at their edges.
const CONFIG_LINES: [&str; 62] = [
    "[[vmknic]]",
    "[[route]]",
    "[[forward]]",
    "[vmknic]",
    "netstack = \"defaultTcpipStack\"",
    "netstack = \"a/b\"",
    "forwarding = true",
    "forwarding = 1",
    "default_gateway = \"192.168.1.1\"",
    "default_gateway = \" 192.168.1.1 \"",
    "default_gateway = \"256.1.1.1\"",
    "control_group = \"vmkadmin\"",
    "control_group = \"\"",
    "name = \"vmk0\"",
    "name = \"vmk1\"",
    "name = \"vmk4294967295\"",
    "name = \"vmk4294967296\"",
    "name = \"vmk01\"",
    "portgroup = \"VM Network\"",
    "portgroup = \"\"",
    "portgroup = \"\\u0000\\n\"",
    "ip = \"192.168.1.100\"",
    "ip = \"192.168.1.100/24\"",
    "ip = \"192.168.1.0/24\"",
    "ip = \"192.168.1.255/24\"",
    "ip = \"192.168.1.101/31\"",
    "ip = \"10.0.0.1/8\"",
    "ip = \"0.0.0.0/0\"",
    "ip = \"1.2.3.4/33\"",
    "netmask = \"255.255.255.0\"",
    "netmask = \"255.0.255.0\"",
    "netmask = \"0.0.0.0\"",
    "prefix_len = 24",
    "prefix_len = 0",
    "prefix_len = -1",
    "prefix_len = 9223372036854775807",
    "extra_addresses = [\"192.168.1.101/24\"]",
    "extra_addresses = [\"10.1.1.1/16\", \"bad\", \"192.168.1.100/24\"]",
    "mac = \"00:50:56:01:02:03\"",
    "mac = \"00-50-56-01-02-03\"",
    "mac = \"00:00:00:00:00:00\"",
    "mtu = 9000",
    "mtu = 67",
    "mtu = 1.5",
    "enabled = false",
    "tap = \"vmk0\"",
    "tap = \"sixteen-bytes-xx\"",
    "tap = \"a/b\"",
    "bridge = \"br0\"",
    "netns = \"..\"",
    "network = \"192.168.100.0/24\"",
    "network = \"192.168.100.0\"",
    "network = \"0.0.0.0/0\"",
    "network = \"192.168.100.7/24\"",
    "gateway = \"192.168.1.1\"",
    "gateway = \"192.168.2.1\"",
    "listen = \"127.0.0.1:3260\"",
    "listen = \"127.0.0.1:0\"",
    "remote = \"198.18.100.20:3260\"",
    "vmknic = \"vmk0\"",
    "max_connections = 4097",
    "a = \"\"\"\nb\"\"\"",
];

/// The keys each table takes (`""` is the top level).
const CONFIG_TABLES: [(&str, &[&str]); 4] = [
    (
        "",
        &["netstack", "forwarding", "default_gateway", "control_group"],
    ),
    (
        "[[vmknic]]",
        &[
            "name",
            "portgroup",
            "ip",
            "netmask",
            "prefix_len",
            "extra_addresses",
            "mac",
            "mtu",
            "enabled",
            "tap",
            "bridge",
            "netns",
        ],
    ),
    ("[[route]]", &["network", "netmask", "gateway"]),
    (
        "[[forward]]",
        &["listen", "remote", "vmknic", "max_connections"],
    ),
];

/// Sets a key from `CONFIG_LINES` in a table that takes it: replaces its line there (TOML
/// refuses duplicate keys) or adds one, so that most edits reach validation.
fn set_key(rng: &mut Rng, lines: &mut Vec<String>) {
    let line = *rng.pick(&CONFIG_LINES);
    let key_of = |l: &str| l.split(" = ").next().unwrap_or_default().trim().to_string();
    let key = key_of(line);
    // Where each table's body starts.
    let mut table = String::new();
    let mut places = vec![(0, table.clone())];
    for (i, l) in lines.iter().enumerate() {
        if l.trim_start().starts_with('[') {
            table = l.trim().to_string();
            places.push((i + 1, table.clone()));
        }
    }
    let takes = |t: &str| {
        CONFIG_TABLES
            .iter()
            .any(|(name, keys)| *name == t && keys.contains(&key.as_str()))
    };
    let places: Vec<usize> = places
        .into_iter()
        .filter(|(_, t)| takes(t))
        .map(|(at, _)| at)
        .collect();
    let Some(&at) = places.get(rng.below(places.len())) else {
        lines.insert(rng.below(lines.len() + 1), line.to_string());
        return;
    };
    // The line of `key` in the table starting at `at`, if any.
    let end = (at..lines.len())
        .find(|&i| lines[i].trim_start().starts_with('['))
        .unwrap_or(lines.len());
    match (at..end).find(|&i| key_of(&lines[i]) == key) {
        Some(i) => lines[i] = line.to_string(),
        None => lines.insert(at, line.to_string()),
    }
}

/// Mostly keys set in tables that take them, plus line edits (replace, delete, duplicate,
/// swap), byte-level mutations and deep nesting.
fn generate_config(rng: &mut Rng, corpus: &[Vec<u8>]) -> String {
    let seed: &Vec<u8> = rng.pick(corpus);
    let seed = String::from_utf8_lossy(seed).into_owned();
    let mut lines: Vec<String> = seed.lines().map(str::to_string).collect();
    for _ in 0..1 + rng.below(3) {
        let at = rng.below(lines.len() + 1);
        match rng.below(40) {
            0 if at < lines.len() => lines[at] = rng.pick(&CONFIG_LINES).to_string(),
            1 if at < lines.len() => {
                lines.remove(at);
            }
            2 if at < lines.len() => {
                let line = lines[at].clone();
                lines.insert(rng.below(lines.len() + 1), line);
            }
            3 if lines.len() > 1 => {
                let (a, b) = (at.min(lines.len() - 1), rng.below(lines.len()));
                lines.swap(a, b);
            }
            4..=8 => {
                let text = lines.join("\n");
                let bytes = harness::mutate(rng, text.as_bytes(), corpus, 16_384);
                lines = String::from_utf8_lossy(&bytes)
                    .lines()
                    .map(str::to_string)
                    .collect();
            }
            9 => {
                let depth = *rng.pick(&[50, 200, 5000]);
                let line = format!("x = {}1{}", "[".repeat(depth), "]".repeat(depth));
                lines.insert(at, line);
            }
            _ => set_key(rng, &mut lines),
        }
    }
    lines.join("\n")
}

/// The `config` target's checks on one configuration file (also the AFL target `config`).
pub fn check_config(text: &str) {
    match Config::parse(text, "fuzz.toml") {
        Ok(config) => {
            let written = config.to_toml();
            let back = Config::parse(&written, "fuzz.toml")
                .unwrap_or_else(|e| panic!("to_toml output refused: {e}\n{written}"));
            assert_eq!(
                back, config,
                "round trip changed the configuration:\n{written}"
            );
            assert_eq!(back.to_toml(), written);
            let _ = config.routing();
        }
        Err(e) => {
            let message = e.to_string();
            assert!(message.starts_with("fuzz.toml: "), "{message}");
            if let ConfigError::Invalid { problems, .. } = &e {
                assert!(!problems.is_empty());
                for p in problems {
                    assert!(message.contains(&format!("  fuzz.toml: {p}")), "{message}");
                }
            }
        }
    }
}

#[test]
fn fuzz_config() {
    let corpus = harness::corpus(&corpus_dir("config"), config_seeds());
    let texts: Vec<String> = corpus
        .iter()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect();
    let generate = |rng: &mut Rng, _: &[String]| generate_config(rng, &corpus);
    let check = |text: &String| check_config(text);
    harness::run("config", CONFIG_CASES, &texts, generate, check);
}

/// Rewrites `fuzz/corpus/{ipv4,offload,storage,control,config}/` from the built-in seeds.
#[test]
#[ignore = "writes the seed corpora; run with --ignored when the seeds change"]
fn write_corpus() {
    harness::write_corpus(&corpus_dir("ipv4"), "bin", &ipv4_seeds());
    harness::write_corpus(&corpus_dir("offload"), "bin", &offload_seeds());
    harness::write_corpus(&corpus_dir("storage"), "bin", &storage_seeds());
    let control = control_seeds();
    let named: Vec<(&str, Vec<u8>)> = control.iter().map(|(n, b)| (&n[..], b.clone())).collect();
    harness::write_corpus(&corpus_dir("control"), "json", &named);
    harness::write_corpus(&corpus_dir("config"), "toml", &config_seeds());
}
/// The fuzz loop, shared by every crate's fuzz tests (`fuzz/harness.rs`).
#[allow(dead_code)] // Not every target uses every helper.
#[path = "../../fuzz/harness.rs"]
mod harness;
