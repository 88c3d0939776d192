//! A lab for the engine's unit tests and the applications': an engine on two in-memory ports
//! with a fake clock, two vmknics (198.18.0.1/24 on vmk0, 198.18.1.1/24 on vmk1, the default
//! gateway 198.18.1.254 behind vmk1), and builders for the frames hosts send.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{IpProtocol, Ipv4Packet, Ipv4Repr};
use vmkstack_vmknic::arp::{ArpOp, ArpRepr, ARP_FRAME_LEN};
use vmkstack_vmknic::eth::{write_header, ETHERTYPE_IPV4, ETH_HDR};
use vmkstack_vmknic::{MacAddr, MemPort};

use super::{DropReason, Engine};
use crate::config::Config;

pub(crate) const VMK0_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
pub(crate) const VMK1_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 1);
pub(crate) const VMK0_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x10]);
pub(crate) const VMK1_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x11]);
/// A host on vmk0's wire.
pub(crate) const HOST0: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
pub(crate) const HOST0_MAC: MacAddr = MacAddr([0x02, 0xaa, 0, 0, 0, 2]);
/// A host on vmk1's wire.
pub(crate) const HOST1: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);
pub(crate) const HOST1_MAC: MacAddr = MacAddr([0x02, 0xbb, 0, 0, 0, 2]);
/// The default gateway, on vmk1's wire.
pub(crate) const GATEWAY: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 254);
pub(crate) const GATEWAY_MAC: MacAddr = MacAddr([0x02, 0xbb, 0, 0, 0, 0xfe]);
/// Beyond the default gateway.
pub(crate) const REMOTE: Ipv4Addr = Ipv4Addr::new(198, 19, 5, 5);

/// Two vmknics, forwarding on, the default gateway on vmk1's subnet unless `extra` says
/// otherwise.
pub(crate) fn config(gateway: bool, offloads: bool, vmk1_mtu: u16, extra: &str) -> Config {
    let gw = if gateway {
        format!("default_gateway = \"{GATEWAY}\"")
    } else {
        String::new()
    };
    let text = format!(
        r#"
forwarding = true
offloads = {offloads}
{gw}
{extra}

[[vmknic]]
name = "vmk0"
portgroup = "A"
ip = "{VMK0_IP}/24"
mac = "{VMK0_MAC}"

[[vmknic]]
name = "vmk1"
portgroup = "B"
ip = "{VMK1_IP}/24"
mac = "{VMK1_MAC}"
mtu = {vmk1_mtu}
"#
    );
    match Config::parse(&text, "test.toml") {
        Ok(c) => c,
        Err(e) => panic!("test configuration: {e}"),
    }
}

/// An engine on two in-memory ports and a fake clock.
pub(crate) struct Lab {
    /// The engine under test.
    pub(crate) engine: Engine<MemPort>,
    /// The fake clock.
    pub(crate) now: Instant,
}

impl Lab {
    pub(crate) fn new(cfg: &Config, offload: [bool; 2]) -> Lab {
        let now = Instant::now();
        let ports = offload.map(MemPort::new);
        let (engine, _) = Engine::new(cfg, ports, now);
        let mut lab = Lab { engine, now };
        // The gratuitous ARPs of start-up.
        for i in 0..2 {
            assert_eq!(lab.sent(i).len(), 1, "one gratuitous ARP on vmk{i}");
        }
        lab
    }

    /// The usual lab: offloads off, the gateway on vmk1, MTU 1500.
    pub(crate) fn plain() -> Lab {
        Lab::new(&config(true, false, 1500, ""), [false, false])
    }

    pub(crate) fn port(&mut self, i: usize) -> &mut MemPort {
        match self.engine.port_mut(i) {
            Some(p) => p,
            None => panic!("no port {i}"),
        }
    }

    /// Queues a frame on vmknic `i`'s wire and runs one turn.
    pub(crate) fn receive(&mut self, i: usize, frame: &[u8]) {
        self.port(i).inject(frame);
        self.turn();
    }

    pub(crate) fn turn(&mut self) {
        self.engine.set_readable(0);
        self.engine.set_readable(1);
        self.engine.turn(self.now);
    }

    /// Moves the fake clock and runs a turn.
    pub(crate) fn advance(&mut self, d: Duration) {
        self.now += d;
        self.turn();
    }

    /// The frames sent on vmknic `i` since the last call.
    pub(crate) fn sent(&mut self, i: usize) -> Vec<Vec<u8>> {
        std::iter::from_fn(|| self.port(i).take_frame()).collect()
    }

    pub(crate) fn drops(&self, i: usize, reason: DropReason) -> u64 {
        self.engine.vmknics()[i].counters.drops(reason)
    }

    pub(crate) fn total_drops(&self, i: usize) -> u64 {
        self.engine.vmknics()[i].counters.total_drops()
    }

    /// Teaches the engine a neighbour: an ARP request from it for our address on vmknic `i`
    /// (answered; the reply is discarded).
    pub(crate) fn learn(&mut self, i: usize, ip: Ipv4Addr, mac: MacAddr) {
        let ours = [VMK0_IP, VMK1_IP][i];
        self.receive(i, &arp(ArpOp::Request, mac, ip, MacAddr([0; 6]), ours));
        assert_eq!(self.sent(i).len(), 1, "ARP reply");
    }
}

