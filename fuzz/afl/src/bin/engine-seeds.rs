//! Writes the `engine` target's seed corpus (`fuzz/corpus/engine/`) from the `arp`, `ipv4`
//! and `offload` corpora: each frame alone on vmk0 (offloads off; `offload` inputs with
//! offloads on), and each `ipv4` frame after an ARP request on vmk1 from their destination, so that
//! forwarded packets reach the egress path instead of the neighbour queue. The hand-made
//! `ipv6-*` seeds beside them (echo, Neighbour Solicitation, forwarding after a Neighbour
//! Advertisement, hop limit 1, no route, too big for vmk1) are left in place.
//!
//! Run: `cargo run --release --bin engine-seeds` in `fuzz/afl/` (no AFL runtime needed).

use std::fs;
use std::path::{Path, PathBuf};

use std::net::Ipv4Addr;

use vmkstack_afl::engine::ADDRS;
use vmkstack_vmknic::{ArpOp, ArpRepr, MacAddr, ARP_FRAME_LEN, VNET_HDR_LEN};

fn corpus(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../corpus")
        .join(target)
}

/// The files of `fuzz/corpus/<target>/`, sorted by name.
fn read(target: &str) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = fs::read_dir(corpus(target))
        .unwrap_or_else(|e| panic!("fuzz/corpus/{target}: {e}"))
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            fs::read(e.path()).ok().map(|b| (name, b))
        })
        .collect();
    files.sort();
    files
}

/// One record: port byte (slot, no time step), length, bytes.
fn record(slot: u8, hdr_and_frame: &[u8]) -> Vec<u8> {
    let mut r = vec![slot];
    r.extend_from_slice(&(hdr_and_frame.len() as u16).to_be_bytes());
    r.extend_from_slice(hdr_and_frame);
    r
}

fn with_hdr(frame: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; VNET_HDR_LEN];
    b.extend_from_slice(frame);
    b
}

fn main() {
    let out = corpus("engine");
    fs::create_dir_all(&out).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
    // Its own files start with their number; the others (the `ipv6-*` seeds, crashes kept)
    // stay.
    for e in fs::read_dir(&out).into_iter().flatten().flatten() {
        if e.file_name()
            .to_string_lossy()
            .starts_with(|c: char| c.is_ascii_digit())
        {
            let _ = fs::remove_file(e.path());
        }
    }
    let peer_mac = MacAddr([0x02, 0xaa, 0, 0, 0, 1]);
    let ask = ArpRepr {
        operation: ArpOp::Request,
        source_mac: peer_mac,
        // The destination of the `ipv4` corpus's frames, on vmk1's subnet.
        source_ip: Ipv4Addr::new(198, 19, 0, 2),
        target_mac: MacAddr([0; 6]),
        target_ip: ADDRS[1],
    };
    let mut arp = vec![0u8; ARP_FRAME_LEN];
    ask.emit_frame(&mut arp, MacAddr::BROADCAST, peer_mac);
    let learn = record(1, &with_hdr(&arp));
    let mut n = 0;
    let mut write = |name: &str, bytes: Vec<u8>| {
        let path = out.join(format!("{n:03}-{name}"));
        fs::write(&path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        n += 1;
    };
    for (name, frame) in read("arp") {
        write(
            &format!("arp-{name}"),
            [vec![0], record(0, &with_hdr(&frame))].concat(),
        );
    }
    for (name, frame) in read("ipv4") {
        let rec = record(0, &with_hdr(&frame));
        write(&format!("ipv4-{name}"), [vec![0], rec.clone()].concat());
        write(
            &format!("ipv4-learned-{name}"),
            [vec![0], learn.clone(), rec].concat(),
        );
    }
    for (name, hdr_and_packet) in read("offload") {
        // `offload` inputs are a virtio-net header and an IPv4 packet: give them a frame.
        let (hdr, packet) = hdr_and_packet.split_at(VNET_HDR_LEN.min(hdr_and_packet.len()));
        let mut b = hdr.to_vec();
        b.extend_from_slice(&[0x02, 0x50, 0x56, 0x00, 0x00, 0x01]); // vmk0 (engine::MACS[0])
        b.extend_from_slice(&[0x02, 0xcc, 0, 0, 0, 2]);
        b.extend_from_slice(&[0x08, 0x00]);
        b.extend_from_slice(packet);
        write(
            &format!("offload-{name}"),
            [vec![1], learn.clone(), record(0, &b)].concat(),
        );
    }
    println!("{n} seeds in {}", out.display());
}
