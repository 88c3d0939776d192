//! The forwarding path's per-packet toolbox: IPv4 header validation, martian addresses, TTL
//! decrement with an incremental checksum update (RFC 1624), ICMP errors (RFC 792, RFC 1191,
//! RFC 1812 4.3.2), fragmentation (RFC 791), the offloads a virtio-net header asks for
//! (finishing a partial checksum, cutting a TCP super-frame into segments) and a token bucket
//! to rate-limit ICMP errors.
//!
//! Everything here is pure and works on caller-owned buffers: nothing allocates, nothing panics
//! on packet contents, and headers are read through `smoltcp::wire` views made with
//! `new_checked`.

use std::net::Ipv4Addr;
use std::time::Instant;

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    checksum, Icmpv4DstUnreachable, Icmpv4Message, Icmpv4Packet, Icmpv4TimeExceeded, IpProtocol,
    Ipv4Packet, Ipv4Repr, IPV4_HEADER_LEN,
};
use thiserror::Error;
use vmkstack_vmknic::{Gso, VnetHdr, ETH_HDR, VNET_HDR_LEN};

/// Length of an ICMP error header (type, code, checksum, 4 bytes unused or next-hop MTU).
const ICMP_HEADER_LEN: usize = 8;
/// Longest IPv4 header (IHL 15).
const IPV4_MAX_HEADER_LEN: usize = 60;

/// Largest ICMP error a router sends, IP header included (RFC 1812 4.3.2.3).
pub const ICMP_ERROR_MAX_LEN: usize = 576;
/// TTL of the ICMP errors this router originates.
pub const ICMP_ERROR_TTL: u8 = 64;

/// Why a packet is not forwarded (the stack maps these to counters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum PacketError {
    /// Shorter than an IPv4 header, or than the header length it announces.
    #[error("truncated IPv4 header")]
    Truncated,
    /// The version field is not 4.
    #[error("IP version is not 4")]
    BadVersion,
    /// IHL below 5, or malformed IPv4 options.
    #[error("bad IPv4 header length or options")]
    BadHeaderLength,
    /// The header checksum does not verify.
    #[error("bad IPv4 header checksum")]
    BadChecksum,
    /// Total length below the header length or beyond the received bytes, or a fragment
    /// that would end beyond 65535 bytes.
    #[error("bad IPv4 total length")]
    BadTotalLength,
    /// The source address is never forwarded (see [`is_martian`]).
    #[error("martian source address")]
    MartianSource,
    /// The destination address is never forwarded (see [`is_martian`]).
    #[error("martian destination address")]
    MartianDestination,
    /// [`fragment`] was asked to split a DF packet, or the MTU (or scratch buffer) cannot
    /// carry the header plus 8 bytes of data.
    #[error("packet cannot be fragmented")]
    CannotFragment,
    /// A virtio-net header that does not match its packet (checksum offsets outside it, a
    /// super-frame that is not TCP/IPv4, a segment size below `TCP_MIN_MSS`), or a kind of offload the
    /// daemon never enabled.
    #[error("virtio-net header does not match the packet")]
    BadOffload,
    /// [`segment_tcp`]'s scratch buffer cannot hold a segment.
    #[error("TCP super-frame cannot be segmented")]
    CannotSegment,
}

/// What the forwarding path needs from a validated IPv4 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Info {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Time to live.
    pub ttl: u8,
    /// Protocol number of the payload (1 ICMP, 6 TCP, 17 UDP, ...).
    pub protocol: u8,
    /// Header length in bytes, options included (20..=60).
    pub header_len: usize,
    /// Total length in bytes from the header; trailing link padding is beyond it.
    pub total_len: usize,
    /// The "don't fragment" flag.
    pub dont_frag: bool,
    /// The "more fragments" flag.
    pub more_frags: bool,
    /// Fragment offset, in bytes.
    pub frag_offset: u16,
    /// Whether the header carries options (`header_len > 20`).
    pub has_options: bool,
}

impl Ipv4Info {
    /// Refuses a martian source or destination (see [`is_martian`]).
    pub fn check_addresses(&self) -> Result<(), PacketError> {
        if is_martian(self.src) {
            Err(PacketError::MartianSource)
        } else if is_martian(self.dst) {
            Err(PacketError::MartianDestination)
        } else {
            Ok(())
        }
    }
}

/// Validates an IPv4 packet (no Ethernet header): version 4, IHL >= 5 and within the buffer,
/// header checksum, total length <= buffer (trailing Ethernet padding allowed and ignored).
pub fn parse_ipv4(pkt: &[u8]) -> Result<Ipv4Info, PacketError> {
    let ver_ihl = match pkt.first() {
        Some(&byte) if pkt.len() >= IPV4_HEADER_LEN => byte,
        _ => return Err(PacketError::Truncated),
    };
    if ver_ihl >> 4 != 4 {
        return Err(PacketError::BadVersion);
    }
    let header_len = usize::from(ver_ihl & 0x0f) * 4;
    if header_len < IPV4_HEADER_LEN {
        return Err(PacketError::BadHeaderLength);
    }
    let header = pkt.get(..header_len).ok_or(PacketError::Truncated)?;
    if checksum::data(header) != !0 {
        return Err(PacketError::BadChecksum);
    }
    // What `new_checked` can still refuse is a total length below the header or beyond `pkt`.
    let packet = Ipv4Packet::new_checked(pkt).map_err(|_| PacketError::BadTotalLength)?;
    Ok(Ipv4Info {
        src: packet.src_addr(),
        dst: packet.dst_addr(),
        ttl: packet.hop_limit(),
        protocol: packet.next_header().into(),
        header_len,
        total_len: usize::from(packet.total_len()),
        dont_frag: packet.dont_frag(),
        more_frags: packet.more_frags(),
        frag_offset: packet.frag_offset(),
        has_options: header_len > IPV4_HEADER_LEN,
    })
}

