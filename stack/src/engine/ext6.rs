//! IPv6 extension headers on packets for our own addresses (RFC 8200 4): the chain is walked
//! header by header to the upper layer. Hop-by-Hop (first only) and Destination Options have
//! their options checked: Pad1 and PadN are skipped, any other option is unknown here and its
//! type's two high bits say what to do (skip; discard; discard with Parameter Problem code 2;
//! the same unless the destination is multicast). A Routing header with Segments Left 0 is
//! skipped; with Segments Left above 0 we would have to route the packet on, which a host
//! does not (RFC 5095 for Type 0, RFC 8200 4.4 for the others): Parameter Problem code 0
//! pointing at its Routing Type. A Fragment header ends the walk: the fragment goes to the
//! reassembler (`packet::reasm6`), and the datagram put together is walked again. An atomic
//! fragment (offset 0, M clear; RFC 6946) is skipped like any other header.
//!
//! The walk never reads past the packet: a header cut short is `Malformed`, counted as
//! `bad_ipv6_ext` and dropped. Forwarded packets are not walked (a router reads only the fixed
//! header).

/// Hop-by-Hop Options.
pub(super) const HOP_BY_HOP: u8 = 0;
/// Routing.
const ROUTING: u8 = 43;
/// Fragment.
pub(super) const FRAGMENT: u8 = 44;
/// Destination Options.
const DEST_OPTS: u8 = 60;
/// Length of the fixed header.
const HDR: usize = 40;

/// True for the extension headers this walk knows.
pub(super) fn is_ext(next_header: u8) -> bool {
    matches!(next_header, HOP_BY_HOP | ROUTING | FRAGMENT | DEST_OPTS)
}

use crate::packet::Fragment6 as Frag;

/// Where a chain of extension headers ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Chain {
    /// The upper-layer protocol (or an unknown next header).
    pub(super) upper: u8,
    /// Where it starts.
    pub(super) upper_at: usize,
    /// The Next Header field that names it.
    pub(super) naming_field: usize,
    /// Set when a (non-atomic) Fragment header ended the walk.
    pub(super) frag: Option<Frag>,
}

/// Why a chain is not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ChainError {
    /// A header cut short: dropped and counted.
    Malformed,
    /// An option whose type says "discard" (silently).
    Discard,
    /// Discarded with an ICMPv6 Parameter Problem of `code` pointing at byte `pointer`.
    Problem {
        /// 0: erroneous header field; 1: unrecognized Next Header; 2: unrecognized option.
        code: u8,
        /// Offset in the packet of the field at fault.
        pointer: u32,
    },
}

/// Walks the extension headers of the IPv6 packet `ip` (fixed header first, cut to its
/// length) to the upper layer; `multicast`: its destination is a multicast group.
pub(super) fn walk(ip: &[u8], multicast: bool) -> Result<Chain, ChainError> {
    let mut next = *ip.get(6).ok_or(ChainError::Malformed)?;
    let mut naming_field = 6;
    let mut at = HDR;
    loop {
        let len = match next {
            HOP_BY_HOP | DEST_OPTS | ROUTING => {
                if next == HOP_BY_HOP && at != HDR {
                    // Hop-by-Hop only right after the fixed header (RFC 8200 4.1).
                    return Err(ChainError::Problem {
                        code: 1,
                        pointer: naming_field as u32,
                    });
                }
                let units = usize::from(*ip.get(at + 1).ok_or(ChainError::Malformed)?);
                let len = (units + 1) * 8;
                let h = ip.get(at..at + len).ok_or(ChainError::Malformed)?;
                if next == ROUTING {
                    if h[3] != 0 {
                        return Err(ChainError::Problem {
                            code: 0,
                            pointer: (at + 2) as u32,
                        });
                    }
                } else {
                    options(h, at, multicast)?;
                }
                len
            }
            FRAGMENT => {
                let h = ip.get(at..at + 8).ok_or(ChainError::Malformed)?;
                let field = u16::from_be_bytes([h[2], h[3]]);
                let frag = Frag {
                    at,
                    naming_field,
                    next_header: h[0],
                    offset: usize::from(field >> 3) * 8,
                    more: field & 1 == 1,
                    id: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
                };
                if frag.offset != 0 || frag.more {
                    return Ok(Chain {
                        upper: FRAGMENT,
                        upper_at: at,
                        naming_field,
                        frag: Some(frag),
                    });
                }
                8
            }
            upper => {
                return Ok(Chain {
                    upper,
                    upper_at: at,
                    naming_field,
                    frag: None,
                })
            }
        };
        next = ip[at];
        naming_field = at;
        at += len;
    }
}

