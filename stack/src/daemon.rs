//! `vmkstack daemon`: one netstack in the foreground, its control socket path guarded by a lock
//! file, clean shutdown on SIGINT/SIGTERM (every TAP it created disappears with it).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tracing::{info, warn};

use crate::config::{Config, ConfigError};
use crate::netstack::{Netstack, StackError};

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
    /// The netstack did not start.
    #[error(transparent)]
    Stack(#[from] StackError),
    /// The event loop failed.
    #[error("event loop: {0}")]
    Loop(#[source] io::Error),
}

/// Holds the lock file and the control socket; removes the socket when dropped.
struct ControlPath {
    _lock: File,
    socket: PathBuf,
    listener: UnixListener,
}

impl ControlPath {
    /// Takes `<control>.lock` (refusing if another daemon holds it), then replaces any stale
    /// socket left by a killed daemon and binds a fresh one, mode 0600.
    fn acquire(control: &Path) -> Result<ControlPath, DaemonError> {
        let ctl = control.display().to_string();
        let io_err = |source| DaemonError::Control {
            path: ctl.clone(),
            source,
        };
        if let Some(dir) = control.parent() {
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
        // We hold the lock, so a socket file here is a dead daemon's.
        match std::fs::remove_file(control) {
            Ok(()) => info!(path = %ctl, "removed stale control socket"),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(e)),
        }
        let listener = UnixListener::bind(control).map_err(io_err)?;
        std::fs::set_permissions(control, std::fs::Permissions::from_mode(0o600))
            .map_err(io_err)?;
        listener.set_nonblocking(true).map_err(io_err)?;
        Ok(ControlPath {
            _lock: lock,
            socket: control.to_path_buf(),
            listener,
        })
    }

    /// Answers control clients. The control API arrives with the control-plane issue; until
    /// then each client gets one JSON line saying so.
    fn serve(&self) {
        while let Ok((mut conn, _)) = self.listener.accept() {
            let _ = conn.write_all(
                b"{\"ok\":false,\"error\":\"this vmkstack daemon has no control API yet\"}\n",
            );
        }
    }
}

impl Drop for ControlPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// Runs the daemon until `shutdown` becomes true (the binary sets it from SIGINT/SIGTERM).
/// Start-up routing problems are logged and printed (ESX's gateway message verbatim on
/// stderr); the stack runs anyway with those routes inactive.
pub fn run(config: &Path, control: &Path, shutdown: Arc<AtomicBool>) -> Result<(), DaemonError> {
    let cfg = Config::load(config)?;
    let ctl = ControlPath::acquire(control)?;
    let (mut stack, problems) = Netstack::new(&cfg)?;
    for p in &problems {
        warn!("{p}");
        eprintln!("{p}");
    }
    info!(config = %config.display(), control = %control.display(), "vmkstack daemon running");
    while !shutdown.load(Ordering::Relaxed) {
        stack
            .run_once(Duration::from_millis(200))
            .map_err(DaemonError::Loop)?;
        ctl.serve();
    }
    info!("shutting down");
    drop(stack);
    drop(ctl);
    Ok(())
}

/// A flag that SIGINT and SIGTERM set, for [`run`].
pub fn shutdown_on_signals() -> io::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, flag.clone())?;
    }
    Ok(flag)
}
