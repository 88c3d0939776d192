//! The offloads a virtio-net header asks for, and their inverse: checking the header against
//! its packet, finishing a partial checksum, cutting a TCP super-frame into segments (TSO, as
//! a NIC would) and merging a burst of TCP segments into one super-frame for an offloading
//! TAP.

use smoltcp::wire::{checksum, IpProtocol, Ipv4Packet};
use vmkstack_vmknic::{Gso, VnetHdr, ETH_HDR, VNET_HDR_LEN};

use super::{parse_ipv4, Ipv4Info, PacketError};

/// What a virtio-net header asks of a received IPv4 packet, checked against the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offload {
    /// A partial checksum to finish: where summing starts and where the checksum field is,
    /// both from the start of the IP packet.
    pub csum: Option<(usize, usize)>,
    /// Payload bytes per segment of a TCP super-frame.
    pub gso_size: Option<u16>,
    /// IP length of the largest packet that goes on the wire: the packet itself, or a
    /// super-frame's first segment. This is what the egress MTU must hold.
    pub wire_len: usize,
}

impl Offload {
    /// Nothing to finish: the packet can go to any TAP as it is.
    pub fn is_plain(&self) -> bool {
        self.csum.is_none() && self.gso_size.is_none()
    }
}

/// Checks `hdr` (from the TAP) against `pkt` (the IP packet after the Ethernet header, `info`
/// its parsed header). A partial checksum must start at or after the IP header and its field
/// lie inside the packet on a 16-bit word; a super-frame must be an unfragmented TCP/IPv4
/// packet with a partial TCP checksum and a segment size of at least [`TCP_MIN_MSS`]. Anything
/// else (TCPv6 on an IPv4 packet, UFO, USO) is [`PacketError::BadOffload`].
#[inline]
pub fn check_offload(hdr: &VnetHdr, pkt: &[u8], info: &Ipv4Info) -> Result<Offload, PacketError> {
    let mut out = Offload {
        csum: None,
        gso_size: None,
        wire_len: info.total_len,
    };
    if hdr.needs_csum() {
        let start = usize::from(hdr.csum_start)
            .checked_sub(ETH_HDR)
            .ok_or(PacketError::BadOffload)?;
        let field = start + usize::from(hdr.csum_offset);
        // The field must sit on a 16-bit word of the summed bytes, as every checksum does.
        let odd = !hdr.csum_offset.is_multiple_of(2);
        if start < info.header_len || field + 2 > info.total_len || odd {
            return Err(PacketError::BadOffload);
        }
        out.csum = Some((start, field));
    }
    match hdr.gso() {
        Gso::None => {}
        Gso::TcpV6 { .. } | Gso::Other(_) => return Err(PacketError::BadOffload),
        Gso::TcpV4 { .. } => {
            let hl = info.header_len;
            let fragment = info.more_frags || info.frag_offset > 0;
            // Linux never makes segments below TCP_MIN_MSS; a tiny gso_size would make one
            // super-frame into tens of thousands of segments.
            let tiny = hdr.gso_size < TCP_MIN_MSS;
            if info.protocol != 6 || fragment || tiny || out.csum != Some((hl, hl + 16)) {
                return Err(PacketError::BadOffload);
            }
            let thl = tcp_header_len(pkt, info)?;
            let payload = info.total_len - hl - thl;
            out.gso_size = Some(hdr.gso_size);
            out.wire_len = hl + thl + payload.min(usize::from(hdr.gso_size));
        }
    }
    Ok(out)
}

/// The TCP header length of a TCP/IPv4 packet, checked to lie within the datagram.
fn tcp_header_len(pkt: &[u8], info: &Ipv4Info) -> Result<usize, PacketError> {
    let hl = info.header_len;
    let doff = pkt.get(hl + 12).ok_or(PacketError::BadOffload)?;
    let thl = usize::from(doff >> 4) * 4;
    if thl < 20 || hl + thl > info.total_len {
        return Err(PacketError::BadOffload);
    }
    Ok(thl)
}

/// Finishes a partial checksum in place (Linux's `CHECKSUM_PARTIAL`): the field at `field`
/// holds the pseudo-header sum; the one's complement of the sum from `start` to the end of
/// the datagram goes there. Offsets are from the start of the IP packet, as
/// [`check_offload`] gives them; out-of-range offsets change nothing.
pub fn finish_checksum(pkt: &mut [u8], info: &Ipv4Info, start: usize, field: usize) {
    let Some(covered) = pkt.get(start..info.total_len) else {
        return;
    };
    let mut sum = !checksum::data(covered);
    // UDP sends "no checksum" as 0; a computed 0 is sent as all ones (RFC 768).
    if sum == 0 && info.protocol == 17 {
        sum = 0xffff;
    }
    if let Some(f) = pkt.get_mut(field..field + 2) {
        f.copy_from_slice(&sum.to_be_bytes());
    }
}

/// True when the TCP checksum of the TCP/IPv4 segment `pkt` (`info` its parsed header, not a
/// fragment) is right: the sum over the pseudo-header, TCP header and payload is all ones.
pub fn tcp_checksum_ok(pkt: &[u8], info: &Ipv4Info) -> bool {
    let Some(tcp) = pkt.get(info.header_len..info.total_len) else {
        return false;
    };
    let Ok(len) = u32::try_from(tcp.len()) else {
        return false;
    };
    let pseudo = checksum::pseudo_header_v4(&info.src, &info.dst, IpProtocol::Tcp, len);
    checksum::combine(&[pseudo, checksum::data(tcp)]) == !0
}

/// Fills in the TCP checksum of the TCP/IPv4 segment `pkt` (smoltcp leaves it to the engine,
/// which skips it for segments that leave merged into a super-frame with a partial checksum).
/// Anything else (not TCP, a fragment, malformed) is left as it is.
pub fn fill_tcp_checksum(pkt: &mut [u8]) {
    let Ok(info) = parse_ipv4(pkt) else {
        return;
    };
    if info.protocol != 6 || info.more_frags || info.frag_offset > 0 {
        return;
    }
    let Some(tcp) = pkt.get_mut(info.header_len..info.total_len) else {
        return;
    };
    let (Ok(len), true) = (u32::try_from(tcp.len()), tcp.len() >= 20) else {
        return;
    };
    tcp[16..18].fill(0);
    let pseudo = checksum::pseudo_header_v4(&info.src, &info.dst, IpProtocol::Tcp, len);
    let sum = !checksum::combine(&[pseudo, checksum::data(tcp)]);
    tcp[16..18].copy_from_slice(&sum.to_be_bytes());
}

