//! The engine's stages on in-memory ports, byte-exact, no root: forwarding (TTL and checksum,
//! MAC rewrite), ICMP errors, the ARP queue and its timeout on a fake clock, fragmentation,
//! martians, ARP rules, local delivery into smoltcp, and super-frames, each drop counted by
//! its reason.

use std::net::Ipv4Addr;
use std::time::Duration;

use smoltcp::wire::{IpProtocol, Ipv4Packet};
use vmkstack_vmknic::arp::{ArpOp, ArpRepr};
use vmkstack_vmknic::eth::{ETHERTYPE_ARP, ETH_HDR};
use vmkstack_vmknic::{MacAddr, VnetHdr, VNET_HDR_LEN};

use super::testlab::*;
use super::DropReason;
use vmkstack_routing::VmknicId;
use vmkstack_vmknic::eth::ETHERTYPE_IPV4;

#[test]
fn test_forward_rewrites_ttl_checksum_and_macs() {
    let mut lab = Lab::plain();
    lab.learn(1, HOST1, HOST1_MAC);
    let pkt = udp(HOST0, HOST1, 64, true, 100);
    lab.receive(0, &eth(VMK0_MAC, HOST0_MAC, &pkt));

    // Byte-exact: only the MACs, the TTL and the header checksum change.
    let mut want = eth(HOST1_MAC, VMK1_MAC, &pkt);
    want[ETH_HDR + 8] = 63;
    let mut p = Ipv4Packet::new_unchecked(&mut want[ETH_HDR..]);
    p.fill_checksum();
    assert_eq!(lab.sent(1), vec![want]);
    assert!(lab.sent(0).is_empty());
    let c = &lab.engine.vmknics()[1].counters;
    assert_eq!(
        (c.forwarded, c.tx_packets),
        (1, 3),
        "gratuitous ARP, ARP reply, the frame"
    );
    assert_eq!(lab.engine.vmknics()[0].counters.rx_packets, 1);
    assert_eq!(lab.total_drops(0) + lab.total_drops(1), 0);
}

#[test]
fn test_forward_ethernet_padding_is_cut() {
    let mut lab = Lab::plain();
    lab.learn(1, HOST1, HOST1_MAC);
    // A short datagram padded to Ethernet's 60-byte minimum leaves without the padding.
    let pkt = udp(HOST0, HOST1, 64, false, 4);
    let mut frame = eth(VMK0_MAC, HOST0_MAC, &pkt);
    frame.resize(60, 0xee);
    lab.receive(0, &frame);
    let sent = lab.sent(1);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].len(), ETH_HDR + pkt.len());
}

#[test]
fn test_time_exceeded() {
    let mut lab = Lab::plain();
    lab.learn(0, HOST0, HOST0_MAC);
    lab.learn(1, HOST1, HOST1_MAC);
    let pkt = udp(HOST0, HOST1, 1, false, 100);
    lab.receive(0, &eth(VMK0_MAC, HOST0_MAC, &pkt));
    assert!(lab.sent(1).is_empty(), "not forwarded");
    let sent = lab.sent(0);
    assert_eq!(sent.len(), 1);
    let (ty, code, _, quoted) = icmp_error(&sent[0], VMK0_IP);
    assert_eq!((ty, code), (11, 0), "Time Exceeded in transit");
    // RFC 1812 4.3.2.3: the IP header and at least 8 bytes of the datagram, as received.
    assert!(quoted.len() >= 28 && pkt.starts_with(&quoted[..28]));
    assert_eq!(lab.drops(0, DropReason::TtlExceeded), 1);
    assert_eq!(lab.engine.vmknics()[0].counters.icmp_errors, 1);
}

#[test]
fn test_net_unreachable_without_a_route() {
    let mut lab = Lab::new(&config(false, false, 1500, ""), [false, false]);
    lab.learn(0, HOST0, HOST0_MAC);
    lab.receive(
        0,
        &eth(VMK0_MAC, HOST0_MAC, &udp(HOST0, REMOTE, 64, false, 10)),
    );
    let sent = lab.sent(0);
    assert_eq!(sent.len(), 1);
    let (ty, code, _, _) = icmp_error(&sent[0], VMK0_IP);
    assert_eq!((ty, code), (3, 0), "Net Unreachable");
    assert_eq!(lab.drops(0, DropReason::NoRoute), 1);
    assert!(lab.sent(1).is_empty());
}

#[test]
fn test_arp_queue_sends_the_first_packet_once_resolved() {
    let mut lab = Lab::plain();
    let pkt = udp(HOST0, REMOTE, 64, false, 50);
    lab.receive(0, &eth(VMK0_MAC, HOST0_MAC, &pkt));
    // The gateway is unknown: an ARP request goes out, the packet waits.
    let sent = lab.sent(1);
    assert_eq!(sent.len(), 1);
    assert_eq!(&sent[0][12..14], &ETHERTYPE_ARP.to_be_bytes());
    let req = ArpRepr::parse(&sent[0][ETH_HDR..]).ok();
    assert_eq!(
        req.map(|r| (r.operation, r.source_ip, r.target_ip)),
        Some((ArpOp::Request, VMK1_IP, GATEWAY))
    );
    // The reply releases it, rewritten for the gateway.
    lab.receive(
        1,
        &arp(ArpOp::Reply, GATEWAY_MAC, GATEWAY, VMK1_MAC, VMK1_IP),
    );
    let sent = lab.sent(1);
    assert_eq!(sent.len(), 1, "the queued packet");
    assert_eq!(&sent[0][..6], &GATEWAY_MAC.0);
    assert_eq!(ip_of(&sent[0]).hop_limit(), 63);
    assert_eq!(ip_of(&sent[0]).dst_addr(), REMOTE);
    assert_eq!(lab.engine.vmknics()[1].counters.forwarded, 1);
}

#[test]
fn test_host_unreachable_after_arp_gives_up() {
    let mut lab = Lab::plain();
    lab.learn(0, HOST0, HOST0_MAC);
    let silent = Ipv4Addr::new(198, 18, 1, 77);
    lab.receive(
        0,
        &eth(VMK0_MAC, HOST0_MAC, &udp(HOST0, silent, 64, false, 10)),
    );
    assert_eq!(lab.sent(1).len(), 1, "first ARP request");
    // Retries at 0.5 s and 1.5 s; the neighbour fails at 3.5 s (NeighborConfig's default).
    lab.advance(Duration::from_millis(600));
    assert_eq!(lab.sent(1).len(), 1, "first retry");
    lab.advance(Duration::from_millis(1000));
    assert_eq!(lab.sent(1).len(), 1, "second retry");
    assert!(lab.sent(0).is_empty(), "no error yet");
    lab.advance(Duration::from_millis(2000));
    let sent = lab.sent(0);
    assert_eq!(sent.len(), 1);
    let (ty, code, _, _) = icmp_error(&sent[0], VMK0_IP);
    assert_eq!((ty, code), (3, 1), "Host Unreachable");
    assert_eq!(lab.drops(1, DropReason::NeighborUnreachable), 1);
    assert!(lab.sent(1).is_empty(), "nothing forwarded");
}

