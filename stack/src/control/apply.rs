//! The state owner: the configuration (the store), the netstack it describes and the
//! applications that use it (forwards, pings, probes). It applies typed [`Command`]s, one
//! function per effect; a change is validated on a copy, saved, then applied to the running
//! data plane. The replies are `vmkstack_api`'s types, built here from the engine's public
//! views: the engine does not know the JSON layer.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use ipnet::{Ipv4Net, Ipv6Net};
use serde_json::{json, Value};
use tracing::{info, warn};
use vmkstack_api::capture::CaptureStart;
use vmkstack_api::StageInfo;
use vmkstack_api::{
    CountersInfo, ErrorKind, GatewayInfo, Ipv6AddressInfo, NeighborInfo, NetstackInfo, RawVmknic,
    RemoteError, Response, RouteExplanation, RouteInfo, RouteOrigin, StatsInfo, VmknicInfo,
};
use vmkstack_routing::{
    Explanation, Family, Gateway6, Origin, RouteEntry, RouteError, RouteErrorOf, RoutingTable,
    VmknicId,
};

use super::command::{CaptureSlot, Command, Ipv4Setting, StorageProbeKind, VmknicRef};
use super::store;
use crate::apps::ping::{PingError, PingId, PingSpec, Pings};
use crate::apps::port_forward::ForwardSpec;
use crate::apps::storage_probe::{Probe, Progress};
use crate::apps::tcp_probe::{ProbeError, ProbeId, ProbeSource, TcpProbes};
use crate::apps::{dhcp, dhcp6};
use crate::config::{
    Config, RawConfig, RawForward, RawNetstack, StaticRoute, StaticRoute6, IP_DHCP, MAX_NETSTACKS,
};
use crate::control::forwards::Forwards;
use crate::engine::Vmknic;
use crate::engine::{Capture, CaptureFilter, Counters, DropReason, MAX_CAPTURES, RING_BYTES};
use crate::metrics::Exposition;
use crate::netstack::{Netstack, StackError};
use vmkstack_vmknic::TapPort;

/// How long the TAP of a vmknic removed while holding a DHCP lease outlives it: a server
/// that reads the RELEASE after the TAP is gone cannot tell which interface it came from and
/// ignores it (dnsmasq does). The vmknic leaves its engine at once; only the device waits,
/// closed by the event loop's timers, so no netstack's data plane stalls.
const RELEASE_GRACE: Duration = Duration::from_millis(50);

/// Storage probes running at once.
const MAX_STORAGE_PROBES: usize = 16;

/// The daemon's state: the configuration (the store) and the netstack it describes.
pub(crate) struct Daemon {
    path: PathBuf,
    cfg: Config,
    /// The file's text as the daemon last loaded or saved it: a change through the control
    /// socket is refused while the file on disk differs (a hand edit not reloaded yet).
    loaded: String,
    /// The netstack (the event loop runs it).
    pub(crate) stack: Netstack,
    /// The port forwards, by netstack (the event loop polls them).
    pub(crate) forwards: Forwards,
    /// The pings and probes in flight, per netstack (by its index in `stack`).
    apps: Vec<Apps>,
    /// Control operations applied, by name (the metrics').
    ops: BTreeMap<&'static str, u64>,
    /// The DHCP clients of the vmknics whose address comes from DHCP (any netstack).
    dhcp: BTreeMap<VmknicId, dhcp::Client>,
    /// The DHCPv6 clients of the vmknics with `ipv6_dhcp` (any netstack; `apply/dhcp6.rs`).
    dhcp6: BTreeMap<VmknicId, dhcp6::Client>,
    /// A DHCP frame being built.
    dhcp_frame: Box<[u8]>,
    /// TAPs of removed vmknics kept open until their deadline ([`RELEASE_GRACE`]).
    lingering: Vec<(Instant, TapPort)>,
}

/// The pings and probes in flight on one netstack (their sockets are its engine's).
#[derive(Default)]
struct Apps {
    /// `vmkping`s in flight, and where each answer goes.
    pinger: Pings,
    pings: HashMap<PingId, Sender<Response>>,
    /// `nc -z` probes in flight, and where each answer goes.
    tcp_probes: TcpProbes,
    probes: HashMap<ProbeId, Sender<Response>>,
    storage: Vec<(Probe, Sender<Response>)>,
    /// `vmkping -6` requests in flight: destination, sequence, sent, deadline, answer.
    pings6: Vec<(std::net::Ipv6Addr, u16, Instant, Instant, Sender<Response>)>,
}

/// What applying a command gave.
pub(crate) enum Outcome {
    /// Answer now.
    Done(Result<Value, RemoteError>),
    /// The answer comes from the event loop later (pings, probes).
    Later,
}

mod dhcpv6;

fn invalid(msg: impl Into<String>) -> RemoteError {
    RemoteError::new(ErrorKind::Invalid, msg)
}

/// A refused routing change of either family as the control API's typed error.
fn route_error<F: Family>(e: RouteErrorOf<F>) -> RemoteError {
    let kind = match e {
        RouteErrorOf::GatewayUnreachable { .. } | RouteErrorOf::RouteGatewayUnreachable { .. } => {
            ErrorKind::GatewayUnreachable
        }
        RouteErrorOf::NoSuchRoute(_) | RouteErrorOf::NoDefaultGateway => ErrorKind::NotFound,
        RouteErrorOf::NoRoute(_) => ErrorKind::NoRoute,
        _ => ErrorKind::Invalid,
    };
    RemoteError::new(kind, e.to_string())
}

/// A device error with its causes (`vmk1: cannot set MTU 1400 on TAP `vmk1`: cannot set MTU
/// 1400 `vmk1` in ns-a: Invalid argument`), so the client sees what the kernel said.
fn stack_error(e: StackError) -> RemoteError {
    let mut msg = e.to_string();
    // Every `StackError` shows its direct source already.
    let mut cause = std::error::Error::source(&e).and_then(|s| s.source());
    while let Some(c) = cause {
        msg.push_str(": ");
        msg.push_str(&c.to_string());
        cause = c.source();
    }
    RemoteError::new(ErrorKind::Io, msg)
}

fn ping_error(e: PingError) -> RemoteError {
    let kind = match e {
        PingError::MessageTooLong => ErrorKind::MessageTooLong,
        PingError::NoRoute => ErrorKind::NoRoute,
        PingError::NotFound(_) => ErrorKind::NotFound,
        PingError::HostDown => ErrorKind::HostDown,
        PingError::LinkDown(..) => ErrorKind::NetworkDown,
        PingError::Timeout => ErrorKind::Timeout,
        PingError::Busy => ErrorKind::Busy,
        PingError::TooLarge(_) | PingError::NextHopOffLink(_) => ErrorKind::Invalid,
    };
    RemoteError::new(kind, e.to_string())
}

fn probe_error(e: ProbeError) -> RemoteError {
    let kind = match e {
        ProbeError::NoRoute => ErrorKind::NoRoute,
        ProbeError::NotFound(_) => ErrorKind::NotFound,
        ProbeError::NotLocal(_) => ErrorKind::AddressNotAvailable,
        ProbeError::HostDown => ErrorKind::HostDown,
        ProbeError::Timeout => ErrorKind::Timeout,
        ProbeError::Refused => ErrorKind::Refused,
        ProbeError::Busy => ErrorKind::Busy,
        ProbeError::Other(_) => ErrorKind::Invalid,
    };
    RemoteError::new(kind, e.to_string())
}

/// Validates a changed file form with every configuration rule.
fn validated(raw: RawConfig) -> Result<Config, RemoteError> {
    raw.validate().map_err(|problems| {
        invalid(
            problems
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join("; "),
        )
    })
}

impl Daemon {
    /// The state of a daemon whose configuration `cfg` (saved at `path`) runs as `stack`.
    pub(crate) fn new(
        path: PathBuf,
        cfg: Config,
        loaded: String,
        stack: Netstack,
        forwards: Forwards,
    ) -> Daemon {
        let dhcp_vmknics: Vec<VmknicId> = cfg
            .vmknics
            .iter()
            .filter(|v| v.dhcp)
            .map(|v| v.id)
            .collect();
        let dhcp6_vmknics: Vec<VmknicId> = cfg
            .vmknics
            .iter()
            .filter(|v| v.ipv6_dhcp)
            .map(|v| v.id)
            .collect();
        let mut d = Daemon {
            path,
            cfg,
            loaded,
            stack,
            forwards,
            apps: Vec::new(),
            ops: BTreeMap::new(),
            dhcp: BTreeMap::new(),
            dhcp6: BTreeMap::new(),
            dhcp_frame: vec![0; dhcp::MAX_FRAME].into_boxed_slice(),
            lingering: Vec::new(),
        };
        for id in dhcp_vmknics {
            d.dhcp_start(id);
        }
        for id in dhcp6_vmknics {
            d.dhcp6_start(id);
        }
        d
    }

    /// The index and name of the netstack a request names (`-N`), or of the default one.
    fn netstack(&self, name: Option<&str>) -> Result<(usize, String), RemoteError> {
        let name = name.unwrap_or(&self.cfg.netstack);
        match self.stack.index_of(name) {
            Some(i) => Ok((i, name.to_string())),
            None => Err(RemoteError::new(
                ErrorKind::NotFound,
                format!(
                    "no netstack named `{name}` (`esxcli network ip netstack list` shows them)"
                ),
            )),
        }
    }

    /// The applications' state of netstack `i`.
    fn apps(&mut self, i: usize) -> &mut Apps {
        if self.apps.len() <= i {
            self.apps.resize_with(i + 1, Apps::default);
        }
        &mut self.apps[i]
    }