/// Cuts a TCP/IPv4 super-frame `pkt` (`info` its parsed header) into segments carrying at
/// most `gso_size` payload bytes each, as a NIC doing TSO would: every segment gets the IP
/// and TCP headers, its own total length, IP ID (+1 per segment), header checksum, sequence
/// number and full TCP checksum; CWR stays on the first segment only, FIN and PSH on the
/// last only. Each segment is built in `scratch` and passed to `emit`. Returns the number of
/// segments; on error nothing has been emitted.
pub fn segment_tcp(
    pkt: &[u8],
    info: &Ipv4Info,
    gso_size: u16,
    scratch: &mut [u8],
    emit: impl FnMut(&[u8]),
) -> Result<usize, PacketError> {
    if info.protocol != 6 {
        return Err(PacketError::BadOffload);
    }
    let hl = info.header_len;
    let thl = tcp_header_len(pkt, info)?;
    let pkt = pkt.get(..info.total_len).ok_or(PacketError::Truncated)?;
    let id = u16::from_be_bytes([pkt[4], pkt[5]]);
    let (src, dst) = (info.src, info.dst);
    cut_tcp(
        pkt,
        (hl, thl),
        gso_size,
        scratch,
        |buf, i| {
            let len = u16::try_from(buf.len()).map_err(|_| PacketError::CannotSegment)?;
            let mut ip = Ipv4Packet::new_unchecked(buf);
            ip.set_total_len(len);
            ip.set_ident(id.wrapping_add(i as u16));
            ip.fill_checksum();
            Ok(())
        },
        |tcp_len| checksum::pseudo_header_v4(&src, &dst, IpProtocol::Tcp, tcp_len),
        emit,
    )
}

/// Cuts a TCP/IPv6 super-frame `pkt` (a fixed IPv6 header, the extension headers
/// [`check_offload6`] accepts, then TCP; `pkt` ends where its payload does) into segments
/// carrying at most `gso_size` payload bytes each, as [`segment_tcp`] does for IPv4: each
/// segment carries every header before the payload (extension headers included), its own
/// payload length, sequence number and full TCP checksum over the IPv6 pseudo-header.
/// Returns the number of segments; on error nothing has been emitted.
pub fn segment_tcp6(
    pkt: &[u8],
    gso_size: u16,
    scratch: &mut [u8],
    emit: impl FnMut(&[u8]),
) -> Result<usize, PacketError> {
    let (l4, thl) = tcp6_headers(pkt)?;
    let (src, dst) = (addr6_at(pkt, 8), addr6_at(pkt, 24));
    cut_tcp(
        pkt,
        (l4, thl),
        gso_size,
        scratch,
        |buf, _| {
            let plen =
                u16::try_from(buf.len() - IPV6_HDR).map_err(|_| PacketError::CannotSegment)?;
            buf[4..6].copy_from_slice(&plen.to_be_bytes());
            Ok(())
        },
        |tcp_len| checksum::pseudo_header_v6(&src, &dst, IpProtocol::Tcp, tcp_len),
        emit,
    )
}

/// The cutting common to [`segment_tcp`] and [`segment_tcp6`]: `pkt` is an IP header of `hl`
/// bytes, a TCP header of `thl` (`lens`) and the payload. Each segment is built in `scratch`;
/// `fix_ip(segment, index)` sets its IP header's lengths (and ID), `pseudo(tcp_len)` gives
/// the pseudo-header sum for its TCP checksum.
fn cut_tcp(
    pkt: &[u8],
    (hl, thl): (usize, usize),
    gso_size: u16,
    scratch: &mut [u8],
    fix_ip: impl Fn(&mut [u8], usize) -> Result<(), PacketError>,
    pseudo: impl Fn(u32) -> u16,
    mut emit: impl FnMut(&[u8]),
) -> Result<usize, PacketError> {
    const CWR: u8 = 0x80;
    const PSH: u8 = 0x08;
    const FIN: u8 = 0x01;
    if gso_size == 0 {
        return Err(PacketError::BadOffload);
    }
    let headers = pkt.get(..hl + thl).ok_or(PacketError::Truncated)?;
    let payload = pkt.get(hl + thl..).ok_or(PacketError::Truncated)?;
    let gso = usize::from(gso_size);
    if scratch.len() < headers.len() + gso.min(payload.len()) {
        return Err(PacketError::CannotSegment);
    }
    let seq = u32::from_be_bytes([
        headers[hl + 4],
        headers[hl + 5],
        headers[hl + 6],
        headers[hl + 7],
    ]);
    let flags = headers[hl + 13];
    let count = payload.len().div_ceil(gso).max(1);
    for i in 0..count {
        let chunk = payload.get(i * gso..).unwrap_or_default();
        let chunk = chunk.get(..gso).unwrap_or(chunk);
        let len = headers.len() + chunk.len();
        let (Some(buf), Ok(tcp_len)) = (scratch.get_mut(..len), u32::try_from(len - hl)) else {
            return Err(PacketError::CannotSegment);
        };
        buf[..headers.len()].copy_from_slice(headers);
        buf[headers.len()..].copy_from_slice(chunk);
        fix_ip(buf, i)?;
        let tcp = &mut buf[hl..];
        let offset = (i * gso) as u32;
        tcp[4..8].copy_from_slice(&seq.wrapping_add(offset).to_be_bytes());
        let mut f = flags;
        if i > 0 {
            f &= !CWR;
        }
        if i + 1 < count {
            f &= !(PSH | FIN);
        }
        tcp[13] = f;
        tcp[16..18].fill(0);
        let sum = !checksum::combine(&[pseudo(tcp_len), checksum::data(tcp)]);
        tcp[16..18].copy_from_slice(&sum.to_be_bytes());
        emit(buf);
    }
    Ok(count)
}

/// Bytes of a fixed IPv6 header.
const IPV6_HDR: usize = 40;