#[test]
fn test_fragmentation_needed_with_df() {
    let mut lab = Lab::new(&config(true, false, 1400, ""), [false, false]);
    lab.learn(0, HOST0, HOST0_MAC);
    lab.learn(1, HOST1, HOST1_MAC);
    lab.receive(
        0,
        &eth(VMK0_MAC, HOST0_MAC, &udp(HOST0, HOST1, 64, true, 1472)),
    );
    let sent = lab.sent(0);
    assert_eq!(sent.len(), 1);
    let (ty, code, rest, _) = icmp_error(&sent[0], VMK0_IP);
    assert_eq!((ty, code), (3, 4), "Fragmentation Needed");
    assert_eq!(
        u16::from_be_bytes([rest[2], rest[3]]),
        1400,
        "next-hop MTU (RFC 1191)"
    );
    assert_eq!(lab.drops(0, DropReason::TooBig), 1);
    assert!(lab.sent(1).is_empty());
}

#[test]
fn test_fragmentation_without_df() {
    let mut lab = Lab::new(&config(true, false, 1400, ""), [false, false]);
    lab.learn(1, HOST1, HOST1_MAC);
    let pkt = udp(HOST0, HOST1, 64, false, 1472);
    lab.receive(0, &eth(VMK0_MAC, HOST0_MAC, &pkt));
    let sent = lab.sent(1);
    assert_eq!(sent.len(), 2, "two fragments");
    let mut payload = Vec::new();
    for (k, f) in sent.iter().enumerate() {
        let ip = ip_of(f);
        assert!(usize::from(ip.total_len()) <= 1400);
        assert_eq!(ip.hop_limit(), 63);
        assert_eq!(ip.more_frags(), k == 0);
        assert_eq!(usize::from(ip.frag_offset()), payload.len());
        payload.extend_from_slice(ip.payload());
    }
    assert_eq!(payload, pkt[20..], "the datagram, reassembled");
    assert_eq!(lab.engine.vmknics()[1].counters.forwarded, 1);
}

#[test]
fn test_martians_are_dropped_and_counted() {
    let mut lab = Lab::plain();
    lab.learn(0, HOST0, HOST0_MAC);
    lab.learn(1, HOST1, HOST1_MAC);
    let cases = [
        (
            Ipv4Addr::new(127, 0, 0, 1),
            HOST1,
            VMK0_MAC,
            "loopback source",
        ),
        (VMK1_IP, HOST1, VMK0_MAC, "our own address as source"),
        (
            Ipv4Addr::new(198, 18, 0, 255),
            HOST1,
            VMK0_MAC,
            "directed broadcast source",
        ),
        (
            HOST0,
            Ipv4Addr::new(198, 18, 1, 255),
            VMK0_MAC,
            "directed broadcast destination",
        ),
        (
            HOST0,
            Ipv4Addr::new(224, 0, 0, 5),
            VMK0_MAC,
            "multicast destination",
        ),
        (
            HOST0,
            Ipv4Addr::new(0, 1, 2, 3),
            VMK0_MAC,
            "0/8 destination",
        ),
        (
            HOST0,
            HOST1,
            MacAddr::BROADCAST,
            "unicast IP in a link-layer broadcast",
        ),
    ];
    for (n, (src, dst, l2, what)) in cases.into_iter().enumerate() {
        lab.receive(0, &eth(l2, HOST0_MAC, &udp(src, dst, 64, false, 10)));
        assert_eq!(lab.drops(0, DropReason::Martian), n as u64 + 1, "{what}");
        assert!(
            lab.sent(0).is_empty() && lab.sent(1).is_empty(),
            "{what}: nothing sent"
        );
    }
    assert_eq!(lab.engine.vmknics()[1].counters.forwarded, 0);
}

