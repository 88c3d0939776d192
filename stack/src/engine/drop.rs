//! Why the data plane dropped a frame or a packet: the router's reasons (RFC 1812's checks,
//! routing, forwarding, offloads) and the link layer's ([`LinkDrop`]), under one set of names
//! that counters, listings and logs use.

use vmkstack_vmknic::LinkDrop;

macro_rules! drop_reasons {
    ($($(#[doc = $doc:literal])* $name:ident => $str:literal,)*) => {
        /// Why a frame or packet was dropped (also used as counter index).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum DropReason {
            $($(#[doc = $doc])* $name,)*
        }

        impl DropReason {
            /// Every reason, in `index` order (the order listings show them in).
            pub const ALL: [DropReason; Self::COUNT] = [$(DropReason::$name,)*];
            /// Number of reasons (the length of a counter array).
            pub const COUNT: usize = [$($str,)*].len();

            /// The snake_case name used in counters and listings, e.g. `not_for_us`.
            pub fn as_str(&self) -> &'static str {
                match self {
                    $(DropReason::$name => $str,)*
                }
            }
        }
    };
}

drop_reasons! {
    /// Shorter than its headers.
    Truncated => "truncated",
    /// Destination MAC neither ours nor broadcast.
    NotForUs => "not_for_us",
    /// EtherType other than IPv4 or ARP.
    UnknownEthertype => "unknown_ethertype",
    /// Malformed or unsupported ARP packet.
    BadArp => "bad_arp",
    /// ARP request or reply about an address that is not ours.
    ArpNotForUs => "arp_not_for_us",
    /// Malformed IPv4 header.
    BadIpv4 => "bad_ipv4",
    /// Wrong header checksum.
    BadChecksum => "bad_checksum",
    /// Source or destination never forwarded (0/8, 127/8, broadcast, multicast).
    Martian => "martian",
    /// TTL would reach zero.
    TtlExceeded => "ttl_exceeded",
    /// No route to the destination.
    NoRoute => "no_route",
    /// The next hop does not answer ARP.
    NeighborUnreachable => "neighbor_unreachable",
    /// A bounded queue or table is full.
    QueueFull => "queue_full",
    /// Larger than a buffer or the egress MTU.
    TooBig => "too_big",
    /// An IP fragment that cannot be part of a valid datagram.
    Fragment => "fragment",
    /// An IPv4 header with options (not forwarded).
    IpOptions => "ip_options",
    /// The interface is disabled.
    Disabled => "disabled",
    /// A packet to forward while IP forwarding is off.
    ForwardingOff => "forwarding_off",
    /// A virtio-net header that does not match its frame.
    BadOffload => "bad_offload",
    /// Malformed or unsupported IPv6 header (or IPv6 on a vmknic without IPv6).
    BadIpv6 => "bad_ipv6",
    /// Malformed ICMPv6 message or wrong checksum.
    BadIcmpv6 => "bad_icmpv6",
    /// Neighbour Discovery message failing RFC 4861's checks.
    BadNdp => "bad_ndp",
    /// Neighbour Solicitation for an address that is not ours.
    NdpNotForUs => "ndp_not_for_us",
    /// An IPv6 packet for us whose extension headers are cut short or refused (a Routing
    /// header with segments left, an option whose type says discard, Hop-by-Hop not first).
    BadIpv6Ext => "bad_ipv6_ext",
    /// A data-plane worker could not hand a frame to the main loop: its queue was full.
    HandoffFull => "handoff_full",
    /// A DHCPv6 answer for a vmknic's client that is malformed (cut options, bad checksum, no
    /// server identifier, larger than 1500 bytes).
    BadDhcp6 => "bad_dhcp6",
    /// Anything else.
    Other => "other",
}

impl DropReason {
    /// Position in `ALL` (a counter index below `COUNT`).
    pub fn index(self) -> usize {
        self as usize
    }
}

impl From<LinkDrop> for DropReason {
    fn from(r: LinkDrop) -> DropReason {
        match r {
            LinkDrop::Truncated => DropReason::Truncated,
            LinkDrop::NotForUs => DropReason::NotForUs,
            LinkDrop::UnknownEthertype => DropReason::UnknownEthertype,
            LinkDrop::BadArp => DropReason::BadArp,
            LinkDrop::ArpNotForUs => DropReason::ArpNotForUs,
            LinkDrop::QueueFull => DropReason::QueueFull,
            LinkDrop::TooBig => DropReason::TooBig,
            LinkDrop::Other => DropReason::Other,
        }
    }
}

impl std::fmt::Display for DropReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_link_drops_keep_their_names() {
        let link = [
            (LinkDrop::Truncated, "truncated"),
            (LinkDrop::NotForUs, "not_for_us"),
            (LinkDrop::UnknownEthertype, "unknown_ethertype"),
            (LinkDrop::BadArp, "bad_arp"),
            (LinkDrop::ArpNotForUs, "arp_not_for_us"),
            (LinkDrop::QueueFull, "queue_full"),
            (LinkDrop::TooBig, "too_big"),
            (LinkDrop::Other, "other"),
        ];
        for (l, name) in link {
            assert_eq!(DropReason::from(l).as_str(), name);
        }
        let mut names = std::collections::HashSet::new();
        for (k, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), k);
            assert!(names.insert(r.as_str()), "duplicate {r}");
        }
        assert_eq!(DropReason::Other.index(), DropReason::COUNT - 1);
    }
}
