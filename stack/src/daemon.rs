//! `vmkstack daemon`: one netstack in the foreground, its configuration file as the single
//! store (like esx.conf), the control socket guarded by a lock file, clean shutdown on
//! SIGINT/SIGTERM (every TAP it created disappears with it). Under systemd it reports
//! readiness once the vmknics are up and the control socket listens, and SIGHUP (the unit's
//! `ExecReload`) applies the file on disk live, as `vmkstack reload` does.
//!
//! This file is start-up and the event loop only. Requests arrive parsed into typed commands
//! (`control::command`, by the server threads); the state owner (`control::apply`) applies
//! them: every accepted change is written to the configuration file atomically
//! (`control::store`) before it is acknowledged, and applies to the running data plane at once.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, Sender};
use thiserror::Error;
use tracing::{error, info, warn};

use crate::config::{Config, ConfigError};
use crate::control::apply::{Daemon, Outcome};
use crate::control::forwards::Forwards;
use crate::control::server::{bind_socket, group_id, Pending, Policy, Server, QUEUE_DEPTH};
use crate::control::store::{last_good, remove_stale_temp_files, save_atomic};
use crate::netstack::{Netstack, StackError};
use crate::service::{self, MissingCapabilities};
use vmkstack_api::Response;

/// Longest sleep of the event loop (the shutdown flag is checked at least this often).
const MAX_WAIT: Duration = Duration::from_millis(200);