#[test]
fn test_malformed_and_refused_packets_are_counted() {
    let mut lab = Lab::plain();
    lab.learn(1, HOST1, HOST1_MAC);
    let good = udp(HOST0, HOST1, 64, false, 10);
    let mut bad_sum = good.clone();
    bad_sum[10] ^= 0xff;
    lab.receive(0, &eth(VMK0_MAC, HOST0_MAC, &bad_sum));
    assert_eq!(lab.drops(0, DropReason::BadChecksum), 1);
    lab.receive(0, &eth(VMK0_MAC, HOST0_MAC, &good[..15]));
    assert_eq!(lab.drops(0, DropReason::Truncated), 1);
    let mut not_for_us = eth(VMK0_MAC, HOST0_MAC, &good);
    not_for_us[..6].copy_from_slice(&HOST1_MAC.0);
    lab.receive(0, &not_for_us);
    assert_eq!(lab.drops(0, DropReason::NotForUs), 1);
    let mut ipv6 = eth(VMK0_MAC, HOST0_MAC, &good);
    ipv6[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
    lab.receive(0, &ipv6);
    assert_eq!(lab.drops(0, DropReason::UnknownEthertype), 1);
    // IP options (a record-route option padded to 4 bytes) are not forwarded.
    let mut opts = good.clone();
    opts.splice(20..20, [7, 3, 4, 0]);
    opts[0] = 0x46;
    let len = opts.len() as u16;
    opts[2..4].copy_from_slice(&len.to_be_bytes());
    Ipv4Packet::new_unchecked(&mut opts[..]).fill_checksum();
    lab.receive(0, &eth(VMK0_MAC, HOST0_MAC, &opts));
    assert_eq!(lab.drops(0, DropReason::IpOptions), 1);
    assert!(lab.sent(1).is_empty(), "none of them forwarded");
}

#[test]
fn test_forwarding_off() {
    let mut cfg = config(true, false, 1500, "");
    cfg.forwarding = false;
    let mut lab = Lab::new(&cfg, [false, false]);
    lab.learn(1, HOST1, HOST1_MAC);
    lab.receive(
        0,
        &eth(VMK0_MAC, HOST0_MAC, &udp(HOST0, HOST1, 64, false, 10)),
    );
    assert_eq!(lab.drops(0, DropReason::ForwardingOff), 1);
    assert!(lab.sent(1).is_empty());
}

#[test]
fn test_arp_answers_only_for_our_addresses_and_learns_on_subnet() {
    let mut lab = Lab::plain();
    // A request for our address: answered, and the asker is learned.
    lab.receive(
        0,
        &arp(ArpOp::Request, HOST0_MAC, HOST0, MacAddr([0; 6]), VMK0_IP),
    );
    let sent = lab.sent(0);
    assert_eq!(sent.len(), 1);
    assert_eq!(&sent[0][..6], &HOST0_MAC.0, "unicast to the asker");
    let reply = ArpRepr::parse(&sent[0][ETH_HDR..]).ok();
    let want = ArpRepr {
        operation: ArpOp::Reply,
        source_mac: VMK0_MAC,
        source_ip: VMK0_IP,
        target_mac: HOST0_MAC,
        target_ip: HOST0,
    };
    assert_eq!(reply, Some(want));
    let now = lab.now;
    let known = |lab: &Lab, ip| lab.engine.neighbors().lookup_on(ip, 0, now);
    assert_eq!(known(&lab, HOST0), Some(HOST0_MAC));

    // A request for another host's address: not answered (never proxy ARP).
    let other = Ipv4Addr::new(198, 18, 0, 3);
    lab.receive(
        0,
        &arp(ArpOp::Request, HOST0_MAC, HOST0, MacAddr([0; 6]), other),
    );
    assert!(lab.sent(0).is_empty());
    assert_eq!(lab.drops(0, DropReason::ArpNotForUs), 1);

    // A sender from another vmknic's subnet is not learned on this wire.
    let stray = Ipv4Addr::new(198, 18, 1, 50);
    lab.receive(
        0,
        &arp(ArpOp::Request, HOST0_MAC, stray, MacAddr([0; 6]), VMK0_IP),
    );
    assert_eq!(lab.sent(0).len(), 1, "answered");
    assert_eq!(known(&lab, stray), None);
    assert!(lab
        .engine
        .neighbors()
        .entries(now)
        .iter()
        .all(|e| e.ip != stray));

    // Malformed ARP.
    let mut bad = arp(ArpOp::Request, HOST0_MAC, HOST0, MacAddr([0; 6]), VMK0_IP);
    bad[ETH_HDR + 4] = 8; // hardware address length
    lab.receive(0, &bad);
    assert_eq!(lab.drops(0, DropReason::BadArp), 1);
}

#[test]
fn test_echo_request_is_answered_by_smoltcp_and_routed_back() {
    let mut lab = Lab::plain();
    lab.learn(0, HOST0, HOST0_MAC);
    let mut icmp = vec![8, 0, 0, 0, 0x12, 0x34, 0, 7];
    icmp.extend_from_slice(b"vmkstack echo");
    let sum = !smoltcp::wire::checksum::data(&icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    let pkt = ipv4(HOST0, VMK0_IP, IpProtocol::Icmp, 64, false, &icmp);
    lab.receive(0, &eth(VMK0_MAC, HOST0_MAC, &pkt));
    let sent = lab.sent(0);
    assert_eq!(sent.len(), 1, "the echo reply");
    assert_eq!(&sent[0][..12], &[HOST0_MAC.0, VMK0_MAC.0].concat()[..]);
    let ip = ip_of(&sent[0]);
    assert_eq!((ip.src_addr(), ip.dst_addr()), (VMK0_IP, HOST0));
    let reply = ip.payload();
    assert_eq!(reply[0], 0, "echo reply");
    assert_eq!(
        &reply[4..],
        &icmp[4..],
        "identifier, sequence and data echoed"
    );
    assert_eq!(smoltcp::wire::checksum::data(reply), 0xffff);
    assert_eq!(lab.engine.vmknics()[0].counters.delivered, 1);
    assert!(lab.sent(1).is_empty());
}

#[test]
fn test_tcp_to_a_closed_port_gets_a_reset_from_the_right_vmknic() {
    let mut lab = Lab::plain();
    lab.learn(1, HOST1, HOST1_MAC);
    // A SYN from HOST1 to vmk0's address arrives on vmk1: the RST leaves by vmk1, the way
    // the routing core sends it, from vmk0's address.
    let mut syn = vec![0u8; 20];
    syn[0..2].copy_from_slice(&40000u16.to_be_bytes());
    syn[2..4].copy_from_slice(&3260u16.to_be_bytes());
    syn[4..8].copy_from_slice(&1000u32.to_be_bytes());
    syn[12] = 5 << 4;
    syn[13] = 0x02; // SYN
    syn[14..16].copy_from_slice(&64240u16.to_be_bytes());
    let sum = tcp_checksum(HOST1, VMK0_IP, &syn);
    syn[16..18].copy_from_slice(&sum.to_be_bytes());
    let pkt = ipv4(HOST1, VMK0_IP, IpProtocol::Tcp, 64, true, &syn);
    lab.receive(1, &eth(VMK1_MAC, HOST1_MAC, &pkt));
    let sent = lab.sent(1);
    assert_eq!(sent.len(), 1, "a reset");
    let ip = ip_of(&sent[0]);
    assert_eq!((ip.src_addr(), ip.dst_addr()), (VMK0_IP, HOST1));
    let tcp = ip.payload();
    assert_eq!(tcp[13] & 0x04, 0x04, "RST");
    assert_eq!(&tcp[8..12], &1001u32.to_be_bytes(), "acknowledges the SYN");
    assert_eq!(tcp_checksum(VMK0_IP, HOST1, tcp), 0, "valid TCP checksum");
}

/// A TCP/IPv4 super-frame of `payload` bytes from HOST0 to HOST1 as an offloading TAP hands
/// it over: a virtio-net header asking for TSO at `mss`, the TCP checksum field holding the
/// pseudo-header sum only.
fn super_frame(payload: usize, mss: u16) -> Vec<u8> {
    let mut tcp = vec![0u8; 20 + payload];
    tcp[0..2].copy_from_slice(&40000u16.to_be_bytes());
    tcp[2..4].copy_from_slice(&5201u16.to_be_bytes());
    tcp[4..8].copy_from_slice(&7777u32.to_be_bytes());
    tcp[12] = 5 << 4;
    tcp[13] = 0x18; // PSH, ACK
    tcp[14..16].copy_from_slice(&512u16.to_be_bytes());
    for (k, b) in tcp[20..].iter_mut().enumerate() {
        *b = (k % 251) as u8;
    }
    let partial = pseudo_sum(HOST0, HOST1, tcp.len(), &[]);
    tcp[16..18].copy_from_slice(&partial.to_be_bytes());
    let ip = ipv4(HOST0, HOST1, IpProtocol::Tcp, 64, true, &tcp);
    let hdr = VnetHdr {
        flags: VnetHdr::NEEDS_CSUM,
        gso_type: VnetHdr::GSO_TCPV4,
        hdr_len: (ETH_HDR + 40) as u16,
        gso_size: mss,
        csum_start: (ETH_HDR + 20) as u16,
        csum_offset: 16,
    };
    let mut out = vec![0; VNET_HDR_LEN];
    hdr.write(&mut out);
    out.extend_from_slice(&eth(VMK0_MAC, HOST0_MAC, &ip));
    out
}

#[test]
fn test_super_frame_forwarded_whole_to_an_offloading_port() {
    let mut lab = Lab::new(&config(true, true, 1500, ""), [true, true]);
    lab.learn(1, HOST1, HOST1_MAC);
    let sf = super_frame(4000, 1448);
    lab.port(0).inject_offloaded(&sf);
    lab.turn();
    let out = lab.port(1).tx.pop_front();
    let Some(out) = out else {
        panic!("nothing forwarded")
    };
    // The header goes as it came; the frame has new MACs and TTL 63.
    assert_eq!(VnetHdr::read(&out), VnetHdr::read(&sf));
    assert_eq!(out.len(), sf.len());
    assert_eq!(
        &out[VNET_HDR_LEN..VNET_HDR_LEN + 12],
        &[HOST1_MAC.0, VMK1_MAC.0].concat()[..]
    );
    assert_eq!(ip_of(&out[VNET_HDR_LEN..]).hop_limit(), 63);
    let c = &lab.engine.vmknics()[1].counters;
    assert_eq!((c.forwarded, c.gso_forwarded, c.gso_segmented), (1, 1, 0));
}

#[test]
fn test_super_frame_segmented_for_a_plain_port() {
    let mut lab = Lab::new(&config(true, true, 1500, ""), [true, false]);
    lab.learn(1, HOST1, HOST1_MAC);
    lab.port(0).inject_offloaded(&super_frame(4000, 1448));
    lab.turn();
    let sent = lab.sent(1);
    assert_eq!(sent.len(), 3, "4000 bytes at 1448 per segment");
    let mut data = Vec::new();
    for f in &sent {
        let ip = ip_of(f);
        assert!(usize::from(ip.total_len()) <= 1500);
        assert_eq!(ip.hop_limit(), 63);
        let tcp = ip.payload();
        assert_eq!(
            tcp_checksum(HOST0, HOST1, tcp),
            0,
            "each segment's checksum is complete"
        );
        let seq = u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]);
        assert_eq!(seq as usize, 7777 + data.len());
        data.extend_from_slice(&tcp[20..]);
    }
    let want: Vec<u8> = (0..4000).map(|k| (k % 251) as u8).collect();
    assert_eq!(data, want, "the payload, in order");
    let c = &lab.engine.vmknics()[1].counters;
    assert_eq!((c.forwarded, c.gso_forwarded, c.gso_segmented), (1, 0, 1));
}

