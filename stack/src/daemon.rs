//! `vmkstack daemon`: one netstack in the foreground, its configuration file as the single
//! store (like esx.conf), the control socket guarded by a lock file, clean shutdown on
//! SIGINT/SIGTERM (every TAP it created disappears with it).
//!
//! Every accepted change is written to the configuration file atomically (temporary file,
//! fsync, rename, fsync of the directory) before it is acknowledged, and applies to the
//! running data plane at once.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, Sender};
use serde_json::{json, Value};
use thiserror::Error;
use tracing::info;
use vmkstack_routing::{parse_addr, parse_network, RouteError, VmknicId};

use crate::config::{Config, ConfigError, RawConfig, RawVmknic, StaticRoute};
use crate::control::{Action, ErrorKind, GatewayInfo, RemoteError, Response};
use crate::forward::{ForwardSpec, Forwarder, DEFAULT_MAX_CONNECTIONS};
use crate::netstack::{Netstack, PingError, PingId, ProbeError, ProbeId, StackError};
use crate::server::{group_id, Pending, Policy, Server, QUEUE_DEPTH};

/// Default control socket path.
pub const DEFAULT_CONTROL: &str = "/run/vmkstack/vmkstack.sock";

/// Why the daemon stopped with an error.
#[derive(Debug, Error)]
pub enum DaemonError {
    /// The configuration did not load.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Another daemon holds the control path.
    #[error("another vmkstack daemon is running on {control} (lock {lock} is held)")]
    AlreadyRunning {
        /// Control socket path.
        control: String,
        /// Lock file.
        lock: String,
    },
    /// The control socket could not be set up.
    #[error("control socket {path}: {source}")]
    Control {
        /// The path.
        path: String,
        /// What failed.
        #[source]
        source: io::Error,
    },
    /// `control_group` names no group.
    #[error("control_group `{0}` is not a group on this host (see /etc/group)")]
    NoSuchGroup(String),
    /// The netstack did not start.
    #[error(transparent)]
    Stack(#[from] StackError),
    /// The event loop failed.
    #[error("event loop: {0}")]
    Loop(#[source] io::Error),
}

/// Holds the lock file and the control socket path; removes both when dropped.
struct ControlPath {
    lock: Option<File>,
    lock_path: PathBuf,
    socket: PathBuf,
}

impl ControlPath {
    /// Takes `<control>.lock` (refusing if another daemon holds it), then replaces any stale
    /// socket left by a killed daemon and binds a fresh one: mode 0600, or 0660 with the
    /// control group.
    fn acquire(
        control: &Path,
        group: Option<u32>,
    ) -> Result<(ControlPath, UnixListener), DaemonError> {
        let ctl = control.display().to_string();
        let io_err = |source| DaemonError::Control {
            path: ctl.clone(),
            source,
        };
        if let Some(dir) = control.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io_err)?;
        }
        let lock_path = PathBuf::from(format!("{ctl}.lock"));
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(DaemonError::AlreadyRunning {
                    control: ctl,
                    lock: lock_path.display().to_string(),
                })
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io_err(e)),
        }
        // We hold the lock, so a socket here is a dead daemon's. Anything else is not ours to
        // delete.
        match std::fs::symlink_metadata(control) {
            Ok(m) if m.file_type().is_socket() => {
                std::fs::remove_file(control).map_err(io_err)?;
                info!(path = %ctl, "removed stale control socket");
            }
            Ok(_) => {
                return Err(io_err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "a file that is not a socket is in the way; not removing it",
                )))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(e)),
        }
        let listener = UnixListener::bind(control).map_err(io_err)?;
        let mode = if group.is_some() { 0o660 } else { 0o600 };
        std::fs::set_permissions(control, std::fs::Permissions::from_mode(mode)).map_err(io_err)?;
        if let Some(gid) = group {
            std::os::unix::fs::chown(control, None, Some(gid)).map_err(io_err)?;
        }
        Ok((
            ControlPath {
                lock: Some(lock),
                lock_path,
                socket: control.to_path_buf(),
            },
            listener,
        ))
    }
}

