//! IPv4 fragmentation (RFC 791): splitting a datagram into fragments that fit an MTU, with
//! the options each fragment keeps.

use smoltcp::wire::{Ipv4Packet, IPV4_HEADER_LEN};

use super::{parse_ipv4, PacketError};

/// Longest IPv4 header (IHL 15).
const IPV4_MAX_HEADER_LEN: usize = 60;

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

#[cfg(test)]
mod tests {
    use smoltcp::wire::{IpProtocol, UdpPacket};

    use super::*;
    use crate::packet::tests::{ipv4, rewrite, DST, PACKET_BYTES, SRC};
    use crate::packet::Ipv4Info;

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
}