/// The IPv6 address at byte `at` of `pkt` (unspecified when `pkt` is too short).
fn addr6_at(pkt: &[u8], at: usize) -> std::net::Ipv6Addr {
    pkt.get(at..at + 16)
        .and_then(|s| s.first_chunk::<16>())
        .map_or(std::net::Ipv6Addr::UNSPECIFIED, |a| (*a).into())
}

/// Extension headers a TSO6 super-frame may carry before TCP, as the kernel's GSO walks them
/// (`ipv6_gso_pull_exthdrs`): hop-by-hop options (first only), routing and destination
/// options. More than this many is refused.
const MAX_EXT_HEADERS6: usize = 8;

/// Where the TCP header of a TCP/IPv6 packet starts, after the fixed header and any
/// hop-by-hop, routing or destination options headers, and its length, both checked to lie
/// within the packet. A fragment header (a super-frame is never a fragment), any other next
/// header, or a routing header with segments left (the TCP checksum would cover a final
/// destination other than the packet's) is [`PacketError::BadOffload`].
fn tcp6_headers(pkt: &[u8]) -> Result<(usize, usize), PacketError> {
    const HOP_BY_HOP: u8 = 0;
    const TCP: u8 = 6;
    const ROUTING: u8 = 43;
    const DEST_OPTS: u8 = 60;
    let mut next = *pkt.get(6).ok_or(PacketError::BadOffload)?;
    let mut at = IPV6_HDR;
    for _ in 0..=MAX_EXT_HEADERS6 {
        match next {
            TCP => {
                let doff = pkt.get(at + 12).ok_or(PacketError::BadOffload)?;
                let thl = usize::from(doff >> 4) * 4;
                if thl < 20 || at + thl > pkt.len() {
                    return Err(PacketError::BadOffload);
                }
                return Ok((at, thl));
            }
            HOP_BY_HOP if at != IPV6_HDR => return Err(PacketError::BadOffload),
            ROUTING if pkt.get(at + 3) != Some(&0) => return Err(PacketError::BadOffload),
            HOP_BY_HOP | ROUTING | DEST_OPTS => {
                let ext = pkt.get(at..at + 2).ok_or(PacketError::BadOffload)?;
                next = ext[0];
                at += (usize::from(ext[1]) + 1) * 8;
            }
            _ => return Err(PacketError::BadOffload),
        }
    }
    Err(PacketError::BadOffload)
}

/// What a virtio-net header asks of a received IPv6 packet, checked against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offload6 {
    /// Payload bytes per segment of a TCP super-frame.
    pub gso_size: Option<u16>,
    /// IP length of the largest packet that goes on the wire: the packet itself, or a
    /// super-frame's first segment. This is what the egress MTU must hold.
    pub wire_len: usize,
}

/// Checks the segmentation `hdr` asks of the IPv6 packet `pkt` (after the Ethernet header,
/// cut to its payload length). A super-frame must be TCPv6 (after hop-by-hop, routing without
/// segments left, or destination options headers, as the kernel's `virtio_net_hdr_to_skb` and
/// GSO take them) with a partial TCP checksum at the TCP header, a segment size of at least
/// [`TCP_MIN_MSS`] and a TCP header inside the packet; any other segmentation (TCPv4, UFO,
/// USO) is [`PacketError::BadOffload`]. A partial checksum alone is finished where it is
/// needed.
#[inline]
pub fn check_offload6(hdr: &VnetHdr, pkt: &[u8]) -> Result<Offload6, PacketError> {
    let mut out = Offload6 {
        gso_size: None,
        wire_len: pkt.len(),
    };
    match hdr.gso() {
        Gso::None => {}
        Gso::TcpV4 { .. } | Gso::Other(_) => return Err(PacketError::BadOffload),
        Gso::TcpV6 { .. } => {
            if !hdr.needs_csum() || hdr.csum_offset != 16 || hdr.gso_size < TCP_MIN_MSS {
                return Err(PacketError::BadOffload);
            }
            let (l4, thl) = tcp6_headers(pkt)?;
            if usize::from(hdr.csum_start) != ETH_HDR + l4 {
                return Err(PacketError::BadOffload);
            }
            let payload = pkt.len() - l4 - thl;
            out.gso_size = Some(hdr.gso_size);
            out.wire_len = l4 + thl + payload.min(usize::from(hdr.gso_size));
        }
    }
    Ok(out)
}

/// The smallest TCP segment size Linux uses (`TCP_MIN_MSS`); a super-frame asking for less is
/// refused.
pub const TCP_MIN_MSS: u16 = 88;

/// A TCP/IPv4 flow: source and destination address and port.
pub type Flow = [u8; 12];

/// The flow of a TCP/IPv4 packet (not a fragment), or `None` for anything else. The stack's
/// connections send their segments interleaved (smoltcp emits one per socket in turn): the
/// engine keeps a [`Coalescer`] per flow in flight to merge each connection's burst.
pub fn flow_of(pkt: &[u8]) -> Option<Flow> {
    let info = parse_ipv4(pkt).ok()?;
    if info.protocol != 6 || info.more_frags || info.frag_offset > 0 {
        return None;
    }
    let ports = pkt.get(info.header_len..info.header_len + 4)?;
    let mut f = [0u8; 12];
    f[..4].copy_from_slice(&info.src.octets());
    f[4..8].copy_from_slice(&info.dst.octets());
    f[8..].copy_from_slice(ports);
    Some(f)
}

/// Bytes a [`Coalescer`] keeps before the packet: a virtio-net header and an Ethernet header.
pub const COALESCE_HEADROOM: usize = VNET_HDR_LEN + ETH_HDR;

/// Sets the IP length and header checksum of the TCP/IPv4 super-frame `pkt` (IP header
/// `hl` bytes, TCP header `thl`) and leaves its TCP checksum partial (the pseudo-header sum);
/// returns the virtio-net header that asks the kernel to cut it into `gso_size`-byte segments
/// and finish their checksums.
fn finish_super_frame(pkt: &mut [u8], hl: usize, thl: usize, gso_size: u16) -> VnetHdr {
    let len = pkt.len();
    finish_super_frame_headers(pkt, len, hl, thl, gso_size)
}