impl Drop for ControlPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.socket);
        // Unlink while still holding the lock, so that no new daemon locks a file we delete.
        let _ = std::fs::remove_file(&self.lock_path);
        drop(self.lock.take());
    }
}

/// Writes `text` to `path` atomically: a temporary file beside it, fsync, rename over it,
/// fsync of the directory. After a crash the file is the old or the new version, whole.
pub fn save_atomic(path: &Path, text: &str) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Where the last configuration that loaded (or was saved) is kept: `FILE.last-good`.
pub fn last_good(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".last-good");
    PathBuf::from(p)
}

/// Removes `.NAME.tmp-PID` files a killed daemon left beside the configuration (only those:
/// the name pattern is ours).
fn remove_stale_temp_files(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let prefix = format!(".{}.tmp-", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        let ours = n
            .strip_prefix(&prefix)
            .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()));
        if ours {
            let _ = std::fs::remove_file(e.path());
            info!(file = %e.path().display(), "removed a temporary file left by a killed daemon");
        }
    }
}

/// The daemon's state: the configuration (the store) and the netstack it describes.
struct Daemon {
    path: PathBuf,
    cfg: Config,
    stack: Netstack,
    forwarder: Forwarder,
    pings: HashMap<PingId, Sender<Response>>,
    probes: HashMap<ProbeId, Sender<Response>>,
    storage: Vec<(crate::storage_probe::Probe, Sender<Response>)>,
}