/// Why the daemon stopped with an error.
#[derive(Debug, Error)]
pub enum DaemonError {
    /// The configuration did not load.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Another daemon holds the control path.
    #[error("another vmkstack daemon{} is running on {control} (lock {lock} is held)",
        .pid.map_or_else(String::new, |p| format!(" (PID {p})")))]
    AlreadyRunning {
        /// Control socket path.
        control: String,
        /// Lock file.
        lock: String,
        /// The PID the holder wrote into the lock file, if it did.
        pid: Option<u32>,
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
    /// The process lacks a capability the configuration needs.
    #[error(transparent)]
    Capabilities(#[from] MissingCapabilities),
    /// `/dev/net/tun` cannot be opened.
    #[error("{0}")]
    TunDevice(String),
    /// The netstack did not start.
    #[error(transparent)]
    Stack(#[from] StackError),
    /// The event loop failed.
    #[error("event loop: {0}")]
    Loop(#[source] io::Error),
    /// `metrics_listen` could not be listened on.
    #[error("metrics_listen {addr}: cannot listen: {source}")]
    Metrics {
        /// The address.
        addr: std::net::SocketAddr,
        /// What failed.
        #[source]
        source: io::Error,
    },
}

/// Holds the lock file and the control socket path; removes both when dropped.
struct ControlPath {
    lock: Option<File>,
    lock_path: PathBuf,
    socket: PathBuf,
    group: Option<u32>,
    /// The socket file we bound (device, inode): anything else at the path is not ours.
    socket_id: Option<(u64, u64)>,
    /// When the path was last looked at ([`ControlPath::keep`]).
    checked: Instant,
    /// Re-creating the socket failed; said once in the log.
    failing: bool,
}

/// How often the control socket's path is looked at.
const CONTROL_CHECK: Duration = Duration::from_secs(1);

/// The (device, inode) of the file at `path`, without following a symlink.
fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

/// Takes `<control>.lock` and writes our PID into it; `AlreadyRunning` with the holder's PID
/// if another daemon holds it.
fn take_lock(lock_path: &Path, ctl: &str) -> Result<File, DaemonError> {
    use std::io::{Read, Seek, Write};
    let io_err = |source| DaemonError::Control {
        path: ctl.to_string(),
        source,
    };
    let mut lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(lock_path)
        .map_err(io_err)?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = lock.read_to_string(&mut text);
            return Err(DaemonError::AlreadyRunning {
                control: ctl.to_string(),
                lock: lock_path.display().to_string(),
                pid: text.trim().parse().ok(),
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io_err(e)),
    }
    // Whoever is refused names us.
    let wrote = lock
        .set_len(0)
        .and_then(|()| lock.rewind())
        .and_then(|()| writeln!(lock, "{}", std::process::id()));
    if let Err(e) = wrote {
        warn!(lock = %lock_path.display(), "cannot write the PID into the lock file: {e}");
    }
    Ok(lock)
}

impl ControlPath {
    /// Takes `<control>.lock` (refusing, with the holder's PID, if another daemon holds it),
    /// then replaces any stale socket left by a killed daemon and binds a fresh one: mode
    /// 0600, or 0660 with the control group.
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
        let lock = take_lock(&lock_path, &ctl)?;
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
        let listener = bind_socket(control, group).map_err(io_err)?;
        Ok((
            ControlPath {
                lock: Some(lock),
                lock_path,
                socket: control.to_path_buf(),
                group,
                socket_id: file_id(control),
                checked: Instant::now(),
                failing: false,
            },
            listener,
        ))
    }

    /// Once a second: if the socket file (or its directory) was deleted, creates the
    /// directory, takes the lock file again and binds the socket anew for `server`; says in
    /// the log what it did, or why it could not.
    fn keep(&mut self, server: &Server) {
        if self.checked.elapsed() < CONTROL_CHECK {
            return;
        }
        self.checked = Instant::now();
        let id = file_id(&self.socket);
        if id.is_some() && id == self.socket_id {
            return;
        }
        let ctl = self.socket.display().to_string();
        let result = (|| -> Result<(), String> {
            if id.is_some() {
                return Err("something else is at its path now; not replacing it".into());
            }
            if let Some(dir) = self.socket.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            }
            // The lock file went with the directory: take it again, so that a second daemon
            // is still refused.
            let held = self.lock.as_ref().and_then(|f| {
                use std::os::unix::fs::MetadataExt;
                f.metadata().ok().map(|m| (m.dev(), m.ino()))
            });
            if held.is_none() || held != file_id(&self.lock_path) {
                let lock = take_lock(&self.lock_path, &ctl).map_err(|e| e.to_string())?;
                self.lock = Some(lock);
            }
            let listener =
                bind_socket(&self.socket, self.group).map_err(|e| format!("cannot bind: {e}"))?;
            server.replace(listener);
            self.socket_id = file_id(&self.socket);
            Ok(())
        })();
        match result {
            Ok(()) => {
                warn!(control = %ctl, "the control socket was deleted; re-created it");
                self.failing = false;
            }
            Err(e) if !self.failing => {
                error!(control = %ctl, "the control socket was deleted and cannot be re-created: {e}");
                self.failing = true;
            }
            Err(_) => {}
        }
    }
}

impl Drop for ControlPath {
    fn drop(&mut self) {
        // Only what is ours: a path taken by something else since stays.
        if file_id(&self.socket).is_some() && file_id(&self.socket) == self.socket_id {
            let _ = std::fs::remove_file(&self.socket);
        }
        // Unlink while still holding the lock, so that no new daemon locks a file we delete.
        let _ = std::fs::remove_file(&self.lock_path);
        drop(self.lock.take());
    }
}

/// The flags the binary's signal handlers set, for [`run`].
#[derive(Debug, Clone, Default)]
pub struct Signals {
    /// SIGINT, SIGTERM: stop.
    pub shutdown: Arc<AtomicBool>,
    /// SIGHUP: reload (apply the file on disk live, or refuse it and change nothing).
    pub reload: Arc<AtomicBool>,
}

/// Sends a systemd notification; a failure is logged, never fatal.
fn notify(state: &str) {
    if let Err(e) = service::notify(state) {
        warn!("cannot notify systemd ({state}): {e}");
    }
}

/// SIGHUP: the file on disk is applied live ([`Daemon::reload`]): the difference, or nothing
/// with every problem named in the log.
fn reload(d: &mut Daemon) {
    notify("RELOADING=1");
    let status = match d.reload() {
        Ok(v) => {
            let n = v["changes"].as_array().map_or(0, Vec::len);
            format!("running (reloaded: {n} change(s))")
        }
        Err(e) => {
            warn!(problems = %e.message, "reload: nothing changed");
            "running (reload refused, see the log)".to_string()
        }
    };
    notify(&format!("READY=1\nSTATUS={status}"));
}

/// Runs the daemon until `signals.shutdown` becomes true (the binary sets it from
/// SIGINT/SIGTERM). Start-up routing problems are logged and printed (ESX's gateway message
/// verbatim on stderr); the stack runs anyway with those routes inactive. Refuses to start,
/// naming them, when the process lacks capabilities the configuration needs.
pub fn run(config: &Path, control: &Path, signals: Signals) -> Result<(), DaemonError> {
    let Signals {
        shutdown,
        reload: reload_flag,
    } = signals;
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
    // What a change through the control socket compares the file with (a hand edit since
    // is refused until it is reloaded).
    let loaded = std::fs::read_to_string(config).unwrap_or_default();
    remove_stale_temp_files(config);
    if let Err(e) = save_atomic(&last_good(config), &cfg.to_toml()) {
        info!("cannot keep a last good copy of the configuration: {e}");
    }
    // Name a missing capability now rather than fail half-way through with EPERM.
    match service::effective_capabilities() {
        Ok(caps) => {
            let missing = service::missing_capabilities(&cfg, caps);
            if !missing.is_empty() {
                return Err(MissingCapabilities(missing).into());
            }
        }
        Err(e) => warn!("cannot read this process's capabilities: {e}"),
    }
    if !cfg.vmknics.is_empty() {
        service::check_tun_device().map_err(DaemonError::TunDevice)?;
    }
    let group = match &cfg.control_group {
        Some(name) => Some((
            name.clone(),
            group_id(name).ok_or_else(|| DaemonError::NoSuchGroup(name.clone()))?,
        )),
        None => None,
    };
    let (mut ctl, listener) = ControlPath::acquire(control, group.as_ref().map(|g| g.1))?;
    let (stack, problems) = Netstack::new(&cfg)?;
    // ESX's words, verbatim on stderr (the console of a foreground daemon).
    for (netstack, p) in &problems {
        eprintln!("{p}");
        warn!(%netstack, "{p}");
    }
    let (tx, rx): (Sender<Pending>, Receiver<Pending>) = bounded(QUEUE_DEPTH);
    let _metrics = match cfg.metrics_listen {
        Some(addr) => {
            let m = crate::metrics::spawn(addr, tx.clone(), stack.waker())
                .map_err(|source| DaemonError::Metrics { addr, source })?;
            info!(addr = %m.addr, "metrics served at /metrics");
            Some(m)
        }
        None => None,
    };
    let server = Server::spawn(
        listener,
        control.to_path_buf(),
        tx,
        stack.waker(),
        Policy {
            group,
            owner: Some(crate::control::server::effective_uid().map_err(DaemonError::Loop)?),
        },
    )
    .map_err(|source| DaemonError::Control {
        path: control.display().to_string(),
        source,
    })?;
    let mut forwards = Forwards::new(stack.registry()).map_err(DaemonError::Loop)?;
    for f in &cfg.forwards {
        // A forward that cannot listen is reported; the stack runs anyway.
        if let Err(e) = forwards.add(f.clone()) {
            eprintln!("forward {} -> {}: cannot listen: {e}", f.listen, f.remote);
        }
    }
    let vmknics = cfg.vmknics.len();
    let mut d = Daemon::new(config.to_path_buf(), cfg, loaded, stack, forwards);
    info!(config = %config.display(), control = %control.display(), "vmkstack daemon running");
    // The vmknics are up and the control socket listens: ready (systemd `Type=notify`).
    notify(&format!(
        "READY=1\nSTATUS=running: {} vmknic(s), control socket {}",
        vmknics,
        control.display()
    ));
    let result = loop {
        if shutdown.load(Ordering::Relaxed) {
            break Ok(());
        }
        if reload_flag.swap(false, Ordering::Relaxed) {
            reload(&mut d);
        }
        // Wake for the next ping or probe deadline, and at least every 200 ms (the clock is
        // read only when one is pending: this runs once per data-plane turn).
        let wait = d.next_deadline().map_or(MAX_WAIT, |at| {
            at.saturating_duration_since(Instant::now()).min(MAX_WAIT)
        });
        if let Err(e) = d.stack.run_once(wait) {
            break Err(DaemonError::Loop(e));
        }
        while let Ok(p) = rx.try_recv() {
            if let Outcome::Done(r) = d.apply(p.command, p.netstack.as_deref(), &p.reply) {
                let resp = match r {
                    Ok(v) => Response::ok(v),
                    Err(e) => Response::err(e),
                };
                let _ = p.reply.try_send(resp);
            }
        }
        d.forwards.poll(&mut d.stack);
        d.stack.poll_local();
        d.finish_async();
        ctl.keep(&server);
    };
    info!("shutting down");
    notify("STOPPING=1");
    server.stop();
    drop(d);
    drop(ctl);
    result
}

/// Flags that SIGINT and SIGTERM (shutdown) and SIGHUP (reload) set, for [`run`]. SIGHUP no
/// longer ends the daemon.
pub fn shutdown_on_signals() -> io::Result<Signals> {
    let signals = Signals::default();
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, signals.shutdown.clone())?;
    }
    signal_hook::flag::register(signal_hook::consts::SIGHUP, signals.reload.clone())?;
    Ok(signals)
}