#[test]
fn test_bad_offload_header_is_dropped() {
    let mut lab = Lab::new(&config(true, true, 1500, ""), [true, true]);
    lab.learn(1, HOST1, HOST1_MAC);
    let mut sf = super_frame(4000, 1448);
    sf[1] = 3; // GSO UDP: never enabled
    lab.port(0).inject_offloaded(&sf);
    lab.turn();
    assert_eq!(lab.drops(0, DropReason::BadOffload), 1);
    assert!(lab.sent(1).is_empty());
}

#[test]
fn test_disabled_vmknic_drops_what_it_receives() {
    let mut lab = Lab::plain();
    assert!(lab
        .engine
        .set_vmknic_enabled(vmkstack_routing::VmknicId(0), false));
    lab.receive(
        0,
        &eth(VMK0_MAC, HOST0_MAC, &udp(HOST0, HOST1, 64, false, 10)),
    );
    assert_eq!(lab.drops(0, DropReason::Disabled), 1);
    assert!(lab.sent(1).is_empty());
}

#[test]
fn test_local_addresses_follow_address_changes_and_disabling() {
    let mut lab = Lab::plain();
    lab.learn(0, HOST0, HOST0_MAC);
    let moved = Ipv4Addr::new(198, 18, 0, 9);
    let net = match "198.18.0.9/24".parse::<ipnet::Ipv4Net>() {
        Ok(n) => n,
        Err(e) => panic!("{e}"),
    };
    assert!(lab.engine.set_vmknic_address(VmknicId(0), Some(net)));
    assert!(lab.engine.is_local(moved) && !lab.engine.is_local(VMK0_IP));
    let mut echo = vec![8, 0, 0, 0, 0x12, 0x34, 0, 1];
    let sum = !smoltcp::wire::checksum::data(&echo);
    echo[2..4].copy_from_slice(&sum.to_be_bytes());
    lab.sent(0);
    lab.receive(
        0,
        &eth(
            VMK0_MAC,
            HOST0_MAC,
            &ipv4(HOST0, moved, IpProtocol::Icmp, 64, false, &echo),
        ),
    );
    // The address change forgot vmk0's neighbours: the reply waits for HOST0's ARP answer.
    lab.receive(0, &arp(ArpOp::Reply, HOST0_MAC, HOST0, VMK0_MAC, moved));
    let replies: Vec<Ipv4Addr> = lab
        .sent(0)
        .iter()
        .filter(|f| f[12..14] == ETHERTYPE_IPV4.to_be_bytes())
        .map(|f| ip_of(f).src_addr())
        .collect();
    assert_eq!(replies, vec![moved], "the new address answers");
    // A disabled vmknic's address is no longer ours, nor its subnet's broadcast a martian.
    assert!(lab.engine.set_vmknic_enabled(VmknicId(1), false));
    assert!(!lab.engine.is_local(VMK1_IP));
    assert!(!lab
        .engine
        .is_directed_broadcast(Ipv4Addr::new(198, 18, 1, 255)));
    assert!(lab
        .engine
        .is_directed_broadcast(Ipv4Addr::new(198, 18, 0, 255)));
}

#[test]
fn test_capture_points_and_drop_reasons() {
    use std::sync::Arc;
    use vmkstack_api::capture::{next_record, Point, Record};

    use super::{Capture, CaptureFilter};

    let mut lab = Lab::plain();
    lab.learn(1, HOST1, HOST1_MAC);
    let every = Point::ALL.iter().fold(0, |m, p| m | p.bit());
    let all = Arc::new(Capture::new(
        CaptureFilter {
            points: every,
            ..Default::default()
        },
        1 << 16,
    ));
    let drops = Arc::new(Capture::new(
        CaptureFilter {
            points: Point::Drop.bit(),
            vmknic: Some(0),
            ..Default::default()
        },
        1 << 16,
    ));
    assert!(lab.engine.capture_add(all.clone()));
    assert!(lab.engine.capture_add(drops.clone()));
    let pkt = udp(HOST0, HOST1, 64, true, 100);
    lab.receive(0, &eth(VMK0_MAC, HOST0_MAC, &pkt));
    let mut bad = eth(VMK0_MAC, HOST0_MAC, &pkt);
    bad[ETH_HDR + 10] ^= 0xff;
    lab.receive(0, &bad);
    assert_eq!(lab.drops(0, DropReason::BadChecksum), 1);

    let records = |c: &Capture| {
        let mut raw = Vec::new();
        c.drain_into(&mut raw);
        let (mut r, mut buf, mut out) = (&raw[..], Vec::new(), Vec::new());
        while let Some(rec) = next_record(&mut r, &mut buf).unwrap() {
            if let Record::Packet(m, d) = rec {
                out.push((m.point, m.vmknic, m.peer, m.reason, d.len()));
            }
        }
        out
    };
    let frame = ETH_HDR + pkt.len();
    let bad_checksum = Some(DropReason::BadChecksum.index() as u8);
    assert_eq!(
        records(&all),
        vec![
            (Point::Rx, Some(0), None, None, frame),
            (Point::Forward, Some(0), Some(1), None, frame),
            (Point::Tx, Some(1), None, None, frame),
            (Point::Rx, Some(0), None, None, frame),
            (Point::Drop, Some(0), None, bad_checksum, frame),
        ]
    );
    assert_eq!(
        records(&drops),
        vec![(Point::Drop, Some(0), None, bad_checksum, frame)]
    );
    assert_eq!(all.counts(), (5, 0));
    // A capture whose client left is let go at the next turn; forwarding goes on.
    all.close();
    drops.close();
    lab.receive(0, &eth(VMK0_MAC, HOST0_MAC, &pkt));
    assert_eq!(lab.engine.captures(), 0);
    assert_eq!(lab.sent(1).len(), 2, "both datagrams forwarded");
}

/// A TCP segment HOST0:40000 -> vmk0:3260 with `flags`, `seq`, `ack` and `payload`, window
/// 65535, no options; its checksum complete, or the pseudo-header sum only (`partial`, as a
/// TAP hands over what its kernel built).
fn tcp_to_vmk0(seq: u32, ack: u32, flags: u8, payload: &[u8], partial: bool) -> Vec<u8> {
    tcp_from(40000, seq, ack, flags, payload, partial)
}