    /// Applies one command on netstack `netstack` (`None`: the default one); `reply` is
    /// where a later answer goes.
    pub(crate) fn apply(
        &mut self,
        command: Command,
        netstack: Option<&str>,
        reply: &Sender<Response>,
    ) -> Outcome {
        *self.ops.entry(command.name()).or_insert(0) += 1;
        // Every command but the netstacks' own needs the netstack it names to exist.
        let (ns, ns_name) = match self.netstack(netstack) {
            Ok(n) => n,
            Err(e) => return Outcome::Done(Err(e)),
        };
        let r = match command {
            Command::VmknicList => Ok(json!(self.vmknic_list(netstack.map(|_| ns_name.as_str())))),
            Command::VmknicAdd(mut v) => {
                if v.netstack.is_none() && ns_name != self.cfg.netstack {
                    v.netstack = Some(ns_name.clone());
                }
                self.vmknic_add(*v)
            }
            Command::VmknicSetGateway { vmknic, gateway } => {
                self.vmknic_set_gateway(&vmknic, gateway)
            }
            Command::VmknicIpv6Address {
                vmknic,
                address,
                remove,
            } => self.vmknic_ipv6_address(&vmknic, address, remove),
            Command::NetstackList => Ok(json!(self.netstack_list())),
            Command::NetstackGet(name) => self.netstack_get(&name),
            Command::NetstackAdd(name) => self.netstack_add(name),
            Command::NetstackRemove(name) => self.netstack_remove(&name),
            Command::VmknicRemove(v) => self.vmknic_remove(&v),
            Command::VmknicSetEnabled(v, on) => self.vmknic_enable(&v, on),
            Command::VmknicSetMtu { vmknic, mtu } => self.vmknic_mtu(&vmknic, mtu),
            Command::VmknicSetIpv6Autoconf { vmknic, enabled } => {
                self.vmknic_ipv6_autoconf(&vmknic, enabled)
            }
            Command::VmknicSetIpv6 {
                vmknic,
                enabled,
                autoconf,
                dhcp,
            } => self.vmknic_ipv6_set(&vmknic, enabled, autoconf, dhcp),
            Command::VmknicSetAddress {
                vmknic,
                address,
                gateway,
            } => self.vmknic_address(&vmknic, address, gateway),
            Command::RouteList => Ok(json!(self.route_list(ns))),
            Command::RouteGet(destination, source) => self.route_get(ns, destination, source),
            Command::RouteAdd { network, gateway } => {
                self.route_add(ns, &ns_name, network, gateway)
            }
            Command::RouteRemove { network, gateway } => {
                self.route_remove(ns, &ns_name, network, gateway)
            }
            Command::Route6List => Ok(json!(self.route6_list(ns))),
            Command::Route6Get(dst, source) => self.route6_get(ns, dst, source),
            Command::Route6Add(network, gateway) => self.route6_add(ns, &ns_name, network, gateway),
            Command::Route6Remove(network) => self.route6_remove(ns, &ns_name, network),
            Command::GatewayShow => Ok(json!(self.gateway_show(ns))),
            Command::GatewaySet(gateway) => self.gateway_set(ns, &ns_name, gateway),
            Command::GatewayClear(gateway) => self.gateway_clear(ns, &ns_name, gateway),
            Command::NeighborList => Ok(json!(self.neighbor_list(ns))),
            Command::NeighborRemove { ip, vmknic } => self.neighbor_remove(ns, ip, vmknic.as_ref()),
            Command::Stats => Ok(json!(self.stats())),
            Command::Metrics => Ok(json!(self.metrics())),
            Command::Runtime => Ok(json!(self.runtime())),
            Command::Capture {
                vmknic,
                filter,
                slot,
            } => self.capture(vmknic.as_ref(), filter, slot),
            Command::ForwardAdd {
                listen,
                remote,
                vmknic,
                max_connections,
            } => self.forward_add(&ns_name, listen, remote, vmknic.as_ref(), max_connections),
            Command::ForwardList => Ok(json!(self
                .forwards
                .list(netstack.map(|_| ns_name.as_str())))),
            Command::Reload => self.reload(),
            Command::ForwardRemove(listen) => {
                self.forward_remove(netstack.map(|_| ns_name.as_str()), listen)
            }
            Command::Ping {
                destination,
                vmknic,
                size,
                df,
                ttl,
                timeout,
                seq,
                next_hop,
            } => {
                let ping = PingSpec {
                    dst: destination,
                    via: None,
                    next_hop,
                    size,
                    df,
                    ttl,
                    seq,
                    timeout,
                };
                return self.ping(ns, ping, vmknic.as_ref(), reply);
            }
            Command::Ping6 {
                destination,
                vmknic,
                next_hop,
                size,
                hop_limit,
                timeout,
                seq,
            } => {
                let via = match self.resolve_via(vmknic.as_ref()) {
                    Ok(v) => v,
                    Err(e) => return Outcome::Done(Err(e)),
                };
                let Some(engine) = self.stack.engine_mut(ns) else {
                    return Outcome::Done(Err(invalid("no such netstack")));
                };
                if self.apps.len() <= ns {
                    self.apps.resize_with(ns + 1, Apps::default);
                }
                let apps = &mut self.apps[ns];
                if apps.pings6.len() >= 64 {
                    return Outcome::Done(Err(ping_error(PingError::Busy)));
                }
                let sent = engine.send_echo6_via(destination, via, next_hop, seq, size, hop_limit);
                return match sent {
                    Ok(()) => {
                        let now = Instant::now();
                        apps.pings6
                            .push((destination, seq, now, now + timeout, reply.clone()));
                        Outcome::Later
                    }
                    Err(crate::engine::Ping6Error::NoRoute) => {
                        Outcome::Done(Err(ping_error(PingError::NoRoute)))
                    }
                    Err(crate::engine::Ping6Error::TooBig) => {
                        Outcome::Done(Err(ping_error(PingError::MessageTooLong)))
                    }
                };
            }
            Command::TcpProbe {
                destination,
                vmknic,
                source,
                timeout,
            } => return self.tcp_probe(ns, destination, vmknic.as_ref(), source, timeout, reply),
            Command::StorageProbe {
                kind,
                host,
                vmknic,
                timeout,
            } => return self.storage_probe(ns, kind, host, vmknic.as_ref(), timeout, reply),
        };
        Outcome::Done(r)
    }

    /// The vmknic a request names (`vmkN` or a port group).
    fn resolve(&self, vmknic: &VmknicRef) -> Result<VmknicId, RemoteError> {
        let name = vmknic.0.as_str();
        self.cfg
            .vmknics
            .iter()
            .find(|v| v.id.to_string() == name || v.portgroup == name)
            .map(|v| v.id)
            .ok_or_else(|| {
                RemoteError::new(
                    ErrorKind::NotFound,
                    format!("no vmknic or port group named `{name}`"),
                )
            })
    }

    /// An optional source vmknic (`-I`), resolved.
    fn resolve_via(&self, vmknic: Option<&VmknicRef>) -> Result<Option<VmknicId>, RemoteError> {
        vmknic.map(|v| self.resolve(v)).transpose()
    }

    /// Saves `new` as the configuration (atomically), then as the last good copy, and makes
    /// it current.
    fn commit(&mut self, new: Config) -> Result<(), RemoteError> {
        self.check_not_edited()?;
        store::commit(&self.path, &new)?;
        self.loaded = new.to_toml();
        self.cfg = new;
        Ok(())
    }

