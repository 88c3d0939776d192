//! Router discovery and stateless address autoconfiguration (RFC 4861 6.3, RFC 4862 5.5) on
//! vmknics with `ipv6_autoconf` (ESXi's `esxcfg-vmknic -P`): Router Solicitations once the
//! link-local address is preferred (at most 3, 4 s apart, until an advertisement comes);
//! Router Advertisements from a link-local source with hop limit 255 give an address per
//! autonomous /64 prefix (the MAC's EUI-64 interface identifier) with its valid and preferred
//! lifetimes, the link's IPv6 MTU, ReachableTime and RetransTimer for the neighbour cache, and
//! a place in the default router list (RFC 4861 6.3.6).
//!
//! Every advertising router is kept with its lifetime. One of them is installed as the
//! netstack's IPv6 default gateway while no default gateway is configured (a configured one
//! always wins): the one in use while its neighbour entry is reachable or probably reachable
//! (any state but INCOMPLETE or FAILED), else the next probably reachable one in list order,
//! else (no router known reachable) the one in use while its reachability is still unknown,
//! and the next one round-robin once its resolution failed. So when Neighbour Unreachability
//! Detection gives up on the router in use, or its lifetime ends, traffic moves to the next.

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use ipnet::Ipv6Net;
use tracing::{debug, info, warn};
use vmkstack_routing::{is_link_local6, Gateway6};
use vmkstack_vmknic::neighbor::{NdUpdate, State};
use vmkstack_vmknic::{MacAddr, Port};

use super::addr6::{Addr6, Addr6Origin};
use super::ipv6::{self, Ipv6Info};
use super::{DropReason, Engine};

/// MAX_RTR_SOLICITATION_DELAY (RFC 4861 10): the most the first Router Solicitation, and the
/// first DAD probe after an interface comes up (RFC 4862 5.4.2), wait.
pub(super) const MAX_RTR_SOLICITATION_DELAY: Duration = Duration::from_secs(1);
/// MAX_RTR_SOLICITATIONS (RFC 4861 10).
const MAX_RTR_SOLICITATIONS: u8 = 3;
/// RTR_SOLICITATION_INTERVAL (RFC 4861 10).
const RTR_SOLICITATION_INTERVAL: Duration = Duration::from_secs(4);
/// The "two hours" rule of RFC 4862 5.5.3 (e).
const TWO_HOURS: Duration = Duration::from_secs(2 * 3600);
/// Router Solicitation and Advertisement types.
pub(super) const RS: u8 = 133;
pub(super) const RA: u8 = 134;
/// ff02::2.
const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);

/// A default router learned from an advertisement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Router6 {
    slot: usize,
    addr: Ipv6Addr,
    until: Instant,
}

/// Router Solicitations still to send on a vmknic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Solicit6 {
    slot: usize,
    sent: u8,
    at: Instant,
}

/// Router discovery state of one engine.
#[derive(Debug, Default)]
pub(super) struct RouterState {
    routers: Vec<Router6>,
    solicit: Vec<Solicit6>,
    /// The default gateway we installed from an advertisement (never a configured one).
    installed: Option<Gateway6>,
    /// BaseReachableTime last advertised (0: none yet).
    base_reachable_ms: u32,
    /// The neighbour cache's generation when the routers' reachability was last looked at.
    seen_generation: u64,
    /// xorshift64 state for the random start delays.
    rng: u64,
}

impl RouterState {
    /// Empty, with `seed` for the random delays (nodes started together draw differently).
    pub(super) fn seeded(seed: u64) -> RouterState {
        RouterState {
            rng: seed | 1,
            ..RouterState::default()
        }
    }

    /// A random delay in (0, MAX_RTR_SOLICITATION_DELAY], to the microsecond: hosts that come
    /// up together (a power cut, a switch reboot) do not all solicit at once.
    pub(super) fn start_delay(&mut self) -> Duration {
        let mut x = self.rng | 1;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        let max = MAX_RTR_SOLICITATION_DELAY.as_micros() as u64;
        Duration::from_micros(1 + x % max)
    }

