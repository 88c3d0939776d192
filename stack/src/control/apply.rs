//! The state owner: the configuration (the store), the netstack it describes and the
//! applications that use it (forwards, pings, probes). It applies typed [`Command`]s, one
//! function per effect; a change is validated on a copy, saved, then applied to the running
//! data plane. The replies are `vmkstack_api`'s types, built here from the engine's public
//! views: the engine does not know the JSON layer.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use ipnet::Ipv4Net;
use serde_json::{json, Value};
use tracing::info;
use vmkstack_api::capture::CaptureStart;
use vmkstack_api::StageInfo;
use vmkstack_api::{
    CountersInfo, ErrorKind, GatewayInfo, NeighborInfo, RawVmknic, RemoteError, Response,
    RouteExplanation, RouteInfo, RouteOrigin, StatsInfo, VmknicInfo,
};
use vmkstack_routing::{Explanation, Origin, RouteEntry, RouteError, VmknicId};

use super::command::{CaptureSlot, Command, StorageProbeKind, VmknicRef};
use super::store;
use crate::apps::ping::{PingError, PingId, PingSpec, Pings};
use crate::apps::port_forward::{ForwardSpec, Forwarder};
use crate::apps::storage_probe::{Probe, Progress};
use crate::apps::tcp_probe::{ProbeError, ProbeId, ProbeSource, TcpProbes};
use crate::config::{Config, RawConfig, RawForward, StaticRoute};
use crate::engine::Vmknic;
use crate::engine::{Capture, CaptureFilter, Counters, DropReason, MAX_CAPTURES, RING_BYTES};
use crate::metrics::Exposition;
use crate::netstack::{Netstack, StackError};
use vmkstack_vmknic::TapPort;

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
    /// The port forwards (the event loop polls them).
    pub(crate) forwarder: Forwarder,
    /// `vmkping`s in flight, and where each answer goes.
    pinger: Pings,
    pings: HashMap<PingId, Sender<Response>>,
    /// `nc -z` probes in flight, and where each answer goes.
    tcp_probes: TcpProbes,
    probes: HashMap<ProbeId, Sender<Response>>,
    storage: Vec<(Probe, Sender<Response>)>,
    /// Control operations applied, by name (the metrics').
    ops: BTreeMap<&'static str, u64>,
}

/// What applying a command gave.
pub(crate) enum Outcome {
    /// Answer now.
    Done(Result<Value, RemoteError>),
    /// The answer comes from the event loop later (pings, probes).
    Later,
}

fn invalid(msg: impl Into<String>) -> RemoteError {
    RemoteError::new(ErrorKind::Invalid, msg)
}