/// Addresses never forwarded, as source or destination: 0.0.0.0/8, 127/8, 169.254/16
/// (link-local), 224/4 multicast, 240/4 incl. 255.255.255.255. (Destination also: the
/// directed broadcast is the caller's business.)
pub fn is_martian(addr: Ipv4Addr) -> bool {
    let [first, ..] = addr.octets();
    first == 0 || addr.is_loopback() || addr.is_link_local() || first >= 224
}

/// Decrements TTL by one and updates the header checksum incrementally (RFC 1624), in place.
/// Caller has checked ttl > 1; a packet that does not parse or has TTL 0 is left unchanged.
pub fn decrement_ttl(pkt: &mut [u8]) {
    let Ok(mut packet) = Ipv4Packet::new_checked(pkt) else {
        return;
    };
    let ttl = packet.hop_limit();
    let Some(new_ttl) = ttl.checked_sub(1) else {
        return;
    };
    let protocol = packet.next_header().into();
    let old_word = u16::from_be_bytes([ttl, protocol]);
    let new_word = u16::from_be_bytes([new_ttl, protocol]);
    // RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), which never yields the -0 of RFC 1141.
    let sum = checksum::combine(&[!packet.checksum(), !old_word, new_word]);
    packet.set_hop_limit(new_ttl);
    packet.set_checksum(!sum);
}

/// ICMP errors a router sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpError {
    /// Time Exceeded, TTL expired in transit (type 11 code 0).
    TimeExceeded,
    /// Destination Unreachable, net unreachable (type 3 code 0): no route.
    NetUnreachable,
    /// Destination Unreachable, host unreachable (type 3 code 1): neighbour unresolved.
    HostUnreachable,
    /// Destination Unreachable, fragmentation needed and DF set (type 3 code 4), with the
    /// next-hop MTU (RFC 1191).
    FragNeeded {
        /// MTU of the next-hop link.
        mtu: u16,
    },
    /// Destination Unreachable, port unreachable (type 3 code 3).
    PortUnreachable,
}

impl IcmpError {
    /// ICMP type, code and the value of bytes 6-7 (next-hop MTU or zero).
    fn encoding(self) -> (Icmpv4Message, u8, u16) {
        use Icmpv4DstUnreachable as Unreachable;
        let unreachable =
            |code: Unreachable, mtu| (Icmpv4Message::DstUnreachable, code.into(), mtu);
        match self {
            IcmpError::TimeExceeded => {
                let code = Icmpv4TimeExceeded::TtlExpired.into();
                (Icmpv4Message::TimeExceeded, code, 0)
            }
            IcmpError::NetUnreachable => unreachable(Unreachable::NetUnreachable, 0),
            IcmpError::HostUnreachable => unreachable(Unreachable::HostUnreachable, 0),
            IcmpError::FragNeeded { mtu } => unreachable(Unreachable::FragRequired, mtu),
            IcmpError::PortUnreachable => unreachable(Unreachable::PortUnreachable, 0),
        }
    }
}

/// Whether an ICMP error may be sent about `original` (RFC 1812 4.3.2.7): not about an ICMP
/// error message (only echo request/reply and other queries may trigger one), not about a
/// non-first fragment, not when the original's source is martian/broadcast/multicast or its
/// destination is broadcast/multicast. An original that does not parse gets no error either.
pub fn may_send_icmp_error(original: &[u8]) -> bool {
    let Ok(info) = parse_ipv4(original) else {
        return false;
    };
    if info.frag_offset != 0
        || is_martian(info.src)
        || info.dst.is_multicast()
        || info.dst.is_broadcast()
    {
        return false;
    }
    if info.protocol != u8::from(IpProtocol::Icmp) {
        return true;
    }
    let payload = original
        .get(info.header_len..info.total_len)
        .unwrap_or_default();
    match Icmpv4Packet::new_checked(payload).map(|icmp| icmp.msg_type()) {
        Ok(
            Icmpv4Message::EchoReply
            | Icmpv4Message::EchoRequest
            | Icmpv4Message::RouterAdvert
            | Icmpv4Message::RouterSolicit
            | Icmpv4Message::Timestamp
            | Icmpv4Message::TimestampReply,
        ) => true,
        // Information request/reply (15, 16) and address mask request/reply (17, 18).
        Ok(Icmpv4Message::Unknown(15..=18)) => true,
        // Errors, unknown types (treated as errors, like Linux) and runt ICMP messages.
        _ => false,
    }
}