pub(crate) fn arp(
    op: ArpOp,
    smac: MacAddr,
    sip: Ipv4Addr,
    tmac: MacAddr,
    tip: Ipv4Addr,
) -> Vec<u8> {
    let repr = ArpRepr {
        operation: op,
        source_mac: smac,
        source_ip: sip,
        target_mac: tmac,
        target_ip: tip,
    };
    let mut f = vec![0; ARP_FRAME_LEN];
    let dst = if op == ArpOp::Request {
        MacAddr::BROADCAST
    } else {
        tmac
    };
    assert_eq!(repr.emit_frame(&mut f, dst, smac), ARP_FRAME_LEN);
    f
}

/// An IPv4 datagram with a valid header checksum; `payload` follows the header.
pub(crate) fn ipv4(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: IpProtocol,
    ttl: u8,
    df: bool,
    payload: &[u8],
) -> Vec<u8> {
    let repr = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: proto,
        payload_len: payload.len(),
        hop_limit: ttl,
    };
    let mut buf = vec![0; 20 + payload.len()];
    let mut p = Ipv4Packet::new_unchecked(&mut buf);
    repr.emit(&mut p, &ChecksumCapabilities::default());
    p.set_ident(0x1234);
    p.set_dont_frag(df);
    p.payload_mut().copy_from_slice(payload);
    p.fill_checksum();
    buf
}

/// A UDP datagram (checksum 0, "none") with `len` bytes of counting payload.
pub(crate) fn udp(src: Ipv4Addr, dst: Ipv4Addr, ttl: u8, df: bool, len: usize) -> Vec<u8> {
    let mut u = vec![0; 8 + len];
    u[0..2].copy_from_slice(&40000u16.to_be_bytes());
    u[2..4].copy_from_slice(&5001u16.to_be_bytes());
    u[4..6].copy_from_slice(&((8 + len) as u16).to_be_bytes());
    for (k, b) in u[8..].iter_mut().enumerate() {
        *b = k as u8;
    }
    ipv4(src, dst, IpProtocol::Udp, ttl, df, &u)
}

pub(crate) fn eth(dst: MacAddr, src: MacAddr, ip: &[u8]) -> Vec<u8> {
    let mut f = vec![0; ETH_HDR + ip.len()];
    write_header(&mut f, dst, src, ETHERTYPE_IPV4);
    f[ETH_HDR..].copy_from_slice(ip);
    f
}

/// The IP datagram of an Ethernet frame, checked to be IPv4 with a valid header checksum.
pub(crate) fn ip_of(frame: &[u8]) -> Ipv4Packet<&[u8]> {
    assert_eq!(
        &frame[12..14],
        &ETHERTYPE_IPV4.to_be_bytes(),
        "an IPv4 frame"
    );
    let p = match Ipv4Packet::new_checked(&frame[ETH_HDR..]) {
        Ok(p) => p,
        Err(e) => panic!("bad IPv4 packet: {e}"),
    };
    assert!(p.verify_checksum(), "IPv4 header checksum");
    p
}

/// Checks an ICMP error frame sent to HOST0 from `from` and returns (type, code, bytes 4..8
/// of the ICMP header, the quoted datagram).
pub(crate) fn icmp_error(frame: &[u8], from: Ipv4Addr) -> (u8, u8, [u8; 4], Vec<u8>) {
    assert_eq!(&frame[..6], &HOST0_MAC.0, "to the sender's MAC");
    assert_eq!(&frame[6..12], &VMK0_MAC.0, "from vmk0");
    let ip = ip_of(frame);
    assert_eq!(ip.src_addr(), from);
    assert_eq!(ip.dst_addr(), HOST0);
    assert_eq!(ip.next_header(), IpProtocol::Icmp);
    let icmp = ip.payload();
    assert_eq!(smoltcp::wire::checksum::data(icmp), 0xffff, "ICMP checksum");
    let rest = [icmp[4], icmp[5], icmp[6], icmp[7]];
    (icmp[0], icmp[1], rest, icmp[8..].to_vec())
}

/// The one's complement TCP checksum of `tcp` with its pseudo-header (0 when valid).
pub(crate) fn tcp_checksum(src: Ipv4Addr, dst: Ipv4Addr, tcp: &[u8]) -> u16 {
    !pseudo_sum(src, dst, tcp.len(), tcp)
}

/// The pseudo-header sum plus `data`, folded, not complemented.
pub(crate) fn pseudo_sum(src: Ipv4Addr, dst: Ipv4Addr, len: usize, data: &[u8]) -> u16 {
    let mut pseudo = Vec::with_capacity(12 + data.len());
    pseudo.extend_from_slice(&src.octets());
    pseudo.extend_from_slice(&dst.octets());
    pseudo.extend_from_slice(&[0, 6]);
    pseudo.extend_from_slice(&(len as u16).to_be_bytes());
    pseudo.extend_from_slice(data);
    smoltcp::wire::checksum::data(&pseudo)
}

/// The super-frames `engine` sent from smoltcp's socket buffer with a gathering write, and the
/// segments they carried (`stats --runtime`'s `endpoint-gather` row).
pub(crate) fn gathered(engine: &Engine<MemPort>) -> (u64, u64) {
    let (_, s) = engine
        .runtime()
        .stages()
        .find(|(s, _)| *s == super::runtime::Stage::Gather)
        .unwrap_or_else(|| panic!("no gather row"));
    (s.calls, s.packets)
}