    /// Refuses a change while the file on disk is not what the daemon loaded or saved: saving
    /// would overwrite a hand edit it has not applied. A missing file is written again.
    fn check_not_edited(&self) -> Result<(), RemoteError> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) if text != self.loaded => Err(RemoteError::new(
                ErrorKind::Invalid,
                format!(
                    "{} was edited since the daemon loaded it; run `vmkstack reload` (or send \
                     the daemon SIGHUP) to apply the edit first, then retry; nothing changed",
                    self.path.display()
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Changes vmknic `id`'s file form with `f`, validated.
    fn with_vmknic(
        &self,
        id: VmknicId,
        f: impl FnOnce(&mut RawVmknic),
    ) -> Result<Config, RemoteError> {
        let mut raw = self.cfg.to_raw();
        if let Some(v) = raw.vmknics.iter_mut().find(|v| v.name == id.to_string()) {
            f(v);
        }
        validated(raw)
    }

    // ---- views -------------------------------------------------------------------------

    /// The vmknics that exist, netstack by netstack, in slot order.
    fn present_vmknics(&self) -> impl Iterator<Item = &Vmknic<TapPort>> + '_ {
        self.stack
            .engines()
            .flat_map(|e| e.vmknics().iter())
            .filter(|v| v.present())
    }

    /// The engine of netstack `ns` (resolved by [`Daemon::netstack`], so present).
    fn engine(&self, ns: usize) -> Result<&crate::engine::Engine<TapPort>, RemoteError> {
        self.stack
            .engine(ns)
            .ok_or_else(|| RemoteError::new(ErrorKind::NotFound, "no such netstack"))
    }

    /// The IPv6 addresses of `v` as its engine holds them, with their DAD status.
    fn ipv6_addresses(&self, v: &Vmknic<TapPort>) -> Vec<Ipv6AddressInfo> {
        let now = Instant::now();
        let secs = |t: Option<Instant>| t.map(|t| t.saturating_duration_since(now).as_secs());
        self.stack
            .engines()
            .filter(|e| e.name() == v.cfg.netstack)
            .flat_map(|e| {
                let slot = e.vmknics().iter().position(|x| x.cfg.id == v.cfg.id);
                e.addresses6()
                    .iter()
                    .filter(move |a| Some(a.slot) == slot)
                    .map(|a| Ipv6AddressInfo {
                        address: a.net,
                        origin: a.origin.as_str().to_string(),
                        status: a.state.as_str().to_string(),
                        valid_s: secs(a.valid_until),
                        preferred_s: secs(a.preferred_until),
                    })
            })
            .collect()
    }

    /// The vmknics; `bridge` and `netns` say where each TAP's kernel side is now (moved by
    /// hand included), as the kernel reports it, or as configured if it cannot be asked.
    fn vmknic_list(&self, netstack: Option<&str>) -> Vec<VmknicInfo> {
        let mut rows: Vec<VmknicInfo> = self
            .present_vmknics()
            .filter(|v| netstack.is_none_or(|n| v.cfg.netstack == n))
            .map(|v| {
                let (bridge, netns) = match self.stack.link_state(v.cfg.id) {
                    Some(Ok(link)) => (link.master, link.netns.name()),
                    _ => (v.cfg.bridge.clone(), v.cfg.netns.clone()),
                };
                VmknicInfo {
                    name: v.cfg.id.to_string(),
                    portgroup: v.cfg.portgroup.clone(),
                    addresses: v.cfg.addresses().collect(),
                    mac: v.cfg.mac.to_string(),
                    mtu: v.cfg.mtu,
                    enabled: v.cfg.enabled,
                    tap: v.cfg.tap.clone(),
                    bridge,
                    netns,
                    netstack: v.cfg.netstack.clone(),
                    gateway: v.cfg.gateway,
                    ipv6: v.cfg.addresses6().collect(),
                    ipv6_addresses: self.ipv6_addresses(v),
                    ipv6_autoconf: v.cfg.ipv6_autoconf,
                    ipv6_dhcp: v.cfg.ipv6_dhcp,
                    addressing: match (v.cfg.dhcp, v.cfg.address) {
                        (true, _) => "dhcp",
                        (false, Some(_)) => "static",
                        (false, None) => "none",
                    }
                    .to_string(),
                    dhcp_router: self
                        .dhcp
                        .get(&v.cfg.id)
                        .and_then(|c| c.lease())
                        .and_then(|l| l.router),
                    link_down: v.link_down().map(str::to_string),
                }
            })
            .collect();
        rows.sort_by_key(|v| {
            v.name
                .parse::<VmknicId>()
                .map(|id| id.0)
                .unwrap_or(u32::MAX)
        });
        rows
    }

    fn netstack_info(&self, name: &str) -> Option<NetstackInfo> {
        Some(NetstackInfo {
            name: name.to_string(),
            gateway: self.cfg.gateway_of(name)?,
            forwarding: self.cfg.view(name)?.forwarding,
            vmknics: self
                .cfg
                .vmknics
                .iter()
                .filter(|v| v.netstack == name)
                .map(|v| v.id.to_string())
                .collect(),
            routes: self.cfg.routes_of(name)?.len(),
            max_connections: self
                .cfg
                .forwards
                .iter()
                .filter(|f| f.netstack == name)
                .map(|f| f.max_connections as u64)
                .sum::<u64>()
                + (crate::apps::tcp_probe::MAX_PENDING + MAX_STORAGE_PROBES) as u64,
            // smoltcp's TCP sockets run CUBIC (its `socket-tcp-cubic` feature), as ESXi's
            // netstacks may (`esxcli network ip netstack set -c cubic`).
            congestion_control: "cubic".to_string(),
        })
    }

    fn netstack_list(&self) -> Vec<NetstackInfo> {
        self.cfg
            .netstack_names()
            .filter_map(|n| self.netstack_info(n))
            .collect()
    }

    fn netstack_get(&self, name: &str) -> Result<Value, RemoteError> {
        self.netstack_info(name).map(|n| json!(n)).ok_or_else(|| {
            self.netstack(Some(name))
                .err()
                .unwrap_or_else(|| invalid(name))
        })
    }

    /// Adds an empty netstack: saved, then its engine starts; the others are not touched.
    fn netstack_add(&mut self, name: String) -> Result<Value, RemoteError> {
        if self.cfg.has_netstack(&name) {
            return Err(RemoteError::new(
                ErrorKind::Invalid,
                format!("netstack `{name}` already exists"),
            ));
        }
        let mut raw = self.cfg.to_raw();
        raw.netstacks.push(RawNetstack {
            name: name.clone(),
            ..RawNetstack::default()
        });
        let new = validated(raw)?;
        let Some(view) = new.view(&name) else {
            return Err(invalid(format!("netstack `{name}` did not validate")));
        };
        self.commit(new)?;
        self.stack.add_netstack(&view);
        info!(netstack = %name, "netstack added");
        Ok(Value::Null)
    }

    /// Removes a netstack that no vmknic uses (ESXi refuses too); the default one stays.
    fn netstack_remove(&mut self, name: &str) -> Result<Value, RemoteError> {
        let (i, _) = self.netstack(Some(name))?;
        if i == 0 {
            return Err(invalid(format!(
                "netstack `{name}` is the default netstack; it cannot be removed"
            )));
        }
        let users: Vec<String> = self
            .cfg
            .vmknics
            .iter()
            .filter(|v| v.netstack == name)
            .map(|v| v.id.to_string())
            .collect();
        if !users.is_empty() {
            return Err(RemoteError::new(
                ErrorKind::Busy,
                format!(
                    "netstack `{name}` is in use by {}; remove those vmknics first",
                    users.join(", ")
                ),
            ));
        }
        // As with vmknics: a netstack that still carries forwards is refused, not emptied
        // behind the user's back (ESXi refuses to remove a netstack in use).
        let forwards: Vec<String> = self
            .cfg
            .forwards
            .iter()
            .filter(|f| f.netstack == name)
            .map(|f| f.listen.to_string())
            .collect();
        if !forwards.is_empty() {
            return Err(RemoteError::new(
                ErrorKind::Busy,
                format!(
                    "netstack `{name}` is in use by the forward(s) on {}; remove them first \
                     (`vmkstack forward remove -N {name} LISTEN`)",
                    forwards.join(", ")
                ),
            ));
        }
        let mut new = self.cfg.clone();
        new.netstacks.retain(|n| n.name != name);
        self.commit(new)?;
        self.stack.remove_netstack(i);
        if let Some(a) = self.apps.get_mut(i) {
            *a = Apps::default();
        }
        info!(netstack = %name, "netstack removed");
        Ok(Value::Null)
    }

    /// Sets or clears a vmknic's own default gateway: on its subnet (ESX's message
    /// otherwise), saved, then applied.
    fn vmknic_set_gateway(
        &mut self,
        vmknic: &VmknicRef,
        gateway: Option<Ipv4Addr>,
    ) -> Result<Value, RemoteError> {
        let id = self.resolve(vmknic)?;
        let dhcp = self.cfg.vmknics.iter().any(|v| v.id == id && v.dhcp);
        if let (Some(g), true) = (gateway, dhcp) {
            // A lease's subnet may change at any renewal; its router is the netstack's gateway.
            return Err(invalid(format!(
                "cannot set gateway {g} on {id}: it takes its address from DHCP (its lease's \
                 router is the netstack's default gateway when none is configured); set a \
                 static address first (-t static)"
            )));
        }
        if let Some(g) = gateway {
            let on_subnet = self
                .cfg
                .vmknics
                .iter()
                .find(|v| v.id == id)
                .is_some_and(|v| v.addresses().any(|a| a.contains(&g)));
            if !on_subnet {
                return Err(RemoteError::new(
                    ErrorKind::GatewayUnreachable,
                    vmkstack_routing::GATEWAY_UNREACHABLE,
                ));
            }
        }
        let new = self.with_vmknic(id, |v| v.gateway = gateway.map(|g| g.to_string()))?;
        self.commit(new)?;
        if let Some(e) = self
            .stack
            .stack_of(id)
            .and_then(|n| self.stack.engine_mut(n))
        {
            e.set_vmknic_gateway(id, gateway);
        }
        info!(vmknic = %id, gateway = ?gateway, "vmknic gateway set");
        Ok(Value::Null)
    }

    fn neighbor_list(&self, ns: usize) -> Vec<NeighborInfo> {
        let now = Instant::now();
        let Ok(engine) = self.engine(ns) else {
            return Vec::new();
        };
        // The table names vmknics by slot.
        let mut rows: Vec<(VmknicId, NeighborInfo)> = engine
            .neighbors()
            .entries(now)
            .into_iter()
            .filter_map(|e| {
                let v = engine.vmknics().get(e.vmknic as usize)?;
                Some((
                    v.cfg.id,
                    NeighborInfo {
                        ip: e.ip.into(),
                        mac: e.mac.map(|m| m.to_string()),
                        vmknic: v.cfg.id.to_string(),
                        state: e.state.as_str().to_string(),
                        expiry_s: e.expires_in.map(|d| d.as_secs()),
                    },
                ))
            })
            .collect();
        // IPv6 neighbours (Neighbour Discovery) after the ARP entries of each vmknic.
        rows.extend(
            engine
                .neighbors6()
                .entries(now)
                .into_iter()
                .filter_map(|e| {
                    let v = engine.vmknics().get(e.vmknic as usize)?;
                    Some((
                        v.cfg.id,
                        NeighborInfo {
                            ip: e.ip.into(),
                            mac: e.mac.map(|m| m.to_string()),
                            vmknic: v.cfg.id.to_string(),
                            state: e.state.as_str().to_string(),
                            expiry_s: e.expires_in.map(|d| d.as_secs()),
                        },
                    ))
                }),
        );
        // By vmknic number (vmk2 before vmk10), then address.
        rows.sort_by_key(|(id, n)| (*id, n.ip));
        rows.into_iter().map(|(_, n)| n).collect()
    }

    fn stats(&self) -> Vec<StatsInfo> {
        self.present_vmknics()
            .map(|v| StatsInfo {
                vmknic: v.cfg.id.to_string(),
                counters: counters_info(&v.counters),
            })
            .collect()
    }

    /// What each stage cost, engine by engine; rows name their netstack when there are
    /// several (one netstack: the rows of old).
    fn runtime(&self) -> Vec<StageInfo> {
        let several = self.stack.engines().nth(1).is_some();
        self.stack
            .engines()
            .flat_map(|e| {
                let netstack = several.then(|| e.name().to_string());
                e.runtime().stages().map(move |(s, t)| StageInfo {
                    stage: s.as_str().to_string(),
                    calls: t.calls,
                    packets: t.packets,
                    nanos: t.nanos,
                    netstack: netstack.clone(),
                })
            })
            .collect()
    }

    /// Starts a capture and hands it to the client's thread through `slot`.
    fn capture(
        &mut self,
        vmknic: Option<&VmknicRef>,
        mut filter: CaptureFilter,
        slot: CaptureSlot,
    ) -> Result<Value, RemoteError> {
        filter.vmknic = self.resolve_via(vmknic)?.map(|id| id.0);
        let Some(slot) = slot.0 else {
            return Err(RemoteError::new(
                ErrorKind::BadRequest,
                "a capture streams on its own connection",
            ));
        };
        let capture = Arc::new(Capture::new(filter, RING_BYTES));
        // Every netstack's vmknics (vmknic numbers are unique across netstacks).
        let others: Vec<usize> = (1..=MAX_NETSTACKS)
            .filter(|&i| self.stack.engine(i).is_some())
            .collect();
        for i in others {
            if let Some(e) = self.stack.engine_mut(i) {
                e.capture_add(capture.clone());
            }
        }
        if !self.stack.capture_add(capture.clone()) {
            return Err(RemoteError::new(
                ErrorKind::Busy,
                format!("{MAX_CAPTURES} captures are running already; stop one first"),
            ));
        }
        if slot.try_send(capture.clone()).is_err() {
            capture.close();
        }
        Ok(json!(CaptureStart {
            vmknics: self
                .present_vmknics()
                .map(|v| v.cfg.id.to_string())
                .collect(),
            reasons: DropReason::ALL
                .iter()
                .map(|r| r.as_str().to_string())
                .collect(),
        }))
    }

    /// The Prometheus text exposition of the daemon's state.
    fn metrics(&self) -> String {
        let mut e = Exposition::default();
        let vmknics: Vec<_> = self.present_vmknics().collect();
        type Get = fn(&Counters) -> u64;
        let counters: [(&str, &str, Get); 9] = [
            ("rx_packets", "Frames received from the wire.", |c| {
                c.rx_packets
            }),
            ("rx_bytes", "Bytes received from the wire.", |c| c.rx_bytes),
            ("tx_packets", "Frames sent to the wire.", |c| c.tx_packets),
            ("tx_bytes", "Bytes sent to the wire.", |c| c.tx_bytes),
            ("forwarded", "Packets forwarded out of the vmknic.", |c| {
                c.forwarded
            }),
            (
                "delivered",
                "Packets delivered to the stack's endpoint.",
                |c| c.delivered,
            ),
            (
                "icmp_errors",
                "ICMP errors sent for packets received.",
                |c| c.icmp_errors,
            ),
            ("gso_forwarded", "TCP super-frames forwarded whole.", |c| {
                c.gso_forwarded
            }),
            (
                "gso_segmented",
                "TCP super-frames cut into segments.",
                |c| c.gso_segmented,
            ),
        ];
        for (name, help, get) in counters {
            let name = format!("vmkstack_{name}_total");
            e.family(&name, "counter", help);
            for v in &vmknics {
                let id = v.cfg.id.to_string();
                e.sample(&name, &[("vmknic", &id)], get(&v.counters) as f64);
            }
        }
        e.family(
            "vmkstack_drops_total",
            "counter",
            "Packets dropped, by reason.",
        );
        for v in &vmknics {
            let id = v.cfg.id.to_string();
            for r in DropReason::ALL {
                let n = v.counters.drops(r) as f64;
                e.sample(
                    "vmkstack_drops_total",
                    &[("vmknic", &id), ("reason", r.as_str())],
                    n,
                );
            }
        }
        e.family(
            "vmkstack_neighbors",
            "gauge",
            "Entries of the neighbour (ARP) table.",
        );
        let neighbors: usize = self
            .stack
            .engines()
            .map(|e| e.neighbors().entries(Instant::now()).len())
            .sum();
        e.sample("vmkstack_neighbors", &[], neighbors as f64);
        let forwards = self.forwards.list(None);
        e.family("vmkstack_forwards", "gauge", "Port forwards configured.");
        e.sample("vmkstack_forwards", &[], forwards.len() as f64);
        e.family(
            "vmkstack_forward_bytes_total",
            "counter",
            "Bytes relayed by a port forward (out: client to remote).",
        );
        for f in &forwards {
            let listen = f.listen.to_string();
            for (dir, n) in [("out", f.bytes_out), ("in", f.bytes_in)] {
                let labels = [("listen", listen.as_str()), ("direction", dir)];
                e.sample("vmkstack_forward_bytes_total", &labels, n as f64);
            }
        }
        e.family(
            "vmkstack_forward_connections",
            "gauge",
            "Connections a port forward holds open.",
        );
        for f in &forwards {
            let listen = f.listen.to_string();
            e.sample(
                "vmkstack_forward_connections",
                &[("listen", &listen)],
                f.active as f64,
            );
        }
        e.family(
            "vmkstack_control_operations_total",
            "counter",
            "Control operations applied, by operation.",
        );
        for (op, n) in &self.ops {
            e.sample(
                "vmkstack_control_operations_total",
                &[("op", op)],
                *n as f64,
            );
        }
        let workers = self.stack.worker_stats();
        if !workers.is_empty() {
            e.family(
                "vmkstack_worker_frames_total",
                "counter",
                "Frames data-plane workers 1..n read, forwarded themselves, handed to worker 0 \
                 (IPv4 among them) or could not hand over.",
            );
            for (k, w) in workers.iter().enumerate() {
                let id = (k + 1).to_string();
                for (kind, n) in [
                    ("read", w.frames),
                    ("forwarded", w.forwarded),
                    ("handed", w.handed),
                    ("handed_ipv4", w.handed_ipv4),
                    ("handoff_full", w.handoff_full),
                ] {
                    e.sample(
                        "vmkstack_worker_frames_total",
                        &[("worker", &id), ("kind", kind)],
                        n as f64,
                    );
                }
            }
        }
        e.family("vmkstack_captures", "gauge", "Packet captures running.");
        e.sample("vmkstack_captures", &[], self.stack.captures() as f64);
        self.stack.turn_histogram().render(
            &mut e,
            "vmkstack_turn_duration_seconds",
            "Duration of the data-plane loop's turns that handled frames.",
        );
        e.finish()
    }

    fn route_list(&self, ns: usize) -> Vec<RouteInfo> {
        self.engine(ns)
            .map(|e| e.routing().entries().into_iter().map(route_info).collect())
            .unwrap_or_default()
    }

    /// The route to `destination`, and which gateway wins for traffic from `source` (the
    /// route's own source when not given): a vmknic's own default gateway (ESXi 6.5+) wins
    /// over the netstack's default route, never over a more specific route.
    fn route_get(
        &self,
        ns: usize,
        destination: Ipv4Addr,
        source: Option<Ipv4Addr>,
    ) -> Result<Value, RemoteError> {
        let engine = self.engine(ns)?;
        if let Some(s) = source {
            if !engine.is_local(s) {
                return Err(RemoteError::new(
                    ErrorKind::AddressNotAvailable,
                    format!("{s} is not an address of an enabled vmknic of this netstack"),
                ));
            }
        }
        let found = engine.routing().explain(destination);
        let from = source.or(found.as_ref().ok().map(|e| e.source));
        let over = from.and_then(|s| engine.vmknic_gateway_for(s));
        match (found, over) {
            (Ok(e), Some(o)) if e.origin == Origin::Default => {
                let why = format!(
                    "{}'s own default gateway {} wins over the netstack's default gateway {} \
                     for traffic from {}: no route more specific than the default",
                    o.vmknic,
                    o.gateway,
                    e.gateway.map_or("(none)".to_string(), |g| g.to_string()),
                    o.source
                );
                Ok(json!(RouteExplanation {
                    vmknic: o.vmknic.to_string(),
                    gateway: Some(o.gateway),
                    next_hop: o.gateway,
                    source: o.source,
                    why: Some(why),
                    ..route_explanation(e)
                }))
            }
            (Err(RouteError::NoRoute(_)), Some(o)) => Ok(json!(RouteExplanation {
                destination,
                route: Ipv4Net::default(),
                origin: RouteOrigin::Default,
                vmknic: o.vmknic.to_string(),
                gateway: Some(o.gateway),
                next_hop: o.gateway,
                source: o.source,
                why: Some(format!(
                    "{}'s own default gateway {} for traffic from {}: the netstack has no route",
                    o.vmknic, o.gateway, o.source
                )),
            })),
            (Ok(mut e), o) => {
                let mut x = route_explanation(e.clone());
                if let (Some(o), Some(s)) = (o, from) {
                    x.why = Some(format!(
                        "route {} ({}) is more specific than the default: {}'s own gateway {} \
                         does not apply to traffic from {s}",
                        e.route, e.origin, o.vmknic, o.gateway
                    ));
                } else if let Some(s) = source.filter(|s| *s != e.source) {
                    // Traffic from another address of the netstack still leaves as routed.
                    e.source = s;
                    x = route_explanation(e);
                }
                Ok(json!(x))
            }
            (Err(e), _) => Err(route_error(e)),
        }
    }

    /// The IPv6 route to `dst`, for traffic from `source` (one of the netstack's IPv6
    /// addresses) when given: IPv6 has no per-vmknic gateway, so it leaves as routed, from
    /// that address.
    fn route6_get(
        &self,
        ns: usize,
        dst: std::net::Ipv6Addr,
        source: Option<std::net::Ipv6Addr>,
    ) -> Result<Value, RemoteError> {
        let engine = self.engine(ns)?;
        if let Some(s) = source.filter(|s| !engine.has_addr6(*s)) {
            return Err(RemoteError::new(
                ErrorKind::AddressNotAvailable,
                format!("{s} is not an IPv6 address of an enabled vmknic of this netstack"),
            ));
        }
        let mut x = engine.routing6().explain(dst).map_err(route_error)?;
        if let Some(s) = source {
            x.source = s;
        }
        Ok(json!(x))
    }

    fn route6_list(&self, ns: usize) -> Vec<vmkstack_api::Route6Info> {
        let Ok(e) = self.engine(ns) else {
            return Vec::new();
        };
        let learned = e.learned_default6();
        e.routing6()
            .entries()
            .into_iter()
            .map(|r| vmkstack_api::Route6Info {
                network: r.network,
                learned: r.network.prefix_len() == 0 && learned.is_some() && r.gateway == learned,
                gateway: r.gateway.map(|g| g.to_string()),
                vmknic: r.vmknic.map(|v| v.to_string()),
                origin: route_origin(r.origin),
                active: r.active,
            })
            .collect()
    }

    /// Adds an IPv6 static route (`net`) or sets the IPv6 default gateway (`None`): checked on
    /// a copy of the table, saved, then installed.
    fn route6_add(
        &mut self,
        ns: usize,
        name: &str,
        net: Option<Ipv6Net>,
        gw: Gateway6,
    ) -> Result<Value, RemoteError> {
        let mut table = self.engine(ns)?.routing6().clone();
        match net {
            Some(n) => table.add_static(n, gw),
            None => table.set_default_gateway(gw),
        }
        .map_err(route_error)?;
        let mut new = self.cfg.clone();
        if let Some((default, routes)) = new.v6_of_mut(name) {
            match net {
                Some(network) => routes.push(StaticRoute6 {
                    network,
                    gateway: gw,
                }),
                None => *default = Some(gw),
            }
        }
        self.commit(new)?;
        if let Some(e) = self.stack.engine_mut(ns) {
            e.set_routing6(table);
        }
        info!(netstack = %name, network = ?net, gateway = %gw, "IPv6 route added");
        Ok(Value::Null)
    }

    /// Removes an IPv6 static route (`net`) or the IPv6 default gateway (`None`).
    fn route6_remove(
        &mut self,
        ns: usize,
        name: &str,
        net: Option<Ipv6Net>,
    ) -> Result<Value, RemoteError> {
        let mut table = self.engine(ns)?.routing6().clone();
        match net {
            Some(n) => table.remove_static(n),
            None => table.clear_default_gateway(),
        }
        .map_err(route_error)?;
        let mut new = self.cfg.clone();
        if let Some((default, routes)) = new.v6_of_mut(name) {
            match net {
                Some(n) => routes.retain(|r| r.network != n),
                None => *default = None,
            }
        }
        self.commit(new)?;
        if let Some(e) = self.stack.engine_mut(ns) {
            e.set_routing6(table);
        }
        info!(netstack = %name, network = ?net, "IPv6 route removed");
        Ok(Value::Null)
    }

    fn gateway_show(&self, ns: usize) -> GatewayInfo {
        let Ok(engine) = self.engine(ns) else {
            return GatewayInfo {
                gateway: None,
                active: false,
                vmknic: None,
            };
        };
        let active = engine
            .routing()
            .lpm()
            .get(Ipv4Net::default())
            .map(|r| r.next_hop.vmknic());
        GatewayInfo {
            gateway: engine.routing().default_gateway(),
            active: active.is_some(),
            vmknic: active.map(|v| v.to_string()),
        }
    }

    // ---- routes and the default gateway ---------------------------------------------------

    /// The routing table of netstack `ns`, to change on a copy.
    fn table(&self, ns: usize) -> Result<vmkstack_routing::RoutingTable, RemoteError> {
        Ok(self.engine(ns)?.routing().clone())
    }

    /// Installs a changed table in netstack `ns`.
    fn set_table(&mut self, ns: usize, table: vmkstack_routing::RoutingTable) {
        if let Some(e) = self.stack.engine_mut(ns) {
            e.set_routing(table);
        }
    }

    fn route_add(
        &mut self,
        ns: usize,
        name: &str,
        net: Ipv4Net,
        gw: Ipv4Addr,
    ) -> Result<Value, RemoteError> {
        let mut table = self.table(ns)?;
        table.add_static(net, gw).map_err(route_error)?;
        let mut new = self.cfg.clone();
        if let Some(routes) = new.routes_of_mut(name) {
            routes.push(StaticRoute {
                network: net,
                gateway: gw,
            });
        }
        self.commit(new)?;
        self.set_table(ns, table);
        info!(netstack = %name, network = %net, gateway = %gw, "static route added");
        Ok(Value::Null)
    }

    fn route_remove(
        &mut self,
        ns: usize,
        name: &str,
        net: Ipv4Net,
        gateway: Option<Ipv4Addr>,
    ) -> Result<Value, RemoteError> {
        let existing = self
            .cfg
            .routes_of(name)
            .and_then(|r| r.iter().find(|r| r.network == net).copied());
        let Some(existing) = existing else {
            return Err(route_error(RouteError::NoSuchRoute(net)));
        };
        if let Some(g) = gateway {
            if g != existing.gateway {
                return Err(invalid(format!(
                    "the route to {net} goes via {}, not {g}",
                    existing.gateway
                )));
            }
        }
        let mut table = self.table(ns)?;
        table.remove_static(net).map_err(route_error)?;
        let mut new = self.cfg.clone();
        if let Some(routes) = new.routes_of_mut(name) {
            routes.retain(|r| r.network != net);
        }
        self.commit(new)?;
        self.set_table(ns, table);
        info!(netstack = %name, network = %net, "static route removed");
        Ok(Value::Null)
    }

    fn gateway_set(&mut self, ns: usize, name: &str, gw: Ipv4Addr) -> Result<Value, RemoteError> {
        let mut table = self.table(ns)?;
        table.set_default_gateway(gw).map_err(route_error)?;
        let mut new = self.cfg.clone();
        if let Some(g) = new.gateway_of_mut(name) {
            *g = Some(gw);
        }
        self.commit(new)?;
        self.set_table(ns, table);
        info!(netstack = %name, gateway = %gw, "default gateway set");
        Ok(Value::Null)
    }

    fn gateway_clear(
        &mut self,
        ns: usize,
        name: &str,
        gateway: Option<Ipv4Addr>,
    ) -> Result<Value, RemoteError> {
        let Some(current) = self.cfg.gateway_of(name).flatten() else {
            return Err(route_error(RouteError::NoDefaultGateway));
        };
        if let Some(g) = gateway {
            if g != current {
                return Err(invalid(format!(
                    "the default gateway is {current}, not {g}"
                )));
            }
        }
        let mut table = self.table(ns)?;
        table.clear_default_gateway().map_err(route_error)?;
        let mut new = self.cfg.clone();
        if let Some(g) = new.gateway_of_mut(name) {
            *g = None;
        }
        self.commit(new)?;
        // Rebuilt rather than the copy: a DHCP lease's router of this netstack, hidden by
        // the configured gateway, becomes its default gateway again.
        self.rebuild_routing(ns);
        info!(netstack = %name, gateway = %current, "default gateway removed");
        Ok(Value::Null)
    }

    /// Forgets a neighbour; with `vmknic`, only the entry learned on that vmknic.
    fn neighbor_remove(
        &mut self,
        ns: usize,
        ip: Ipv4Addr,
        vmknic: Option<&VmknicRef>,
    ) -> Result<Value, RemoteError> {
        let not_found =
            |on: String| RemoteError::new(ErrorKind::NotFound, format!("no neighbour {ip}{on}"));
        if let Some(v) = vmknic {
            let id = self.resolve(v)?;
            let on = || format!(" on {id}");
            // The table names vmknics by slot.
            let engine = self.engine(ns)?;
            let slot = engine.slot_of(id).ok_or_else(|| not_found(on()))?;
            let learned_there = engine
                .neighbors()
                .entries(Instant::now())
                .iter()
                .any(|e| e.ip == ip && e.vmknic as usize == slot);
            if !learned_there {
                return Err(not_found(on()));
            }
        }
        if self
            .stack
            .engine_mut(ns)
            .is_some_and(|e| e.remove_neighbor(ip))
        {
            info!(neighbor = %ip, "neighbour removed");
            Ok(Value::Null)
        } else {
            Err(not_found(String::new()))
        }
    }

    // ---- vmknics ------------------------------------------------------------------------

    fn vmknic_add(&mut self, mut v: RawVmknic) -> Result<Value, RemoteError> {
        if v.name.is_empty() {
            // ESX gives the lowest free vmkN.
            let used: Vec<u32> = self.cfg.vmknics.iter().map(|v| v.id.0).collect();
            let n = (0..).find(|n| !used.contains(n)).unwrap_or(0);
            v.name = format!("vmk{n}");
        }
        let name = v.name.clone();
        let mut raw = self.cfg.to_raw();
        raw.vmknics.push(v);
        let new = validated(raw)?;
        let Some(vc) = new
            .vmknics
            .iter()
            .find(|x| x.id.to_string() == name)
            .cloned()
        else {
            return Err(invalid(format!("`{name}` is not a vmknic name")));
        };
        // A TAP still lingering could hold the name the new one needs.
        self.lingering.clear();
        self.stack.add_vmknic(&vc).map_err(stack_error)?;
        if let Err(e) = self.commit(new) {
            self.stack.remove_vmknic(vc.id);
            return Err(e);
        }
        if vc.dhcp {
            self.dhcp_start(vc.id);
        }
        info!(vmknic = %vc.id, "vmknic added");
        Ok(json!({ "name": vc.id }))
    }

    fn vmknic_remove(&mut self, vmknic: &VmknicRef) -> Result<Value, RemoteError> {
        let id = self.resolve(vmknic)?;
        let mut new = self.cfg.clone();
        new.vmknics.retain(|v| v.id != id);
        self.commit(new)?;
        let was_dhcp = self.dhcp.contains_key(&id);
        let ns = self.stack.stack_of(id);
        let released6 = self.dhcp6_stop(id);
        if self.dhcp_stop(id) || released6 {
            // The RELEASE is on the wire: the vmknic goes now, its TAP a moment later.
            if let Some(Some(tap)) = self.stack.detach_vmknic(id) {
                self.lingering.push((Instant::now() + RELEASE_GRACE, tap));
            }
        } else {
            self.stack.remove_vmknic(id);
        }
        if let (true, Some(ns)) = (was_dhcp, ns) {
            // A lease's router that was the default gateway goes with the lease.
            self.rebuild_routing(ns);
        }
        Ok(Value::Null)
    }

    /// The device first (a TAP that refuses changes nothing, not even the file), then the
    /// file; if the save fails the device goes back.
    fn vmknic_enable(&mut self, vmknic: &VmknicRef, on: bool) -> Result<Value, RemoteError> {
        let id = self.resolve(vmknic)?;
        let new = self.with_vmknic(id, |v| v.enabled = Some(on))?;
        let was = self
            .cfg
            .vmknics
            .iter()
            .find(|v| v.id == id)
            .map(|v| v.enabled);
        self.stack.set_vmknic_enabled(id, on).map_err(stack_error)?;
        if let Err(e) = self.commit(new) {
            if let Some(was) = was {
                let _ = self.stack.set_vmknic_enabled(id, was);
            }
            return Err(e);
        }
        Ok(Value::Null)
    }

    /// As [`Daemon::vmknic_enable`]: the TAP's MTU (wherever its kernel side is now), then the
    /// file.
    /// Turns a vmknic's IPv6 router-advertisement autoconfiguration on or off: live, then
    /// saved (undone if the file cannot be written).
    fn vmknic_ipv6_autoconf(&mut self, vmknic: &VmknicRef, on: bool) -> Result<Value, RemoteError> {
        let id = self.resolve(vmknic)?;
        let new = self.with_vmknic(id, |v| v.ipv6_autoconf = on.then_some(true))?;
        let was = self
            .cfg
            .vmknics
            .iter()
            .find(|v| v.id == id)
            .is_some_and(|v| v.ipv6_autoconf);
        self.stack.set_vmknic_ipv6_autoconf(id, on);
        if let Err(e) = self.commit(new) {
            self.stack.set_vmknic_ipv6_autoconf(id, was);
            return Err(e);
        }
        info!(vmknic = %id, on, "IPv6 router advertisement autoconfiguration");
        Ok(Value::Null)
    }

    fn vmknic_mtu(&mut self, vmknic: &VmknicRef, mtu: u16) -> Result<Value, RemoteError> {
        let id = self.resolve(vmknic)?;
        let new = self.with_vmknic(id, |v| v.mtu = Some(i64::from(mtu)))?;
        let was = self.cfg.vmknics.iter().find(|v| v.id == id).map(|v| v.mtu);
        self.stack.set_vmknic_mtu(id, mtu).map_err(stack_error)?;
        if let Err(e) = self.commit(new) {
            if let Some(was) = was {
                let _ = self.stack.set_vmknic_mtu(id, was);
            }
            return Err(e);
        }
        Ok(Value::Null)
    }

    /// Changes a vmknic's address (static, DHCP or none) and, with a static one, its own
    /// gateway in the same change (`gateway`; `None` keeps the one it has): the file's rules
    /// check both together.
    fn vmknic_address(
        &mut self,
        vmknic: &VmknicRef,
        address: Ipv4Setting,
        gateway: Option<Ipv4Addr>,
    ) -> Result<Value, RemoteError> {
        let id = self.resolve(vmknic)?;
        // A vmknic's own gateway goes with its static address (it was checked against that
        // subnet; a DHCP vmknic has none).
        let clears_gateway = matches!(address, Ipv4Setting::None | Ipv4Setting::Dhcp);
        // The file's rules: a host address on its subnet, no overlap with another vmknic.
        let new = self.with_vmknic(id, |v| {
            v.ip = match address {
                Ipv4Setting::Static(a) => a.to_string(),
                Ipv4Setting::Dhcp => IP_DHCP.to_string(),
                Ipv4Setting::None => String::new(),
            };
            v.netmask = None;
            v.prefix_len = None;
            if clears_gateway {
                v.gateway = None;
            }
            if let Some(g) = gateway {
                v.gateway = Some(g.to_string());
            }
        })?;
        let Some((address, dhcp, own_gateway)) = new
            .vmknics
            .iter()
            .find(|v| v.id == id)
            .map(|v| (v.address, v.dhcp, v.gateway))
        else {
            return Err(invalid(format!("no vmknic {id}")));
        };
        self.commit(new)?;
        let Some(ns) = self.stack.stack_of(id) else {
            return Ok(Value::Null);
        };
        if clears_gateway || gateway.is_some() {
            if let Some(e) = self.stack.engine_mut(ns) {
                e.set_vmknic_gateway(id, own_gateway);
            }
        }
        match (dhcp, self.dhcp.contains_key(&id)) {
            // Already on DHCP: the client goes on with its lease.
            (true, true) => return Ok(Value::Null),
            (true, false) => {
                if let Some(e) = self.stack.engine_mut(ns) {
                    e.set_vmknic_address(id, None);
                    e.set_vmknic_dhcp(id, true);
                }
                self.dhcp_start(id);
            }
            (false, _) => {
                self.dhcp_stop(id);
                if let Some(e) = self.stack.engine_mut(ns) {
                    e.set_vmknic_dhcp(id, false);
                    e.set_vmknic_address(id, address);
                }
            }
        }
        // Routes follow the new subnet: gateways outside it become inactive, others active.
        self.rebuild_routing(ns);
        Ok(Value::Null)
    }

    /// Adds (or removes) a static IPv6 address of a vmknic: refused when it is there already
    /// (on this vmknic or another of its netstack), missing, or against the file's rules
    /// (a host address, not link-local); saved, then applied to the running vmknic, whose
    /// connected IPv6 routes follow.
    fn vmknic_ipv6_address(
        &mut self,
        vmknic: &VmknicRef,
        net: Ipv6Net,
        remove: bool,
    ) -> Result<Value, RemoteError> {
        let id = self.resolve(vmknic)?;
        let Some(cur) = self.cfg.vmknics.iter().find(|v| v.id == id) else {
            return Err(invalid(format!("no vmknic {id}")));
        };
        let held = cur.ipv6.iter().find(|a| a.addr() == net.addr());
        match (remove, held) {
            (true, None) => {
                return Err(RemoteError::new(
                    ErrorKind::NotFound,
                    format!("{id} has no IPv6 address {}", net.addr()),
                ))
            }
            (true, Some(a)) if a.prefix_len() != net.prefix_len() => {
                return Err(invalid(format!(
                    "{id} holds {a}, not {net}: give its prefix length"
                )))
            }
            (false, Some(a)) => {
                return Err(invalid(format!("{id} already has the IPv6 address {a}")))
            }
            _ => {}
        }
        if !remove {
            if let Some(other) = self.cfg.vmknics.iter().find(|v| {
                v.netstack == cur.netstack && v.ipv6.iter().any(|a| a.addr() == net.addr())
            }) {
                return Err(invalid(format!(
                    "{} is already an IPv6 address of {} in netstack {}",
                    net.addr(),
                    other.id,
                    other.netstack
                )));
            }
        }
        let text = net.to_string();
        let new = self.with_vmknic(id, |v| {
            if remove {
                v.ipv6.retain(|a| {
                    a.trim()
                        .parse::<Ipv6Net>()
                        .map_or(true, |a| a.addr() != net.addr())
                });
            } else {
                v.ipv6.push(text);
            }
        })?;
        let list = new
            .vmknics
            .iter()
            .find(|v| v.id == id)
            .map(|v| v.ipv6.clone())
            .unwrap_or_default();
        self.commit(new)?;
        if let Some(e) = self
            .stack
            .stack_of(id)
            .and_then(|ns| self.stack.engine_mut(ns))
        {
            e.set_vmknic_ipv6(id, list);
        }
        Ok(Value::Null)
    }

    /// Rebuilds netstack `ns`'s routing table from its configuration on its vmknics'
    /// addresses now (DHCP leases included), with its configured default gateway or, when
    /// there is none, the router of the first DHCP lease of its vmknics that names one and
    /// was applied (a lease refused for a conflicting address gives no gateway).
    fn rebuild_routing(&mut self, ns: usize) {
        let Some(engine) = self.stack.engine(ns) else {
            return;
        };
        let Some(view) = self.cfg.view(engine.name()) else {
            return;
        };
        let present = || engine.vmknics().iter().filter(|v| v.present());
        let gateway = view.default_gateway.or_else(|| {
            present().find_map(|v| {
                let lease = self.dhcp.get(&v.cfg.id)?.lease()?;
                lease
                    .router
                    .filter(|_| v.cfg.address == Some(lease.address))
            })
        });
        let (table, _) = RoutingTable::from_config(
            present().map(|v| (v.cfg.id, v.cfg.addresses().collect(), v.cfg.enabled)),
            gateway,
            view.routes.iter().map(|r| (r.network, r.gateway)),
        );
        if let Some(e) = self.stack.engine_mut(ns) {
            e.set_routing(table);
        }
    }

    // ---- DHCP ---------------------------------------------------------------------------

    /// Starts vmknic `id`'s DHCP client (it discovers at once).
    fn dhcp_start(&mut self, id: VmknicId) {
        let Some(mac) = self.cfg.vmknics.iter().find(|v| v.id == id).map(|v| v.mac) else {
            return;
        };
        self.dhcp
            .insert(id, dhcp::Client::new(id, mac, Instant::now()));
        info!(vmknic = %id, "DHCP client started");
    }

    /// Stops vmknic `id`'s DHCP client, releasing its lease; true when a RELEASE went out.
    fn dhcp_stop(&mut self, id: VmknicId) -> bool {
        let Some(client) = self.dhcp.remove(&id) else {
            return false;
        };
        let n = client.release(&mut self.dhcp_frame);
        if n == 0 {
            return false;
        }
        let Some(engine) = self
            .stack
            .stack_of(id)
            .and_then(|ns| self.stack.engine_mut(ns))
        else {
            return false;
        };
        let sent = engine.send_frame(id, &self.dhcp_frame[..n]);
        engine.flush();
        info!(vmknic = %id, "DHCP lease released");
        sent
    }

    /// The DHCP clients' turn: the answers that arrived, then the timers; leases applied.
    fn poll_dhcp(&mut self) {
        if self.dhcp.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut events = Vec::new();
        let clients = &mut self.dhcp;
        for ns in 0..self.stack.netstack_slots() {
            if let Some(engine) = self.stack.engine_mut(ns) {
                engine.take_dhcp(|id, ip| {
                    if let Some(e) = clients.get_mut(&id).and_then(|c| c.receive(ip, now)) {
                        events.push((id, e));
                    }
                });
            }
        }
        for (id, c) in self.dhcp.iter_mut() {
            if now < c.next_deadline() {
                continue;
            }
            let (n, e) = c.poll(now, &mut self.dhcp_frame);
            if n > 0 {
                let ns = self.stack.stack_of(*id);
                if let Some(engine) = ns.and_then(|ns| self.stack.engine_mut(ns)) {
                    engine.send_frame(*id, &self.dhcp_frame[..n]);
                }
            }
            events.extend(e.map(|e| (*id, e)));
        }
        if events.is_empty() {
            return;
        }
        let mut changed = Vec::new();
        for (id, e) in events {
            let Some(ns) = self.stack.stack_of(id) else {
                continue;
            };
            let address = match e {
                dhcp::Event::Bound(lease) => {
                    if let Some(other) = self.address_conflict(id, lease.address) {
                        warn!(vmknic = %id, address = %lease.address,
                            "DHCP lease not applied: {other}");
                        continue;
                    }
                    info!(vmknic = %id, address = %lease.address, router = ?lease.router,
                        server = %lease.server, secs = lease.duration.as_secs(), "DHCP lease");
                    Some(lease.address)
                }
                dhcp::Event::Lost => {
                    warn!(vmknic = %id, "DHCP lease lost");
                    None
                }
            };
            let Some(engine) = self.stack.engine_mut(ns) else {
                continue;
            };
            let current = engine
                .vmknics()
                .iter()
                .find(|v| v.present() && v.cfg.id == id)
                .map(|v| v.cfg.address);
            if current != Some(address) {
                engine.set_vmknic_address(id, address);
            }
            if !changed.contains(&ns) {
                changed.push(ns);
            }
        }
        for ns in changed {
            self.rebuild_routing(ns);
        }
    }

    /// Why `address` cannot be vmknic `id`'s: another vmknic holds it, or a different subnet
    /// that overlaps it (the file's rules).
    fn address_conflict(&self, id: VmknicId, address: Ipv4Net) -> Option<String> {
        self.stack
            .stack_of(id)
            .and_then(|ns| self.stack.engine(ns))?
            .vmknics()
            .iter()
            .filter(|v| v.present() && v.cfg.id != id)
            .flat_map(|v| v.cfg.addresses().map(move |a| (v.cfg.id, a)))
            .find_map(|(other, a)| {
                if a.addr() == address.addr() {
                    Some(format!("address {} is already used by {other}", a.addr()))
                } else if a.trunc() != address.trunc()
                    && (a.trunc().contains(&address.network())
                        || address.trunc().contains(&a.network()))
                {
                    Some(format!(
                        "subnet {} overlaps {} of {other}",
                        address.trunc(),
                        a.trunc()
                    ))
                } else {
                    None
                }
            })
    }

    // ---- port forwards ------------------------------------------------------------------

    fn forward_add(
        &mut self,
        netstack: &str,
        listen: SocketAddr,
        remote: SocketAddr,
        vmknic: Option<&VmknicRef>,
        max_connections: usize,
    ) -> Result<Value, RemoteError> {
        let spec = ForwardSpec {
            listen,
            remote,
            vmknic: self.resolve_via(vmknic)?,
            max_connections,
            netstack: netstack.to_string(),
        };
        // The same rules as a [[forward]] table in the file.
        let mut raw = self.cfg.to_raw();
        raw.forwards.push(RawForward {
            listen: spec.listen.to_string(),
            remote: spec.remote.to_string(),
            vmknic: spec.vmknic.map(|v| v.to_string()),
            max_connections: Some(spec.max_connections as i64),
            netstack: (spec.netstack != self.cfg.netstack).then(|| spec.netstack.clone()),
        });
        let new = validated(raw)?;
        self.forwards.add(spec.clone()).map_err(|e| {
            RemoteError::new(
                ErrorKind::Io,
                format!("cannot listen on {}: {e}", spec.listen),
            )
        })?;
        if let Err(e) = self.commit(new) {
            self.forwards.remove(spec.listen, &mut self.stack);
            return Err(e);
        }
        Ok(Value::Null)
    }

    /// Removes the forward on `listen`; with `-N` (`netstack`), only if it is that
    /// netstack's (a listen address is forwarded once, so without `-N` it is found anywhere).
    fn forward_remove(
        &mut self,
        netstack: Option<&str>,
        listen: SocketAddr,
    ) -> Result<Value, RemoteError> {
        let Some(f) = self.cfg.forwards.iter().find(|f| f.listen == listen) else {
            return Err(RemoteError::new(
                ErrorKind::NotFound,
                format!("no forward on {listen}"),
            ));
        };
        if let Some(ns) = netstack.filter(|ns| *ns != f.netstack) {
            return Err(RemoteError::new(
                ErrorKind::NotFound,
                format!(
                    "no forward on {listen} in netstack `{ns}` (it is netstack `{}`'s)",
                    f.netstack
                ),
            ));
        }
        let mut new = self.cfg.clone();
        new.forwards.retain(|f| f.listen != listen);
        self.commit(new)?;
        self.forwards.remove(listen, &mut self.stack);
        Ok(Value::Null)
    }

    // ---- reload (SIGHUP, `vmkstack reload`) ----------------------------------------------

    /// Applies the file on disk: validated first (every problem named, nothing changed), then
    /// the difference only (vmknics added, removed, re-created when their TAP's identity
    /// changed, or changed in place; routes, gateway, forwarding, forwards). Vmknics whose
    /// table did not change are not touched. What creates devices or listens goes first and
    /// is undone if any of it fails. Returns the changes made, one line each.
    pub(crate) fn reload(&mut self) -> Result<Value, RemoteError> {
        let file = self.path.display().to_string();
        let refused = |why: String| invalid(format!("reload refused, nothing changed: {why}"));
        let text = std::fs::read_to_string(&self.path)
            .map_err(|e| refused(format!("cannot read {file}: {e}")))?;
        let new = Config::parse(&text, &file).map_err(|e| refused(e.to_string()))?;
        let old = self.cfg.clone();
        let fixed = [
            ("netstack", old.netstack == new.netstack),
            ("offloads", old.offloads == new.offloads),
            ("io", old.io == new.io),
            ("workers", old.workers == new.workers),
            ("busy_poll_us", old.busy_poll_us == new.busy_poll_us),
            ("control_group", old.control_group == new.control_group),
            ("metrics_listen", old.metrics_listen == new.metrics_listen),
        ];
        let problems: Vec<String> = fixed
            .iter()
            .filter(|(_, same)| !same)
            .map(|(k, _)| format!("`{k}` cannot change on a running daemon (restart it)"))
            .collect();
        if !problems.is_empty() {
            return Err(refused(problems.join("; ")));
        }
        let find = |c: &Config, id: VmknicId| c.vmknics.iter().find(|v| v.id == id).cloned();
        // Same but for what changes in place.
        let in_place = |a: &crate::config::VmknicConfig, b: &crate::config::VmknicConfig| {
            let mut b = b.clone();
            b.enabled = a.enabled;
            b.mtu = a.mtu;
            b.address = a.address;
            b.gateway = a.gateway;
            *a == b
        };
        // Netstacks: new ones start before their vmknics are added, gone ones stop after
        // theirs are removed.
        let ns_added: Vec<String> = new
            .netstack_names()
            .filter(|n| !old.has_netstack(n))
            .map(str::to_string)
            .collect();
        let ns_removed: Vec<String> = old
            .netstack_names()
            .filter(|n| !new.has_netstack(n))
            .map(str::to_string)
            .collect();
        let added: Vec<_> = new
            .vmknics
            .iter()
            .filter(|v| find(&old, v.id).is_none())
            .cloned()
            .collect();
        let removed: Vec<_> = old
            .vmknics
            .iter()
            .filter(|v| find(&new, v.id).is_none())
            .cloned()
            .collect();
        let mut recreated = Vec::new();
        let mut tweaked = Vec::new();
        for v in &new.vmknics {
            if let Some(o) = find(&old, v.id) {
                if o == *v {
                    continue;
                }
                if in_place(&o, v) {
                    tweaked.push((o, v.clone()));
                } else {
                    recreated.push((o, v.clone()));
                }
            }
        }
        let fwd_gone: Vec<_> = old
            .forwards
            .iter()
            .filter(|f| !new.forwards.contains(f))
            .cloned()
            .collect();
        let fwd_new: Vec<_> = new
            .forwards
            .iter()
            .filter(|f| !old.forwards.contains(f))
            .cloned()
            .collect();

        // Phase 1, what may fail, undone if anything does: TAPs created, forwards listening.
        let mut problems = Vec::new();
        let mut done_ns = Vec::new();
        for name in &ns_added {
            if let Some(view) = new.view(name) {
                done_ns.push(self.stack.add_netstack(&view));
            }
        }
        let mut done_added = Vec::new();
        for v in &added {
            match self.stack.add_vmknic(v) {
                Ok(()) => done_added.push(v.id),
                Err(e) => problems.push(stack_error(e).message),
            }
        }
        let mut done_recreated = Vec::new();
        for (o, v) in &recreated {
            self.stack.remove_vmknic(o.id);
            match self.stack.add_vmknic(v) {
                Ok(()) => done_recreated.push(o.clone()),
                Err(e) => {
                    problems.push(stack_error(e).message);
                    if let Err(e) = self.stack.add_vmknic(o) {
                        tracing::warn!(vmknic = %o.id, "cannot bring the old vmknic back: {e}");
                    }
                }
            }
        }
        for f in &fwd_gone {
            self.forwards.remove(f.listen, &mut self.stack);
        }
        let mut done_fwd = Vec::new();
        for f in &fwd_new {
            match self.forwards.add(f.clone()) {
                Ok(()) => done_fwd.push(f.listen),
                Err(e) => problems.push(format!("forward {}: cannot listen: {e}", f.listen)),
            }
        }
        if !problems.is_empty() {
            for listen in done_fwd {
                self.forwards.remove(listen, &mut self.stack);
            }
            for f in &fwd_gone {
                let _ = self.forwards.add(f.clone());
            }
            for o in done_recreated {
                self.stack.remove_vmknic(o.id);
                let _ = self.stack.add_vmknic(&o);
            }
            for id in done_added {
                self.stack.remove_vmknic(id);
            }
            for i in done_ns {
                self.stack.remove_netstack(i);
            }
            return Err(refused(problems.join("; ")));
        }

        // Phase 2: what does not create anything.
        let mut changes = Vec::new();
        for v in &removed {
            self.dhcp_stop(v.id);
            self.dhcp6_stop(v.id);
            self.stack.remove_vmknic(v.id);
            changes.push(format!("{} removed", v.id));
        }
        for name in &ns_removed {
            if let Some(i) = self.stack.index_of(name) {
                self.stack.remove_netstack(i);
            }
            changes.push(format!("netstack {name} removed"));
        }
        for name in &ns_added {
            changes.push(format!("netstack {name} added"));
        }
        for v in &added {
            if v.dhcp {
                self.dhcp_start(v.id);
            }
            if v.ipv6_dhcp {
                self.dhcp6_start(v.id);
            }
            changes.push(format!("{} added", v.id));
        }
        for (o, v) in &recreated {
            if o.dhcp {
                self.dhcp_stop(v.id);
            }
            if v.dhcp {
                self.dhcp_start(v.id);
            }
            if o.ipv6_dhcp {
                self.dhcp6_stop(v.id);
            }
            if v.ipv6_dhcp {
                self.dhcp6_start(v.id);
            }
        }
        for (_, v) in &recreated {
            changes.push(format!(
                "{} re-created (its TAP, bridge, namespace, MAC or port group changed)",
                v.id
            ));
        }
        for (o, v) in &tweaked {
            let engine = self
                .stack
                .stack_of(v.id)
                .and_then(|n| self.stack.engine_mut(n));
            if let Some(e) = engine {
                if o.address != v.address {
                    e.set_vmknic_address(v.id, v.address);
                    changes.push(match v.address {
                        Some(a) => format!("{} address {a}", v.id),
                        None => format!("{} address removed", v.id),
                    });
                }
                if o.gateway != v.gateway {
                    e.set_vmknic_gateway(v.id, v.gateway);
                    changes.push(match v.gateway {
                        Some(g) => format!("{} gateway {g}", v.id),
                        None => format!("{} gateway removed", v.id),
                    });
                }
            }
            if o.mtu != v.mtu {
                match self.stack.set_vmknic_mtu(v.id, v.mtu) {
                    Ok(_) => changes.push(format!("{} MTU {}", v.id, v.mtu)),
                    Err(e) => changes.push(format!(
                        "{} MTU not changed: {}",
                        v.id,
                        stack_error(e).message
                    )),
                }
            }
            if o.enabled != v.enabled {
                match self.stack.set_vmknic_enabled(v.id, v.enabled) {
                    Ok(_) => changes.push(format!(
                        "{} {}",
                        v.id,
                        if v.enabled { "enabled" } else { "disabled" }
                    )),
                    Err(e) => {
                        changes.push(format!("{} not switched: {}", v.id, stack_error(e).message))
                    }
                }
            }
        }
        // Each netstack's forwarding switch, routes and default gateway.
        let mut route_problems = Vec::new();
        for name in new.netstack_names() {
            let (Some(nv), ov) = (new.view(name), old.view(name)) else {
                continue;
            };
            let on = if name == new.netstack {
                String::new()
            } else {
                format!(" (netstack {name})")
            };
            let (old_fwd, old_routes, old_gw) = match &ov {
                Some(o) => (o.forwarding, o.routes.clone(), o.default_gateway),
                None => (false, Vec::new(), None),
            };
            if old_fwd != nv.forwarding || ov.is_none() {
                if let Some(e) = self
                    .stack
                    .index_of(name)
                    .and_then(|i| self.stack.engine_mut(i))
                {
                    e.set_forwarding(nv.forwarding);
                }
                if ov.is_some() {
                    let state = if nv.forwarding { "on" } else { "off" };
                    changes.push(format!("forwarding {state}{on}"));
                }
            }
            for r in old_routes.iter().filter(|r| !nv.routes.contains(r)) {
                changes.push(format!("route {} via {} removed{on}", r.network, r.gateway));
            }
            for r in nv.routes.iter().filter(|r| !old_routes.contains(r)) {
                changes.push(format!("route {} via {} added{on}", r.network, r.gateway));
            }
            let old_routes6 = ov.as_ref().map(|o| o.routes6.clone()).unwrap_or_default();
            for r in old_routes6.iter().filter(|r| !nv.routes6.contains(r)) {
                changes.push(format!("route {} via {} removed{on}", r.network, r.gateway));
            }
            for r in nv.routes6.iter().filter(|r| !old_routes6.contains(r)) {
                changes.push(format!("route {} via {} added{on}", r.network, r.gateway));
            }
            let old_gw6 = ov.as_ref().and_then(|o| o.ipv6_default_gateway);
            if old_gw6 != nv.ipv6_default_gateway {
                changes.push(match nv.ipv6_default_gateway {
                    Some(g) => format!("IPv6 default gateway {g}{on}"),
                    None => format!("IPv6 default gateway removed{on}"),
                });
            }
            if old_gw != nv.default_gateway {
                changes.push(match nv.default_gateway {
                    Some(g) => format!("default gateway {g}{on}"),
                    None => format!("default gateway removed{on}"),
                });
            }
            route_problems.extend(nv.routing().1.iter().map(|p| format!("{p}{on}")));
        }
        for f in &fwd_gone {
            changes.push(format!("forward {} -> {} removed", f.listen, f.remote));
        }
        for f in &fwd_new {
            changes.push(format!("forward {} -> {} added", f.listen, f.remote));
        }
        let _ = store::save_atomic(&store::last_good(&self.path), &text);
        self.cfg = new;
        self.loaded = text;
        // Every netstack's whole table from the new file: routes follow the vmknics' subnets
        // (DHCP leases included) as at start-up (a gateway on no vmknic subnet is reported
        // with ESX's message, the rest applies).
        for ns in 0..self.stack.netstack_slots() {
            self.rebuild_routing(ns);
            let view = self.stack.engine(ns).and_then(|e| self.cfg.view(e.name()));
            if let (Some(view), Some(e)) = (view, self.stack.engine_mut(ns)) {
                e.set_routing6(view.routing6().0);
            }
        }
        changes.extend(route_problems);
        for c in &changes {
            info!(change = %c, "reload");
        }
        info!(config = %file, changes = changes.len(), "configuration reloaded");
        Ok(json!({ "changes": changes }))
    }

    // ---- pings and probes (answered later) ----------------------------------------------

    fn ping(
        &mut self,
        ns: usize,
        mut p: PingSpec,
        vmknic: Option<&VmknicRef>,
        reply: &Sender<Response>,
    ) -> Outcome {
        p.via = match self.resolve_via(vmknic) {
            Ok(v) => v,
            Err(e) => return Outcome::Done(Err(e)),
        };
        let Some(engine) = self.stack.engine_mut(ns) else {
            return Outcome::Done(Err(invalid("no such netstack")));
        };
        if self.apps.len() <= ns {
            self.apps.resize_with(ns + 1, Apps::default);
        }
        let apps = &mut self.apps[ns];
        match apps.pinger.start(engine, p) {
            Ok(id) => {
                apps.pings.insert(id, reply.clone());
                Outcome::Later
            }
            Err(e) => Outcome::Done(Err(ping_error(e))),
        }
    }

    fn tcp_probe(
        &mut self,
        ns: usize,
        destination: SocketAddr,
        vmknic: Option<&VmknicRef>,
        source: Option<IpAddr>,
        timeout: Duration,
        reply: &Sender<Response>,
    ) -> Outcome {
        let via = match self.resolve_via(vmknic) {
            Ok(v) => v,
            Err(e) => return Outcome::Done(Err(e)),
        };
        let from = match (via, source) {
            (Some(id), _) => ProbeSource::Vmknic(id),
            (None, Some(a)) => ProbeSource::Address(a),
            (None, None) => ProbeSource::Route,
        };
        let Some(engine) = self.stack.engine_mut(ns) else {
            return Outcome::Done(Err(invalid("no such netstack")));
        };
        if self.apps.len() <= ns {
            self.apps.resize_with(ns + 1, Apps::default);
        }
        let apps = &mut self.apps[ns];
        match apps.tcp_probes.start(engine, destination, from, timeout) {
            Ok(id) => {
                apps.probes.insert(id, reply.clone());
                Outcome::Later
            }
            Err(e) => Outcome::Done(Err(probe_error(e))),
        }
    }

    fn storage_probe(
        &mut self,
        ns: usize,
        kind: StorageProbeKind,
        host: IpAddr,
        vmknic: Option<&VmknicRef>,
        timeout: Duration,
        reply: &Sender<Response>,
    ) -> Outcome {
        let via = match self.resolve_via(vmknic) {
            Ok(v) => v,
            Err(e) => return Outcome::Done(Err(e)),
        };
        let running: usize = self.apps.iter().map(|a| a.storage.len()).sum();
        if running >= MAX_STORAGE_PROBES {
            return Outcome::Done(Err(RemoteError::new(
                ErrorKind::Busy,
                format!("{MAX_STORAGE_PROBES} probes already running"),
            )));
        }
        let probe = match kind {
            StorageProbeKind::Iscsi { port, read_test } => {
                Probe::iscsi(host, port, via, timeout, read_test)
            }
            StorageProbeKind::Nfs => Probe::nfs(host, via, timeout),
        };
        self.apps(ns).storage.push((probe, reply.clone()));
        Outcome::Later
    }

    /// The earliest deadline of a ping, probe or DHCP client: the event loop wakes for it.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.apps
            .iter()
            .flat_map(|a| {
                a.pinger
                    .next_deadline()
                    .into_iter()
                    .chain(a.tcp_probes.next_deadline())
            })
            .chain(self.dhcp.values().map(dhcp::Client::next_deadline))
            .chain(self.dhcp6.values().map(dhcp6::Client::next_deadline))
            .chain(self.lingering.iter().map(|(t, _)| *t))
            .min()
    }

    /// Closes the lingering TAPs whose time is up, answers the pings and probes that finished,
    /// netstack by netstack, and runs the DHCP clients.
    pub(crate) fn finish_async(&mut self) {
        if !self.lingering.is_empty() {
            let now = Instant::now();
            // Dropping a TAP closes it (its netdev goes).
            self.lingering.retain(|(t, _)| *t > now);
        }
        self.poll_dhcp();
        self.poll_dhcp6();
        for (ns, apps) in self.apps.iter_mut().enumerate() {
            let Some(engine) = self.stack.engine_mut(ns) else {
                continue;
            };
            finish_on(apps, engine);
        }
    }
}