/// Writes into `out` a complete IPv4 packet from `src` to the original's source: IP header
/// (TTL 64, DF clear, id `ident`), the ICMP error (type/code per kind; FragNeeded carries the
/// next-hop MTU in bytes 6-7 per RFC 1191), and as much of the original datagram as fits in
/// 576 bytes total and in `out` (at least its header + 8 bytes, or all of a shorter original).
/// Returns the length, or 0 if `out` is too small or the original is unparseable.
pub fn write_icmp_error(
    out: &mut [u8],
    kind: IcmpError,
    original: &[u8],
    src: Ipv4Addr,
    ident: u16,
) -> usize {
    let Ok(info) = parse_ipv4(original) else {
        return 0;
    };
    let room = out
        .len()
        .min(ICMP_ERROR_MAX_LEN)
        .saturating_sub(IPV4_HEADER_LEN + ICMP_HEADER_LEN);
    let quote_len = info.total_len.min(room);
    if quote_len < info.total_len.min(info.header_len + 8) {
        return 0;
    }
    let icmp_len = ICMP_HEADER_LEN + quote_len;
    let (Some(quote), Some(buf)) = (
        original.get(..quote_len),
        out.get_mut(..IPV4_HEADER_LEN + icmp_len),
    ) else {
        return 0;
    };

    let repr = Ipv4Repr {
        src_addr: src,
        dst_addr: info.src,
        next_header: IpProtocol::Icmp,
        payload_len: icmp_len,
        hop_limit: ICMP_ERROR_TTL,
    };
    let mut ip = Ipv4Packet::new_unchecked(&mut *buf);
    repr.emit(&mut ip, &ChecksumCapabilities::ignored());
    ip.set_ident(ident);
    ip.set_dont_frag(false);
    ip.fill_checksum();

    let Some((icmp_header, icmp_data)) = ip.payload_mut().split_at_mut_checked(ICMP_HEADER_LEN)
    else {
        return 0;
    };
    let (msg_type, code, mtu) = kind.encoding();
    let [mtu_hi, mtu_lo] = mtu.to_be_bytes();
    icmp_header.copy_from_slice(&[msg_type.into(), code, 0, 0, 0, 0, mtu_hi, mtu_lo]);
    icmp_data.copy_from_slice(quote);
    match Icmpv4Packet::new_checked(ip.payload_mut()) {
        Ok(mut icmp) => icmp.fill_checksum(),
        Err(_) => return 0,
    }
    IPV4_HEADER_LEN + icmp_len
}

/// Copies the options flagged "copied" (RFC 791) from `options` into `out`, zero-padded (End
/// of Option List) to a multiple of 4 bytes, and returns the padded length.
fn copy_options(options: &[u8], out: &mut [u8]) -> Result<usize, PacketError> {
    let mut len = 0;
    let mut rest = options;
    while let Some(&kind) = rest.first() {
        let opt_len = match kind {
            0 => break,
            1 => 1,
            _ => usize::from(*rest.get(1).ok_or(PacketError::BadHeaderLength)?),
        };
        let option = rest
            .get(..opt_len)
            .filter(|_| kind == 1 || opt_len >= 2)
            .ok_or(PacketError::BadHeaderLength)?;
        if kind & 0x80 != 0 {
            out.get_mut(len..len + opt_len)
                .ok_or(PacketError::BadHeaderLength)?
                .copy_from_slice(option);
            len += opt_len;
        }
        rest = rest.get(opt_len..).unwrap_or_default();
    }
    Ok(len.next_multiple_of(4))
}