/// [`tcp_to_vmk0`] from HOST0's port `sport`.
fn tcp_from(sport: u16, seq: u32, ack: u32, flags: u8, payload: &[u8], partial: bool) -> Vec<u8> {
    let mut tcp = vec![0u8; 20];
    tcp[0..2].copy_from_slice(&sport.to_be_bytes());
    tcp[2..4].copy_from_slice(&3260u16.to_be_bytes());
    tcp[4..8].copy_from_slice(&seq.to_be_bytes());
    tcp[8..12].copy_from_slice(&ack.to_be_bytes());
    tcp[12] = 5 << 4;
    tcp[13] = flags;
    tcp[14..16].copy_from_slice(&65535u16.to_be_bytes());
    tcp.extend_from_slice(payload);
    let sum = if partial {
        pseudo_sum(HOST0, VMK0_IP, tcp.len(), &[])
    } else {
        tcp_checksum(HOST0, VMK0_IP, &tcp)
    };
    tcp[16..18].copy_from_slice(&sum.to_be_bytes());
    ipv4(HOST0, VMK0_IP, IpProtocol::Tcp, 64, false, &tcp)
}

/// A lab with offloads on both ports and a smoltcp socket listening on vmk0:3260 that HOST0
/// has connected to (its SYN at sequence 1000): returns the lab, the socket, the next
/// sequence number HOST0 sends with and the one it acknowledges.
fn local_tcp_lab() -> (Lab, smoltcp::iface::SocketHandle, u32, u32) {
    let mut lab = Lab::new(&config(true, true, 1500, ""), [true, true]);
    lab.learn(0, HOST0, HOST0_MAC);
    let (h, seq, ack) = accept_from(&mut lab, 40000);
    (lab, h, seq, ack)
}

/// A smoltcp socket listening on vmk0:3260 that HOST0 connects to from port `sport`: the
/// socket, the next sequence number HOST0 sends with and the one it acknowledges.
fn accept_from(lab: &mut Lab, sport: u16) -> (smoltcp::iface::SocketHandle, u32, u32) {
    use smoltcp::socket::tcp;
    let mut sock = tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; 65535]),
        tcp::SocketBuffer::new(vec![0; 65535]),
    );
    assert!(sock.listen(3260).is_ok());
    let h = lab.engine.sockets().add(sock);
    let syn = tcp_from(sport, 1000, 0, 0x02, &[], false);
    lab.receive(0, &eth(VMK0_MAC, HOST0_MAC, &syn));
    let sent = lab.sent(0);
    assert_eq!(sent.len(), 1, "a SYN-ACK");
    let ip = ip_of(&sent[0]);
    let t = ip.payload();
    assert_eq!(t[13], 0x12, "SYN, ACK");
    // smoltcp leaves TCP checksums to the engine, which fills them in for what leaves as is.
    assert_eq!(tcp_checksum(VMK0_IP, HOST0, t), 0, "SYN-ACK checksum");
    let isn = u32::from_be_bytes([t[4], t[5], t[6], t[7]]);
    let ack = tcp_from(sport, 1001, isn.wrapping_add(1), 0x10, &[], false);
    lab.receive(0, &eth(VMK0_MAC, HOST0_MAC, &ack));
    let state = lab.engine.sockets().get::<tcp::Socket>(h).state();
    assert_eq!(state, tcp::State::Established);
    (h, 1001, isn.wrapping_add(1))
}

/// Everything the socket received so far.
fn received(lab: &mut Lab, h: smoltcp::iface::SocketHandle) -> Vec<u8> {
    let sock = lab
        .engine
        .sockets()
        .get_mut::<smoltcp::socket::tcp::Socket>(h);
    let mut out = vec![0; 65535];
    let n = sock.recv_slice(&mut out).unwrap_or(0);
    out.truncate(n);
    out
}

#[test]
fn test_local_super_frame_reaches_smoltcp_whole() {
    let (mut lab, h, seq, ack) = local_tcp_lab();
    let data: Vec<u8> = (0..20000u32).map(|k| (k % 251) as u8).collect();
    // A 20,000-byte super-frame (TSO at 1448) with its checksum partial: one packet in.
    let ip = tcp_to_vmk0(seq, ack, 0x18, &data, true);
    let hdr = VnetHdr {
        flags: VnetHdr::NEEDS_CSUM,
        gso_type: VnetHdr::GSO_TCPV4,
        hdr_len: (ETH_HDR + 40) as u16,
        gso_size: 1448,
        csum_start: (ETH_HDR + 20) as u16,
        csum_offset: 16,
    };
    let mut sf = vec![0; VNET_HDR_LEN];
    hdr.write(&mut sf);
    sf.extend_from_slice(&eth(VMK0_MAC, HOST0_MAC, &ip));
    let before = lab.engine.vmknics()[0].counters.delivered;
    lab.port(0).inject_offloaded(&sf);
    lab.turn();
    assert!(received(&mut lab, h) == data, "the 20,000 bytes");
    let c = &lab.engine.vmknics()[0].counters;
    assert_eq!(
        (c.delivered - before, c.gso_segmented),
        (1, 0),
        "whole, not cut"
    );
    assert_eq!(lab.total_drops(0), 0);
}

#[test]
fn test_local_tcp_checksums_are_checked_by_the_engine() {
    let (mut lab, h, seq, ack) = local_tcp_lab();
    // A plain segment (no virtio-net flags) with a wrong checksum is dropped and counted...
    let mut bad = tcp_to_vmk0(seq, ack, 0x18, b"corrupted", false);
    let last = bad.len() - 1;
    bad[last] ^= 0x40;
    lab.receive(0, &eth(VMK0_MAC, HOST0_MAC, &bad));
    assert_eq!(lab.drops(0, DropReason::BadChecksum), 1);
    assert!(received(&mut lab, h).is_empty());
    // ... the same with the right one is taken.
    let good = tcp_to_vmk0(seq, ack, 0x18, b"corrupted", false);
    lab.receive(0, &eth(VMK0_MAC, HOST0_MAC, &good));
    assert_eq!(received(&mut lab, h), b"corrupted");
    // A partial checksum vouches for a segment only when it is the TCP checksum's field.
    let seq = seq + 9;
    let mut elsewhere = tcp_to_vmk0(seq, ack, 0x18, b"not vouched", false);
    let last = elsewhere.len() - 1;
    elsewhere[last] ^= 0x40;
    let hdr = VnetHdr {
        flags: VnetHdr::NEEDS_CSUM,
        gso_type: 0,
        hdr_len: 0,
        gso_size: 0,
        csum_start: (ETH_HDR + 20) as u16,
        csum_offset: 4,
    };
    let mut frame = vec![0; VNET_HDR_LEN];
    hdr.write(&mut frame);
    frame.extend_from_slice(&eth(VMK0_MAC, HOST0_MAC, &elsewhere));
    lab.port(0).inject_offloaded(&frame);
    lab.turn();
    assert_eq!(lab.drops(0, DropReason::BadChecksum), 2);
    assert!(received(&mut lab, h).is_empty());

    // A fragmented segment is put together and checked whole: out of order, it arrives...
    let data: Vec<u8> = (0..3000u32).map(|k| (k * 7 % 253) as u8).collect();
    let whole = tcp_to_vmk0(seq, ack, 0x18, &data, false);
    let mut frags = Vec::new();
    let mut scratch = vec![0; 1500];
    assert!(
        crate::packet::fragment(&whole, 1000, &mut scratch, |f| frags.push(f.to_vec())).is_ok()
    );
    assert_eq!(frags.len(), 4);
    for f in frags.iter().rev() {
        lab.receive(0, &eth(VMK0_MAC, HOST0_MAC, f));
    }
    assert!(received(&mut lab, h) == data, "the 3,000 bytes");
    // ... and with a byte changed in a middle fragment it is dropped once whole.
    let seq = seq + 3000;
    let whole = tcp_to_vmk0(seq, ack, 0x18, &data, false);
    frags.clear();
    assert!(
        crate::packet::fragment(&whole, 1000, &mut scratch, |f| frags.push(f.to_vec())).is_ok()
    );
    let mid = &mut frags[1];
    let at = mid.len() - 5;
    mid[at] ^= 1;
    // (Its IP header checksum stays right: only the TCP checksum can tell.)
    for f in &frags {
        lab.receive(0, &eth(VMK0_MAC, HOST0_MAC, f));
    }
    assert_eq!(lab.drops(0, DropReason::BadChecksum), 3);
    assert!(received(&mut lab, h).is_empty());
}

