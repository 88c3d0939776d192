//! The lab that the daemon's root-only tests share: the daemon's namespace, host namespaces on
//! the vmknics' wires, hosts behind a Linux router, and a scratch directory with the
//! configuration, the control socket and the daemon's log.
//!
//! A host reaches its vmknic one of two ways, as the configuration says:
//! - [`LabBuilder::tap_host`]: the vmknic's TAP moves into the host's namespace (config key
//!   `netns`); the host's address goes on the TAP each time a daemon has created it;
//! - [`LabBuilder::bridge_host`]: the TAP joins a Linux bridge in the daemon's namespace
//!   (config key `bridge`, the port group's switch) and the host hangs off the bridge by a
//!   veth; its address lives on the veth, so it survives the daemon.
//!
//! [`LabBuilder::behind`] puts a further host behind one of them, which then routes (a Linux
//! router, `ip_forward=1`): the article's storage server on a routed subnet.
//!
//! ```ignore
//! let lab = Lab::builder("fwd")
//!     .tap_host("h1", "vmk0", "198.18.1.10/24")
//!     .route("h1", "default", "198.18.1.1")
//!     .tap_host("h2", "vmk1", "198.18.2.10/24")
//!     .route("h2", "default", "198.18.2.1")
//!     .build();
//! lab.write_config(&text); // naming lab.ns("h1").name and lab.ns("h2").name
//! let daemon = lab.start(); // declared after `lab`: stopped before the namespaces go
//! ```
//!
//! Lab rules ([`super`]): namespaces `vmks-<pid>-<n>-<role>`, deleted on drop; addresses from
//! 198.18.0.0/15 only; the daemon stopped by its PID when its [`Proc`] drops.

use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use super::{assert_lab_addr, cli, spawn_daemon, veth, wait_until, Netns, Proc, Scratch};

/// How long [`Lab::start`] waits for each TAP to reach its host (or bridge).
pub const TAP_TIMEOUT: Duration = Duration::from_secs(15);
/// How long [`Lab::start`] waits for the control socket to accept a connection.
pub const CONTROL_TIMEOUT: Duration = Duration::from_secs(10);

/// How a host namespace is wired.
#[derive(Debug, Clone)]
enum Wire {
    /// The TAP of `vmknic` is moved into the host's namespace.
    Tap { vmknic: String },
    /// The TAP of `vmknic` joins `bridge` in the daemon's namespace; the host has a veth
    /// `eth0` whose peer `<bridge>-port` is a port of the bridge.
    Bridge { vmknic: String, bridge: String },
    /// A veth `eth0` to `router` (whose side, `r-<role>`, has `router_addr`); the host's
    /// default route goes via the router.
    Behind { router: String, router_addr: String },
}

/// One host namespace to make.
#[derive(Debug, Clone)]
struct HostSpec {
    role: String,
    wire: Wire,
    /// CIDR, e.g. "198.18.1.10/24".
    addr: String,
    /// (destination, gateway), e.g. ("default", "198.18.1.1").
    routes: Vec<(String, String)>,
}

/// A host namespace of a [`Lab`].
#[derive(Debug)]
pub struct Host {
    /// The name the test gives it ("h1", "router", ...).
    pub role: String,
    /// Its namespace.
    pub ns: Netns,
    spec: HostSpec,
}

/// Describes a [`Lab`]; [`LabBuilder::build`] makes it.
#[derive(Debug)]
pub struct LabBuilder {
    tag: String,
    hosts: Vec<HostSpec>,
    quiet: bool,
    log_level: &'static str,
    world_readable: bool,
}

impl LabBuilder {
    /// A host `role` on the wire of `vmknic`'s TAP, which the configuration moves into the
    /// host's namespace; `addr` (CIDR) goes on the TAP after each daemon start.
    pub fn tap_host(mut self, role: &str, vmknic: &str, addr: &str) -> LabBuilder {
        self.add(
            role,
            Wire::Tap {
                vmknic: vmknic.into(),
            },
            addr,
        );
        self
    }

    /// A host `role` on Linux bridge `bridge` in the daemon's namespace, which `vmknic`'s TAP
    /// joins (config key `bridge`); `addr` (CIDR) goes on the host's veth `eth0`, whose peer is
    /// the bridge port `<bridge>-port` (`<bridge>-<role>` for a further host on that bridge).
    pub fn bridge_host(mut self, role: &str, vmknic: &str, bridge: &str, addr: &str) -> LabBuilder {
        let wire = Wire::Bridge {
            vmknic: vmknic.into(),
            bridge: bridge.into(),
        };
        self.add(role, wire, addr);
        self
    }