/// Splits `pkt` (a valid IPv4 packet without DF, header_len + payload) into fragments that fit
/// `mtu`: each fragment's payload is a multiple of 8 bytes except the last's; the first keeps
/// all options, later ones only those flagged "copied" (RFC 791); an incoming fragment keeps
/// its offsets and MF on all but its true last piece. Each fragment is built in `scratch`
/// (at least `mtu` bytes) and passed to `emit`. A packet that already fits is emitted as is.
/// Returns the number of fragments; on error nothing has been emitted.
pub fn fragment(
    pkt: &[u8],
    mtu: u16,
    scratch: &mut [u8],
    mut emit: impl FnMut(&[u8]),
) -> Result<usize, PacketError> {
    let info = parse_ipv4(pkt)?;
    let datagram = pkt.get(..info.total_len).ok_or(PacketError::Truncated)?;
    if info.total_len <= usize::from(mtu) {
        emit(datagram);
        return Ok(1);
    }
    if info.dont_frag {
        return Err(PacketError::CannotFragment);
    }
    let (header, data) = datagram
        .split_at_checked(info.header_len)
        .ok_or(PacketError::Truncated)?;
    if usize::from(info.frag_offset) + data.len() > usize::from(u16::MAX) {
        return Err(PacketError::BadTotalLength);
    }
    let (fixed, options) = header
        .split_at_checked(IPV4_HEADER_LEN)
        .ok_or(PacketError::Truncated)?;
    let mut later = [0u8; IPV4_MAX_HEADER_LEN];
    let (later_fixed, later_options) = later.split_at_mut(IPV4_HEADER_LEN);
    later_fixed.copy_from_slice(fixed);
    let later_len = IPV4_HEADER_LEN + copy_options(options, later_options)?;
    let later = later.get(..later_len).ok_or(PacketError::BadHeaderLength)?;

    let room = usize::from(mtu).min(scratch.len());
    // Later headers are never longer than the first, so they carry at least as much data.
    if room.saturating_sub(header.len()) & !7 == 0 {
        return Err(PacketError::CannotFragment);
    }
    let mut offset = 0;
    let mut count = 0;
    while offset < data.len() {
        let hdr = if count == 0 { header } else { later };
        let rest = data.get(offset..).unwrap_or_default();
        let chunk = rest.get(..(room - hdr.len()) & !7).unwrap_or(rest);
        let last = chunk.len() == rest.len();
        let len = hdr.len() + chunk.len();
        let (Some(buf), Ok(header_len), Ok(total_len), Ok(frag_offset)) = (
            scratch.get_mut(..len),
            u8::try_from(hdr.len()),
            u16::try_from(len),
            u16::try_from(usize::from(info.frag_offset) + offset),
        ) else {
            return Err(PacketError::CannotFragment);
        };
        // `buf` is exactly `hdr.len() + chunk.len()` long.
        let (buf_header, buf_data) = buf.split_at_mut(hdr.len());
        buf_header.copy_from_slice(hdr);
        buf_data.copy_from_slice(chunk);
        let mut frag = Ipv4Packet::new_unchecked(&mut *buf);
        frag.set_header_len(header_len);
        frag.set_total_len(total_len);
        frag.set_dont_frag(false);
        frag.set_more_frags(!last || info.more_frags);
        frag.set_frag_offset(frag_offset);
        frag.fill_checksum();
        emit(buf);
        offset += chunk.len();
        count += 1;
    }
    Ok(count)
}

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
/// else (UFO, TCPv6, USO, which the daemon never enables) is [`PacketError::BadOffload`].
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
        Gso::Other(_) => return Err(PacketError::BadOffload),
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
    mut emit: impl FnMut(&[u8]),
) -> Result<usize, PacketError> {
    const CWR: u8 = 0x80;
    const PSH: u8 = 0x08;
    const FIN: u8 = 0x01;
    if info.protocol != 6 || gso_size == 0 {
        return Err(PacketError::BadOffload);
    }
    let hl = info.header_len;
    let thl = tcp_header_len(pkt, info)?;
    let headers = pkt.get(..hl + thl).ok_or(PacketError::Truncated)?;
    let payload = pkt
        .get(hl + thl..info.total_len)
        .ok_or(PacketError::Truncated)?;
    let gso = usize::from(gso_size);
    if scratch.len() < headers.len() + gso.min(payload.len()) {
        return Err(PacketError::CannotSegment);
    }
    let id = u16::from_be_bytes([headers[4], headers[5]]);
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
        let (Some(buf), Ok(total_len), Ok(tcp_len)) = (
            scratch.get_mut(..len),
            u16::try_from(len),
            u32::try_from(len - hl),
        ) else {
            return Err(PacketError::CannotSegment);
        };
        buf[..headers.len()].copy_from_slice(headers);
        buf[headers.len()..].copy_from_slice(chunk);
        let mut ip = Ipv4Packet::new_unchecked(&mut *buf);
        ip.set_total_len(total_len);
        ip.set_ident(id.wrapping_add(i as u16));
        ip.fill_checksum();
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
        let pseudo = checksum::pseudo_header_v4(&info.src, &info.dst, IpProtocol::Tcp, tcp_len);
        let sum = !checksum::combine(&[pseudo, checksum::data(tcp)]);
        tcp[16..18].copy_from_slice(&sum.to_be_bytes());
        emit(buf);
    }
    Ok(count)
}

/// The smallest TCP segment size Linux uses (`TCP_MIN_MSS`); a super-frame asking for less is
/// refused.
pub const TCP_MIN_MSS: u16 = 88;

/// Bytes a [`Coalescer`] keeps before the packet: a virtio-net header and an Ethernet header.
pub const COALESCE_HEADROOM: usize = VNET_HDR_LEN + ETH_HDR;

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
            let pkt = &mut buf[COALESCE_HEADROOM..];
            let mut ip = Ipv4Packet::new_unchecked(&mut *pkt);
            ip.set_total_len(u16::try_from(len).unwrap_or(u16::MAX));
            ip.fill_checksum();
            let (src, dst) = (ip.src_addr(), ip.dst_addr());
            let tcp_len = (len - hl) as u32;
            let pseudo = checksum::pseudo_header_v4(&src, &dst, IpProtocol::Tcp, tcp_len);
            pkt[hl + 16..hl + 18].copy_from_slice(&pseudo.to_be_bytes());
            hdr = VnetHdr {
                flags: VnetHdr::NEEDS_CSUM,
                gso_type: VnetHdr::GSO_TCPV4,
                hdr_len: (ETH_HDR + hl + self.thl) as u16,
                gso_size,
                csum_start: (ETH_HDR + hl) as u16,
                csum_offset: 16,
            };
        }
        Some(Merged {
            segments,
            hdr,
            gso_size,
            buf,
        })
    }
}

/// One token, in the bucket's unit (token-nanoseconds per second).
const TOKEN: u128 = 1_000_000_000;

