//! The stack's own endpoint, as applications (port forwards, storage probes, `vmkping`,
//! `nc -z`) use it: smoltcp sockets bound to the egress vmknic's address, IP packets the stack
//! builds itself sent through the routing core, and what the engine kept for diagnostics
//! (echo replies with their TTL, packets ARP could not deliver). The applications live in
//! `crate::apps` and reach the engine only through this interface.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::{tcp, udp};
use smoltcp::wire::{IpAddress, IpEndpoint};
use vmkstack_routing::{is_link_local6, RouteError, VmknicId};
use vmkstack_vmknic::Port;

use super::echo::{EchoReply, FailedPacket};
use super::egress::{emit_ip, Emit};
use super::{index_of, ipv6, Engine, SocketError};
use crate::packet;

/// Where a packet the stack sends leaves: its vmknic, that vmknic's MTU, the next hop and the
/// source address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Egress {
    /// The egress vmknic's slot.
    pub slot: usize,
    /// Its MTU.
    pub mtu: u16,
    /// The neighbour ARP resolves.
    pub next_hop: Ipv4Addr,
    /// The source address to use.
    pub source: Ipv4Addr,
}

/// What became of a packet handed to [`Engine::send_ip`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Sent, waiting for ARP, or delivered to our own endpoint.
    Onward,
    /// Its next hop is known not to answer ARP.
    Unreachable,
    /// Dropped (and counted): a full queue, or larger than a buffer.
    Dropped,
}

