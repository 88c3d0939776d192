//! Running as a system service: systemd's readiness protocol, the capabilities a
//! configuration needs, and `vmkstack daemon --check-config`.
//!
//! - [`notify`] sends one `sd_notify(3)` datagram (`READY=1`, `RELOADING=1`, `STOPPING=1`,
//!   `STATUS=...`) to `$NOTIFY_SOCKET`, a filesystem path or an abstract name (`@name`). The
//!   protocol is one datagram per state change on an unbound Unix socket; no crate needed.
//! - [`needed_capabilities`] says which capabilities a configuration needs and why:
//!   `CAP_NET_ADMIN` for TAPs and bridges, `CAP_SYS_ADMIN` for a vmknic whose kernel side lives
//!   in another namespace (`ip -n` enters it with `setns`), `CAP_NET_BIND_SERVICE` for a
//!   forward that listens on a privileged port. [`missing_capabilities`] compares that with
//!   what the process holds (`CapEff` in `/proc/self/status`), so that an unprivileged daemon
//!   refuses to start naming the capability instead of failing half-way with `EPERM`.

use std::fmt;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::Path;

use crate::config::{Config, ConfigError};
use crate::control::server::group_id;

/// Sends `state` (newline-separated `KEY=VALUE` assignments) to systemd's notification socket.
/// `Ok(false)` when `$NOTIFY_SOCKET` is not set (not started by systemd with `Type=notify`).
pub fn notify(state: &str) -> io::Result<bool> {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(false);
    };
    let addr = notify_addr(path.as_bytes())?;
    let socket = UnixDatagram::unbound()?;
    socket.send_to_addr(state.as_bytes(), &addr)?;
    Ok(true)
}

/// The address `$NOTIFY_SOCKET` names: `/path`, or `@name` in the abstract namespace.
fn notify_addr(value: &[u8]) -> io::Result<SocketAddr> {
    use std::os::linux::net::SocketAddrExt;
    match value.first() {
        Some(b'@') => SocketAddr::from_abstract_name(&value[1..]),
        Some(b'/') => SocketAddr::from_pathname(Path::new(std::ffi::OsStr::from_bytes(value))),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "NOTIFY_SOCKET `{}` is neither an absolute path nor an abstract name (@...)",
                String::from_utf8_lossy(value)
            ),
        )),
    }
}

/// A Linux capability the daemon may need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Capability {
    /// Bind ports below `net.ipv4.ip_unprivileged_port_start`.
    NetBindService = 10,
    /// Create TAPs, set their MTU and carrier, join bridges, move links between namespaces.
    NetAdmin = 12,
    /// Enter another network namespace (`setns`, as `ip -n` does).
    SysAdmin = 21,
}

impl Capability {
    /// Its name as `capabilities(7)`, systemd and setpriv write it.
    pub fn name(self) -> &'static str {
        match self {
            Capability::NetBindService => "CAP_NET_BIND_SERVICE",
            Capability::NetAdmin => "CAP_NET_ADMIN",
            Capability::SysAdmin => "CAP_SYS_ADMIN",
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A capability a configuration needs, and what for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    /// The capability.
    pub cap: Capability,
    /// Why, naming the configuration's parts (`create the TAPs of vmk0, vmk1`).
    pub why: String,
}

impl fmt::Display for Need {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (to {})", self.cap, self.why)
    }
}

/// The first port that needs no privilege in this namespace (1024 unless the sysctl says
/// otherwise).
fn unprivileged_port_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1024)
}