/// A token bucket for ICMP errors (RFC 1812 4.3.2.8): `rate` per second with a `burst`; pure:
/// time is passed in. It starts full.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    rate_per_sec: u32,
    /// Capacity, in [`TOKEN`] units.
    capacity: u128,
    /// Current credit, in [`TOKEN`] units (exact: no float drift).
    credit: u128,
    last: Option<Instant>,
}

impl RateLimiter {
    /// A bucket refilled at `rate_per_sec` tokens per second, holding at most `burst`.
    pub fn new(rate_per_sec: u32, burst: u32) -> Self {
        let capacity = u128::from(burst) * TOKEN;
        Self {
            rate_per_sec,
            capacity,
            credit: capacity,
            last: None,
        }
    }

    /// Takes one token if there is one at `now`. Time going backwards refills nothing.
    pub fn allow(&mut self, now: Instant) -> bool {
        if let Some(last) = self.last {
            let refill = now
                .saturating_duration_since(last)
                .as_nanos()
                .saturating_mul(u128::from(self.rate_per_sec));
            self.credit = self.credit.saturating_add(refill).min(self.capacity);
        }
        self.last = Some(self.last.map_or(now, |last| last.max(now)));
        if self.credit >= TOKEN {
            self.credit -= TOKEN;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use smoltcp::wire::{Icmpv4Repr, UdpPacket};

    use super::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const DST: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 2);
    const ROUTER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 254);

    /// 198.18.0.1 -> 198.19.0.2, UDP 53 -> 53, id 0x1234, DF, TTL 64, 2 bytes of data.
    static PACKET_BYTES: [u8; 30] = [
        0x45, 0x00, 0x00, 0x1e, 0x12, 0x34, 0x40, 0x00, 0x40, 0x11, 0x9c, 0x72, 0xc6, 0x12, 0x00,
        0x01, 0xc6, 0x13, 0x00, 0x02, 0x00, 0x35, 0x00, 0x35, 0x00, 0x0a, 0x00, 0x00, 0xaa, 0xbb,
    ];

    /// The same packet after one hop: TTL 63, checksum 0x9d72.
    static FORWARDED_BYTES: [u8; 30] = [
        0x45, 0x00, 0x00, 0x1e, 0x12, 0x34, 0x40, 0x00, 0x3f, 0x11, 0x9d, 0x72, 0xc6, 0x12, 0x00,
        0x01, 0xc6, 0x13, 0x00, 0x02, 0x00, 0x35, 0x00, 0x35, 0x00, 0x0a, 0x00, 0x00, 0xaa, 0xbb,
    ];

    /// SRC -> DST, id 0xbeef, TTL 64, no DF, with `options` (a multiple of 4 bytes).
    fn ipv4(proto: IpProtocol, options: &[u8], payload: &[u8]) -> Vec<u8> {
        let header_len = IPV4_HEADER_LEN + options.len();
        let mut buf = vec![0u8; header_len + payload.len()];
        let repr = Ipv4Repr {
            src_addr: SRC,
            dst_addr: DST,
            next_header: proto,
            payload_len: payload.len(),
            hop_limit: 64,
        };
        let caps = ChecksumCapabilities::ignored();
        repr.emit(&mut Ipv4Packet::new_unchecked(&mut buf), &caps);
        buf[IPV4_HEADER_LEN..header_len].copy_from_slice(options);
        buf[header_len..].copy_from_slice(payload);
        rewrite(&mut buf, |p| {
            p.set_header_len(header_len as u8);
            p.set_total_len((header_len + payload.len()) as u16);
            p.set_ident(0xbeef);
            p.set_dont_frag(false);
        });
        buf
    }

    /// Changes header fields, then refills the header checksum.
    fn rewrite(buf: &mut [u8], f: impl FnOnce(&mut Ipv4Packet<&mut [u8]>)) {
        let mut packet = Ipv4Packet::new_unchecked(buf);
        f(&mut packet);
        packet.fill_checksum();
    }

