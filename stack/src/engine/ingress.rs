//! Ingress (Linux's `ip_rcv`): a received frame is classified, an IPv4 packet checked once
//! (header, checksum, the virtio-net header against it, martians, RFC 1812's forwarding
//! rules), and handed to local delivery or to forwarding as an [`Ipv4Rx`], a typed view whose
//! offsets are computed here and nowhere else.

use vmkstack_vmknic::eth::{self, Ingress, ETH_HDR};
use vmkstack_vmknic::{Port, VnetHdr, VNET_HDR_LEN};

use super::{DropReason, Engine};
use crate::packet::{self, Ipv4Info, Offload};

/// Where the Ethernet frame starts in a received buffer: after its virtio-net header.
const FRAME: usize = VNET_HDR_LEN;
/// Where the IP packet starts in a received buffer.
const IP: usize = FRAME + ETH_HDR;

/// An IPv4 packet received on a vmknic, checked: its buffer holds the virtio-net header, the
/// Ethernet header and exactly the IP datagram (link-layer padding cut off).
pub(super) struct Ipv4Rx<'a> {
    /// The vmknic (slot) it came in on.
    pub vmknic: usize,
    /// Its IPv4 header fields.
    pub info: Ipv4Info,
    /// What its virtio-net header asks of the egress (partial checksum, segmentation).
    pub offload: Offload,
    buf: &'a mut [u8],
}

impl Ipv4Rx<'_> {
    /// The IP datagram.
    pub fn ip(&self) -> &[u8] {
        self.buf.get(IP..).unwrap_or_default()
    }

    /// The IP datagram, to rewrite in place.
    pub fn ip_mut(&mut self) -> &mut [u8] {
        self.buf.get_mut(IP..).unwrap_or_default()
    }

    /// The Ethernet frame, to rewrite in place.
    pub fn frame_mut(&mut self) -> &mut [u8] {
        self.buf.get_mut(FRAME..).unwrap_or_default()
    }

    /// The virtio-net header and the frame, as an offloading port takes them.
    pub fn hdr_and_frame(&self) -> &[u8] {
        self.buf
    }

    /// True when the frame was sent to the Ethernet broadcast address.
    fn l2_broadcast(&self) -> bool {
        self.buf.get(FRAME..FRAME + 6) == Some(&[0xff; 6][..])
    }
}

impl<P: Port> Engine<P> {
    /// Classifies a frame received on vmknic `i` and hands it to ARP or IPv4.
    pub(super) fn handle_frame(&mut self, i: usize, buf: &mut [u8]) {
        let Some(v) = self.vmknics.get(i) else {
            return;
        };
        let frame = buf.get(FRAME..).unwrap_or_default();
        match eth::classify(frame, v.cfg.mac) {
            Err(r) => self.count(i, r),
            Ok(Ingress::Arp) => self.handle_arp(i, frame),
            Ok(Ingress::Ipv4) => self.handle_ipv4(i, buf),
            Ok(Ingress::Ipv6) => self.handle_ipv6(i, buf),
        }
    }

    /// Checks an IPv4 packet and sends it on: to ourselves, onward, or to a drop counter.
    fn handle_ipv4(&mut self, i: usize, buf: &mut [u8]) {
        let info = match packet::parse_ipv4(buf.get(IP..).unwrap_or_default()) {
            Ok(info) => info,
            Err(packet::PacketError::BadChecksum) => return self.count(i, DropReason::BadChecksum),
            Err(packet::PacketError::Truncated) => return self.count(i, DropReason::Truncated),
            Err(_) => return self.count(i, DropReason::BadIpv4),
        };
        let hdr = VnetHdr::read(buf);
        let Some(buf) = buf.get_mut(..IP + info.total_len) else {
            return self.count(i, DropReason::Truncated);
        };
        let Ok(offload) = packet::check_offload(&hdr, &buf[IP..], &info) else {
            return self.count(i, DropReason::BadOffload);
        };
        let mut pkt = Ipv4Rx {
            vmknic: i,
            info,
            offload,
            buf,
        };
        // Martian sources (RFC 1812 5.3.7), including our own addresses and the broadcast
        // address of a connected subnet: never delivered, forwarded or answered.
        let src = pkt.info.src;
        if packet::is_martian(src) || self.is_local(src) || self.is_directed_broadcast(src) {
            return self.count(i, DropReason::Martian);
        }
        // A DHCP server's answer for a vmknic's client, whatever its destination.
        if self.is_dhcp_answer(&pkt) {
            return self.queue_dhcp(&pkt);
        }
        let dst = pkt.info.dst;
        if self.is_local(dst) {
            return self.deliver_local(&mut pkt);
        }
        // A unicast IP in a link-layer broadcast is not forwarded (RFC 1812 5.3.4), nor
        // martian or directed-broadcast destinations.
        if pkt.l2_broadcast() || packet::is_martian(dst) || self.is_directed_broadcast(dst) {
            return self.count(i, DropReason::Martian);
        }
        if !self.forwarding {
            return self.count(i, DropReason::ForwardingOff);
        }
        // Packets with IP options (source route, record route, ...) are not forwarded: a lab
        // router takes no part in source routing. Fragments are forwarded as routers do (a
        // host that learned a smaller path MTU fragments its own UDP), unless they cannot be
        // part of a valid datagram.
        if info.has_options {
            return self.count(i, DropReason::IpOptions);
        }
        if info.more_frags || info.frag_offset > 0 {
            let payload = info.total_len.saturating_sub(info.header_len);
            let misaligned = info.more_frags && payload % 8 != 0;
            let too_long = usize::from(info.frag_offset) + payload > 65535;
            if misaligned || too_long || payload == 0 {
                return self.count(i, DropReason::Fragment);
            }
        }
        self.forward(&mut pkt);
    }
}
