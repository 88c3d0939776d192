//! One VMkernel interface (vmknic): its MAC address and TAP device rules. Ethernet, ARP and
//! the neighbour table join this crate with the data plane.

pub mod arp;
pub mod eth;
pub mod mac;
pub mod neighbor;
pub mod netdev;
pub mod port;
pub mod sys;
pub mod tap;
pub mod uring;
pub mod vnet;
pub mod writer;

pub use arp::{ArpAction, ArpOp, ArpRepr, ARP_FRAME_LEN};
pub use eth::{Ingress, LinkDrop, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETH_HDR};
pub use mac::{MacAddr, MacParseError};
pub use neighbor::{
    NeighborConfig, NeighborEntry, NeighborEvent, NeighborTable, Resolve, State as NeighborState,
};
pub use netdev::{LinkChange, LinkMonitor, LinkState, Netns};
pub use port::{MemPort, Port, RxBatch};
pub use tap::{validate_tap_name, TapNameError, MAX_IFNAME};
pub use tap::{Tap, TapError};
pub use uring::{TapPort, UringSizes, UringTap};
pub use vnet::{Gso, VnetHdr, VNET_HDR_LEN};
pub use writer::ThreadedTap;

/// Smallest MTU a vmknic accepts (RFC 791's minimum datagram every host must take).
pub const MIN_MTU: u16 = 68;
/// Largest MTU a vmknic accepts (ESX's jumbo-frame limit).
pub const MAX_MTU: u16 = 9000;
/// MTU when none is configured.
pub const DEFAULT_MTU: u16 = 1500;