/// The capabilities `cfg` needs at start-up, each with its reason, in capability order.
pub fn needed_capabilities(cfg: &Config) -> Vec<Need> {
    let mut needs = Vec::new();
    let names = |f: &dyn Fn(&crate::VmknicConfig) -> bool| {
        cfg.vmknics
            .iter()
            .filter(|v| f(v))
            .map(|v| v.id.to_string())
            .collect::<Vec<_>>()
    };
    let low = unprivileged_port_start();
    let privileged: Vec<String> = cfg
        .forwards
        .iter()
        .filter(|f| f.listen.port() < low)
        .map(|f| f.listen.to_string())
        .collect();
    if !privileged.is_empty() {
        needs.push(Need {
            cap: Capability::NetBindService,
            why: format!(
                "listen on privileged port(s) for forward(s) {}",
                privileged.join(", ")
            ),
        });
    }
    let taps = names(&|_| true);
    if !taps.is_empty() {
        needs.push(Need {
            cap: Capability::NetAdmin,
            why: format!("create and configure the TAPs of {}", taps.join(", ")),
        });
    }
    let in_netns = names(&|v| v.netns.is_some());
    if !in_netns.is_empty() {
        needs.push(Need {
            cap: Capability::SysAdmin,
            why: format!(
                "configure the TAPs of {} inside their network namespaces (`ip -n`)",
                in_netns.join(", ")
            ),
        });
    }
    needs
}

/// The effective capability set of this process (`CapEff` in `/proc/self/status`).
pub fn effective_capabilities() -> io::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .ok_or_else(|| io::Error::other("no CapEff line in /proc/self/status"))
}

/// The needs of `cfg` that the effective set `effective` lacks.
pub fn missing_capabilities(cfg: &Config, effective: u64) -> Vec<Need> {
    needed_capabilities(cfg)
        .into_iter()
        .filter(|n| effective & (1u64 << (n.cap as u32)) == 0)
        .collect()
}

/// What the daemon cannot do with the capabilities it holds.
#[derive(Debug)]
pub struct MissingCapabilities(pub Vec<Need>);

impl fmt::Display for MissingCapabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list: Vec<String> = self.0.iter().map(Need::to_string).collect();
        write!(
            f,
            "missing capabilities: the daemon needs {}; run it as root or grant them (systemd: \
             AmbientCapabilities=; setpriv --inh-caps/--ambient-caps)",
            list.join(", ")
        )
    }
}

impl std::error::Error for MissingCapabilities {}

/// Checks that `/dev/net/tun` can be opened read-write (the TAPs are made through it). The
/// usual udev rule makes it mode 0666; a root-only node needs root or `CAP_DAC_OVERRIDE`.
pub fn check_tun_device() -> Result<(), String> {
    const TUN: &str = "/dev/net/tun";
    match std::fs::OpenOptions::new().read(true).write(true).open(TUN) {
        Ok(_) => Ok(()),
        Err(e) => {
            let hint = match e.kind() {
                io::ErrorKind::PermissionDenied => {
                    "; the daemon's user needs read-write access to it (the usual udev rule \
                     makes it mode 0666)"
                }
                io::ErrorKind::NotFound => "; load the tun module or create the node (c 10 200)",
                _ => "",
            };
            Err(format!("cannot open {TUN}: {e}{hint}"))
        }
    }
}

/// What `vmkstack daemon --check-config` found in a configuration that loads.
#[derive(Debug)]
pub struct CheckReport {
    /// Vmknics, routes and forwards in the file.
    pub summary: String,
    /// Problems that stop the daemon (none: it would start).
    pub errors: Vec<String>,
    /// What the daemon reports but starts with (ESX's gateway message, ...).
    pub warnings: Vec<String>,
    /// The capabilities the daemon needs with this file.
    pub needs: Vec<Need>,
}