/// Answers the pings and probes of one netstack that finished.
fn finish_on(apps: &mut Apps, engine: &mut crate::engine::Engine<TapPort>) {
    let mut i = 0;
    while i < apps.storage.len() {
        match apps.storage[i].0.poll(engine) {
            Progress::Running => i += 1,
            Progress::Done(report) => {
                let (_, tx) = apps.storage.swap_remove(i);
                let _ = tx.try_send(Response::ok(json!(report)));
            }
        }
    }
    let (pinger, tcp_probes, pings6) = (&mut apps.pinger, &mut apps.tcp_probes, &mut apps.pings6);
    engine.take_failed(|f| {
        pinger.neighbor_failed(&f);
        tcp_probes.neighbor_failed(&f);
        // `vmkping -6` whose request Neighbour Discovery could not deliver: "Host is down".
        if f.protocol == 58 && f.src_port == crate::engine::ECHO_IDENT {
            let k = pings6
                .iter()
                .position(|p| std::net::IpAddr::V6(p.0) == f.dst && p.1 == f.dst_port);
            if let Some(k) = k {
                let p = pings6.swap_remove(k);
                let _ = p.4.try_send(Response::err(ping_error(PingError::HostDown)));
            }
        }
    });
    let pings = &mut apps.pings;
    apps.pinger.take_results(engine, |id, r| {
        if let Some(tx) = pings.remove(&id) {
            let resp = match r {
                Ok(reply) => Response::ok(json!(reply)),
                Err(e) => Response::err(ping_error(e)),
            };
            let _ = tx.try_send(resp);
        }
    });
    if !apps.pings6.is_empty() {
        let pending = &mut apps.pings6;
        engine.take_echo6(|r| {
            if let Some(k) = pending.iter().position(|p| p.0 == r.from && p.1 == r.seq) {
                let (dst, seq, sent, _, tx) = pending.swap_remove(k);
                let reply = vmkstack_api::PingReply {
                    bytes: r.bytes,
                    from: r.from.into(),
                    seq,
                    ttl: r.hop_limit,
                    rtt_us: r.at.saturating_duration_since(sent).as_micros() as u64,
                    destination: dst.into(),
                };
                let _ = tx.try_send(Response::ok(json!(reply)));
            }
        });
        let now = Instant::now();
        pending.retain(|p| {
            if p.3 > now {
                return true;
            }
            let _ = p.4.try_send(Response::err(ping_error(PingError::Timeout)));
            false
        });
    } else {
        engine.take_echo6(|_| {});
    }
    let probes = &mut apps.probes;
    apps.tcp_probes.take_results(engine, |id, r| {
        if let Some(tx) = probes.remove(&id) {
            let resp = match r {
                Ok(p) => Response::ok(json!(p)),
                Err(e) => Response::err(probe_error(e)),
            };
            let _ = tx.try_send(resp);
        }
    });
}

