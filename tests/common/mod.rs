//! Shared harness for the root package's integration tests (`mod common;`): network
//! namespaces, veth pairs between them, background processes stopped by their own PID, the
//! shared [`lab::Lab`] (daemon namespace, hosts on TAPs or bridges, routers), the article's
//! configuration ([`fixtures`]) and the storage lab script ([`storage_lab`]).
//!
//! # Which tests need root
//!
//! Every root-only test starts with [`require_root`]. Run as a normal user outside CI, it
//! prints one line `SKIPPED (needs root): <test>` (past the test harness's output capture, so
//! that `cargo test` shows it) and the test passes without doing anything; in CI (env `CI`
//! set) without root it fails, so that CI never counts a skip as a pass. The root-only files
//! say so in the first line of their module doc ("Root only."):
//!
//! | file | needs root |
//! |------|------------|
//! | `cli.rs`, `fuzz_cli.rs`, `packaging.rs` | no (`packaging.rs` needs systemd-analyze, man, cargo-deb, dpkg-deb) |
//! | `dataplane.rs` | yes, except `second_daemon_on_same_control_path_...` (and Debian packages traceroute, iputils-tracepath, mtr-tiny) |
//! | `control.rs`, `control_security.rs`, `forward.rs`, `offload.rs`, `floods.rs`, `restart.rs` | yes (namespaces, TAPs) |
//! | `service.rs` | yes (namespaces, TAPs, setpriv, a private /dev/net/tun) |
//! | `storage.rs`, `storage6.rs`, `storage_lab.rs`, `demo.rs` | yes (namespaces; Debian packages tgt, nfs-ganesha, libiscsi-bin, libnfs-utils, libiscsi-dev) |
//!
//! `grep -l '^//! Root only' tests/*.rs` lists them.
//!
//! Lab rules (DESIGN.md, "Lab conventions"): everything happens inside namespaces created here,
//! named `vmks-<pid>-<n>[-<tag>]` and deleted on drop, also when a test panics; nothing is
//! configured in the root namespace; addresses come from 198.18.0.0/15 ([`assert_lab_addr`]).
//!
//! Drop order matters. Locals drop in reverse order of declaration, so declare every [`Proc`]
//! AFTER the [`Netns`] (or [`lab::Lab`]) it runs in: the process is then stopped before its
//! namespace is deleted (a namespace outlives `ip netns del` while a process is still inside it).
//!
//! ```ignore
//! let Some(()) = common::require_root("forwards_between_vmknics") else { return };
//! let lab = Lab::builder("fwd").tap_host("h1", "vmk0", "198.18.1.10/24").build();
//! let daemon = lab.start(); // after `lab`
//! ```

// Each test binary uses its own subset of the helpers.
#![allow(dead_code)]

pub mod counters;
pub mod fixtures;
pub mod lab;
pub mod storage_lab;

use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long [`Proc`] waits after SIGTERM before it sends SIGKILL (daemons such as
/// nfs-ganesha take a few seconds to exit).
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether this process runs as root (effective UID 0), read from `/proc/self/status`.
pub fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        == Some("0")
}

/// The one gate of every root-only test: Some(()) when running as root. Otherwise, outside CI,
/// it writes `SKIPPED (needs root): <test>` (the test thread's name, else `test`) straight to
/// stderr (not through the test
/// harness's capture, so a normal `cargo test` shows the line) and returns None; in CI (env
/// `CI` set) it panics, so that CI never counts a skip as a pass.
/// Use as `let Some(()) = require_root("name") else { return };`.
pub fn require_root(test: &str) -> Option<()> {
    if is_root() {
        return Some(());
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{test} needs root, and CI must not count a skip as a pass"
    );
    // libtest names the thread after the test (`module::name` for tests made by a macro).
    let thread = std::thread::current();
    let name = thread.name().filter(|n| *n != "main").unwrap_or(test);
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED (needs root): {name}");
    None
}