fn route_error(e: RouteError) -> RemoteError {
    let kind = match e {
        RouteError::GatewayUnreachable { .. } | RouteError::RouteGatewayUnreachable { .. } => {
            ErrorKind::GatewayUnreachable
        }
        RouteError::NoSuchRoute(_) | RouteError::NoDefaultGateway => ErrorKind::NotFound,
        RouteError::NoRoute(_) => ErrorKind::NoRoute,
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
        PingError::TooLarge(_) => ErrorKind::Invalid,
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
        forwarder: Forwarder,
    ) -> Daemon {
        Daemon {
            path,
            cfg,
            loaded,
            stack,
            forwarder,
            pinger: Pings::new(),
            pings: HashMap::new(),
            tcp_probes: TcpProbes::new(),
            probes: HashMap::new(),
            storage: Vec::new(),
            ops: BTreeMap::new(),
        }
    }

    /// Applies one command; `reply` is where a later answer goes.
    pub(crate) fn apply(&mut self, command: Command, reply: &Sender<Response>) -> Outcome {
        *self.ops.entry(command.name()).or_insert(0) += 1;
        let r = match command {
            Command::VmknicList => Ok(json!(self.vmknic_list())),
            Command::VmknicAdd(v) => self.vmknic_add(v),
            Command::VmknicRemove(v) => self.vmknic_remove(&v),
            Command::VmknicSetEnabled(v, on) => self.vmknic_enable(&v, on),
            Command::VmknicSetMtu { vmknic, mtu } => self.vmknic_mtu(&vmknic, mtu),
            Command::VmknicSetAddress { vmknic, address } => self.vmknic_address(&vmknic, address),
            Command::RouteList => Ok(json!(self.route_list())),
            Command::RouteGet(destination) => self.route_get(destination),
            Command::RouteAdd { network, gateway } => self.route_add(network, gateway),
            Command::RouteRemove { network, gateway } => self.route_remove(network, gateway),
            Command::GatewayShow => Ok(json!(self.gateway_show())),
            Command::GatewaySet(gateway) => self.gateway_set(gateway),
            Command::GatewayClear(gateway) => self.gateway_clear(gateway),
            Command::NeighborList => Ok(json!(self.neighbor_list())),
            Command::NeighborRemove { ip, vmknic } => self.neighbor_remove(ip, vmknic.as_ref()),
            Command::Stats => Ok(json!(self.stats())),
            Command::Metrics => Ok(json!(self.metrics())),
            Command::Runtime => Ok(json!(self
                .stack
                .runtime()
                .stages()
                .map(|(s, t)| StageInfo {
                    stage: s.as_str().to_string(),
                    calls: t.calls,
                    packets: t.packets,
                    nanos: t.nanos,
                })
                .collect::<Vec<_>>())),
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
            } => self.forward_add(listen, remote, vmknic.as_ref(), max_connections),
            Command::ForwardList => Ok(json!(self.forwarder.list())),
            Command::Reload => self.reload(),
            Command::ForwardRemove(listen) => self.forward_remove(listen),
            Command::Ping {
                destination,
                vmknic,
                size,
                df,
                ttl,
                timeout,
                seq,
            } => {
                let ping = PingSpec {
                    dst: destination,
                    via: None,
                    size,
                    df,
                    ttl,
                    seq,
                    timeout,
                };
                return self.ping(ping, vmknic.as_ref(), reply);
            }
            Command::TcpProbe {
                destination,
                vmknic,
                source,
                timeout,
            } => return self.tcp_probe(destination, vmknic.as_ref(), source, timeout, reply),
            Command::StorageProbe {
                kind,
                host,
                vmknic,
                timeout,
            } => return self.storage_probe(kind, host, vmknic.as_ref(), timeout, reply),
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

    /// The netstack's vmknics that exist, in slot order.
    fn present_vmknics(&self) -> impl Iterator<Item = &Vmknic<TapPort>> + '_ {
        self.stack.vmknics().iter().filter(|v| v.present())
    }

    /// The vmknics; `bridge` and `netns` say where each TAP's kernel side is now (moved by
    /// hand included), as the kernel reports it, or as configured if it cannot be asked.
    fn vmknic_list(&self) -> Vec<VmknicInfo> {
        self.present_vmknics()
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
                    link_down: v.link_down().map(str::to_string),
                }
            })
            .collect()
    }

    fn neighbor_list(&self) -> Vec<NeighborInfo> {
        let now = Instant::now();
        // The table names vmknics by slot.
        let mut rows: Vec<(VmknicId, NeighborInfo)> = self
            .stack
            .neighbors()
            .entries(now)
            .into_iter()
            .filter_map(|e| {
                let v = self.stack.vmknics().get(e.vmknic as usize)?;
                Some((
                    v.cfg.id,
                    NeighborInfo {
                        ip: e.ip,
                        mac: e.mac.map(|m| m.to_string()),
                        vmknic: v.cfg.id.to_string(),
                        state: e.state.as_str().to_string(),
                        expiry_s: e.expires_in.map(|d| d.as_secs()),
                    },
                ))
            })
            .collect();
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
        e.sample("vmkstack_neighbors", &[], self.neighbor_list().len() as f64);
        let forwards = self.forwarder.list();
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
        e.family("vmkstack_captures", "gauge", "Packet captures running.");
        e.sample("vmkstack_captures", &[], self.stack.captures() as f64);
        self.stack.turn_histogram().render(
            &mut e,
            "vmkstack_turn_duration_seconds",
            "Duration of the data-plane loop's turns that handled frames.",
        );
        e.finish()
    }

    fn route_list(&self) -> Vec<RouteInfo> {
        self.stack
            .routing()
            .entries()
            .into_iter()
            .map(route_info)
            .collect()
    }

    fn route_get(&self, destination: Ipv4Addr) -> Result<Value, RemoteError> {
        self.stack
            .routing()
            .explain(destination)
            .map(|e| json!(route_explanation(e)))
            .map_err(route_error)
    }

    fn gateway_show(&self) -> GatewayInfo {
        let active = self
            .stack
            .routing()
            .lpm()
            .get(Ipv4Net::default())
            .map(|r| r.next_hop.vmknic());
        GatewayInfo {
            gateway: self.stack.routing().default_gateway(),
            active: active.is_some(),
            vmknic: active.map(|v| v.to_string()),
        }
    }

    // ---- routes and the default gateway ---------------------------------------------------

    fn route_add(&mut self, net: Ipv4Net, gw: Ipv4Addr) -> Result<Value, RemoteError> {
        let mut table = self.stack.routing().clone();
        table.add_static(net, gw).map_err(route_error)?;
        let mut new = self.cfg.clone();
        new.routes.push(StaticRoute {
            network: net,
            gateway: gw,
        });
        self.commit(new)?;
        self.stack.set_routing(table);
        info!(network = %net, gateway = %gw, "static route added");
        Ok(Value::Null)
    }

    fn route_remove(
        &mut self,
        net: Ipv4Net,
        gateway: Option<Ipv4Addr>,
    ) -> Result<Value, RemoteError> {
        let existing = self.cfg.routes.iter().find(|r| r.network == net).copied();
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
        let mut table = self.stack.routing().clone();
        table.remove_static(net).map_err(route_error)?;
        let mut new = self.cfg.clone();
        new.routes.retain(|r| r.network != net);
        self.commit(new)?;
        self.stack.set_routing(table);
        info!(network = %net, "static route removed");
        Ok(Value::Null)
    }

    fn gateway_set(&mut self, gw: Ipv4Addr) -> Result<Value, RemoteError> {
        let mut table = self.stack.routing().clone();
        table.set_default_gateway(gw).map_err(route_error)?;
        let mut new = self.cfg.clone();
        new.default_gateway = Some(gw);
        self.commit(new)?;
        self.stack.set_routing(table);
        info!(gateway = %gw, "default gateway set");
        Ok(Value::Null)
    }

    fn gateway_clear(&mut self, gateway: Option<Ipv4Addr>) -> Result<Value, RemoteError> {
        let Some(current) = self.cfg.default_gateway else {
            return Err(route_error(RouteError::NoDefaultGateway));
        };
        if let Some(g) = gateway {
            if g != current {
                return Err(invalid(format!(
                    "the default gateway is {current}, not {g}"
                )));
            }
        }
        let mut table = self.stack.routing().clone();
        table.clear_default_gateway().map_err(route_error)?;
        let mut new = self.cfg.clone();
        new.default_gateway = None;
        self.commit(new)?;
        self.stack.set_routing(table);
        info!(gateway = %current, "default gateway removed");
        Ok(Value::Null)
    }

    /// Forgets a neighbour; with `vmknic`, only the entry learned on that vmknic.
    fn neighbor_remove(
        &mut self,
        ip: Ipv4Addr,
        vmknic: Option<&VmknicRef>,
    ) -> Result<Value, RemoteError> {
        let not_found =
            |on: String| RemoteError::new(ErrorKind::NotFound, format!("no neighbour {ip}{on}"));
        if let Some(v) = vmknic {
            let id = self.resolve(v)?;
            let on = || format!(" on {id}");
            // The table names vmknics by slot.
            let slot = self.stack.slot_of(id).ok_or_else(|| not_found(on()))?;
            let learned_there = self
                .stack
                .neighbors()
                .entries(Instant::now())
                .iter()
                .any(|e| e.ip == ip && e.vmknic as usize == slot);
            if !learned_there {
                return Err(not_found(on()));
            }
        }
        if self.stack.remove_neighbor(ip) {
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
        self.stack.add_vmknic(&vc).map_err(stack_error)?;
        if let Err(e) = self.commit(new) {
            self.stack.remove_vmknic(vc.id);
            return Err(e);
        }
        info!(vmknic = %vc.id, "vmknic added");
        Ok(json!({ "name": vc.id }))
    }

    fn vmknic_remove(&mut self, vmknic: &VmknicRef) -> Result<Value, RemoteError> {
        let id = self.resolve(vmknic)?;
        let mut new = self.cfg.clone();
        new.vmknics.retain(|v| v.id != id);
        self.commit(new)?;
        self.stack.remove_vmknic(id);
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

    fn vmknic_address(
        &mut self,
        vmknic: &VmknicRef,
        address: Ipv4Net,
    ) -> Result<Value, RemoteError> {
        let id = self.resolve(vmknic)?;
        // The file's rules: a host address on its subnet, no overlap with another vmknic.
        let new = self.with_vmknic(id, |v| {
            v.ip = address.to_string();
            v.netmask = None;
            v.prefix_len = None;
        })?;
        let Some(address) = new.vmknics.iter().find(|v| v.id == id).map(|v| v.address) else {
            return Err(invalid(format!("no vmknic {id}")));
        };
        self.commit(new)?;
        self.stack.set_vmknic_address(id, address);
        // Routes follow the new subnet: gateways outside it become inactive, others active.
        let (table, _) = self.cfg.routing();
        self.stack.set_routing(table);
        Ok(Value::Null)
    }

    // ---- port forwards ------------------------------------------------------------------

    fn forward_add(
        &mut self,
        listen: SocketAddrV4,
        remote: SocketAddrV4,
        vmknic: Option<&VmknicRef>,
        max_connections: usize,
    ) -> Result<Value, RemoteError> {
        let spec = ForwardSpec {
            listen,
            remote,
            vmknic: self.resolve_via(vmknic)?,
            max_connections,
        };
        // The same rules as a [[forward]] table in the file.
        let mut raw = self.cfg.to_raw();
        raw.forwards.push(RawForward {
            listen: spec.listen.to_string(),
            remote: spec.remote.to_string(),
            vmknic: spec.vmknic.map(|v| v.to_string()),
            max_connections: Some(spec.max_connections as i64),
        });
        let new = validated(raw)?;
        self.forwarder.add(spec.clone()).map_err(|e| {
            RemoteError::new(
                ErrorKind::Io,
                format!("cannot listen on {}: {e}", spec.listen),
            )
        })?;
        if let Err(e) = self.commit(new) {
            self.forwarder.remove(spec.listen, &mut *self.stack);
            return Err(e);
        }
        Ok(Value::Null)
    }

    fn forward_remove(&mut self, listen: SocketAddrV4) -> Result<Value, RemoteError> {
        if !self.cfg.forwards.iter().any(|f| f.listen == listen) {
            return Err(RemoteError::new(
                ErrorKind::NotFound,
                format!("no forward on {listen}"),
            ));
        }
        let mut new = self.cfg.clone();
        new.forwards.retain(|f| f.listen != listen);
        self.commit(new)?;
        self.forwarder.remove(listen, &mut *self.stack);
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
            *a == b
        };
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
            self.forwarder.remove(f.listen, &mut *self.stack);
        }
        let mut done_fwd = Vec::new();
        for f in &fwd_new {
            match self.forwarder.add(f.clone()) {
                Ok(()) => done_fwd.push(f.listen),
                Err(e) => problems.push(format!("forward {}: cannot listen: {e}", f.listen)),
            }
        }
        if !problems.is_empty() {
            for listen in done_fwd {
                self.forwarder.remove(listen, &mut *self.stack);
            }
            for f in &fwd_gone {
                let _ = self.forwarder.add(f.clone());
            }
            for o in done_recreated {
                self.stack.remove_vmknic(o.id);
                let _ = self.stack.add_vmknic(&o);
            }
            for id in done_added {
                self.stack.remove_vmknic(id);
            }
            return Err(refused(problems.join("; ")));
        }

        // Phase 2: what does not create anything.
        let mut changes = Vec::new();
        for v in &removed {
            self.stack.remove_vmknic(v.id);
            changes.push(format!("{} removed", v.id));
        }
        for v in &added {
            changes.push(format!("{} added", v.id));
        }
        for (_, v) in &recreated {
            changes.push(format!(
                "{} re-created (its TAP, bridge, namespace, MAC or port group changed)",
                v.id
            ));
        }
        for (o, v) in &tweaked {
            if o.address != v.address {
                self.stack.set_vmknic_address(v.id, v.address);
                changes.push(format!("{} address {}", v.id, v.address));
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
        if old.forwarding != new.forwarding {
            self.stack.set_forwarding(new.forwarding);
            changes.push(format!(
                "forwarding {}",
                if new.forwarding { "on" } else { "off" }
            ));
        }
        for r in old.routes.iter().filter(|r| !new.routes.contains(r)) {
            changes.push(format!("route {} via {} removed", r.network, r.gateway));
        }
        for r in new.routes.iter().filter(|r| !old.routes.contains(r)) {
            changes.push(format!("route {} via {} added", r.network, r.gateway));
        }
        if old.default_gateway != new.default_gateway {
            changes.push(match new.default_gateway {
                Some(g) => format!("default gateway {g}"),
                None => "default gateway removed".to_string(),
            });
        }
        for f in &fwd_gone {
            changes.push(format!("forward {} -> {} removed", f.listen, f.remote));
        }
        for f in &fwd_new {
            changes.push(format!("forward {} -> {} added", f.listen, f.remote));
        }
        // The whole table from the new file: routes follow the vmknics' subnets as at start-up
        // (a gateway on no vmknic subnet is reported with ESX's message, the rest applies).
        let (table, route_problems) = new.routing();
        self.stack.set_routing(table);
        changes.extend(route_problems.iter().map(|p| p.to_string()));
        let _ = store::save_atomic(&store::last_good(&self.path), &text);
        self.cfg = new;
        self.loaded = text;
        for c in &changes {
            info!(change = %c, "reload");
        }
        info!(config = %file, changes = changes.len(), "configuration reloaded");
        Ok(json!({ "changes": changes }))
    }

    // ---- pings and probes (answered later) ----------------------------------------------

    fn ping(
        &mut self,
        mut p: PingSpec,
        vmknic: Option<&VmknicRef>,
        reply: &Sender<Response>,
    ) -> Outcome {
        p.via = match self.resolve_via(vmknic) {
            Ok(v) => v,
            Err(e) => return Outcome::Done(Err(e)),
        };
        match self.pinger.start(&mut *self.stack, p) {
            Ok(id) => {
                self.pings.insert(id, reply.clone());
                Outcome::Later
            }
            Err(e) => Outcome::Done(Err(ping_error(e))),
        }
    }

    fn tcp_probe(
        &mut self,
        destination: SocketAddrV4,
        vmknic: Option<&VmknicRef>,
        source: Option<Ipv4Addr>,
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
        match self
            .tcp_probes
            .start(&mut *self.stack, destination, from, timeout)
        {
            Ok(id) => {
                self.probes.insert(id, reply.clone());
                Outcome::Later
            }
            Err(e) => Outcome::Done(Err(probe_error(e))),
        }
    }

    fn storage_probe(
        &mut self,
        kind: StorageProbeKind,
        host: Ipv4Addr,
        vmknic: Option<&VmknicRef>,
        timeout: Duration,
        reply: &Sender<Response>,
    ) -> Outcome {
        let via = match self.resolve_via(vmknic) {
            Ok(v) => v,
            Err(e) => return Outcome::Done(Err(e)),
        };
        if self.storage.len() >= MAX_STORAGE_PROBES {
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
        self.storage.push((probe, reply.clone()));
        Outcome::Later
    }

    /// The earliest deadline of a ping or probe in flight: the event loop wakes for it.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.pinger
            .next_deadline()
            .into_iter()
            .chain(self.tcp_probes.next_deadline())
            .min()
    }

    /// Answers the pings and probes that finished.
    pub(crate) fn finish_async(&mut self) {
        let mut i = 0;
        while i < self.storage.len() {
            match self.storage[i].0.poll(&mut *self.stack) {
                Progress::Running => i += 1,
                Progress::Done(report) => {
                    let (_, tx) = self.storage.swap_remove(i);
                    let _ = tx.try_send(Response::ok(json!(report)));
                }
            }
        }
        let (pinger, tcp_probes) = (&mut self.pinger, &mut self.tcp_probes);
        self.stack.take_failed(|f| {
            pinger.neighbor_failed(&f);
            tcp_probes.neighbor_failed(&f);
        });
        let pings = &mut self.pings;
        self.pinger.take_results(&mut *self.stack, |id, r| {
            if let Some(tx) = pings.remove(&id) {
                let resp = match r {
                    Ok(reply) => Response::ok(json!(reply)),
                    Err(e) => Response::err(ping_error(e)),
                };
                let _ = tx.try_send(resp);
            }
        });
        let probes = &mut self.probes;
        self.tcp_probes.take_results(&mut *self.stack, |id, r| {
            if let Some(tx) = probes.remove(&id) {
                let resp = match r {
                    Ok(p) => Response::ok(json!(p)),
                    Err(e) => Response::err(probe_error(e)),
                };
                let _ = tx.try_send(resp);
            }
        });
    }
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