/// [`finish_super_frame`] on the IP and TCP headers (`pkt`, at least) of a packet of `len`
/// bytes: only the headers are written.
fn finish_super_frame_headers(
    pkt: &mut [u8],
    len: usize,
    hl: usize,
    thl: usize,
    gso_size: u16,
) -> VnetHdr {
    let mut ip = Ipv4Packet::new_unchecked(&mut *pkt);
    ip.set_total_len(u16::try_from(len).unwrap_or(u16::MAX));
    ip.fill_checksum();
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    let pseudo = checksum::pseudo_header_v4(&src, &dst, IpProtocol::Tcp, (len - hl) as u32);
    pkt[hl + 16..hl + 18].copy_from_slice(&pseudo.to_be_bytes());
    VnetHdr {
        flags: VnetHdr::NEEDS_CSUM,
        gso_type: VnetHdr::GSO_TCPV4,
        hdr_len: (ETH_HDR + hl + thl) as u16,
        gso_size,
        csum_start: (ETH_HDR + hl) as u16,
        csum_offset: 16,
    }
}

/// Makes a super-frame of a TCP/IPv4 segment whose payload is larger than `mss`, built whole
/// by the stack's own TCP as a TSO sender hands one to its NIC: `buf` is
/// [`COALESCE_HEADROOM`] bytes, then the segment, which stays where it is. ACK, PSH and FIN
/// may be set (the kernel puts PSH and FIN on the last segment only, as [`segment_tcp`]
/// does). `None` (nothing changed) when it is not such a segment: the caller cuts it itself.
pub fn tso_frame(buf: &mut [u8], mss: u16) -> Option<Merged<'_>> {
    let pkt = buf.get(COALESCE_HEADROOM..)?;
    let info = parse_ipv4(pkt).ok()?;
    let fragment = info.more_frags || info.frag_offset > 0;
    if info.protocol != 6 || info.has_options || fragment || info.total_len != pkt.len() {
        return None;
    }
    let thl = tcp_header_len(pkt, &info).ok()?;
    let hl = info.header_len;
    let payload = pkt.len() - hl - thl;
    if !tso_ok(mss, payload, pkt[hl + 13]) {
        return None;
    }
    let hdr = finish_super_frame(&mut buf[COALESCE_HEADROOM..], hl, thl, mss);
    Some(Merged {
        segments: payload.div_ceil(usize::from(mss)),
        hdr,
        gso_size: mss,
        buf,
    })
}

/// [`tso_frame`] for a segment whose payload lies elsewhere (sent with a gathering write):
/// `buf` is [`COALESCE_HEADROOM`] bytes, then exactly the segment's IPv4 and TCP headers;
/// `payload` bytes follow them on the wire. The same checks, the same changes to the headers
/// and the same virtio-net header as [`tso_frame`] on the whole segment; `None` (nothing
/// changed) when it is not such a segment.
pub fn tso_headers(buf: &mut [u8], payload: usize, mss: u16) -> Option<VnetHdr> {
    let hdrs = buf.get(COALESCE_HEADROOM..)?;
    let header = hdrs.get(..IPV4_HDR)?;
    let total = usize::from(u16::from_be_bytes([header[2], header[3]]));
    let frag = u16::from_be_bytes([header[6], header[7]]) & 0x3fff; // MF and the offset
    let options = header[0] & 0x0f != 5;
    if header[0] >> 4 != 4 || options || frag != 0 || header[9] != 6 {
        return None;
    }
    if checksum::data(header) != !0 || total != hdrs.len() + payload {
        return None;
    }
    let thl = usize::from(*hdrs.get(IPV4_HDR + 12)? >> 4) * 4;
    let flags = *hdrs.get(IPV4_HDR + 13)?;
    if thl < 20 || IPV4_HDR + thl != hdrs.len() {
        return None;
    }
    if !tso_ok(mss, payload, flags) {
        return None;
    }
    let hdrs = &mut buf[COALESCE_HEADROOM..];
    Some(finish_super_frame_headers(hdrs, total, IPV4_HDR, thl, mss))
}

/// [`tso_frame6`] for a segment whose payload lies elsewhere (sent with a gathering write):
/// `buf` is [`COALESCE_HEADROOM`] bytes, then exactly the segment's IPv6 and TCP headers;
/// `payload` bytes follow them on the wire. The same checks, the same change to the TCP
/// header (the partial checksum) and the same virtio-net header as [`tso_frame6`] on the
/// whole segment; `None` (nothing changed) when it is not such a segment.
pub fn tso_headers6(buf: &mut [u8], payload: usize, mss: u16) -> Option<VnetHdr> {
    tso6(buf.get_mut(COALESCE_HEADROOM..)?, payload, mss).map(|(hdr, _)| hdr)
}

/// What [`tso_frame6`] and [`tso_headers6`] share: `pkt` holds the IPv6 packet, all of it
/// (`elsewhere` 0) or exactly its headers with `elsewhere` payload bytes following them on
/// the wire. Checks it is a TCP segment to send as a super-frame, leaves its TCP checksum
/// partial and returns the virtio-net header and the segment count.
fn tso6(pkt: &mut [u8], elsewhere: usize, mss: u16) -> Option<(VnetHdr, usize)> {
    let plen = usize::from(u16::from_be_bytes([*pkt.get(4)?, *pkt.get(5)?]));
    if pkt[0] >> 4 != 6 || pkt.get(6) != Some(&6) || IPV6_HDR + plen != pkt.len() + elsewhere {
        return None;
    }
    let (l4, thl) = tcp6_headers(pkt).ok()?;
    if elsewhere > 0 && l4 + thl != pkt.len() {
        return None;
    }
    let payload = pkt.len() + elsewhere - l4 - thl;
    if !tso_ok(mss, payload, pkt[l4 + 13]) {
        return None;
    }
    let (src, dst) = (addr6_at(pkt, 8), addr6_at(pkt, 24));
    let pseudo = checksum::pseudo_header_v6(&src, &dst, IpProtocol::Tcp, plen as u32);
    pkt[l4 + 16..l4 + 18].copy_from_slice(&pseudo.to_be_bytes());
    Some((
        tso6_vnet_hdr(l4, thl, mss),
        payload.div_ceil(usize::from(mss)),
    ))
}