/// Validates `path` as the daemon would at start-up, without touching anything: the file's
/// keys and values (every problem at once), the control group, the routing rules (reported,
/// as the daemon starts anyway), and the capabilities it needs.
pub fn check_config(path: &Path) -> Result<CheckReport, ConfigError> {
    let cfg = Config::load(path)?;
    let mut errors = Vec::new();
    if let Some(g) = &cfg.control_group {
        if group_id(g).is_none() {
            errors.push(format!(
                "{}: control_group `{g}` is not a group on this host (see /etc/group)",
                path.display()
            ));
        }
    }
    // Every netstack's start-up problems; another netstack's name its own.
    let mut warnings: Vec<String> = Vec::new();
    for name in cfg.netstack_names() {
        let Some(view) = cfg.view(name) else {
            continue;
        };
        for p in view.routing().1 {
            warnings.push(match name == cfg.netstack {
                true => p.to_string(),
                false => format!("netstack {name}: {p}"),
            });
        }
    }
    let summary = format!(
        "{}: {} vmknic(s), {} static route(s), {} forward(s), default gateway {}",
        path.display(),
        cfg.vmknics.len(),
        cfg.routes.len(),
        cfg.forwards.len(),
        cfg.default_gateway
            .map_or_else(|| "none".to_string(), |g| g.to_string())
    );
    Ok(CheckReport {
        summary,
        errors,
        warnings,
        needs: needed_capabilities(&cfg),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_notify_addr() {
        use std::os::linux::net::SocketAddrExt;
        let a = notify_addr(b"@vmks/notify").unwrap();
        assert_eq!(a.as_abstract_name(), Some(&b"vmks/notify"[..]));
        let p = notify_addr(b"/run/systemd/notify").unwrap();
        assert_eq!(p.as_pathname(), Some(Path::new("/run/systemd/notify")));
        let e = notify_addr(b"vsock:2:1").unwrap_err();
        assert!(e.to_string().contains("neither an absolute path"), "{e}");
        assert!(notify_addr(b"").is_err());
    }

    #[test]
    fn test_notify_datagrams() {
        // A listener in the abstract namespace, as systemd's own, receives each state whole.
        use std::os::linux::net::SocketAddrExt;
        let name = format!("vmks-{}-notify-test", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let listener = UnixDatagram::bind_addr(&addr).unwrap();
        let socket = UnixDatagram::unbound().unwrap();
        let to = notify_addr(format!("@{name}").as_bytes()).unwrap();
        socket.send_to_addr(b"READY=1\nSTATUS=up", &to).unwrap();
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=up");
    }

    fn config(text: &str) -> Config {
        Config::parse(text, "t.toml").unwrap()
    }

    #[test]
    fn test_needed_capabilities() {
        assert!(needed_capabilities(&config("forwarding = false\n")).is_empty());
        let cfg = config(
            "[[vmknic]]\nname = \"vmk0\"\nportgroup = \"a\"\nip = \"198.18.1.1/24\"\n\
             [[vmknic]]\nname = \"vmk1\"\nportgroup = \"b\"\nip = \"198.18.2.1/24\"\n\
             netns = \"lab\"\n\
             [[forward]]\nlisten = \"127.0.0.1:111\"\nremote = \"198.18.100.20:111\"\n\
             [[forward]]\nlisten = \"127.0.0.1:3260\"\nremote = \"198.18.100.20:3260\"\n",
        );
        let needs = needed_capabilities(&cfg);
        let caps: Vec<Capability> = needs.iter().map(|n| n.cap).collect();
        assert_eq!(
            caps,
            [
                Capability::NetBindService,
                Capability::NetAdmin,
                Capability::SysAdmin
            ]
        );
        assert!(needs[0].why.contains("127.0.0.1:111"), "{}", needs[0]);
        assert!(!needs[0].why.contains("3260"), "{}", needs[0]);
        assert!(needs[1].why.contains("vmk0, vmk1"), "{}", needs[1]);
        assert!(needs[2].why.contains("vmk1") && !needs[2].why.contains("vmk0"));
        // CAP_NET_ADMIN (bit 12) alone: the namespace and the low port are missing.
        let missing = missing_capabilities(&cfg, 1 << 12);
        let text = MissingCapabilities(missing).to_string();
        assert!(
            text.contains("CAP_SYS_ADMIN (to configure the TAPs of vmk1"),
            "{text}"
        );
        assert!(text.contains("CAP_NET_BIND_SERVICE"), "{text}");
        assert!(!text.contains("CAP_NET_ADMIN"), "{text}");
        assert!(missing_capabilities(&cfg, u64::MAX).is_empty());
    }

    #[test]
    fn test_effective_capabilities() {
        // Whatever this process holds, the line parses.
        effective_capabilities().unwrap();
    }
}
