//! What the root-only TAP tests share: namespaces deleted on drop, `ip`, and re-running a test
//! inside a fresh "daemon" namespace with a second "wire" namespace for the TAP's kernel side.
//! Nothing touches the root namespace: both are named `vmks-<pid>-<n>`.
#![allow(dead_code)]

use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Set in the re-run child: the name of the wire namespace.
const WIRE_NS_ENV: &str = "VMKS_TAP_TEST_WIRE_NS";

/// A namespace deleted on drop.
pub struct Ns {
    /// Its name.
    pub name: String,
}

impl Ns {
    /// A new namespace with its loopback up.
    pub fn new() -> Ns {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "vmks-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        ip(&["netns", "add", &name]);
        let ns = Ns { name };
        ip(&["-n", &ns.name, "link", "set", "lo", "up"]);
        ns
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A command's status and output, for failure messages.
pub fn text(o: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}--- stderr\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Runs `ip ARGS`, panicking with its output on failure; returns stdout.
pub fn ip(args: &[&str]) -> String {
    let o = Command::new("ip").args(args).output().expect("run ip");
    assert!(o.status.success(), "ip {}: {}", args.join(" "), text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// True when running as root.
pub fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        == Some("0")
}

/// Runs `body(wire_ns)` inside a fresh daemon namespace by re-running this test there. Outside
/// CI a non-root run prints a skip; in CI (env `CI` set) it fails.
pub fn in_netns(test: &str, body: impl FnOnce(&str)) {
    if let Ok(wire) = std::env::var(WIRE_NS_ENV) {
        body(&wire);
        return;
    }
    if !is_root() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{test} needs root, and CI must not count a skip as a pass"
        );
        eprintln!("SKIPPED (needs root): {test}");
        return;
    }
    let daemon = Ns::new();
    let wire = Ns::new();
    let exe = std::env::current_exe().expect("test binary path");
    let o = Command::new("ip")
        .args(["netns", "exec", &daemon.name])
        .arg(exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(WIRE_NS_ENV, &wire.name)
        .output()
        .expect("re-run the test in its namespace");
    let out = text(&o);
    assert!(o.status.success(), "{test} in {}: {out}", daemon.name);
    assert!(out.contains("1 passed"), "{test} did not run: {out}");
}

/// A TAP name unique to this test process.
pub fn tap_name(suffix: char) -> String {
    format!("vt{}{suffix}", std::process::id() % 100_000)
}