    /// The table was replaced: what we installed in the old one is gone.
    pub(super) fn forget_installed(&mut self) {
        self.installed = None;
    }
}

/// `now + d`, saturating.
fn after(now: Instant, d: Duration) -> Instant {
    now.checked_add(d).unwrap_or(now)
}

/// A lifetime in seconds (0xffffffff: infinity).
fn lifetime(now: Instant, secs: u32) -> Option<Instant> {
    (secs != u32::MAX).then(|| after(now, Duration::from_secs(u64::from(secs))))
}

/// The EUI-64 interface identifier of `mac` after the /64 `prefix` (RFC 4291 appendix A).
pub(super) fn eui64(prefix: Ipv6Addr, mac: MacAddr) -> Ipv6Addr {
    let p = prefix.octets();
    let m = mac.0;
    Ipv6Addr::from([
        p[0],
        p[1],
        p[2],
        p[3],
        p[4],
        p[5],
        p[6],
        p[7],
        m[0] ^ 0x02,
        m[1],
        m[2],
        0xff,
        0xfe,
        m[3],
        m[4],
        m[5],
    ])
}

impl<P: Port> Engine<P> {
    /// Vmknic `slot`'s link-local address just became preferred: with autoconfiguration on,
    /// Router Solicitations start, the first after a random delay (RFC 4861 6.3.7).
    pub(super) fn start_solicit6(&mut self, slot: usize) {
        let now = self.clock;
        if !self
            .vmknics
            .get(slot)
            .is_some_and(|v| v.cfg.ipv6_autoconf && v.active())
        {
            return;
        }
        self.ra6.solicit.retain(|s| s.slot != slot);
        let at = after(now, self.ra6.start_delay());
        self.ra6.solicit.push(Solicit6 { slot, sent: 0, at });
    }

    /// Drops the routers and solicitations of vmknic `slot` (autoconfiguration turned off or
    /// the vmknic gone); a default gateway installed from them goes too.
    pub(super) fn forget_routers6(&mut self, slot: usize) {
        let before = self.ra6.routers.len();
        self.ra6.routers.retain(|r| r.slot != slot);
        self.ra6.solicit.retain(|s| s.slot != slot);
        if self.ra6.routers.len() != before {
            self.apply_ra_default();
        }
    }

    /// `addr` on vmknic `slot` advertised itself without the router flag: it leaves the
    /// default router list.
    pub(super) fn not_a_router6(&mut self, slot: usize, addr: Ipv6Addr) {
        let before = self.ra6.routers.len();
        self.ra6
            .routers
            .retain(|r| !(r.slot == slot && r.addr == addr));
        if self.ra6.routers.len() != before {
            info!(netstack = %self.name, router = %addr, "IPv6 neighbour is no longer a router");
            self.apply_ra_default();
        }
    }

    /// When router discovery next has work: a solicitation, or a router's lifetime.
    pub(super) fn router6_deadline(&self) -> Option<Instant> {
        let s = self.ra6.solicit.iter().map(|s| s.at);
        let r = self.ra6.routers.iter().map(|r| r.until);
        s.chain(r).min()
    }

    /// Solicitations due go out; routers whose lifetime ended are dropped (and the default
    /// gateway installed from them with them).
    pub(super) fn poll_router6(&mut self) {
        let now = self.clock;
        if self.router6_deadline().is_none_or(|t| now < t) {
            return;
        }
        let mut k = 0;
        while let Some(s) = self.ra6.solicit.get(k).copied() {
            let active = self
                .vmknics
                .get(s.slot)
                .is_some_and(|v| v.active() && v.cfg.ipv6_autoconf);
            if !active || s.sent >= MAX_RTR_SOLICITATIONS {
                self.ra6.solicit.remove(k);
                continue;
            }
            if now >= s.at {
                self.send_rs(s.slot);
                let e = &mut self.ra6.solicit[k];
                e.sent += 1;
                e.at = after(now, RTR_SOLICITATION_INTERVAL);
            }
            k += 1;
        }
        let before = self.ra6.routers.len();
        let vmknics = &self.vmknics;
        self.ra6.routers.retain(|r| {
            now < r.until
                && vmknics
                    .get(r.slot)
                    .is_some_and(|v| v.active() && v.cfg.ipv6_autoconf)
        });
        if self.ra6.routers.len() != before {
            info!(netstack = %self.name, "an IPv6 default router's lifetime ended");
            self.apply_ra_default();
        }
    }

