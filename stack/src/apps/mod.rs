//! Applications of the stack's own endpoint, apart from the data plane: each uses the engine
//! only through [`Endpoint`] (smoltcp sockets with the routing core's source address, IP
//! packets sent through the routing core, and the echo replies and failed packets the engine
//! keeps for diagnostics).
//!
//! - [`ping`]: ICMP echo from the stack (`vmkping`);
//! - [`tcp_probe`]: a TCP connect test (`nc -z`);
//! - [`port_forward`]: kernel listeners relayed through the stack (`vmkstack forward`);
//! - [`storage_probe`]: iSCSI and NFS checks from the stack (`vmkstack probe`), and
//!   [`iscsi_read`], the read test of `probe iscsi --read-test`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

use smoltcp::iface::{SocketHandle, SocketSet};
use vmkstack_routing::VmknicId;
use vmkstack_vmknic::Port;

use crate::engine::{EchoReply, Egress, Engine, FailedPacket, Sent, SocketError};

pub mod dhcp;
pub mod dhcp6;
pub mod iscsi_read;
pub mod ping;
pub mod port_forward;
pub mod storage_probe;
pub mod tcp_probe;

/// What an application may do with the stack.
pub trait Endpoint {
    /// smoltcp's sockets.
    fn sockets(&mut self) -> &mut SocketSet<'static>;
    /// Opens a TCP connection to `remote` from the egress vmknic's address (or `via`'s).
    fn tcp_connect(
        &mut self,
        remote: SocketAddr,
        via: Option<VmknicId>,
        rx_buf: usize,
        tx_buf: usize,
    ) -> Result<SocketHandle, SocketError>;
    /// Opens a TCP connection to `remote` from `source`, an enabled vmknic's address.
    fn tcp_connect_from(
        &mut self,
        remote: SocketAddr,
        source: IpAddr,
        rx_buf: usize,
        tx_buf: usize,
    ) -> Result<SocketHandle, SocketError>;
    /// Runs smoltcp and routes what it sent (after a socket changed, to send promptly).
    fn poll_local(&mut self);
    /// Sets the time of the work that follows (the engine reads no clock of its own).
    fn set_time(&mut self, now: Instant);
    /// The way out toward `dst` (through `via` when given).
    fn egress_for(&self, dst: Ipv4Addr, via: Option<VmknicId>) -> Result<Egress, SocketError>;
    /// The way out to a neighbour named by hand, bypassing the routing table (`via`'s, or
    /// the vmknic whose subnet holds it).
    fn egress_to_neighbor(&self, next_hop: Ipv4Addr, via: Option<VmknicId>) -> Option<Egress>;
    /// True when `ip` is one of the stack's own addresses.
    fn is_local(&self, ip: Ipv4Addr) -> bool;
    /// Sends an IP packet the application built, out of `out`.
    fn send_ip(&mut self, pkt: &[u8], out: &Egress) -> Sent;
    /// Takes the echo replies to [`crate::engine::ECHO_IDENT`] that arrived.
    fn take_echo_replies(&mut self, f: impl FnMut(EchoReply));
    /// Takes the stack's own packets that ARP could not deliver.
    fn take_failed(&mut self, f: impl FnMut(FailedPacket));
    /// The TTL of the last ICMP first-fragment from `peer` (0 if none).
    fn fragment_ttl(&self, peer: Ipv4Addr) -> u8;
    /// What the neighbour table knows of `ip`: `None` if nothing, `Some(true)` if its MAC,
    /// `Some(false)` if ARP is pending or failed.
    fn neighbor_resolved(&self, ip: Ipv4Addr, now: Instant) -> Option<bool>;
}

impl<P: Port> Endpoint for Engine<P> {
    fn sockets(&mut self) -> &mut SocketSet<'static> {
        Engine::sockets(self)
    }

    fn tcp_connect(
        &mut self,
        remote: SocketAddr,
        via: Option<VmknicId>,
        rx_buf: usize,
        tx_buf: usize,
    ) -> Result<SocketHandle, SocketError> {
        Engine::tcp_connect(self, remote, via, rx_buf, tx_buf)
    }

    fn tcp_connect_from(
        &mut self,
        remote: SocketAddr,
        source: IpAddr,
        rx_buf: usize,
        tx_buf: usize,
    ) -> Result<SocketHandle, SocketError> {
        Engine::tcp_connect_from(self, remote, source, rx_buf, tx_buf)
    }

    fn poll_local(&mut self) {
        Engine::poll_local(self)
    }

    fn set_time(&mut self, now: Instant) {
        Engine::set_time(self, now)
    }

    fn egress_for(&self, dst: Ipv4Addr, via: Option<VmknicId>) -> Result<Egress, SocketError> {
        Engine::egress_for(self, dst, via)
    }

    fn egress_to_neighbor(&self, next_hop: Ipv4Addr, via: Option<VmknicId>) -> Option<Egress> {
        Engine::egress_to_neighbor(self, next_hop, via)
    }

    fn is_local(&self, ip: Ipv4Addr) -> bool {
        Engine::is_local(self, ip)
    }

    fn send_ip(&mut self, pkt: &[u8], out: &Egress) -> Sent {
        Engine::send_ip(self, pkt, out)
    }

    fn take_echo_replies(&mut self, f: impl FnMut(EchoReply)) {
        Engine::take_echo_replies(self, f)
    }

    fn take_failed(&mut self, f: impl FnMut(FailedPacket)) {
        Engine::take_failed(self, f)
    }

    fn fragment_ttl(&self, peer: Ipv4Addr) -> u8 {
        Engine::fragment_ttl(self, peer)
    }

    fn neighbor_resolved(&self, ip: Ipv4Addr, now: Instant) -> Option<bool> {
        // Listing allocates, but this runs only when a ping or probe times out.
        self.neighbors()
            .entries(now)
            .iter()
            .find(|e| e.ip == ip)
            .map(|e| e.mac.is_some())
    }
}