/// Waits until `f()` is true or `timeout` passes (polling every 10 ms); returns whether it
/// became true.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Formats a finished command's status, stdout and stderr for a panic message.
pub fn describe(o: &Output) -> String {
    format!(
        "{}\n--- stdout\n{}--- stderr\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Runs `cmd`, panicking with its output unless it succeeds; returns stdout.
fn checked(mut cmd: Command) -> String {
    let o = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(o.status.success(), "{cmd:?} failed: {}", describe(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A network namespace with a unique name `vmks-<pid>-<n>-<tag>`, deleted on Drop (also on
/// panic); `lo` is up.
#[derive(Debug)]
pub struct Netns {
    /// The name, for `ip -n` and `ip netns exec`.
    pub name: String,
}

impl Netns {
    /// The link-local IPv6 address of `dev` here, once duplicate address detection is over
    /// (waits up to 5 s; fails the test without one).
    pub fn link_local(&self, dev: &str) -> String {
        let mut ll = String::new();
        let ok = wait_until(Duration::from_secs(5), || {
            let out = self.ip(&["-6", "-o", "addr", "show", "dev", dev, "scope", "link"]);
            ll = out
                .split_whitespace()
                .skip_while(|w| *w != "inet6")
                .nth(1)
                .and_then(|a| a.split('/').next())
                .unwrap_or_default()
                .to_string();
            !ll.is_empty() && !out.contains("tentative")
        });
        assert!(ok, "no link-local address on {dev} in {}", self.name);
        ll
    }

    /// Creates the namespace and brings `lo` up. `tag` (letters, digits, `-`, `_`; at most 16
    /// kept) only makes `ip netns list` readable. Panics if `ip` fails.
    pub fn new(tag: &str) -> Netns {
        static N: AtomicUsize = AtomicUsize::new(0);
        let mut name = format!(
            "vmks-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let tag: String = tag
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .take(16)
            .collect();
        if !tag.is_empty() {
            name = format!("{name}-{tag}");
        }
        let mut add = Command::new("ip");
        add.args(["netns", "add", &name]);
        checked(add);
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// A `Command` for `ip netns exec NAME cmd args`. `ip netns exec` execs `cmd` itself
    /// (no fork), so a spawned child's PID is `cmd`'s own.
    pub fn command(&self, cmd: &str, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, cmd]).args(args);
        c
    }

    /// Runs `ip netns exec NAME cmd args` and returns its output (panics only if `ip` cannot
    /// be started).
    pub fn exec(&self, cmd: &str, args: &[&str]) -> Output {
        self.command(cmd, args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {cmd} in {}: {e}", self.name))
    }

    /// Like [`Netns::exec`], but panics with stdout and stderr unless it succeeds; returns
    /// stdout.
    pub fn run(&self, cmd: &str, args: &[&str]) -> String {
        checked(self.command(cmd, args))
    }

    /// Runs `ip -n NAME args` (panics unless it succeeds); returns stdout.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut c = Command::new("ip");
        c.args(["-n", &self.name]).args(args);
        checked(c)
    }

    /// Spawns `cmd args` in the background inside the namespace (stdin and stdout null,
    /// stderr inherited); the guard stops it by PID on Drop. Declare it after this `Netns`.
    /// For other stdio, build with [`Netns::command`] and use [`Proc::spawn`].
    pub fn spawn(&self, cmd: &str, args: &[&str]) -> Proc {
        let mut c = self.command(cmd, args);
        c.stdin(Stdio::null()).stdout(Stdio::null());
        Proc::spawn(c)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        match Command::new("ip")
            .args(["netns", "del", &self.name])
            .output()
        {
            Ok(o) if o.status.success() => {}
            Ok(o) => eprintln!("cannot delete netns {}: {}", self.name, describe(&o)),
            Err(e) => eprintln!("cannot delete netns {}: {e}", self.name),
        }
    }
}

/// Panics unless `addr` ("198.18.3.1/24") lies in the lab range 198.18.0.0/15.
pub fn assert_lab_addr(addr: &str) {
    let ip = addr.split('/').next().unwrap_or_default();
    assert!(
        ip.starts_with("198.18.") || ip.starts_with("198.19."),
        "test address {addr} is outside 198.18.0.0/15"
    );
}

/// A veth pair between two namespaces: `a_if` in `a` with `a_addr`, `b_if` in `b` with `b_addr`
/// (CIDR such as "198.18.3.1/24", from 198.18.0.0/15; "" for no address, e.g. a bridge port),
/// both up. The pair is created inside `a`, never in the root namespace, and goes away with
/// either namespace.
pub fn veth(a: &Netns, a_if: &str, a_addr: &str, b: &Netns, b_if: &str, b_addr: &str) {
    a.ip(&[
        "link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", &b.name,
    ]);
    for (ns, ifname, addr) in [(a, a_if, a_addr), (b, b_if, b_addr)] {
        if !addr.is_empty() {
            assert_lab_addr(addr);
            ns.ip(&["addr", "add", addr, "dev", ifname]);
        }
        ns.ip(&["link", "set", "dev", ifname, "up"]);
    }
}

/// A background process killed (SIGTERM, then SIGKILL after [`STOP_TIMEOUT`]) and waited for
/// on Drop, by its own PID only. Once the child has been reaped it is never signalled again.
#[derive(Debug)]
pub struct Proc {
    /// The child; tests may read its pipes or `try_wait` it.
    pub child: Child,
}

impl Proc {
    /// Spawns `cmd`; panics if it cannot start.
    pub fn spawn(mut cmd: Command) -> Proc {
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {cmd:?}: {e}"));
        Proc { child }
    }

    /// The process ID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits for the exit, for tests that check a clean shutdown. After
    /// [`STOP_TIMEOUT`] it sends SIGKILL, and the returned status shows the kill.
    pub fn stop(mut self) -> ExitStatus {
        self.terminate()
            .unwrap_or_else(|e| panic!("cannot stop pid {}: {e}", self.pid()))
    }

    fn terminate(&mut self) -> std::io::Result<ExitStatus> {
        if let Some(status) = self.child.try_wait()? {
            return Ok(status);
        }
        let pid = self.pid().to_string();
        let _ = Command::new("kill")
            .args(["-TERM", &pid])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        eprintln!("pid {pid} ignored SIGTERM for {STOP_TIMEOUT:?}; sending SIGKILL");
        self.child.kill()?;
        self.child.wait()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Err(e) = self.terminate() {
            eprintln!("cannot stop pid {}: {e}", self.pid());
        }
    }
}

/// Squeezes runs of spaces in every line, so that table rows compare independently of column
/// widths.
pub fn squeeze(s: &str) -> String {
    s.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs `vmkstack --control SOCKET args` (from the root namespace: the socket is a file).
pub fn cli(socket: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vmkstack"))
        .arg("--control")
        .arg(socket)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run vmkstack: {e}"))
}

/// A scratch directory `vmks-<pid>-<tag>` in the temporary directory, removed on drop (also
/// when a test panics).
#[derive(Debug)]
pub struct Scratch(pub std::path::PathBuf);

impl Scratch {
    /// Creates it empty.
    pub fn new(tag: &str) -> Scratch {
        let d = std::env::temp_dir().join(format!("vmks-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("scratch dir {}: {e}", d.display()));
        Scratch(d)
    }

    /// Creates it empty under /tmp with mode 0755, so that other users reach what is in it.
    pub fn world_readable(tag: &str) -> Scratch {
        use std::os::unix::fs::PermissionsExt;
        let d = std::path::PathBuf::from("/tmp").join(format!("vmks-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("scratch dir {}: {e}", d.display()));
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|e| panic!("chmod {}: {e}", d.display()));
        Scratch(d)
    }

    /// A path inside it.
    pub fn file(&self, name: &str) -> std::path::PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Starts `vmkstack daemon --config CONFIG --control SOCKET --log LEVEL` inside `ns` (stdin and
/// stdout null, stderr appended to `log`). Declare the guard after `ns`.
pub fn spawn_daemon(
    ns: &Netns,
    config: &std::path::Path,
    socket: &str,
    log: &std::path::Path,
    level: &str,
) -> Proc {
    let log = std::fs::File::options()
        .create(true)
        .append(true)
        .open(log)
        .unwrap_or_else(|e| panic!("daemon log {}: {e}", log.display()));
    let config = config.to_str().expect("utf-8 config path");
    let args = [
        "daemon",
        "--config",
        config,
        "--control",
        socket,
        "--log",
        level,
    ];
    let mut cmd = ns.command(env!("CARGO_BIN_EXE_vmkstack"), &args);
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(log);
    Proc::spawn(cmd)
}
