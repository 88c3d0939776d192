//! ICMP errors (Linux's `icmp.c`): Time Exceeded, Net and Host Unreachable and Fragmentation
//! Needed about a packet we could not forward, built under RFC 1812's rules (never about an
//! ICMP error, a fragment other than the first, a broadcast or a martian), rate-limited, and
//! routed back like any packet the stack sends.

use std::net::Ipv4Addr;
use std::time::Instant;

use vmkstack_vmknic::Port;

use super::ingress::Ipv4Rx;
use super::Engine;
use crate::device::Ring;
use crate::packet::{self, IcmpError, RateLimiter};

impl<P: Port> Engine<P> {
    /// Sends an ICMP error of `kind` about `pkt` back toward its sender, from the address of
    /// the vmknic it came in on.
    pub(super) fn icmp_error(&mut self, pkt: &Ipv4Rx<'_>, kind: IcmpError) {
        let Some(v) = self.vmknics.get_mut(pkt.vmknic) else {
            return;
        };
        let source = |peer| Some(v.addr_toward(peer));
        if push_icmp(
            &mut self.deferred,
            &mut self.icmp_limit,
            &mut self.ident,
            self.clock,
            kind,
            pkt.ip(),
            source,
        ) {
            v.counters.icmp_errors += 1;
        }
        self.flush_deferred();
    }

    /// Routes the queued ICMP errors.
    pub(super) fn flush_deferred(&mut self) {
        while let Some(pkt) = self.deferred.front() {
            super::egress::route_local(
                &self.routing,
                &mut self.neighbors,
                &mut self.vmknics,
                &mut self.tx_buf,
                pkt,
                self.clock,
            );
            self.deferred.pop();
        }
    }
}

/// Builds an ICMP error about `original` into `deferred`, if allowed (RFC 1812 rules and the
/// rate limit). Its source is what `source(original_src)` picks: the address of the vmknic
/// facing the original sender, as Linux routers do. True when one was queued.
pub(super) fn push_icmp(
    deferred: &mut Ring,
    limit: &mut RateLimiter,
    ident: &mut u16,
    now: Instant,
    kind: IcmpError,
    original: &[u8],
    source: impl FnOnce(Ipv4Addr) -> Option<Ipv4Addr>,
) -> bool {
    if !packet::may_send_icmp_error(original) {
        return false;
    }
    let Ok(info) = packet::parse_ipv4(original) else {
        return false;
    };
    let Some(src) = source(info.src) else {
        return false;
    };
    if !limit.allow(now) {
        return false;
    }
    *ident = ident.wrapping_add(1);
    let slot = deferred.slot_size();
    let Some(buf) = deferred.reserve(slot) else {
        return false;
    };
    let n = packet::write_icmp_error(buf, kind, original, src, *ident);
    if n == 0 {
        return false;
    }
    deferred.commit(n);
    true
}