/// True when a TCP segment of `payload` bytes with TCP flags `flags` may leave as a
/// super-frame of `mss`-byte segments: larger than one, and only ACK, PSH and FIN set (the
/// kernel puts PSH and FIN on the last segment only, as [`segment_tcp`] does).
fn tso_ok(mss: u16, payload: usize, flags: u8) -> bool {
    const FLAGS_OK: u8 = 0x10 | 0x08 | 0x01; // ACK, PSH, FIN
    mss >= TCP_MIN_MSS && payload > usize::from(mss) && flags & !FLAGS_OK == 0
}

/// The virtio-net header of a TSO6 super-frame whose TCP header starts at `l4` of the IP
/// packet and is `thl` bytes long.
fn tso6_vnet_hdr(l4: usize, thl: usize, mss: u16) -> VnetHdr {
    VnetHdr {
        flags: VnetHdr::NEEDS_CSUM,
        gso_type: VnetHdr::GSO_TCPV6,
        hdr_len: (ETH_HDR + l4 + thl) as u16,
        gso_size: mss,
        csum_start: (ETH_HDR + l4) as u16,
        csum_offset: 16,
    }
}

/// [`tso_frame`] for a TCP/IPv6 segment the stack's own TCP built larger than `mss` (no
/// extension header): its TCP checksum left partial (the pseudo-header sum) and the
/// virtio-net header that asks the kernel behind the TAP for TSO6. `None` (nothing changed)
/// when it is not such a segment: the caller cuts it with [`segment_tcp6`].
pub fn tso_frame6(buf: &mut [u8], mss: u16) -> Option<Merged<'_>> {
    let (hdr, segments) = tso6(buf.get_mut(COALESCE_HEADROOM..)?, 0, mss)?;
    Some(Merged {
        segments,
        hdr,
        gso_size: mss,
        buf,
    })
}

/// Bytes of an IPv4 header without options.
const IPV4_HDR: usize = 20;

/// Merges consecutive TCP/IPv4 segments of one flow into one super-frame for an offloading
/// TAP: the inverse of [`segment_tcp`], what a NIC's TSO would be handed. The stack's own TCP
/// (smoltcp) sends MSS-sized segments; merged, a burst of them costs one TAP write instead of
/// one each, and the kernel behind the TAP takes the super-frame whole.
///
/// Segments merge when everything but the IP length, ID and checksum, the TCP sequence number,
/// checksum and PSH flag is the same, the sequence numbers follow on, every segment but the
/// last carries the first one's payload size, and the last (shorter, or with PSH) ends the
/// super-frame. Only ACK and PSH may be set; SYN, FIN, RST, URG, ECE and CWR segments, pure
/// ACKs, fragments and packets with IP options are never merged.
#[derive(Debug)]
pub struct Coalescer {
    /// [`COALESCE_HEADROOM`] bytes, then the packet being built.
    buf: Box<[u8]>,
    /// Bytes of packet in `buf` after the headroom (0: empty).
    len: usize,
    segments: usize,
    /// IP and TCP header lengths of the flow.
    hl: usize,
    thl: usize,
    /// Payload bytes of the first segment: the segment size.
    mss: usize,
    next_seq: u32,
    /// The last segment was short or had PSH: nothing more joins.
    closed: bool,
}

/// A merged super-frame: `buf` is [`COALESCE_HEADROOM`] bytes for the caller's headers, then
/// the IP packet.
#[derive(Debug)]
pub struct Merged<'a> {
    /// Segments merged (1: `buf` holds the original packet, checksums complete).
    pub segments: usize,
    /// The virtio-net header to send it with (TSO, partial TCP checksum) when `segments > 1`.
    pub hdr: VnetHdr,
    /// Segment payload size.
    pub gso_size: u16,
    /// Headroom, then the IP packet.
    pub buf: &'a mut [u8],
}

impl Default for Coalescer {
    fn default() -> Self {
        Self::new()
    }
}

impl Coalescer {
    const TCP_ACK: u8 = 0x10;
    const TCP_PSH: u8 = 0x08;