#[test]
fn test_local_tcp_leaves_merged_or_with_its_checksum() {
    let (mut lab, h, _, _) = local_tcp_lab();
    let sock = lab
        .engine
        .sockets()
        .get_mut::<smoltcp::socket::tcp::Socket>(h);
    // HOST0 sent no MSS option: smoltcp uses 536-byte segments, and its first congestion
    // window takes three. They leave merged into one super-frame for the offloading port;
    // 100 bytes later are one segment.
    let data: Vec<u8> = (0..1608u32).map(|k| k as u8).collect();
    assert_eq!(sock.send_slice(&data), Ok(1608));
    lab.engine.poll_local();
    let out = lab.port(0).tx.pop_front();
    let Some(out) = out else {
        panic!("nothing sent")
    };
    let hdr = VnetHdr::read(&out);
    assert_eq!((hdr.gso_type, hdr.gso_size), (VnetHdr::GSO_TCPV4, 536));
    let ip = ip_of(&out[VNET_HDR_LEN..]);
    let got = &ip.payload()[20..];
    assert!(got == &data[..], "one super-frame: {} bytes", got.len());
    let t = ip.payload();
    let partial = pseudo_sum(VMK0_IP, HOST0, t.len(), &[]);
    assert_eq!(
        &t[16..18],
        &partial.to_be_bytes(),
        "partial: the kernel finishes it"
    );
    lab.sent(0);
    let ack = {
        let t = ip.payload();
        let seq = u32::from_be_bytes([t[4], t[5], t[6], t[7]]);
        tcp_to_vmk0(1001, seq.wrapping_add(1608), 0x10, &[], false)
    };
    lab.receive(0, &eth(VMK0_MAC, HOST0_MAC, &ack));
    lab.sent(0);
    let sock = lab
        .engine
        .sockets()
        .get_mut::<smoltcp::socket::tcp::Socket>(h);
    assert_eq!(sock.send_slice(&data[..100]), Ok(100));
    lab.engine.poll_local();
    let sent = lab.sent(0);
    assert_eq!(sent.len(), 1, "one segment");
    let t = ip_of(&sent[0]).payload().to_vec();
    assert_eq!(&t[20..], &data[..100]);
    assert_eq!(tcp_checksum(VMK0_IP, HOST0, &t), 0, "checksum filled in");
}

#[test]
fn test_local_tcp_connections_each_leave_merged() {
    let (mut lab, a, _, _) = local_tcp_lab();
    let (b, _, _) = accept_from(&mut lab, 40001);
    lab.sent(0);
    // Both send three segments' worth: smoltcp emits them in turn (a, b, a, b, ...), and each
    // connection's still leave as one super-frame.
    let data: Vec<u8> = (0..1608u32).map(|k| (k * 3) as u8).collect();
    for h in [a, b] {
        let sock = lab
            .engine
            .sockets()
            .get_mut::<smoltcp::socket::tcp::Socket>(h);
        assert_eq!(sock.send_slice(&data), Ok(1608));
    }
    lab.engine.poll_local();
    let mut ports = Vec::new();
    while let Some(out) = lab.port(0).tx.pop_front() {
        let hdr = VnetHdr::read(&out);
        assert_eq!((hdr.gso_type, hdr.gso_size), (VnetHdr::GSO_TCPV4, 536));
        let ip = ip_of(&out[VNET_HDR_LEN..]);
        let t = ip.payload();
        assert!(t[20..] == data[..], "{} bytes", t.len() - 20);
        ports.push(u16::from_be_bytes([t[2], t[3]]));
    }
    ports.sort_unstable();
    assert_eq!(ports, vec![40000, 40001], "one super-frame per connection");
}

/// A lab whose vmk0 port offloads or not (`offload`), offloads on in the configuration, and a
/// smoltcp socket listening on vmk0:3260 that HOST0 connected to with an MSS of 1460 and
/// window scaling (shift 7, so its 65535 is 8 MiB): the lab, the socket, HOST0's next
/// sequence number and smoltcp's.
fn large_window_lab(offload: bool) -> (Lab, smoltcp::iface::SocketHandle, u32, u32) {
    use smoltcp::socket::tcp;
    let mut lab = Lab::new(&config(true, true, 1500, ""), [offload, offload]);
    lab.learn(0, HOST0, HOST0_MAC);
    let mut sock = tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; 65535]),
        tcp::SocketBuffer::new(vec![0; 256 * 1024]),
    );
    assert!(sock.listen(3260).is_ok());
    let h = lab.engine.sockets().add(sock);
    // SYN with MSS 1460, NOP, window scale 7.
    let mut syn = tcp_from(40000, 1000, 0, 0x02, &[], false)[20..].to_vec();
    syn[12] = 7 << 4;
    syn.extend_from_slice(&[2, 4, 0x05, 0xb4, 1, 3, 3, 7]);
    syn[16..18].fill(0);
    let sum = tcp_checksum(HOST0, VMK0_IP, &syn);
    syn[16..18].copy_from_slice(&sum.to_be_bytes());
    let syn = ipv4(HOST0, VMK0_IP, IpProtocol::Tcp, 64, false, &syn);
    lab.receive(0, &eth(VMK0_MAC, HOST0_MAC, &syn));
    let sent = lab.sent(0);
    assert_eq!(sent.len(), 1, "a SYN-ACK");
    let t = ip_of(&sent[0]).payload().to_vec();
    let isn = u32::from_be_bytes([t[4], t[5], t[6], t[7]]);
    let ack = tcp_from(40000, 1001, isn.wrapping_add(1), 0x10, &[], false);
    lab.receive(0, &eth(VMK0_MAC, HOST0_MAC, &ack));
    let state = lab.engine.sockets().get::<tcp::Socket>(h).state();
    assert_eq!(state, tcp::State::Established);
    (lab, h, 1001, isn.wrapping_add(1))
}

/// Sends `data` through the socket, HOST0 acknowledging every frame that leaves vmk0 (one
/// ACK per frame, as a receiver behind GRO does), and returns each frame's virtio-net header
/// (`None` for a port without offloads) and TCP segment (checksum checked when complete),
/// after checking that the bytes arrive whole and in order.
fn send_acked(
    lab: &mut Lab,
    h: smoltcp::iface::SocketHandle,
    data: &[u8],
    (seq, isn): (u32, u32),
) -> Vec<(Option<VnetHdr>, Vec<u8>)> {
    send_acked_raw(lab, h, data, (seq, isn))
        .into_iter()
        .map(|(hdr, t, _)| (hdr, t))
        .collect()
}