impl<P: Port> Engine<P> {
    /// smoltcp's sockets, for applications.
    pub fn sockets(&mut self) -> &mut SocketSet<'static> {
        &mut self.sockets
    }

    /// Opens a TCP connection from the stack to `remote` (IPv4 or IPv6). The source address
    /// is the egress vmknic's, as the routing core chooses it, or `via`'s when given (ESX
    /// `-I vmkN`).
    pub fn tcp_connect(
        &mut self,
        remote: SocketAddr,
        via: Option<VmknicId>,
        rx_buf: usize,
        tx_buf: usize,
    ) -> Result<SocketHandle, SocketError> {
        let source = match remote.ip() {
            IpAddr::V4(dst) => IpAddr::V4(self.source_for(dst, via)?),
            IpAddr::V6(dst) => IpAddr::V6(self.source_for6(dst, via)?),
        };
        self.tcp_socket(remote, source, rx_buf, tx_buf)
    }

    /// Opens a TCP connection from the stack to `remote` with the source address `source`,
    /// which must be an enabled vmknic's (`nc -s ADDR`: the address chooses the vmknic) of the
    /// same family. The packets leave as the routing core decides, as for any other
    /// connection.
    pub fn tcp_connect_from(
        &mut self,
        remote: SocketAddr,
        source: IpAddr,
        rx_buf: usize,
        tx_buf: usize,
    ) -> Result<SocketHandle, SocketError> {
        match (remote.ip(), source) {
            (IpAddr::V4(dst), IpAddr::V4(src)) => {
                if !self.vmknics.iter().any(|v| v.active() && v.has_addr(src)) {
                    return Err(SocketError::NotLocal(source));
                }
                self.routing.explain(dst)?;
            }
            (IpAddr::V6(dst), IpAddr::V6(src)) => {
                if !self.local6.iter().any(|&(a, _)| a == src) {
                    return Err(SocketError::NotLocal(source));
                }
                if !is_link_local6(dst) {
                    self.routing6.explain(dst)?;
                }
            }
            (dst, src) => return Err(SocketError::Family { src, dst }),
        }
        self.tcp_socket(remote, source, rx_buf, tx_buf)
    }

    fn tcp_socket(
        &mut self,
        remote: SocketAddr,
        source: IpAddr,
        rx_buf: usize,
        tx_buf: usize,
    ) -> Result<SocketHandle, SocketError> {
        let mut sock = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; rx_buf]),
            tcp::SocketBuffer::new(vec![0; tx_buf]),
        );
        sock.set_nagle_enabled(false);
        let port = self.ephemeral_port();
        sock.connect(
            self.iface.context(),
            IpEndpoint::new(IpAddress::from(remote.ip()), remote.port()),
            IpEndpoint::new(IpAddress::from(source), port),
        )?;
        Ok(self.sockets.add(sock))
    }

    /// True when `a` is an IPv6 address (link-local included) of an active vmknic.
    pub fn has_addr6(&self, a: Ipv6Addr) -> bool {
        self.local6.iter().any(|&(x, _)| x == a)
    }

    /// The IPv6 source address for traffic to `dst`: `via`'s address on the prefix holding
    /// `dst` (else its link-local one), or the route's source. A link-local destination
    /// needs the vmknic named, as it is on every link.
    pub fn source_for6(
        &self,
        dst: Ipv6Addr,
        via: Option<VmknicId>,
    ) -> Result<Ipv6Addr, SocketError> {
        match via {
            Some(id) => {
                let v = self
                    .vmknics
                    .iter()
                    .find(|v| v.cfg.id == id && v.active())
                    .ok_or_else(|| {
                        let dst4 = Ipv4Addr::UNSPECIFIED;
                        super::down_or(&self.vmknics, via, dst4, None, SocketError::NoVmknic(id))
                    })?;
                if !v.cfg.ipv6_enabled() {
                    return Err(SocketError::NoIpv6(id));
                }
                let slot = index_of(&self.vmknics, id).unwrap_or(usize::MAX);
                ipv6::source6(v, slot, &self.local6, dst).ok_or(SocketError::NoIpv6(id))
            }
            None if is_link_local6(dst) => Err(SocketError::LinkLocalNeedsVmknic(dst)),
            None => Ok(self.routing6.explain(dst)?.source),
        }
    }

    /// Binds a UDP socket on the source address the routing core picks for `toward`.
    pub fn udp_bind(
        &mut self,
        toward: Ipv4Addr,
        via: Option<VmknicId>,
        port: u16,
    ) -> Result<SocketHandle, SocketError> {
        let source = self.source_for(toward, via)?;
        let meta = || vec![udp::PacketMetadata::EMPTY; 64];
        let mut sock = udp::Socket::new(
            udp::PacketBuffer::new(meta(), vec![0; 65536]),
            udp::PacketBuffer::new(meta(), vec![0; 65536]),
        );
        let port = if port == 0 {
            self.ephemeral_port()
        } else {
            port
        };
        sock.bind(IpEndpoint::new(IpAddress::Ipv4(source), port))?;
        Ok(self.sockets.add(sock))
    }

    fn ephemeral_port(&mut self) -> u16 {
        let p = self.next_port;
        self.next_port = if p == u16::MAX { 49152 } else { p + 1 };
        p
    }

    /// The source address for traffic to `dst`: the egress vmknic's (or `via`'s) address.
    pub fn source_for(
        &self,
        dst: Ipv4Addr,
        via: Option<VmknicId>,
    ) -> Result<Ipv4Addr, SocketError> {
        match via {
            Some(id) => self
                .vmknics
                .iter()
                .find(|v| v.cfg.id == id && v.active())
                .map(|v| v.addr_toward(dst))
                .ok_or_else(|| {
                    super::down_or(&self.vmknics, via, dst, None, SocketError::NoVmknic(id))
                }),
            None => self.routing.explain(dst).map(|e| e.source).map_err(|e| {
                let gw = self.routing.default_gateway();
                super::down_or(&self.vmknics, None, dst, gw, e.into())
            }),
        }
    }

    /// The way out for traffic the stack sends to `dst`, through `via` when given (ESX `-I`):
    /// on `via`'s subnet directly, else through the route or the default gateway if they
    /// leave by `via`, else on-link.
    pub fn egress_for(&self, dst: Ipv4Addr, via: Option<VmknicId>) -> Result<Egress, SocketError> {
        let gw = self.routing.default_gateway();
        let no_route = || {
            let e = SocketError::NoRoute(RouteError::NoRoute(dst));
            super::down_or(&self.vmknics, None, dst, gw, e)
        };
        let (slot, next_hop, source) = match via {
            None => {
                // The route's source; its vmknic's own gateway may then win over the default.
                let source = self.routing.lookup(dst).ok_or_else(no_route)?.source;
                let (out, next_hop) = self
                    .routing
                    .local_next_hop(source, dst)
                    .ok_or_else(no_route)?;
                let e = index_of(&self.vmknics, out).ok_or_else(no_route)?;
                (e, next_hop, source)
            }
            Some(id) => {
                let e = index_of(&self.vmknics, id).ok_or_else(|| {
                    super::down_or(&self.vmknics, via, dst, None, SocketError::NoVmknic(id))
                })?;
                let v = &self.vmknics[e];
                let on_link = |a: Ipv4Addr| v.cfg.addresses().any(|n| n.contains(&a));
                let next_hop = if on_link(dst) {
                    dst
                } else if let Some(r) = self
                    .routing
                    .lookup(dst)
                    .filter(|r| r.next_hop.vmknic() == id)
                {
                    r.next_hop.neighbor_for(dst)
                } else if let Some(gw) = v.cfg.gateway.filter(|g| on_link(*g)) {
                    // Its own default gateway (ESXi 6.5+) before the netstack's.
                    gw
                } else if let Some(gw) = self.routing.default_gateway().filter(|g| on_link(*g)) {
                    gw
                } else {
                    dst
                };
                (e, next_hop, v.addr_toward(next_hop))
            }
        };
        let mtu = self.vmknics.get(slot).map_or(0, |v| v.cfg.mtu);
        Ok(Egress {
            slot,
            mtu,
            next_hop,
            source,
        })
    }

    /// The way out to a neighbour named by hand (`vmkping -N`): the vmknic (`via`, or the
    /// lowest-numbered enabled one) whose subnet holds `next_hop`, whatever the routing table
    /// says. `None` when no such vmknic holds it.
    pub fn egress_to_neighbor(&self, next_hop: Ipv4Addr, via: Option<VmknicId>) -> Option<Egress> {
        let (slot, v) = self.vmknics.iter().enumerate().find(|(_, v)| {
            v.present()
                && v.cfg.enabled
                && via.is_none_or(|id| v.cfg.id == id)
                && v.cfg.addresses().any(|a| a.contains(&next_hop))
        })?;
        Some(Egress {
            slot,
            mtu: v.cfg.mtu,
            next_hop,
            source: v.addr_toward(next_hop),
        })
    }

    /// Sends an IP packet the stack built itself (`pkt`, checksums complete) out of `out`:
    /// fragmented when larger than its MTU, queued while ARP resolves. A packet for one of
    /// our own addresses goes into the local endpoint instead, as the VMkernel loops it.
    pub fn send_ip(&mut self, pkt: &[u8], out: &Egress) -> Sent {
        if let Ok(info) = packet::parse_ipv4(pkt) {
            if self.is_local(info.dst) {
                if !self.device.rx.push(pkt) {
                    return Sent::Dropped;
                }
                self.poll_local();
                return Sent::Onward;
            }
        }
        let Self {
            neighbors,
            vmknics,
            tx_buf,
            frag_buf,
            clock,
            ..
        } = self;
        let (e, next_hop, now) = (out.slot, out.next_hop, *clock);
        let mut result = Sent::Onward;
        let mut note = |r: Emit| match r {
            Emit::Unreachable => result = Sent::Unreachable,
            Emit::Dropped if result == Sent::Onward => result = Sent::Dropped,
            _ => {}
        };
        if pkt.len() <= usize::from(out.mtu) {
            note(emit_ip(neighbors, vmknics, tx_buf, e, next_hop, pkt, now));
        } else if packet::fragment(pkt, out.mtu, frag_buf, |f| {
            note(emit_ip(neighbors, vmknics, tx_buf, e, next_hop, f, now));
        })
        .is_err()
        {
            return Sent::Dropped;
        }
        result
    }

    /// Hands every echo reply to [`super::ECHO_IDENT`] that arrived since the last call to
    /// `f`.
    pub fn take_echo_replies(&mut self, f: impl FnMut(EchoReply)) {
        self.echo.take_replies(f);
    }

    /// Hands every packet of the stack's own that ARP could not deliver since the last call
    /// to `f`.
    pub fn take_failed(&mut self, f: impl FnMut(FailedPacket)) {
        self.echo.take_failed(f);
    }

    /// The TTL of the last ICMP first-fragment from `peer` (0 if none): the TTL of an echo
    /// reply smoltcp had to reassemble.
    pub fn fragment_ttl(&self, peer: Ipv4Addr) -> u8 {
        self.echo.fragment_ttl(peer)
    }
}