    /// A host `role` behind host `router` (added before), on a veth: `router_addr` on the
    /// router's side, `addr` on the host's, the host's default route via the router, and the
    /// router forwarding.
    pub fn behind(mut self, router: &str, role: &str, router_addr: &str, addr: &str) -> LabBuilder {
        assert!(
            self.hosts.iter().any(|h| h.role == router),
            "no host {router} to put {role} behind"
        );
        assert_lab_addr(router_addr);
        let gw = router_addr
            .split('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let wire = Wire::Behind {
            router: router.into(),
            router_addr: router_addr.into(),
        };
        self.add(role, wire, addr);
        self.route(role, "default", &gw)
    }

    /// A route on host `role`: `ip route replace DEST via GW` (`dest` "default" or a CIDR).
    /// Hosts on a TAP get it after each daemon start, the others at build time.
    pub fn route(mut self, role: &str, dest: &str, gw: &str) -> LabBuilder {
        assert_lab_addr(gw);
        let host = self
            .hosts
            .iter_mut()
            .find(|h| h.role == role)
            .unwrap_or_else(|| panic!("no host {role}"));
        host.routes.push((dest.into(), gw.into()));
        self
    }

    /// Quiet wires: IPv6 off in every namespace of the lab (no router solicitations or MLD
    /// reports), so that the daemon's drop counters count only what a test sends.
    pub fn quiet(mut self) -> LabBuilder {
        self.quiet = true;
        self
    }

    /// The daemon's `--log` level (default `info`).
    pub fn log_level(mut self, level: &'static str) -> LabBuilder {
        self.log_level = level;
        self
    }

    /// The scratch directory under /tmp with mode 0755, so that other users reach the
    /// control socket in it.
    pub fn world_readable(mut self) -> LabBuilder {
        self.world_readable = true;
        self
    }

    fn add(&mut self, role: &str, wire: Wire, addr: &str) {
        assert!(
            role != "stack" && self.hosts.iter().all(|h| h.role != role),
            "host {role} twice"
        );
        assert_lab_addr(addr);
        self.hosts.push(HostSpec {
            role: role.into(),
            wire,
            addr: addr.into(),
            routes: Vec::new(),
        });
    }

    /// Makes the namespaces, bridges and veths, and the scratch directory
    /// `/tmp/vmks-<pid>-<tag>` (tags must differ between the tests of one file).
    pub fn build(self) -> Lab {
        let stack = Netns::new("stack");
        let hosts: Vec<Host> = self
            .hosts
            .iter()
            .map(|spec| Host {
                role: spec.role.clone(),
                ns: Netns::new(&spec.role),
                spec: spec.clone(),
            })
            .collect();
        let dir = if self.world_readable {
            Scratch::world_readable(&self.tag)
        } else {
            Scratch::new(&self.tag)
        };
        let lab = Lab {
            stack,
            hosts,
            dir,
            log_level: self.log_level,
        };
        if self.quiet {
            for ns in std::iter::once(&lab.stack).chain(lab.hosts.iter().map(|h| &h.ns)) {
                ns.run("sysctl", &["-qw", "net.ipv6.conf.default.disable_ipv6=1"]);
            }
        }
        for h in &lab.hosts {
            match &h.spec.wire {
                Wire::Tap { .. } => continue,
                Wire::Bridge { bridge, .. } => {
                    let links = lab.stack.ip(&["link", "show"]);
                    // A second host on the same bridge gets a port named after its role.
                    let mut port = format!("{bridge}-port");
                    if links.contains(&format!(" {port}@")) {
                        port = format!("{bridge}-{}", h.role).chars().take(15).collect();
                    }
                    if !links.contains(&format!(" {bridge}:")) {
                        lab.stack.ip(&["link", "add", bridge, "type", "bridge"]);
                        lab.stack.ip(&["link", "set", bridge, "up"]);
                    }
                    veth(&lab.stack, &port, "", &h.ns, "eth0", &h.spec.addr);
                    lab.stack.ip(&["link", "set", &port, "master", bridge]);
                }
                Wire::Behind {
                    router,
                    router_addr,
                } => {
                    let r = lab.ns(router);
                    let side: String = format!("r-{}", h.role).chars().take(15).collect();
                    veth(r, &side, router_addr, &h.ns, "eth0", &h.spec.addr);
                    r.run("sysctl", &["-qw", "net.ipv4.ip_forward=1"]);
                }
            }
            for (dest, gw) in &h.spec.routes {
                h.ns.ip(&["route", "replace", dest, "via", gw]);
            }
        }
        lab
    }
}

/// The daemon's namespace, the host namespaces and the scratch directory. Field order is drop
/// order: the namespaces go before the directory; declare every [`Proc`] after the `Lab`, so
/// that it stops first.
#[derive(Debug)]
pub struct Lab {
    /// The daemon's namespace (TAPs of vmknics without `netns` stay here).
    pub stack: Netns,
    /// The host namespaces, in the order they were described.
    pub hosts: Vec<Host>,
    /// Scratch directory: `vmkstack.toml`, `ctl.sock`, `daemon.log`, and whatever a test adds.
    pub dir: Scratch,
    log_level: &'static str,
}