/// [`send_acked`], each frame also whole as the port took it (virtio-net header and frame).
fn send_acked_raw(
    lab: &mut Lab,
    h: smoltcp::iface::SocketHandle,
    data: &[u8],
    (seq, isn): (u32, u32),
) -> Vec<(Option<VnetHdr>, Vec<u8>, Vec<u8>)> {
    use smoltcp::socket::tcp;
    let offload = vmkstack_vmknic::Port::offload(lab.port(0));
    let (mut queued, mut got, mut frames) = (0, Vec::new(), Vec::new());
    for _ in 0..1000 {
        if got.len() == data.len() {
            break;
        }
        let sock = lab.engine.sockets().get_mut::<tcp::Socket>(h);
        queued += sock.send_slice(&data[queued..]).unwrap_or(0);
        lab.engine.poll_local();
        let mut acked = None;
        while let Some(out) = lab.port(0).tx.pop_front() {
            let (hdr, frame) = (offload.then(|| VnetHdr::read(&out)), &out[VNET_HDR_LEN..]);
            let t = ip_of(frame).payload().to_vec();
            let at = u32::from_be_bytes([t[4], t[5], t[6], t[7]]).wrapping_sub(isn) as usize;
            let payload = &t[usize::from(t[12] >> 4) * 4..];
            assert_eq!(at, got.len(), "in order, nothing lost");
            if hdr.is_none_or(|h| h.gso_type == 0) {
                assert_eq!(tcp_checksum(VMK0_IP, HOST0, &t), 0, "checksum complete");
            }
            got.extend_from_slice(payload);
            acked = Some(isn.wrapping_add(got.len() as u32));
            frames.push((hdr, t, out));
        }
        if let Some(a) = acked {
            let ack = tcp_from(40000, seq, a, 0x10, &[], false);
            lab.receive(0, &eth(VMK0_MAC, HOST0_MAC, &ack));
        } else {
            lab.advance(Duration::from_millis(10));
        }
    }
    assert!(got == data, "{} of {} bytes", got.len(), data.len());
    frames
}

#[test]
fn test_local_tcp_builds_large_segments_for_an_offloading_port() {
    let (mut lab, h, seq, isn) = large_window_lab(true);
    lab.sent(0);
    let data: Vec<u8> = (0..1_000_000u32).map(|k| (k * 13 % 255) as u8).collect();
    let frames = send_acked(&mut lab, h, &data, (seq, isn));
    // smoltcp built segments beyond the MSS (device TSO); each left whole with the real MSS
    // for the kernel to cut at, its checksum partial.
    let mut large = 0;
    for (hdr, t) in &frames {
        let hdr = hdr.as_ref().map(|h| (h.gso_type, h.gso_size));
        let len = t.len() - 20;
        if len > 1460 {
            large += 1;
            assert_eq!(
                hdr,
                Some((VnetHdr::GSO_TCPV4, 1460)),
                "a {len}-byte segment"
            );
            assert_eq!(
                &t[16..18],
                &pseudo_sum(VMK0_IP, HOST0, t.len(), &[]).to_be_bytes()
            );
        }
    }
    let biggest = frames.iter().map(|(_, t)| t.len() - 20).max().unwrap_or(0);
    assert!(
        large > 0 && biggest > 16 * 1460,
        "{large} large segments, the largest {biggest} bytes"
    );
    // Fewer frames than MSS-sized segments would take, and the congestion window still
    // grows from its start (two segments), not all at once.
    assert!(
        frames.len() < 1_000_000 / 1460 / 4,
        "{} frames",
        frames.len()
    );
    assert!(
        frames[0].1.len() - 20 <= 2 * 1460,
        "first flight: the initial window"
    );
    assert_eq!(lab.total_drops(0), 0);
    // Straight from smoltcp (not merged after it): with the window open, one poll writes
    // segments beyond the MSS into the device, each tagged with the MSS to cut at.
    let sock = lab
        .engine
        .sockets()
        .get_mut::<smoltcp::socket::tcp::Socket>(h);
    assert_eq!(sock.send_slice(&data[..200_000]), Ok(200_000));
    let e = &mut lab.engine;
    let now = super::smol_time(e.epoch, e.clock);
    e.iface.poll(now, &mut e.device, &mut e.sockets);
    let first = e
        .device
        .tx
        .front()
        .map_or(0, <[u8]>::len)
        .saturating_sub(crate::device::TX_HEADROOM);
    assert_eq!(e.device.tx.front_tag(), 1460);
    assert!(first > 40 + 4 * 1460, "a {first}-byte packet");
}

#[test]
fn test_local_tcp_large_segments_are_cut_for_a_plain_port() {
    // Offloads on in the configuration but not on the port: the large segments smoltcp
    // builds are cut by the engine into MSS-sized ones with complete checksums.
    let (mut lab, h, seq, isn) = large_window_lab(false);
    lab.sent(0);
    let data: Vec<u8> = (0..300_000u32).map(|k| (k * 7 % 251) as u8).collect();
    let frames = send_acked(&mut lab, h, &data, (seq, isn));
    assert!(frames.iter().all(|(_, t)| t.len() - 20 <= 1460));
    assert!(frames.len() >= 300_000 / 1460);
    assert_eq!(lab.total_drops(0), 0);
}

/// `n` bytes of data that differ from `seed`'s.
fn data_of(n: usize, seed: u32) -> Vec<u8> {
    (0..n as u32)
        .map(|k| (k.wrapping_mul(seed) % 253) as u8)
        .collect()
}

/// Warms the connection of `large_window_lab` up (its congestion window opens) with 300 KB;
/// returns smoltcp's next sequence number.
fn warm_up(lab: &mut Lab, h: smoltcp::iface::SocketHandle, seq: u32, isn: u32) -> u32 {
    lab.sent(0);
    let warm = data_of(300_000, 7);
    send_acked(lab, h, &warm, (seq, isn));
    isn.wrapping_add(warm.len() as u32)
}

