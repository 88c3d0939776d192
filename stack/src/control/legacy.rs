//! Transitional (issue 10): the reply shapes that `netstack/ops.rs` still builds in
//! `vmknic_info`, `neighbor_info` and `stats`, with the daemon's own types inside. The control
//! plane no longer uses them: `apply` builds `vmkstack_api`'s plain types, whose JSON is the
//! same. Delete this file together with those three functions, and re-export
//! `vmkstack_api::{VmknicInfo, NeighborInfo, StatsInfo}` from `control` instead.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};
use vmkstack_routing::VmknicId;

use crate::counters::CountersView;

/// A vmknic as `vmknic_list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmknicInfo {
    /// `vmkN`.
    pub name: VmknicId,
    /// Port group.
    pub portgroup: String,
    /// Addresses, primary first, as `a.b.c.d/len`.
    pub addresses: Vec<ipnet::Ipv4Net>,
    /// MAC address.
    pub mac: String,
    /// MTU.
    pub mtu: u16,
    /// Enabled.
    pub enabled: bool,
    /// TAP device.
    pub tap: String,
    /// Bridge, if any.
    pub bridge: Option<String>,
    /// Namespace of the TAP's kernel side, if any.
    pub netns: Option<String>,
}

/// A neighbour as `neighbor_list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NeighborInfo {
    /// Address.
    pub ip: Ipv4Addr,
    /// MAC, once resolved.
    pub mac: Option<String>,
    /// vmknic it was learned on.
    pub vmknic: VmknicId,
    /// `reachable`, `incomplete` or `failed`.
    pub state: String,
    /// Seconds until it expires.
    pub expiry_s: Option<u64>,
}

/// Counters of one vmknic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsInfo {
    /// `vmkN`.
    pub vmknic: VmknicId,
    /// Its counters.
    pub counters: CountersView,
}