    /// Sends a Router Solicitation from vmknic `slot`'s link-local address to all-routers,
    /// with our link-layer address.
    fn send_rs(&mut self, slot: usize) {
        let Some(v) = self.vmknics.get_mut(slot) else {
            return;
        };
        let src = v.cfg.link_local6().addr();
        if !self.local6.iter().any(|&(a, s)| a == src && s == slot) {
            return;
        }
        let mut p = [0u8; ipv6::IPV6_HDR + 16];
        ipv6::write_header(&mut p, src, ALL_ROUTERS, 16, 255);
        let m = &mut p[ipv6::IPV6_HDR..];
        m[0] = RS;
        m[8] = 1;
        m[9] = 1;
        m[10..16].copy_from_slice(&v.cfg.mac.0);
        ipv6::seal_icmp6(&mut p);
        debug!(vmknic = %v.cfg.id, "router solicitation");
        ipv6::send_frame(v, &mut self.tx_buf, ipv6::multicast_mac(ALL_ROUTERS), &p);
    }

    /// A Router Advertisement on vmknic `i` (RFC 4861 6.1.2 checks, 6.3.4 processing; RFC
    /// 4862 5.5.3 for its prefixes). Ignored unless the vmknic autoconfigures.
    pub(super) fn on_router_advertisement(&mut self, i: usize, msg: &[u8], info: Ipv6Info) {
        let valid = info.hop_limit == 255
            && is_link_local6(info.src)
            && msg.len() >= 16
            && msg.get(1) == Some(&0)
            && ipv6::options_ok(msg.get(16..).unwrap_or_default());
        if !valid {
            return self.count(i, DropReason::BadNdp);
        }
        let Some(v) = self.vmknics.get_mut(i) else {
            return;
        };
        // M and O for the DHCPv6 client (RFC 4861 4.2), whether or not the vmknic
        // autoconfigures.
        if v.cfg.ipv6_dhcp {
            v.ra_flags = Some((msg[5] & 0x80 != 0, msg[5] & 0x40 != 0));
        }
        if !v.cfg.ipv6_autoconf {
            return;
        }
        let (mac, link_mtu) = (v.cfg.mac, v.cfg.mtu);
        let now = self.clock;
        let be32 = |b: &[u8]| b.first_chunk::<4>().map_or(0, |b| u32::from_be_bytes(*b));
        let router_lifetime = u16::from_be_bytes([msg[6], msg[7]]);
        let reachable_ms = be32(&msg[8..12]);
        let retrans_ms = be32(&msg[12..16]);
        // An advertisement ends the solicitations on this vmknic.
        self.ra6.solicit.retain(|s| s.slot != i);

        if reachable_ms != 0 && reachable_ms != self.ra6.base_reachable_ms {
            self.ra6.base_reachable_ms = reachable_ms;
            let base = Duration::from_millis(u64::from(reachable_ms));
            self.neighbors6
                .set_reachable(ipv6::reachable_time(base, ipv6::seed(&[])));
        }
        if retrans_ms != 0 {
            self.neighbors6
                .set_retrans(Duration::from_millis(u64::from(retrans_ms)));
        }

        let mut opts = msg.get(16..).unwrap_or_default();
        let mut sll = None;
        while let (Some(&t), Some(&units)) = (opts.first(), opts.get(1)) {
            let len = usize::from(units) * 8;
            let Some(o) = opts.get(..len) else { break };
            match (t, len) {
                (1, 8) => {
                    sll = o
                        .get(2..8)
                        .and_then(|m| m.first_chunk::<6>())
                        .map(|m| MacAddr(*m))
                }
                (3, 32) => self.on_prefix(i, o, mac, now),
                (5, 8) => {
                    let mtu = be32(&o[4..8]);
                    if (1280..=u32::from(link_mtu)).contains(&mtu) {
                        if let Some(v) = self.vmknics.get_mut(i) {
                            if v.mtu6 != Some(mtu as u16) {
                                info!(vmknic = %v.cfg.id, mtu, "IPv6 MTU from a router advertisement");
                            }
                            v.mtu6 = Some(mtu as u16);
                        }
                    }
                }
                _ => {}
            }
            opts = &opts[len..];
        }
        if let Some(m) = sll.filter(|m| m.is_unicast()) {
            self.neighbors6
                .learn_nd(info.src, Some(m), i as u32, NdUpdate::Solicitation, now);
        }

        let known = self
            .ra6
            .routers
            .iter()
            .position(|r| r.slot == i && r.addr == info.src);
        match (known, router_lifetime) {
            (Some(k), 0) => {
                self.ra6.routers.remove(k);
                self.apply_ra_default();
            }
            (Some(k), secs) => {
                self.ra6.routers[k].until = after(now, Duration::from_secs(u64::from(secs)));
            }
            (None, 0) => {}
            (None, secs) => {
                self.ra6.routers.push(Router6 {
                    slot: i,
                    addr: info.src,
                    until: after(now, Duration::from_secs(u64::from(secs))),
                });
                self.apply_ra_default();
            }
        }
    }