#[test]
fn test_gathered_super_frames_equal_the_ring_path() {
    // The same transfer twice: the port taking frames in pieces (the payload leaves from
    // smoltcp's socket buffer) and not (every segment copied into the transmit ring).
    let data = data_of(600_000, 31);
    let run = |gather: bool| {
        let (mut lab, h, seq, isn) = large_window_lab(true);
        lab.port(0).gather = gather;
        lab.sent(0);
        let frames = send_acked_raw(&mut lab, h, &data, (seq, isn));
        let c = &lab.engine.vmknics()[0].counters;
        let counts = (c.tx_packets, c.tx_bytes, c.total_drops());
        // Sequence numbers from smoltcp's ISN, which differs run to run.
        let at = VNET_HDR_LEN + ETH_HDR + 20 + 4;
        let frames: Vec<Vec<u8>> = frames
            .into_iter()
            .map(|(_, _, mut f)| {
                let s = u32::from_be_bytes([f[at], f[at + 1], f[at + 2], f[at + 3]]);
                f[at..at + 4].copy_from_slice(&s.wrapping_sub(isn).to_be_bytes());
                f
            })
            .collect();
        (frames, counts, gathered(&lab.engine), lab.port(0).gathered)
    };
    let (direct, direct_counts, (calls, segments), port_gathered) = run(true);
    let (ring, ring_counts, ring_gathered, ring_port) = run(false);
    assert_eq!(
        (ring_gathered, ring_port),
        ((0, 0), 0),
        "no gather: all by the ring"
    );
    // Most large segments left from the socket buffer, as one super-frame each (not those
    // smoltcp wrote behind a small one that went into the ring in the same poll).
    let large: Vec<&Vec<u8>> = direct
        .iter()
        .filter(|f| f.len() - VNET_HDR_LEN - ETH_HDR - 40 >= crate::device::GATHER_MIN)
        .collect();
    assert!(large.len() > 3, "{} large frames", large.len());
    let n = large.len() as u64;
    assert!(calls <= n && calls * 4 >= n * 3, "{calls} of {n} gathered");
    assert_eq!(port_gathered, calls, "the port took them in pieces");
    let carried: usize = large
        .iter()
        .map(|f| (f.len() - VNET_HDR_LEN - ETH_HDR - 40).div_ceil(1460))
        .sum();
    assert!(
        segments >= calls * 6 && segments <= carried as u64,
        "{segments} segments gathered, {carried} in large frames"
    );
    for f in &large {
        let h = VnetHdr::read(f);
        assert_eq!(
            (h.flags, h.gso_type, h.gso_size, h.hdr_len),
            (VnetHdr::NEEDS_CSUM, VnetHdr::GSO_TCPV4, 1460, 54)
        );
        assert_eq!((h.csum_start, h.csum_offset), (34, 16));
    }
    // Byte for byte what the ring sent (virtio-net header, Ethernet, IP and TCP headers,
    // payload), in the same frames, counted alike.
    assert_eq!(direct.len(), ring.len(), "frames");
    for (k, (d, r)) in direct.iter().zip(&ring).enumerate() {
        assert!(
            d == r,
            "frame {k} differs ({} and {} bytes)",
            d.len(),
            r.len()
        );
    }
    assert_eq!(direct_counts, ring_counts, "tx packets, bytes, drops");
}

/// Checks that `frames` (TCP from vmk0:3260, without their virtio-net headers) follow on
/// from `next`, acknowledges them as HOST0 and does the same with what smoltcp sends next,
/// until it sends nothing; returns its next sequence number.
fn ack_all(lab: &mut Lab, seq: u32, mut next: u32, mut frames: Vec<Vec<u8>>) -> u32 {
    while !frames.is_empty() {
        for f in &frames {
            let ip = ip_of(f);
            assert_eq!(ip.next_header(), IpProtocol::Tcp);
            let t = ip.payload();
            let at = u32::from_be_bytes([t[4], t[5], t[6], t[7]]);
            assert_eq!(at, next, "in order");
            next = next.wrapping_add((t.len() - 20) as u32);
        }
        let ack = tcp_from(40000, seq, next, 0x10, &[], false);
        lab.receive(0, &eth(VMK0_MAC, HOST0_MAC, &ack));
        frames = lab.sent(0);
    }
    next
}

#[test]
fn test_gather_waits_behind_a_packet_in_the_ring() {
    let (mut lab, h, seq, isn) = large_window_lab(true);
    let isn = warm_up(&mut lab, h, seq, isn);
    let before = gathered(&lab.engine);
    assert!(before.0 > 0, "the warm-up gathered");
    // A packet already waits in the transmit ring when smoltcp sends its next segments.
    let sock = lab
        .engine
        .sockets()
        .get_mut::<smoltcp::socket::tcp::Socket>(h);
    assert_eq!(sock.send_slice(&data_of(100_000, 3)), Ok(100_000));
    let dgram = udp(VMK0_IP, HOST0, 64, false, 50);
    let headroom = crate::device::TX_HEADROOM;
    let queued = lab.engine.device.tx.push_with(headroom + dgram.len(), |b| {
        b[headroom..].copy_from_slice(&dgram)
    });
    assert!(queued);
    lab.engine.poll_local();
    let out = lab.sent(0);
    assert!(out.len() >= 2, "{} frames", out.len());
    assert_eq!(
        ip_of(&out[0]).next_header(),
        IpProtocol::Udp,
        "the queued packet first"
    );
    let tcp = out[1..].to_vec();
    let largest = tcp.iter().map(|f| ip_of(f).payload().len() - 20).max();
    assert!(
        largest > Some(crate::device::GATHER_MIN),
        "{largest:?} bytes"
    );
    assert_eq!(
        gathered(&lab.engine),
        before,
        "nothing overtook the queued packet"
    );
    // Acknowledged, with the ring empty again, the next ones leave from the socket buffer.
    let isn = ack_all(&mut lab, seq, isn, tcp);
    send_acked(&mut lab, h, &data_of(200_000, 5), (seq, isn));
    assert!(gathered(&lab.engine).0 > before.0, "gathered again");
}

#[test]
fn test_gather_stays_off_while_a_capture_runs() {
    use std::sync::Arc;
    use vmkstack_api::capture::Point;

    use super::{Capture, CaptureFilter};

    let (mut lab, h, seq, isn) = large_window_lab(true);
    let isn = warm_up(&mut lab, h, seq, isn);
    let before = gathered(&lab.engine);
    let cap = Arc::new(Capture::new(
        CaptureFilter {
            points: Point::EndpointOut.bit() | Point::Tx.bit(),
            ..Default::default()
        },
        1 << 22,
    ));
    assert!(lab.engine.capture_add(cap.clone()));
    let frames = send_acked(&mut lab, h, &data_of(300_000, 11), (seq, isn));
    assert!(
        frames
            .iter()
            .any(|(_, t)| t.len() - 20 >= crate::device::GATHER_MIN),
        "large segments still"
    );
    assert_eq!(
        gathered(&lab.engine),
        before,
        "the capture sees every frame whole"
    );
}

#[test]
fn test_gather_leaves_an_unresolved_neighbour_to_the_ring() {
    let (mut lab, h, seq, isn) = large_window_lab(true);
    let isn = warm_up(&mut lab, h, seq, isn);
    let before = gathered(&lab.engine);
    assert!(lab.engine.remove_neighbor(HOST0));
    let sock = lab
        .engine
        .sockets()
        .get_mut::<smoltcp::socket::tcp::Socket>(h);
    assert_eq!(sock.send_slice(&data_of(100_000, 13)), Ok(100_000));
    lab.engine.poll_local();
    let out = lab.sent(0);
    assert_eq!(gathered(&lab.engine), before, "no MAC: through the ring");
    assert!(
        out.iter().any(|f| f[12..14] == ETHERTYPE_ARP.to_be_bytes()),
        "an ARP request for the host"
    );
    assert!(
        out.iter().all(|f| f[12..14] == ETHERTYPE_ARP.to_be_bytes()),
        "nothing else while the MAC is unknown"
    );
    // Answered: what waited leaves, in order.
    lab.receive(0, &arp(ArpOp::Reply, HOST0_MAC, HOST0, VMK0_MAC, VMK0_IP));
    let out = lab.sent(0);
    assert!(!out.is_empty(), "the queued segments");
    let t = ip_of(&out[0]).payload().to_vec();
    let at = u32::from_be_bytes([t[4], t[5], t[6], t[7]]).wrapping_sub(isn);
    assert_eq!(at, 0, "the first segment first");
}
