//! One VMkernel interface (vmknic): its MAC address and TAP device rules. Ethernet, ARP and
//! the neighbour table join this crate with the data plane.

pub mod mac;
pub mod tap;

pub use mac::{MacAddr, MacParseError};
pub use tap::{validate_tap_name, TapNameError, MAX_IFNAME};

/// Smallest MTU a vmknic accepts (RFC 791's minimum datagram every host must take).
pub const MIN_MTU: u16 = 68;
/// Largest MTU a vmknic accepts (ESX's jumbo-frame limit).
pub const MAX_MTU: u16 = 9000;
/// MTU when none is configured.
pub const DEFAULT_MTU: u16 = 1500;