/// What applying a request gave.
enum Outcome {
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

fn stack_error(e: StackError) -> RemoteError {
    RemoteError::new(ErrorKind::Io, e.to_string())
}

fn addr(s: &str) -> Result<Ipv4Addr, RemoteError> {
    parse_addr(s).map_err(|e| invalid(e.to_string()))
}

impl Daemon {
    /// `vmkN` or a port group name.
    fn vmknic(&self, name: &str) -> Result<VmknicId, RemoteError> {
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

    /// A destination address and an optional source vmknic (`-I`), checked.
    fn target(
        &self,
        destination: &str,
        vmknic: Option<&str>,
    ) -> Result<(Ipv4Addr, Option<VmknicId>), RemoteError> {
        Ok((
            addr(destination)?,
            vmknic.map(|n| self.vmknic(n)).transpose()?,
        ))
    }

    /// Saves `new` as the configuration (atomically), then as the last good copy, and makes
    /// it current.
    fn commit(&mut self, new: Config) -> Result<(), RemoteError> {
        let text = new.to_toml();
        save_atomic(&self.path, &text).map_err(|e| {
            RemoteError::new(
                ErrorKind::Io,
                format!("cannot save {}: {e}; nothing changed", self.path.display()),
            )
        })?;
        let _ = save_atomic(&last_good(&self.path), &text);
        self.cfg = new;
        Ok(())
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
        Self::validated(raw)
    }

    fn apply(&mut self, action: Action, reply: &Sender<Response>) -> Outcome {
        let r = match action {
            Action::VmknicList => Ok(json!(self.stack.vmknic_info())),
            Action::RouteList => Ok(json!(self.stack.routing().entries())),
            Action::RouteGet { destination } => addr(&destination).and_then(|d| {
                self.stack
                    .routing()
                    .explain(d)
                    .map(|e| json!(e))
                    .map_err(route_error)
            }),
            Action::GatewayShow => {
                let gw = self.stack.routing().default_gateway();
                let active = self
                    .stack
                    .routing()
                    .lpm()
                    .get(ipnet::Ipv4Net::default())
                    .map(|r| r.next_hop.vmknic());
                Ok(json!(GatewayInfo {
                    gateway: gw,
                    active: active.is_some(),
                    vmknic: active,
                }))
            }
            Action::NeighborList => Ok(json!(self.stack.neighbor_info())),
            Action::Stats => Ok(json!(self.stack.stats())),
            Action::NeighborRemove { ip } => addr(&ip).and_then(|ip| {
                if self.stack.remove_neighbor(ip) {
                    Ok(Value::Null)
                } else {
                    Err(RemoteError::new(
                        ErrorKind::NotFound,
                        format!("no neighbour {ip}"),
                    ))
                }
            }),
            Action::RouteAdd { network, gateway } => self.route_add(&network, &gateway),
            Action::RouteRemove { network, gateway } => {
                self.route_remove(&network, gateway.as_deref())
            }
            Action::GatewaySet { gateway } => self.gateway_set(&gateway),
            Action::GatewayClear { gateway } => self.gateway_clear(gateway.as_deref()),
            Action::VmknicAdd { vmknic } => self.vmknic_add(vmknic),
            Action::VmknicRemove { vmknic } => self.vmknic_remove(&vmknic),
            Action::VmknicEnable { vmknic } => self.vmknic_enable(&vmknic, true),
            Action::VmknicDisable { vmknic } => self.vmknic_enable(&vmknic, false),
            Action::VmknicSetMtu { vmknic, mtu } => self.vmknic_mtu(&vmknic, mtu),
            Action::VmknicSetAddress { vmknic, ip } => self.vmknic_address(&vmknic, &ip),
            Action::Ping {
                destination,
                vmknic,
                size,
                df,
                ttl,
                timeout_ms,
                seq,
            } => {
                return self.ping(
                    &destination,
                    vmknic.as_deref(),
                    size,
                    df,
                    ttl,
                    timeout_ms,
                    seq,
                    reply,
                )
            }
            Action::ForwardAdd {
                listen,
                remote,
                vmknic,
                max_connections,
            } => self.forward_add(&listen, &remote, vmknic.as_deref(), max_connections),
            Action::ForwardList => Ok(json!(self.forwarder.list())),
            Action::StorageProbe {
                kind,
                host,
                port,
                vmknic,
                timeout_ms,
            } => {
                return self.storage_probe(&kind, &host, port, vmknic.as_deref(), timeout_ms, reply)
            }
            Action::ForwardRemove { listen } => self.forward_remove(&listen),
            Action::TcpProbe {
                destination,
                port,
                vmknic,
                timeout_ms,
            } => return self.probe(&destination, port, vmknic.as_deref(), timeout_ms, reply),
        };
        Outcome::Done(r)
    }

    fn route_add(&mut self, network: &str, gateway: &str) -> Result<Value, RemoteError> {
        let net = parse_network(network).map_err(|e| invalid(e.to_string()))?;
        let gw = addr(gateway)?;
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

    fn route_remove(&mut self, network: &str, gateway: Option<&str>) -> Result<Value, RemoteError> {
        let net = parse_network(network).map_err(|e| invalid(e.to_string()))?;
        let existing = self.cfg.routes.iter().find(|r| r.network == net).copied();
        let Some(existing) = existing else {
            return Err(route_error(RouteError::NoSuchRoute(net)));
        };
        if let Some(g) = gateway {
            let g = addr(g)?;
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

    fn gateway_set(&mut self, gateway: &str) -> Result<Value, RemoteError> {
        let gw = addr(gateway)?;
        let mut table = self.stack.routing().clone();
        table.set_default_gateway(gw).map_err(route_error)?;
        let mut new = self.cfg.clone();
        new.default_gateway = Some(gw);
        self.commit(new)?;
        self.stack.set_routing(table);
        info!(gateway = %gw, "default gateway set");
        Ok(Value::Null)
    }

    fn gateway_clear(&mut self, gateway: Option<&str>) -> Result<Value, RemoteError> {
        let Some(current) = self.cfg.default_gateway else {
            return Err(route_error(RouteError::NoDefaultGateway));
        };
        if let Some(g) = gateway {
            let g = addr(g)?;
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
        let new = Self::validated(raw)?;
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

    fn vmknic_remove(&mut self, name: &str) -> Result<Value, RemoteError> {
        let id = self.vmknic(name)?;
        let mut new = self.cfg.clone();
        new.vmknics.retain(|v| v.id != id);
        self.commit(new)?;
        self.stack.remove_vmknic(id);
        Ok(Value::Null)
    }

    fn vmknic_enable(&mut self, name: &str, on: bool) -> Result<Value, RemoteError> {
        let id = self.vmknic(name)?;
        let new = self.with_vmknic(id, |v| v.enabled = Some(on))?;
        self.commit(new)?;
        self.stack.set_vmknic_enabled(id, on).map_err(stack_error)?;
        Ok(Value::Null)
    }

    fn vmknic_mtu(&mut self, name: &str, mtu: u32) -> Result<Value, RemoteError> {
        let id = self.vmknic(name)?;
        let new = self.with_vmknic(id, |v| v.mtu = Some(i64::from(mtu)))?;
        let mtu = u16::try_from(mtu).map_err(|_| invalid(format!("MTU {mtu} is out of range")))?;
        self.commit(new)?;
        self.stack.set_vmknic_mtu(id, mtu).map_err(stack_error)?;
        Ok(Value::Null)
    }

    fn vmknic_address(&mut self, name: &str, ip: &str) -> Result<Value, RemoteError> {
        let id = self.vmknic(name)?;
        let new = self.with_vmknic(id, |v| {
            v.ip = ip.to_string();
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

    fn storage_probe(
        &mut self,
        kind: &str,
        host: &str,
        port: Option<u16>,
        vmknic: Option<&str>,
        timeout_ms: u32,
        reply: &Sender<Response>,
    ) -> Outcome {
        use crate::storage_probe::Probe;
        let (host, via) = match self.target(host, vmknic) {
            Ok(t) => t,
            Err(e) => return Outcome::Done(Err(e)),
        };
        if self.storage.len() >= 16 {
            return Outcome::Done(Err(RemoteError::new(
                ErrorKind::Busy,
                "16 probes already running",
            )));
        }
        let timeout = Duration::from_millis(u64::from(timeout_ms.clamp(100, 60_000)));
        let probe = match kind {
            "iscsi" => Probe::iscsi(host, port.unwrap_or(3260), via, timeout),
            "nfs" => Probe::nfs(host, via, timeout),
            other => {
                return Outcome::Done(Err(invalid(format!(
                    "unknown probe `{other}` (iscsi or nfs)"
                ))))
            }
        };
        self.storage.push((probe, reply.clone()));
        Outcome::Later
    }

    fn forward_add(
        &mut self,
        listen: &str,
        remote: &str,
        vmknic: Option<&str>,
        max: Option<u32>,
    ) -> Result<Value, RemoteError> {
        let sock = |s: &str, what: &str| {
            s.parse::<SocketAddrV4>()
                .map_err(|_| invalid(format!("{what} `{s}` is not a.b.c.d:port")))
        };
        let spec = ForwardSpec {
            listen: sock(listen, "listen address")?,
            remote: sock(remote, "remote address")?,
            vmknic: vmknic.map(|n| self.vmknic(n)).transpose()?,
            max_connections: max.map_or(DEFAULT_MAX_CONNECTIONS, |m| m as usize),
        };
        // The same rules as a [[forward]] table in the file.
        let mut raw = self.cfg.to_raw();
        raw.forwards.push(crate::config::RawForward {
            listen: spec.listen.to_string(),
            remote: spec.remote.to_string(),
            vmknic: spec.vmknic.map(|v| v.to_string()),
            max_connections: Some(spec.max_connections as i64),
        });
        let new = Self::validated(raw)?;
        self.forwarder.add(spec.clone(), &self.stack).map_err(|e| {
            RemoteError::new(
                ErrorKind::Io,
                format!("cannot listen on {}: {e}", spec.listen),
            )
        })?;
        if let Err(e) = self.commit(new) {
            self.forwarder.remove(spec.listen, &mut self.stack);
            return Err(e);
        }
        Ok(Value::Null)
    }

    fn forward_remove(&mut self, listen: &str) -> Result<Value, RemoteError> {
        let addr: SocketAddrV4 = listen
            .parse()
            .map_err(|_| invalid(format!("`{listen}` is not a.b.c.d:port")))?;
        if !self.cfg.forwards.iter().any(|f| f.listen == addr) {
            return Err(RemoteError::new(
                ErrorKind::NotFound,
                format!("no forward on {addr}"),
            ));
        }
        let mut new = self.cfg.clone();
        new.forwards.retain(|f| f.listen != addr);
        self.commit(new)?;
        self.forwarder.remove(addr, &mut self.stack);
        Ok(Value::Null)
    }

    #[allow(clippy::too_many_arguments)]
    fn ping(
        &mut self,
        destination: &str,
        vmknic: Option<&str>,
        size: u32,
        df: bool,
        ttl: u8,
        timeout_ms: u32,
        seq: u16,
        reply: &Sender<Response>,
    ) -> Outcome {
        let (dst, via) = match self.target(destination, vmknic) {
            Ok(t) => t,
            Err(e) => return Outcome::Done(Err(e)),
        };
        let timeout = Duration::from_millis(u64::from(timeout_ms.clamp(1, 60_000)));
        match self
            .stack
            .ping_start(dst, via, size as usize, df, ttl.max(1), seq, timeout)
        {
            Ok(id) => {
                self.pings.insert(id, reply.clone());
                Outcome::Later
            }
            Err(e) => Outcome::Done(Err(ping_error(e))),
        }
    }

    fn probe(
        &mut self,
        destination: &str,
        port: u16,
        vmknic: Option<&str>,
        timeout_ms: u32,
        reply: &Sender<Response>,
    ) -> Outcome {
        let (dst, via) = match self.target(destination, vmknic) {
            Ok(t) => t,
            Err(e) => return Outcome::Done(Err(e)),
        };
        let timeout = Duration::from_millis(u64::from(timeout_ms.clamp(1, 120_000)));
        match self
            .stack
            .probe_start(SocketAddrV4::new(dst, port), via, timeout)
        {
            Ok(id) => {
                self.probes.insert(id, reply.clone());
                Outcome::Later
            }
            Err(e) => Outcome::Done(Err(probe_error(e))),
        }
    }

    /// Answers the pings and probes that finished.
    fn finish_async(&mut self) {
        let mut i = 0;
        while i < self.storage.len() {
            match self.storage[i].0.poll(&mut self.stack) {
                crate::storage_probe::Progress::Running => i += 1,
                crate::storage_probe::Progress::Done(report) => {
                    let (_, tx) = self.storage.swap_remove(i);
                    let _ = tx.try_send(Response::ok(json!(report)));
                }
            }
        }
        let pings = &mut self.pings;
        self.stack.take_ping_results(|id, r| {
            if let Some(tx) = pings.remove(&id) {
                let resp = match r {
                    Ok(reply) => Response::ok(json!(reply)),
                    Err(e) => Response::err(ping_error(e)),
                };
                let _ = tx.try_send(resp);
            }
        });
        let probes = &mut self.probes;
        self.stack.take_probe_results(|id, r| {
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

fn ping_error(e: PingError) -> RemoteError {
    let kind = match e {
        PingError::MessageTooLong => ErrorKind::MessageTooLong,
        PingError::NoRoute => ErrorKind::NoRoute,
        PingError::NotFound(_) => ErrorKind::NotFound,
        PingError::HostDown => ErrorKind::HostDown,
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
        ProbeError::HostDown => ErrorKind::HostDown,
        ProbeError::Timeout => ErrorKind::Timeout,
        ProbeError::Refused => ErrorKind::Refused,
        ProbeError::Busy => ErrorKind::Busy,
        ProbeError::Other(_) => ErrorKind::Invalid,
    };
    RemoteError::new(kind, e.to_string())
}

/// Runs the daemon until `shutdown` becomes true (the binary sets it from SIGINT/SIGTERM).
/// Start-up routing problems are logged and printed (ESX's gateway message verbatim on
/// stderr); the stack runs anyway with those routes inactive.
pub fn run(config: &Path, control: &Path, shutdown: Arc<AtomicBool>) -> Result<(), DaemonError> {
    let cfg = match Config::load(config) {
        Ok(c) => c,
        Err(e) => {
            // A corrupt or truncated file is refused; the last good copy stays untouched.
            let good = last_good(config);
            if good.exists() {
                eprintln!(
                    "vmkstack: the last good configuration is in {}; compare, then copy it back",
                    good.display()
                );
            }
            return Err(e.into());
        }
    };
    remove_stale_temp_files(config);
    if let Err(e) = save_atomic(&last_good(config), &cfg.to_toml()) {
        info!("cannot keep a last good copy of the configuration: {e}");
    }
    let group = match &cfg.control_group {
        Some(name) => Some((
            name.clone(),
            group_id(name).ok_or_else(|| DaemonError::NoSuchGroup(name.clone()))?,
        )),
        None => None,
    };
    let (ctl, listener) = ControlPath::acquire(control, group.as_ref().map(|g| g.1))?;
    let (stack, problems) = Netstack::new(&cfg)?;
    // ESX's words, verbatim on stderr (the console of a foreground daemon).
    for p in &problems {
        eprintln!("{p}");
    }
    let (tx, rx): (Sender<Pending>, Receiver<Pending>) = bounded(QUEUE_DEPTH);
    let server = Server::spawn(
        listener,
        control.to_path_buf(),
        tx,
        stack.waker(),
        Policy { group },
    )
    .map_err(|source| DaemonError::Control {
        path: control.display().to_string(),
        source,
    })?;
    let mut forwarder = Forwarder::new();
    for f in &cfg.forwards {
        // A forward that cannot listen is reported; the stack runs anyway.
        if let Err(e) = forwarder.add(f.clone(), &stack) {
            eprintln!("forward {} -> {}: cannot listen: {e}", f.listen, f.remote);
        }
    }
    let mut d = Daemon {
        path: config.to_path_buf(),
        cfg,
        stack,
        forwarder,
        pings: HashMap::new(),
        probes: HashMap::new(),
        storage: Vec::new(),
    };
    info!(config = %config.display(), control = %control.display(), "vmkstack daemon running");
    let result = loop {
        if shutdown.load(Ordering::Relaxed) {
            break Ok(());
        }
        if let Err(e) = d.stack.run_once(Duration::from_millis(200)) {
            break Err(DaemonError::Loop(e));
        }
        while let Ok(p) = rx.try_recv() {
            if let Outcome::Done(r) = d.apply(p.action, &p.reply) {
                let resp = match r {
                    Ok(v) => Response::ok(v),
                    Err(e) => Response::err(e),
                };
                let _ = p.reply.try_send(resp);
            }
        }
        d.forwarder.poll(&mut d.stack);
        d.stack.poll_local();
        d.finish_async();
    };
    info!("shutting down");
    server.stop();
    drop(d);
    drop(ctl);
    result
}

/// A flag that SIGINT and SIGTERM set, for [`run`].
pub fn shutdown_on_signals() -> io::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, flag.clone())?;
    }
    Ok(flag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_save_atomic_replaces_whole_file() {
        let dir = std::env::temp_dir().join(format!("vmks-save-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("c.toml");
        save_atomic(&p, "a = 1\n").unwrap();
        save_atomic(&p, "b = 2\n").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "b = 2\n");
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