// ---- the engine's views as the protocol's types (same JSON) ---------------------------------

fn counters_info(c: &Counters) -> CountersInfo {
    CountersInfo {
        rx_packets: c.rx_packets,
        rx_bytes: c.rx_bytes,
        tx_packets: c.tx_packets,
        tx_bytes: c.tx_bytes,
        forwarded: c.forwarded,
        delivered: c.delivered,
        icmp_errors: c.icmp_errors,
        gso_forwarded: c.gso_forwarded,
        gso_segmented: c.gso_segmented,
        drops: c
            .nonzero_drops()
            .map(|(r, n)| (r.as_str().to_string(), n))
            .collect(),
    }
}

fn route_origin(o: Origin) -> RouteOrigin {
    match o {
        Origin::Connected => RouteOrigin::Connected,
        Origin::Static => RouteOrigin::Static,
        Origin::Default => RouteOrigin::Default,
    }
}

fn route_info(e: RouteEntry) -> RouteInfo {
    RouteInfo {
        network: e.network,
        gateway: e.gateway,
        vmknic: e.vmknic.map(|v| v.to_string()),
        origin: route_origin(e.origin),
        active: e.active,
    }
}

fn route_explanation(e: Explanation) -> RouteExplanation {
    RouteExplanation {
        destination: e.destination,
        route: e.route,
        origin: route_origin(e.origin),
        vmknic: e.vmknic.to_string(),
        gateway: e.gateway,
        next_hop: e.next_hop,
        source: e.source,
        why: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::DropReason;

    /// The protocol's types give the JSON the engine's own types gave.
    #[test]
    fn test_same_json_as_engine_types() {
        fn same<A: serde::Serialize, B: serde::Serialize>(ours: A, theirs: B) {
            assert_eq!(
                serde_json::to_string(&ours).unwrap(),
                serde_json::to_string(&theirs).unwrap()
            );
            // And as a response carries it, through a `Value`.
            assert_eq!(
                serde_json::to_value(&ours).unwrap().to_string(),
                serde_json::to_value(&theirs).unwrap().to_string()
            );
        }
        let mut table = vmkstack_routing::RoutingTable::new();
        table.set_vmknic(VmknicId(10), vec!["198.18.1.100/24".parse().unwrap()], true);
        table
            .add_static(
                "198.18.100.0/24".parse().unwrap(),
                Ipv4Addr::new(198, 18, 1, 1),
            )
            .unwrap();
        table
            .set_default_gateway(Ipv4Addr::new(198, 18, 1, 254))
            .unwrap();
        let entries = table.entries();
        assert!(entries.len() >= 3, "{entries:?}");
        same(
            entries.iter().cloned().map(route_info).collect::<Vec<_>>(),
            &entries,
        );
        let e = table.explain(Ipv4Addr::new(198, 18, 100, 5)).unwrap();
        same(route_explanation(e.clone()), &e);

        let mut c = Counters::default();
        c.rx_packets = 1;
        c.gso_segmented = 2;
        c.drop(DropReason::ALL[0]);
        // The counters' JSON, as `vmkstack stats --json` has always shown it.
        assert_eq!(
            serde_json::to_string(&counters_info(&c)).unwrap(),
            r#"{"rx_packets":1,"rx_bytes":0,"tx_packets":0,"tx_bytes":0,"forwarded":0,"delivered":0,"icmp_errors":0,"gso_forwarded":0,"gso_segmented":2,"drops":[["truncated",1]]}"#
        );
        // The plain types name a vmknic by string: the JSON the daemon's `VmknicId` gave.
        same(VmknicId(10).to_string(), VmknicId(10));
    }
}