/// Checks the options of a Hop-by-Hop or Destination Options header `h` found at `at`
/// (RFC 8200 4.2).
fn options(h: &[u8], at: usize, multicast: bool) -> Result<(), ChainError> {
    let mut k = 2;
    while k < h.len() {
        let t = h[k];
        if t == 0 {
            k += 1;
            continue;
        }
        let len = usize::from(*h.get(k + 1).ok_or(ChainError::Malformed)?);
        if k + 2 + len > h.len() {
            return Err(ChainError::Malformed);
        }
        if t != 1 {
            // Unknown (we implement none beyond padding): the action bits decide.
            let problem = ChainError::Problem {
                code: 2,
                pointer: (at + k) as u32,
            };
            match t >> 6 {
                0 => {}
                1 => return Err(ChainError::Discard),
                2 => return Err(problem),
                _ if multicast => return Err(ChainError::Discard),
                _ => return Err(problem),
            }
        }
        k += 2 + len;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixed header naming `first`, then `rest`.
    fn packet(first: u8, rest: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; HDR];
        p[0] = 0x60;
        p[4..6].copy_from_slice(&(rest.len() as u16).to_be_bytes());
        p[6] = first;
        p[7] = 64;
        p.extend_from_slice(rest);
        p
    }

    #[test]
    fn test_parse_chain_to_the_upper_layer() {
        // Hop-by-Hop (PadN) → Destination Options (Pad1s, an option to skip) → Routing with
        // Segments Left 0 → atomic fragment → UDP.
        let mut rest = vec![DEST_OPTS, 0, 1, 4, 0, 0, 0, 0];
        rest.extend_from_slice(&[ROUTING, 0, 0, 0, 0x1e, 1, 0xaa, 0]);
        rest.extend_from_slice(&[FRAGMENT, 0, 0, 0, 0, 0, 0, 0]);
        rest.extend_from_slice(&[17, 0, 0, 0, 0, 0, 0, 9]);
        rest.extend_from_slice(&[0; 8]);
        let p = packet(HOP_BY_HOP, &rest);
        assert_eq!(
            walk(&p, false),
            Ok(Chain {
                upper: 17,
                upper_at: HDR + 32,
                naming_field: HDR + 24,
                frag: None
            })
        );
    }

    #[test]
    fn test_parse_fragment_ends_the_walk() {
        let rest = [58, 0, 0x05, 0x39, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3];
        let p = packet(FRAGMENT, &rest);
        let c = walk(&p, false);
        assert_eq!(
            c.map(|c| c.frag),
            Ok(Some(Frag {
                at: HDR,
                naming_field: 6,
                next_header: 58,
                offset: 0x538 & !7,
                more: true,
                id: 0xdead_beef
            }))
        );
    }

    #[test]
    fn test_parse_refusals() {
        // Routing header with Segments Left 2: pointer at its Routing Type.
        let p = packet(ROUTING, &[17, 0, 0, 2, 0, 0, 0, 0]);
        assert_eq!(
            walk(&p, false),
            Err(ChainError::Problem {
                code: 0,
                pointer: 42
            })
        );
        // Hop-by-Hop after another header: unrecognized next header at the field naming it.
        let p = packet(DEST_OPTS, &[HOP_BY_HOP, 0, 1, 4, 0, 0, 0, 0]);
        assert_eq!(
            walk(&p, false),
            Err(ChainError::Problem {
                code: 1,
                pointer: 40
            })
        );
        // Unknown options: 00 skipped, 01 discarded, 10 a problem, 11 a problem unless the
        // destination is multicast.
        for (t, unicast, multicast) in [
            (0x07u8, Ok(17), Ok(17)),
            (0x47, Err(ChainError::Discard), Err(ChainError::Discard)),
            (
                0x87,
                Err(ChainError::Problem {
                    code: 2,
                    pointer: 42,
                }),
                Err(ChainError::Problem {
                    code: 2,
                    pointer: 42,
                }),
            ),
            (
                0xc7,
                Err(ChainError::Problem {
                    code: 2,
                    pointer: 42,
                }),
                Err(ChainError::Discard),
            ),
        ] {
            let p = packet(DEST_OPTS, &[17, 0, t, 4, 0, 0, 0, 0]);
            assert_eq!(walk(&p, false).map(|c| c.upper), unicast, "{t:#x}");
            assert_eq!(walk(&p, true).map(|c| c.upper), multicast, "{t:#x}");
        }
        // Cut short: a header past the packet, an option past its header.
        let p = packet(DEST_OPTS, &[17, 1, 1, 4, 0, 0, 0, 0]);
        assert_eq!(walk(&p, false), Err(ChainError::Malformed));
        let p = packet(DEST_OPTS, &[17, 0, 1, 9, 0, 0, 0, 0]);
        assert_eq!(walk(&p, false), Err(ChainError::Malformed));
        let p = packet(FRAGMENT, &[17, 0, 0]);
        assert_eq!(walk(&p, false), Err(ChainError::Malformed));
        assert_eq!(walk(&[], false), Err(ChainError::Malformed));
    }
}