    /// An empty coalescer (one 64 KiB buffer, allocated now).
    pub fn new() -> Coalescer {
        Coalescer {
            buf: vec![0; COALESCE_HEADROOM + usize::from(u16::MAX)].into_boxed_slice(),
            len: 0,
            segments: 0,
            hl: 0,
            thl: 0,
            mss: 0,
            next_seq: 0,
            closed: false,
        }
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The flow of what is held (see [`flow_of`]), or `None` when empty.
    pub fn flow(&self) -> Option<Flow> {
        if self.len == 0 {
            return None;
        }
        flow_of(&self.buf[COALESCE_HEADROOM..COALESCE_HEADROOM + self.len])
    }

    /// Takes `pkt` into the super-frame being built. False when it cannot join it (the
    /// caller sends what is held with [`Coalescer::take`] and pushes again) or, on an empty
    /// coalescer, when it can never be merged (the caller sends it as it is).
    pub fn push(&mut self, pkt: &[u8]) -> bool {
        let Ok(info) = parse_ipv4(pkt) else {
            return false;
        };
        let fragment = info.more_frags || info.frag_offset > 0;
        if info.protocol != 6 || info.has_options || fragment || info.total_len != pkt.len() {
            return false;
        }
        let Ok(thl) = tcp_header_len(pkt, &info) else {
            return false;
        };
        let hl = info.header_len;
        let payload = &pkt[hl + thl..];
        let flags = pkt[hl + 13];
        if payload.is_empty() || flags & !(Self::TCP_ACK | Self::TCP_PSH) != 0 {
            return false;
        }
        let seq = u32::from_be_bytes([pkt[hl + 4], pkt[hl + 5], pkt[hl + 6], pkt[hl + 7]]);
        let end_seq = seq.wrapping_add(payload.len() as u32);
        let push = flags & Self::TCP_PSH != 0;
        if self.len == 0 {
            let Some(dst) = self
                .buf
                .get_mut(COALESCE_HEADROOM..COALESCE_HEADROOM + pkt.len())
            else {
                return false;
            };
            dst.copy_from_slice(pkt);
            (self.len, self.segments, self.hl, self.thl) = (pkt.len(), 1, hl, thl);
            (self.mss, self.next_seq, self.closed) = (payload.len(), end_seq, push);
            return true;
        }
        let held = &self.buf[COALESCE_HEADROOM..COALESCE_HEADROOM + self.hl + self.thl];
        let same_headers = hl == self.hl
            && thl == self.thl
            // IP: version..TOS, flags/fragment..protocol, addresses (not length, ID, checksum).
            && held[..2] == pkt[..2]
            && held[6..10] == pkt[6..10]
            && held[12..hl] == pkt[12..hl]
            // TCP: ports, then ack..window (flags without PSH), urgent pointer and options.
            && held[hl..hl + 4] == pkt[hl..hl + 4]
            && held[hl + 8..hl + 13] == pkt[hl + 8..hl + 13]
            && held[hl + 13] & !Self::TCP_PSH == flags & !Self::TCP_PSH
            && held[hl + 14..hl + 16] == pkt[hl + 14..hl + 16]
            && held[hl + 18..hl + thl] == pkt[hl + 18..hl + thl];
        let fits = COALESCE_HEADROOM + self.len + payload.len() <= self.buf.len()
            && self.len + payload.len() <= usize::from(u16::MAX);
        if self.closed || !same_headers || seq != self.next_seq || payload.len() > self.mss || !fits
        {
            return false;
        }
        let at = COALESCE_HEADROOM + self.len;
        self.buf[at..at + payload.len()].copy_from_slice(payload);
        self.len += payload.len();
        self.segments += 1;
        self.next_seq = end_seq;
        self.closed = push || payload.len() < self.mss;
        if push {
            self.buf[COALESCE_HEADROOM + hl + 13] |= Self::TCP_PSH;
        }
        true
    }

    /// Hands out what is held and empties the coalescer. A single segment comes back as it
    /// was pushed; several come back as one packet with its IP length and header checksum
    /// set and its TCP checksum left partial (the pseudo-header sum), with the virtio-net
    /// header that asks the kernel for TSO.
    pub fn take(&mut self) -> Option<Merged<'_>> {
        if self.len == 0 {
            return None;
        }
        let (len, segments, hl) = (self.len, self.segments, self.hl);
        self.len = 0;
        let buf = self.buf.get_mut(..COALESCE_HEADROOM + len)?;
        let gso_size = u16::try_from(self.mss).unwrap_or(u16::MAX);
        let mut hdr = VnetHdr::default();
        if segments > 1 {
            hdr = finish_super_frame(&mut buf[COALESCE_HEADROOM..], hl, self.thl, gso_size);
        }
        Some(Merged {
            segments,
            hdr,
            gso_size,
            buf,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::tests::{ipv4, rewrite, DST, SRC};

    /// A TCP segment SRC -> DST (ports 3260 -> 50000) with `flags`, `seq`, IP ID `id`, DF as
    /// given, `payload`, and its checksum as a TSO sender leaves it: the pseudo-header sum
    /// only (`partial`), or complete.
    fn tcp(payload: &[u8], seq: u32, flags: u8, id: u16, df: bool, partial: bool) -> Vec<u8> {
        let mut pkt = ipv4(IpProtocol::Tcp, &[], &[0u8; 20]);
        pkt.extend_from_slice(payload);
        let total = pkt.len() as u16;
        rewrite(&mut pkt, |p| {
            p.set_total_len(total);
            p.set_ident(id);
            p.set_dont_frag(df);
        });
        let t = &mut pkt[20..];
        t[0..2].copy_from_slice(&3260u16.to_be_bytes());
        t[2..4].copy_from_slice(&50000u16.to_be_bytes());
        t[4..8].copy_from_slice(&seq.to_be_bytes());
        t[12] = 5 << 4;
        t[13] = flags;
        t[14..16].copy_from_slice(&512u16.to_be_bytes());
        let len = t.len() as u32;
        let pseudo = checksum::pseudo_header_v4(&SRC, &DST, IpProtocol::Tcp, len);
        let sum = if partial {
            pseudo
        } else {
            !checksum::combine(&[pseudo, checksum::data(t)])
        };
        t[16..18].copy_from_slice(&sum.to_be_bytes());
        pkt
    }

    fn tso_hdr(gso_size: u16, ecn: bool) -> VnetHdr {
        VnetHdr {
            flags: VnetHdr::NEEDS_CSUM,
            gso_type: VnetHdr::GSO_TCPV4 | if ecn { VnetHdr::GSO_ECN } else { 0 },
            hdr_len: (ETH_HDR + 40) as u16,
            gso_size,
            csum_start: (ETH_HDR + 20) as u16,
            csum_offset: 16,
        }
    }

    fn tcp_checksum_ok(seg: &[u8]) -> bool {
        let t = &seg[20..];
        let pseudo = checksum::pseudo_header_v4(&SRC, &DST, IpProtocol::Tcp, t.len() as u32);
        checksum::combine(&[pseudo, checksum::data(t)]) == !0
    }

    #[test]
    fn test_finish_checksum_completes_a_partial_sum() {
        let payload: Vec<u8> = (0..1001u32).map(|i| (i * 7) as u8).collect();
        let full = tcp(&payload, 1, 0x18, 9, true, false);
        let mut partial = tcp(&payload, 1, 0x18, 9, true, true);
        assert_ne!(partial, full);
        let info = parse_ipv4(&partial).unwrap();
        let hdr = VnetHdr {
            flags: VnetHdr::NEEDS_CSUM,
            csum_start: (ETH_HDR + 20) as u16,
            csum_offset: 16,
            ..VnetHdr::default()
        };
        let o = check_offload(&hdr, &partial, &info).unwrap();
        assert_eq!(o.csum, Some((20, 36)));
        assert_eq!((o.gso_size, o.wire_len), (None, partial.len()));
        finish_checksum(&mut partial, &info, 20, 36);
        assert_eq!(partial, full);
        assert!(tcp_checksum_ok(&partial));
    }

    #[test]
    fn test_check_offload_refuses_headers_that_do_not_fit_the_packet() {
        let pkt = tcp(&[1; 3000], 1, 0x10, 1, true, true);
        let info = parse_ipv4(&pkt).unwrap();
        let ok = tso_hdr(1448, false);
        let o = check_offload(&ok, &pkt, &info).unwrap();
        assert_eq!(o.gso_size, Some(1448));
        assert_eq!(
            o.wire_len,
            20 + 20 + 1448,
            "the first segment is what must fit the MTU"
        );
        let bad = |h: VnetHdr| check_offload(&h, &pkt, &info);
        let cases = [
            (
                "checksum before the IP payload",
                VnetHdr {
                    csum_start: 30,
                    ..ok
                },
            ),
            (
                "checksum before the Ethernet end",
                VnetHdr {
                    csum_start: 3,
                    ..ok
                },
            ),
            (
                "checksum field past the end",
                VnetHdr {
                    csum_offset: 2999,
                    ..ok
                },
            ),
            ("TSO without a partial checksum", VnetHdr { flags: 0, ..ok }),
            ("TSO with segment size 0", VnetHdr { gso_size: 0, ..ok }),
            (
                "TSO with segments below TCP_MIN_MSS",
                VnetHdr { gso_size: 87, ..ok },
            ),
            (
                "TSO with the UDP checksum offset",
                VnetHdr {
                    csum_offset: 6,
                    ..ok
                },
            ),
            ("UFO", VnetHdr { gso_type: 3, ..ok }),
            ("TCPv6", VnetHdr { gso_type: 4, ..ok }),
            ("USO", VnetHdr { gso_type: 5, ..ok }),
        ];
        for (what, h) in cases {
            assert_eq!(bad(h), Err(PacketError::BadOffload), "{what}");
        }
        // A super-frame that is not TCP, or is a fragment.
        let udp = ipv4(IpProtocol::Udp, &[], &[0; 100]);
        let uinfo = parse_ipv4(&udp).unwrap();
        assert_eq!(
            check_offload(&ok, &udp, &uinfo),
            Err(PacketError::BadOffload)
        );
        let mut frag = pkt.clone();
        rewrite(&mut frag, |p| p.set_more_frags(true));
        let finfo = parse_ipv4(&frag).unwrap();
        assert_eq!(
            check_offload(&ok, &frag, &finfo),
            Err(PacketError::BadOffload)
        );
        // A TCP data offset beyond the packet.
        let mut doff = pkt.clone();
        doff[32] = 15 << 4;
        let short = &doff[..60];
        let mut sinfo = parse_ipv4(&doff).unwrap();
        sinfo.total_len = 60;
        assert_eq!(
            check_offload(&ok, short, &sinfo),
            Err(PacketError::BadOffload)
        );
        // A plain header is always fine.
        let plain = check_offload(&VnetHdr::default(), &pkt, &info).unwrap();
        assert!(plain.is_plain());
    }

    #[test]
    fn test_segment_tcp_cuts_like_a_nic() {
        let payload: Vec<u8> = (0..4000u32).map(|i| i as u8).collect();
        // CWR|PSH|ACK|FIN on the super-frame.
        let pkt = tcp(
            &payload,
            0xffff_fff0,
            0x80 | 0x18 | 0x01,
            0xfffe,
            true,
            true,
        );
        let info = parse_ipv4(&pkt).unwrap();
        let mut scratch = [0u8; 2000];
        let mut segs = Vec::new();
        let n = segment_tcp(&pkt, &info, 1448, &mut scratch, |s| segs.push(s.to_vec())).unwrap();
        assert_eq!(n, 3);
        let mut data = Vec::new();
        for (i, s) in segs.iter().enumerate() {
            let info = parse_ipv4(s).expect("valid IPv4 header and checksum");
            assert_eq!(info.total_len, s.len());
            assert!(info.dont_frag);
            assert_eq!(
                u16::from_be_bytes([s[4], s[5]]),
                0xfffeu16.wrapping_add(i as u16)
            );
            let seq = u32::from_be_bytes([s[24], s[25], s[26], s[27]]);
            assert_eq!(seq, 0xffff_fff0u32.wrapping_add(1448 * i as u32), "wraps");
            let flags = s[33];
            assert_eq!(flags & 0x80 != 0, i == 0, "CWR on the first only");
            assert_eq!(flags & 0x09 != 0, i == 2, "PSH and FIN on the last only");
            assert!(flags & 0x10 != 0, "ACK on all");
            assert!(tcp_checksum_ok(s), "segment {i}");
            data.extend_from_slice(&s[40..]);
        }
        assert_eq!(data, payload);
        // A scratch buffer smaller than a segment refuses before emitting anything.
        let mut small = [0u8; 1000];
        let mut emitted = 0;
        let r = segment_tcp(&pkt, &info, 1448, &mut small, |_| emitted += 1);
        assert_eq!((r, emitted), (Err(PacketError::CannotSegment), 0));
        // No payload: one packet, checksum finished.
        let empty = tcp(&[], 5, 0x10, 1, true, true);
        let einfo = parse_ipv4(&empty).unwrap();
        let mut one = Vec::new();
        segment_tcp(&empty, &einfo, 1448, &mut scratch, |s| one.push(s.to_vec())).unwrap();
        assert_eq!(one, [tcp(&[], 5, 0x10, 1, true, false)]);
    }

    #[test]
    fn test_coalescer_merges_a_burst_and_refuses_what_does_not_follow() {
        let payload: Vec<u8> = (0..4000u32).map(|i| (i * 3) as u8).collect();
        let full = tcp(&payload, 7, 0x18, 3, true, true);
        let info = parse_ipv4(&full).unwrap();
        let mut scratch = [0u8; 2000];
        let mut segs = Vec::new();
        segment_tcp(&full, &info, 1448, &mut scratch, |s| segs.push(s.to_vec())).unwrap();
        let mut c = Coalescer::new();
        assert!(c.is_empty());
        for s in &segs {
            assert!(c.push(s));
        }
        // The last segment was short and had PSH: nothing more joins.
        let more = tcp(&[1; 10], 7 + 4000, 0x10, 9, true, false);
        assert!(!c.push(&more));
        let m = c.take().unwrap();
        assert_eq!((m.segments, m.gso_size), (3, 1448));
        assert_eq!(m.hdr, tso_hdr(1448, false));
        let merged = &m.buf[COALESCE_HEADROOM..];
        let minfo = parse_ipv4(merged).expect("valid IP header");
        assert_eq!(minfo.total_len, full.len());
        // The same packet the sender started from, but for the IP ID (the first segment's).
        assert_eq!(
            merged[20..],
            full[20..],
            "TCP header, partial checksum and payload"
        );
        assert!(c.is_empty() && c.take().is_none());

        // One segment comes back untouched, checksum complete.
        assert!(c.push(&segs[0]));
        let one = c.take().unwrap();
        assert_eq!(one.segments, 1);
        assert!(one.hdr.is_plain());
        assert_eq!(&one.buf[COALESCE_HEADROOM..], &segs[0][..]);

        // Gaps, other flows, control flags and pure ACKs do not join.
        assert!(c.push(&segs[0]));
        assert!(!c.push(&segs[2]), "a gap in the sequence");
        let mut other = segs[1].clone();
        other[20..22].copy_from_slice(&3261u16.to_be_bytes());
        assert!(!c.push(&other), "another flow");
        let _ = c.take();
        for flags in [0x02, 0x01, 0x04, 0x20, 0x40, 0x80] {
            assert!(
                !c.push(&tcp(&[1; 100], 1, 0x10 | flags, 1, true, false)),
                "{flags:#x}"
            );
        }
        assert!(!c.push(&tcp(&[], 1, 0x10, 1, true, false)), "pure ACK");
        assert!(!c.push(&ipv4(IpProtocol::Udp, &[], &[0; 100])), "UDP");
        assert!(c.is_empty());
    }

    proptest::proptest! {
        /// Our streaming segmenter against tun-rs's batch `gso_split` (a port of
        /// wireguard-go's): byte for byte, on any payload length, segment size and flags.
        #[test]
        fn prop_segment_tcp_matches_tun_rs_gso_split(
            len in 1usize..12_000,
            gso in 1u16..3000,
            seq: u32,
            id: u16,
            flags in 0u8..=255,
            df: bool,
        ) {
            let payload: Vec<u8> = (0..len).map(|i| (i * 31 + 7) as u8).collect();
            let mut pkt = tcp(&payload, seq, flags, id, df, true);
            let info = parse_ipv4(&pkt).unwrap();
            let mut scratch = vec![0u8; 3100];
            let mut ours = Vec::new();
            segment_tcp(&pkt, &info, gso, &mut scratch, |s| ours.push(s.to_vec())).unwrap();

            let h = tso_hdr(gso, flags & 0x80 != 0);
            let theirs_hdr = tun_rs::VirtioNetHdr {
                flags: h.flags,
                gso_type: h.gso_type,
                hdr_len: 40,
                gso_size: gso,
                csum_start: 20,
                csum_offset: 16,
            };
            let count = len.div_ceil(usize::from(gso));
            let mut bufs = vec![vec![0u8; 3100]; count];
            let mut sizes = vec![0usize; count];
            let n = tun_rs::gso_split(&mut pkt, theirs_hdr, &mut bufs, &mut sizes, 0, false)
                .unwrap();
            proptest::prop_assert_eq!(n, ours.len());
            for (i, seg) in ours.iter().enumerate() {
                proptest::prop_assert_eq!(&seg[..], &bufs[i][..sizes[i]], "segment {}", i);
                proptest::prop_assert!(tcp_checksum_ok(seg));
            }
        }

        /// Cutting a super-frame into segments and merging them again gives the super-frame
        /// back (but for its IP ID, which the first segment carries).
        #[test]
        fn prop_coalescer_undoes_segment_tcp(
            len in 1usize..60_000,
            gso in 500u16..3000,
            seq: u32,
            push: bool,
        ) {
            let payload: Vec<u8> = (0..len).map(|i| (i * 13 + 1) as u8).collect();
            let flags = if push { 0x18 } else { 0x10 };
            let full = tcp(&payload, seq, flags, 77, true, true);
            let info = parse_ipv4(&full).unwrap();
            let mut scratch = vec![0u8; 3100];
            let mut c = Coalescer::new();
            let (mut count, mut joined) = (0, 0);
            segment_tcp(&full, &info, gso, &mut scratch, |s| {
                joined += usize::from(c.push(s));
                count += 1;
            })
            .unwrap();
            proptest::prop_assert_eq!(joined, count, "every segment joins");
            let m = c.take().unwrap();
            proptest::prop_assert_eq!(m.segments, count);
            let merged = &m.buf[COALESCE_HEADROOM..];
            // One segment comes back as it was sent, its checksum complete.
            let expected = if count == 1 { tcp(&payload, seq, flags, 77, true, false) } else { full };
            proptest::prop_assert_eq!(&merged[20..], &expected[20..]);
            proptest::prop_assert!(parse_ipv4(merged).is_ok());
        }
    }

    /// A segment the stack's TCP built larger than the MSS becomes a super-frame, whole
    /// ([`tso_frame`]) or as its headers alone ([`tso_headers`], the same virtio-net header
    /// and header bytes); SYN or RST set, or a payload of one MSS or less, does not.
    #[test]
    fn test_tso_frame_and_headers_agree_and_refuse() {
        let payload: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        for (flags, len, ok) in [
            (0x10, 3000, true),
            (0x18 | 0x01, 3000, true),
            (0x12, 3000, false),
            (0x14, 3000, false),
            (0x10, 1460, false),
        ] {
            let seg = tcp(&payload[..len], 7, flags, 1, true, false);
            let mut whole = vec![0u8; COALESCE_HEADROOM];
            whole.extend_from_slice(&seg);
            let mut heads = vec![0u8; COALESCE_HEADROOM];
            heads.extend_from_slice(&seg[..40]);
            let merged = tso_frame(&mut whole, 1460).map(|m| (m.hdr, m.segments));
            let hdr = tso_headers(&mut heads, len, 1460);
            assert_eq!(merged.is_some(), ok, "flags {flags:#x}, {len} bytes");
            assert_eq!(hdr.is_some(), ok, "flags {flags:#x}, {len} bytes");
            if let (Some((m, segments)), Some(h)) = (merged, hdr) {
                assert_eq!(m, h);
                assert_eq!(segments, 3);
                assert_eq!(&whole[..COALESCE_HEADROOM + 40], &heads[..]);
            }
        }
    }
}