    fn addrs(list: &str) -> impl Iterator<Item = Ipv4Addr> + '_ {
        list.split_whitespace().map(|a| a.parse().unwrap())
    }

    #[test]
    fn test_parse() {
        let info = parse_ipv4(&PACKET_BYTES).unwrap();
        let expected = Ipv4Info {
            src: SRC,
            dst: DST,
            ttl: 64,
            protocol: 17,
            header_len: 20,
            total_len: 30,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
            has_options: false,
        };
        assert_eq!(info, expected);
        assert_eq!(info.check_addresses(), Ok(()));
        // Ethernet padding after the datagram is ignored.
        let padded = [&PACKET_BYTES[..], &[0; 16]].concat();
        assert_eq!(parse_ipv4(&padded), Ok(info));
    }

    #[test]
    fn test_parse_options() {
        let pkt = ipv4(IpProtocol::Udp, &[0x94, 0x04, 0x00, 0x00], &[1; 8]); // Router Alert
        let info = parse_ipv4(&pkt).unwrap();
        assert!(info.has_options);
        assert_eq!((info.header_len, info.total_len), (24, 32));
    }

    #[test]
    fn test_parse_truncated() {
        assert_eq!(parse_ipv4(&[]), Err(PacketError::Truncated));
        assert_eq!(parse_ipv4(&PACKET_BYTES[..19]), Err(PacketError::Truncated));
        let pkt = ipv4(IpProtocol::Udp, &[0x94, 0x04, 0x00, 0x00], &[]);
        assert_eq!(parse_ipv4(&pkt[..22]), Err(PacketError::Truncated));
    }

    #[test]
    fn test_parse_bad_version_ihl_checksum() {
        for (byte, value, error) in [
            (0, 0x65, PacketError::BadVersion),
            (0, 0x44, PacketError::BadHeaderLength),
            (11, 0x73, PacketError::BadChecksum),
        ] {
            let mut pkt = PACKET_BYTES;
            pkt[byte] = value;
            assert_eq!(parse_ipv4(&pkt), Err(error));
        }
    }

    #[test]
    fn test_parse_bad_total_length() {
        for total_len in [31, 19, 0] {
            let mut pkt = PACKET_BYTES;
            rewrite(&mut pkt, |p| p.set_total_len(total_len));
            assert_eq!(parse_ipv4(&pkt), Err(PacketError::BadTotalLength));
        }
    }

    #[test]
    fn test_martian() {
        let martians = "0.0.0.0 0.1.2.3 127.0.0.1 169.254.1.1 224.0.0.1 239.1.1.1 240.0.0.1 \
                        255.255.255.255";
        assert!(addrs(martians).all(is_martian));
        let fine = "198.18.0.1 198.19.255.255 1.0.0.0 223.255.255.255 169.253.0.1";
        assert!(!addrs(fine).any(is_martian));
        let mut info = parse_ipv4(&PACKET_BYTES).unwrap();
        info.dst = Ipv4Addr::BROADCAST;
        assert_eq!(info.check_addresses(), Err(PacketError::MartianDestination));
        info.src = Ipv4Addr::LOCALHOST;
        assert_eq!(info.check_addresses(), Err(PacketError::MartianSource));
    }

    #[test]
    fn test_decrement_ttl() {
        let mut pkt = PACKET_BYTES;
        decrement_ttl(&mut pkt);
        assert_eq!(pkt, FORWARDED_BYTES);
        // Not IPv4, or TTL 0: untouched, no panic.
        let mut short = [0x45u8; 10];
        decrement_ttl(&mut short);
        assert_eq!(short, [0x45; 10]);
        let mut zero = PACKET_BYTES;
        rewrite(&mut zero, |p| p.set_hop_limit(0));
        let before = zero;
        decrement_ttl(&mut zero);
        assert_eq!(zero, before);
    }

    #[test]
    fn test_decrement_ttl_random() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64; // xorshift: no rand in this crate
        let mut edges = 0;
        for i in 0..20_000 {
            let mut pkt = PACKET_BYTES;
            for byte in &mut pkt[..20] {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *byte = state as u8;
            }
            pkt[0] = 0x45;
            pkt[8] = pkt[8].max(2);
            rewrite(&mut pkt, |p| p.set_total_len(30));
            if i % 2 == 0 {
                // Steer the ident so that the header sums to 0xFFFF, i.e. a 0x0000 checksum,
                // after the decrement (i % 4 == 0) or before it.
                let mut probe = pkt;
                probe[8] -= u8::from(i % 4 == 0);
                probe[4..6].fill(0);
                probe[10..12].fill(0);
                let ident = !checksum::data(&probe[..20]);
                rewrite(&mut pkt, |p| p.set_ident(ident));
            }
            let mut expected = pkt;
            rewrite(&mut expected, |p| p.set_hop_limit(p.hop_limit() - 1));
            edges += usize::from(expected[10..12] == [0, 0] || pkt[10..12] == [0, 0]);
            decrement_ttl(&mut pkt);
            assert_eq!(pkt, expected, "round {i}");
            assert!(Ipv4Packet::new_checked(&pkt[..]).unwrap().verify_checksum());
        }
        assert!(edges >= 10_000, "{edges} edge cases");
    }

    /// Builds `kind` about `original` and checks the IP and ICMP headers and checksums.
    fn icmp_error(kind: IcmpError, original: &[u8]) -> Vec<u8> {
        let mut out = [0u8; 1500];
        let len = write_icmp_error(&mut out, kind, original, ROUTER, 0x4242);
        let ip = Ipv4Packet::new_checked(&out[..len]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!(usize::from(ip.total_len()), len);
        assert_eq!((ip.src_addr(), ip.dst_addr()), (ROUTER, SRC));
        assert_eq!(
            (ip.hop_limit(), ip.ident(), ip.dont_frag()),
            (64, 0x4242, false)
        );
        assert_eq!(ip.next_header(), IpProtocol::Icmp);
        assert!(Icmpv4Packet::new_checked(ip.payload())
            .unwrap()
            .verify_checksum());
        out[..len].to_vec()
    }

    #[test]
    fn test_emit_icmp_errors() {
        let original = ipv4(IpProtocol::Udp, &[], &[7; 40]);
        let cases = [
            (IcmpError::TimeExceeded, 11, 0, 0),
            (IcmpError::NetUnreachable, 3, 0, 0),
            (IcmpError::HostUnreachable, 3, 1, 0),
            (IcmpError::PortUnreachable, 3, 3, 0),
            (IcmpError::FragNeeded { mtu: 1400 }, 3, 4, 1400),
        ];
        for (kind, msg_type, code, mtu) in cases {
            let out = icmp_error(kind, &original);
            assert_eq!(out.len(), 28 + original.len());
            assert_eq!(out[20..22], [msg_type, code]);
            assert_eq!(out[26..28], u16::to_be_bytes(mtu));
            assert_eq!(out[28..], original[..]);
            let icmp = Icmpv4Packet::new_checked(&out[20..]).unwrap();
            let (header, data) = match Icmpv4Repr::parse(&icmp, &ChecksumCapabilities::default()) {
                Ok(Icmpv4Repr::DstUnreachable {
                    reason,
                    header,
                    data,
                }) => {
                    assert_eq!(u8::from(reason), code);
                    (header, data)
                }
                Ok(Icmpv4Repr::TimeExceeded {
                    reason,
                    header,
                    data,
                }) => {
                    assert_eq!(reason, Icmpv4TimeExceeded::TtlExpired);
                    (header, data)
                }
                other => panic!("{kind:?}: {other:?}"),
            };
            assert_eq!((header.src_addr, header.dst_addr), (SRC, DST));
            assert_eq!(
                (header.next_header, data),
                (IpProtocol::Udp, &original[20..])
            );
        }
    }

    #[test]
    fn test_emit_icmp_error_limits() {
        // A big original is quoted up to 576 bytes in all.
        let original = ipv4(IpProtocol::Udp, &[], &[9; 3980]);
        let out = icmp_error(IcmpError::FragNeeded { mtu: 1500 }, &original);
        assert_eq!(out.len(), ICMP_ERROR_MAX_LEN);
        assert_eq!(out[28..], original[..548]);
        // A small `out` still gets the header + 8 bytes; smaller than that gets nothing.
        let write = |out: &mut [u8], original: &[u8]| {
            write_icmp_error(out, IcmpError::TimeExceeded, original, ROUTER, 1)
        };
        let mut out = [0u8; 56];
        assert_eq!(write(&mut out, &original), 56);
        assert_eq!(out[28..], original[..28]);
        assert_eq!(write(&mut out[..55], &original), 0);
        // A short original is quoted whole; an unparseable one gets nothing.
        let short = ipv4(IpProtocol::Udp, &[], &[1, 2, 3]);
        assert_eq!(write(&mut out, &short), 51);
        assert_eq!(write(&mut out, &short[..22]), 0);
    }

    #[test]
    fn test_may_send_icmp_error() {
        assert!(may_send_icmp_error(&PACKET_BYTES));
        let echo = [8, 0, 0xf7, 0xff, 0, 0, 0, 0];
        assert!(may_send_icmp_error(&ipv4(IpProtocol::Icmp, &[], &echo)));
        for kind in [IcmpError::HostUnreachable, IcmpError::TimeExceeded] {
            assert!(!may_send_icmp_error(&icmp_error(kind, &PACKET_BYTES)));
        }
        assert!(!may_send_icmp_error(&ipv4(
            IpProtocol::Icmp,
            &[],
            &[8, 0, 0]
        )));
        assert!(!may_send_icmp_error(&PACKET_BYTES[..19]));

        let mut pkt = ipv4(IpProtocol::Udp, &[], &[0; 16]);
        rewrite(&mut pkt, |p| p.set_more_frags(true));
        assert!(may_send_icmp_error(&pkt), "first fragment");
        rewrite(&mut pkt, |p| p.set_frag_offset(1480));
        assert!(!may_send_icmp_error(&pkt), "later fragment");

        for dst in addrs("255.255.255.255 224.0.0.5") {
            let mut pkt = ipv4(IpProtocol::Udp, &[], &[0; 8]);
            rewrite(&mut pkt, |p| p.set_dst_addr(dst));
            assert!(!may_send_icmp_error(&pkt), "dst {dst}");
        }
        for src in addrs("0.0.0.0 127.0.0.1 224.0.0.1 255.255.255.255") {
            let mut pkt = ipv4(IpProtocol::Udp, &[], &[0; 8]);
            rewrite(&mut pkt, |p| p.set_src_addr(src));
            assert!(!may_send_icmp_error(&pkt), "src {src}");
        }
    }

    /// Fragments `pkt` at `mtu`, checks every fragment, and returns (headers, reassembled data).
    fn fragments(pkt: &[u8], mtu: u16) -> (Vec<Ipv4Info>, Vec<u8>) {
        let mut scratch = vec![0u8; usize::from(mtu)];
        let (mut infos, mut data) = (Vec::new(), Vec::new());
        let count = fragment(pkt, mtu, &mut scratch, |frag| {
            assert!(frag.len() <= usize::from(mtu));
            assert!(Ipv4Packet::new_checked(frag).unwrap().verify_checksum());
            let info = parse_ipv4(frag).unwrap();
            assert_eq!(info.total_len, frag.len());
            assert_eq!((&frag[4..6], &frag[12..20]), (&pkt[4..6], &pkt[12..20]));
            infos.push(info);
            data.extend_from_slice(&frag[info.header_len..]);
        });
        assert_eq!(count, Ok(infos.len()));
        (infos, data)
    }

    #[test]
    fn test_fragment_udp() {
        let mut udp: Vec<u8> = (0..4000u32).map(|i| (i * 7) as u8).collect();
        udp[..8].copy_from_slice(&[0x13, 0x88, 0x13, 0x89, 0x0f, 0xa0, 0, 0]);
        UdpPacket::new_checked(&mut udp[..])
            .unwrap()
            .fill_checksum(&SRC.into(), &DST.into());
        let pkt = ipv4(IpProtocol::Udp, &[], &udp);

        let (infos, data) = fragments(&pkt, 1500);
        let layout: Vec<_> = infos
            .iter()
            .map(|i| (i.frag_offset, i.total_len, i.more_frags))
            .collect();
        assert_eq!(
            layout,
            [(0, 1500, true), (1480, 1500, true), (2960, 1060, false)]
        );
        assert!(infos.iter().all(|i| i.frag_offset % 8 == 0 && !i.dont_frag));
        assert_eq!(data, udp);
        let reassembled = UdpPacket::new_checked(&data[..]).unwrap();
        assert!(reassembled.verify_checksum(&SRC.into(), &DST.into()));
    }

    #[test]
    fn test_fragment_fragment() {
        for more_frags in [true, false] {
            let payload: Vec<u8> = (0..2000u32).map(|i| i as u8).collect();
            let mut pkt = ipv4(IpProtocol::Udp, &[], &payload);
            rewrite(&mut pkt, |p| {
                p.set_frag_offset(2960);
                p.set_more_frags(more_frags);
            });
            let (infos, data) = fragments(&pkt, 1000);
            let layout: Vec<_> = infos
                .iter()
                .map(|i| (i.frag_offset, i.more_frags))
                .collect();
            assert_eq!(layout, [(2960, true), (3936, true), (4912, more_frags)]);
            assert_eq!(data, payload);
        }
    }

    #[test]
    fn test_fragment_options() {
        // Router Alert (copied) + NOP + Timestamp (not copied) + EOL padding = 16 bytes.
        let options = [0x94, 4, 0, 0, 1, 0x44, 8, 5, 0, 0, 0, 0, 0, 0, 0, 0];
        let pkt = ipv4(IpProtocol::Udp, &options, &[5; 1200]);
        let mut headers = Vec::new();
        fragment(&pkt, 576, &mut [0u8; 576], |f| {
            headers.push(f[20..usize::from(f[0] & 0x0f) * 4].to_vec())
        })
        .unwrap();
        assert_eq!(headers, [&options[..], &[0x94, 4, 0, 0], &[0x94, 4, 0, 0]]);
        let (_, data) = fragments(&pkt, 576);
        assert_eq!(data, [5; 1200]);
        // An option running past the header is refused before anything is emitted.
        let bad = ipv4(IpProtocol::Udp, &[0x44, 9, 5, 0], &[5; 1200]);
        let mut emitted = 0;
        let result = fragment(&bad, 576, &mut [0u8; 576], |_| emitted += 1);
        assert_eq!((result, emitted), (Err(PacketError::BadHeaderLength), 0));
    }

    #[test]
    fn test_fragment_unneeded_or_refused() {
        let padded = [&PACKET_BYTES[..], &[0; 16]].concat();
        let mut seen = Vec::new();
        let count = fragment(&padded, 1500, &mut [], |f| seen.extend_from_slice(f));
        assert_eq!((count, &seen[..]), (Ok(1), &PACKET_BYTES[..]));

        let frag = |pkt: &[u8], mtu| fragment(pkt, mtu, &mut [0u8; 1500], |_| ());
        let mut big = ipv4(IpProtocol::Udp, &[], &[0; 2000]);
        assert_eq!(frag(&big, 27), Err(PacketError::CannotFragment));
        assert_eq!(frag(&big, 28), Ok(250));
        rewrite(&mut big, |p| p.set_dont_frag(true));
        assert_eq!(frag(&big, 1500), Err(PacketError::CannotFragment));
        rewrite(&mut big, |p| {
            p.set_dont_frag(false);
            p.set_frag_offset(64000);
        });
        assert_eq!(frag(&big, 1500), Err(PacketError::BadTotalLength));
        assert_eq!(frag(&big[..30], 1500), Err(PacketError::BadTotalLength));
    }

    #[test]
    fn test_rate_limiter() {
        let start = Instant::now();
        let ms = |n| start + Duration::from_millis(n);
        let mut limiter = RateLimiter::new(10, 3);
        assert_eq!((0..5).filter(|_| limiter.allow(start)).count(), 3);
        // 10/s: one token per 100 ms, exactly.
        assert!(!limiter.allow(ms(99)));
        assert!(limiter.allow(ms(100)));
        assert!(!limiter.allow(ms(150)));
        assert!(limiter.allow(ms(200)));
        // Time going backwards refills nothing; a long pause refills only up to the burst.
        assert!(!limiter.allow(start));
        assert_eq!((0..10).filter(|_| limiter.allow(ms(3_600_000))).count(), 3);
        assert!(!RateLimiter::new(0, 0).allow(ms(1)));
    }

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
}