impl Lab {
    /// Describes a lab; `tag` names its scratch directory.
    pub fn builder(tag: &str) -> LabBuilder {
        LabBuilder {
            tag: tag.into(),
            hosts: Vec::new(),
            quiet: false,
            log_level: "info",
            world_readable: false,
        }
    }

    /// The namespace of host `role`; panics if there is none.
    pub fn ns(&self, role: &str) -> &Netns {
        self.hosts
            .iter()
            .find(|h| h.role == role)
            .map(|h| &h.ns)
            .unwrap_or_else(|| panic!("the lab has no host {role}"))
    }

    /// The configuration file (`vmkstack.toml` in the scratch directory).
    pub fn config(&self) -> PathBuf {
        self.dir.file("vmkstack.toml")
    }

    /// Writes the configuration file.
    ///
    /// With `VMKSTACK_TEST_IO` set (`uring`, `syscalls` or `threaded`), the file starts with
    /// that `io` key: `scripts/test.sh` runs the data-plane tests a second time on io_uring.
    /// With `VMKSTACK_TEST_WORKERS` set (a number), it starts with that `workers` key (unless
    /// the text sets its own): the data-plane tests run again on multi-queue TAPs.
    pub fn write_config(&self, text: &str) {
        let p = self.config();
        let text = match std::env::var("VMKSTACK_TEST_IO") {
            Ok(io) => format!("io = \"{io}\"\n{text}"),
            Err(_) => text.to_string(),
        };
        let text = match std::env::var("VMKSTACK_TEST_WORKERS") {
            Ok(n) if !text.contains("workers =") => format!("workers = {n}\n{text}"),
            _ => text,
        };
        std::fs::write(&p, text).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
    }

    /// The control socket's path.
    pub fn socket(&self) -> String {
        self.dir.file("ctl.sock").display().to_string()
    }

    /// The daemon's log so far (every start appends to it).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.file("daemon.log")).unwrap_or_default()
    }

    /// Starts `vmkstack daemon` in the daemon's namespace with the lab's configuration,
    /// control socket and log, and waits for nothing.
    pub fn spawn_daemon(&self) -> Proc {
        let log = self.dir.file("daemon.log");
        spawn_daemon(
            &self.stack,
            &self.config(),
            &self.socket(),
            &log,
            self.log_level,
        )
    }

    /// Starts the daemon, wires the hosts to its TAPs ([`Lab::wire_hosts`]) and waits until
    /// the control socket accepts connections ([`Lab::wait_control`]).
    pub fn start(&self) -> Proc {
        let daemon = self.spawn_daemon();
        self.wire_hosts();
        self.wait_control();
        daemon
    }

    /// Waits for every TAP to reach its host or bridge (panics after [`TAP_TIMEOUT`], with
    /// the daemon's log) and gives hosts on a TAP their address, link and routes. A new
    /// daemon makes new TAPs: call it after each start.
    pub fn wire_hosts(&self) {
        for h in &self.hosts {
            match &h.spec.wire {
                Wire::Tap { vmknic } => {
                    let up = wait_until(TAP_TIMEOUT, || {
                        h.ns.exec("ip", &["link", "show", vmknic]).status.success()
                    });
                    assert!(
                        up,
                        "{vmknic} never appeared in {}: {}",
                        h.ns.name,
                        self.log()
                    );
                    h.ns.ip(&["addr", "replace", &h.spec.addr, "dev", vmknic]);
                    h.ns.ip(&["link", "set", vmknic, "up"]);
                    for (dest, gw) in &h.spec.routes {
                        h.ns.ip(&["route", "replace", dest, "via", gw]);
                    }
                }
                Wire::Bridge { vmknic, bridge } => {
                    let joined = wait_until(TAP_TIMEOUT, || {
                        let o = self.stack.exec("ip", &["link", "show", "master", bridge]);
                        String::from_utf8_lossy(&o.stdout).contains(&format!(" {vmknic}:"))
                    });
                    assert!(
                        joined,
                        "{vmknic} never joined bridge {bridge}: {}",
                        self.log()
                    );
                }
                Wire::Behind { .. } => {}
            }
        }
    }

    /// Waits until the control socket accepts a connection; panics after
    /// [`CONTROL_TIMEOUT`] with the daemon's log.
    pub fn wait_control(&self) {
        let sock = self.socket();
        assert!(
            wait_until(CONTROL_TIMEOUT, || {
                std::os::unix::net::UnixStream::connect(&sock).is_ok()
            }),
            "the control socket never answered: {}",
            self.log()
        );
    }

    /// Runs `vmkstack --control SOCKET args` (from the root namespace: the socket is a file).
    pub fn cli(&self, args: &[&str]) -> Output {
        cli(&self.socket(), args)
    }

    /// Runs a CLI or ESX command through the binary: (exit code, stdout, stderr).
    pub fn esx(&self, args: &[&str]) -> (i32, String, String) {
        let o = self.cli(args);
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }
}