    /// A Prefix Information option (`o`, 32 bytes) of an advertisement on vmknic `i`: with the
    /// autonomous flag, the /64's EUI-64 address is created (tentative) or its lifetimes
    /// updated under RFC 4862 5.5.3's rules.
    fn on_prefix(&mut self, i: usize, o: &[u8], mac: MacAddr, now: Instant) {
        let be32 = |b: &[u8]| b.first_chunk::<4>().map_or(0, |b| u32::from_be_bytes(*b));
        let (plen, flags) = (o[2], o[3]);
        let (valid, preferred) = (be32(&o[4..8]), be32(&o[8..12]));
        let prefix = o
            .get(16..32)
            .and_then(|p| p.first_chunk::<16>())
            .map_or(Ipv6Addr::UNSPECIFIED, |p| Ipv6Addr::from(*p));
        if flags & 0x40 == 0 || is_link_local6(prefix) || preferred > valid {
            return;
        }
        if plen != 64 {
            // Our interface identifiers are 64 bits (RFC 4862 5.5.3 (d)).
            warn!(prefix = %prefix, len = plen, "advertised prefix is not a /64: no address from it");
            return;
        }
        let addr = eui64(prefix, mac);
        let Ok(net) = Ipv6Net::new(addr, 64) else {
            return;
        };
        let valid_until = lifetime(now, valid);
        let preferred_until = lifetime(now, preferred);
        match self
            .addrs6
            .iter_mut()
            .find(|a| a.slot == i && a.net.addr() == addr)
        {
            Some(a) if a.origin == Addr6Origin::Autoconf => {
                // (e): a shorter valid lifetime is taken only above two hours, or when the
                // address would outlive it anyway.
                let remaining = a
                    .valid_until
                    .map_or(Duration::MAX, |t| t.saturating_duration_since(now));
                let received = Duration::from_secs(u64::from(valid));
                a.valid_until = if valid == u32::MAX || received > TWO_HOURS || received > remaining
                {
                    valid_until
                } else if remaining <= TWO_HOURS {
                    a.valid_until
                } else {
                    Some(after(now, TWO_HOURS))
                };
                a.preferred_until = preferred_until;
                if a.state == super::Addr6State::Deprecated && preferred != 0 {
                    a.state = super::Addr6State::Preferred;
                    self.apply_addrs6();
                }
            }
            Some(_) => {}
            None if valid == 0 => {}
            None => {
                let mut a = Addr6::tentative(i, net, Addr6Origin::Autoconf, now);
                a.valid_until = valid_until;
                a.preferred_until = preferred_until;
                info!(vmknic = %self.vmknics.get(i).map(|v| v.cfg.id.to_string()).unwrap_or_default(),
                    address = %net, valid_s = valid, preferred_s = preferred,
                    "IPv6 address from a router advertisement (tentative until DAD)");
                self.addrs6.push(a);
            }
        }
    }

    /// The neighbour cache moved (an entry changed state or went): the default router in use
    /// is looked at again, and replaced when it is no longer probably reachable. Cheap when
    /// nothing changed or no router is known.
    pub(super) fn check_routers6(&mut self) {
        let generation = self.neighbors6.generation();
        if self.ra6.routers.is_empty() || generation == self.ra6.seen_generation {
            return;
        }
        self.ra6.seen_generation = generation;
        self.apply_ra_default();
    }

    /// The learned default router in use: the default gateway we installed from an
    /// advertisement, while it is the table's default gateway.
    pub fn learned_default6(&self) -> Option<Gateway6> {
        self.ra6
            .installed
            .filter(|g| self.routing6.default_gateway() == Some(*g))
    }

    /// The advertised routers (address, vmknic slot, remaining lifetime) in list order.
    pub fn routers6(&self) -> impl Iterator<Item = (Ipv6Addr, usize, Duration)> + '_ {
        let now = self.clock;
        self.ra6
            .routers
            .iter()
            .map(move |r| (r.addr, r.slot, r.until.saturating_duration_since(now)))
    }

    /// The gateway for router `r` (its link-local address on its vmknic).
    fn gateway_of(&self, r: &Router6) -> Option<Gateway6> {
        Some(Gateway6::on(r.addr, self.vmknics.get(r.slot)?.cfg.id))
    }

    /// Which advertised router to use (RFC 4861 6.3.6; see the module docs), as an index
    /// into the router list.
    fn choose_router(&self) -> Option<usize> {
        let routers = &self.ra6.routers;
        let n = routers.len();
        if n == 0 {
            return None;
        }
        let state = |k: usize| {
            let r = routers.get(k)?;
            self.neighbors6.state_on(r.addr, r.slot as u32)
        };
        let probably = |k: usize| {
            matches!(
                state(k),
                Some(State::Reachable | State::Stale | State::Delay | State::Probe)
            )
        };
        let current = self
            .ra6
            .installed
            .and_then(|g| (0..n).find(|&k| self.gateway_of(&routers[k]) == Some(g)));
        if let Some(c) = current.filter(|&c| probably(c)) {
            return Some(c);
        }
        let start = current.map_or(0, |c| c + 1);
        if let Some(k) = (0..n).map(|k| (start + k) % n).find(|&k| probably(k)) {
            return Some(k);
        }
        match current {
            // Still being resolved, or not looked for yet: it stays.
            Some(c) if matches!(state(c), None | Some(State::Incomplete)) => Some(c),
            // Its resolution failed: the next one, round-robin.
            Some(c) => Some((c + 1) % n),
            None => Some(0),
        }
    }

    /// Installs the advertised router [`Engine::choose_router`] picks as the netstack's IPv6
    /// default gateway unless one is configured, or removes the one we installed when no
    /// router is left.
    pub(super) fn apply_ra_default(&mut self) {
        let current = self.routing6.default_gateway();
        if current.is_some() && current != self.ra6.installed {
            // A configured default gateway wins.
            self.ra6.installed = None;
            return;
        }
        let want = self
            .choose_router()
            .and_then(|k| self.gateway_of(self.ra6.routers.get(k)?));
        if want == current {
            return;
        }
        match want {
            Some(g) => match self.routing6.set_default_gateway(g) {
                Ok(()) => {
                    match current {
                        Some(old) => info!(netstack = %self.name, gateway = %g, previous = %old,
                            "IPv6 default router changed: the previous one is unreachable or gone"),
                        None => info!(netstack = %self.name, gateway = %g,
                            "IPv6 default router from a router advertisement"),
                    }
                    self.ra6.installed = Some(g);
                }
                Err(e) => warn!(netstack = %self.name, "advertised default router refused: {e}"),
            },
            None => {
                let _ = self.routing6.clear_default_gateway();
                info!(netstack = %self.name, "advertised IPv6 default router removed");
                self.ra6.installed = None;
            }
        }
    }
}
