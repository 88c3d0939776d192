//! Root only. The daemon as a service on real TAPs: systemd's readiness datagram only once
//! the vmknics are up and the control socket listens; an unprivileged daemon (`setpriv`, a
//! user with no name and only the capabilities its configuration needs) forwarding pings to
//! a peer namespace; and the capability or device it lacks named when it cannot start.
//!
//! systemd cannot run the unit in this container (PID 1 is not systemd), so the readiness
//! protocol is checked against a socket the test listens on, as systemd would.
//!
//! `/dev/net/tun` here is mode 0600 (the usual udev rule makes it 0666); the unprivileged
//! daemons run inside `ip netns exec`'s private mount namespace, where a 0666 node of the same
//! device is bound over it, so that nothing changes for the rest of the machine.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::lab::Lab;
use common::{describe, require_root, wait_until, Proc};

const BIN: &str = env!("CARGO_BIN_EXE_vmkstack");
/// The unprivileged daemon's user and group (no name needed).
const UID: u32 = 64016;

fn bridge_config() -> &'static str {
    "[[vmknic]]\nname = \"vmk0\"\nportgroup = \"lab\"\nip = \"198.18.1.1/24\"\nbridge = \"br0\"\n"
}

#[test]
fn ready_only_once_the_vmknics_are_up_and_the_control_socket_listens() {
    let Some(()) =
        require_root("ready_only_once_the_vmknics_are_up_and_the_control_socket_listens")
    else {
        return;
    };
    let lab = Lab::builder("ready")
        .bridge_host("h1", "vmk0", "br0", "198.18.1.10/24")
        .build();
    lab.write_config(bridge_config());
    // systemd's side: a datagram socket at a path (it crosses namespaces, unlike an abstract
    // name; tests/packaging.rs checks the abstract form).
    let notify = lab.dir.file("notify.sock");
    let sock = UnixDatagram::bind(&notify).expect("bind notify socket");
    sock.set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    let log = std::fs::File::create(lab.dir.file("daemon.log")).expect("log");
    let config = lab.config();
    let socket = lab.socket();
    let args = [
        "daemon",
        "--config",
        config.to_str().expect("utf-8"),
        "--control",
        &socket,
    ];
    let mut cmd = lab.stack.command(BIN, &args);
    cmd.env("NOTIFY_SOCKET", &notify)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    let daemon = Proc::spawn(cmd);
    let mut buf = [0u8; 512];
    let n = sock.recv(&mut buf).unwrap_or_else(|e| {
        panic!("no READY=1 ({e}): {}", lab.log());
    });
    // Checked at once, before anything else can catch up: the TAP is on its bridge and the
    // control socket answers.
    let on_bridge = lab.stack.ip(&["link", "show", "master", "br0"]);
    let answers = std::os::unix::net::UnixStream::connect(&socket).is_ok();
    let state = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(
        state.starts_with("READY=1\nSTATUS=running: 1 vmknic(s)"),
        "{state}"
    );
    assert!(on_bridge.contains(" vmk0:"), "{on_bridge}");
    assert!(answers, "control socket not listening at READY=1");
    // The stack works: a ping through it.
    let (code, out, err) = lab.esx(&["vmkping", "-c", "1", "198.18.1.10"]);
    assert_eq!(code, 0, "{out}{err}");
    let status = daemon.stop();
    assert!(status.success(), "{status}");
    let n = sock.recv(&mut buf).expect("STOPPING=1");
    assert_eq!(&buf[..n], b"STOPPING=1");
}

/// Starts the daemon of `lab` in its namespace as [`UID`] holding only `caps` (setpriv's
/// list, e.g. "+net_admin"), stderr to the lab's log. With `tun_0666`, a mode 0666 node of
/// /dev/net/tun is bound over the real one in `ip netns exec`'s private mount namespace.
fn spawn_unprivileged(lab: &Lab, caps: &str, tun_0666: bool) -> Proc {
    let dir = &lab.dir.0;
    std::os::unix::fs::chown(dir, Some(UID), Some(UID)).expect("chown scratch");
    std::os::unix::fs::chown(lab.config(), Some(UID), Some(UID)).expect("chown config");
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let mut bind = String::new();
    if tun_0666 {
        let tun = lab.dir.file("tun");
        let _ = std::fs::remove_file(&tun);
        let o = Command::new("mknod")
            .args([tun.to_str().expect("utf-8"), "c", "10", "200"])
            .output()
            .expect("mknod");
        assert!(o.status.success(), "{}", describe(&o));
        std::fs::set_permissions(&tun, std::fs::Permissions::from_mode(0o666)).expect("chmod");
        bind = format!("mount --bind {} /dev/net/tun && ", tun.display());
    }
    let script = format!(
        "{bind}exec setpriv --reuid={UID} --regid={UID} --clear-groups \
         --inh-caps=-all,{caps} --ambient-caps=-all,{caps} --bounding-set=-all,{caps} -- \
         {BIN} daemon --config {} --control {}",
        lab.config().display(),
        lab.socket()
    );
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(lab.dir.file("daemon.log"))
        .expect("log");
    let mut cmd = lab.stack.command("sh", &["-c", &script]);
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(log);
    Proc::spawn(cmd)
}

/// A status line of /proc/PID/status (`Uid:`, `CapEff:`).
fn proc_status(pid: u32, key: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
        .unwrap_or_default()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn unprivileged_daemon_with_only_cap_net_admin_pings_its_peer() {
    let Some(()) = require_root("unprivileged_daemon_with_only_cap_net_admin_pings_its_peer")
    else {
        return;
    };
    let lab = Lab::builder("unpriv")
        .bridge_host("h1", "vmk0", "br0", "198.18.1.10/24")
        .build();
    lab.write_config(bridge_config());
    let daemon = spawn_unprivileged(&lab, "+net_admin", true);
    lab.wire_hosts();
    lab.wait_control();
    // It runs as that user with CAP_NET_ADMIN (bit 12) and nothing else.
    let pid = daemon.pid();
    assert_eq!(
        proc_status(pid, "Uid:"),
        format!("{UID}\t{UID}\t{UID}\t{UID}")
    );
    assert_eq!(proc_status(pid, "CapEff:"), "0000000000001000");
    assert_eq!(proc_status(pid, "CapBnd:"), "0000000000001000");
    // The dataplane: vmkping from the stack to the peer namespace, and the peer's ping back.
    let (code, out, err) = lab.esx(&["vmkping", "-c", "2", "-i", "0.2", "198.18.1.10"]);
    assert_eq!(code, 0, "{out}{err}\n{}", lab.log());
    assert!(out.contains("2 packets received"), "{out}");
    let o = lab
        .ns("h1")
        .exec("ping", &["-c", "2", "-i", "0.2", "-W", "2", "198.18.1.1"]);
    assert!(o.status.success(), "{}", describe(&o));
    // The daemon's own user may change the stack (it owns the socket); the change is saved
    // by the daemon into the file it owns.
    let o = Command::new("setpriv")
        .args([
            &format!("--reuid={UID}"),
            &format!("--regid={UID}"),
            "--clear-groups",
            BIN,
            "--control",
            &lab.socket(),
            "esxcfg-route",
            "198.18.1.254",
        ])
        .output()
        .expect("setpriv");
    assert!(o.status.success(), "{}", describe(&o));
    assert!(text(&o).contains("VMkernel default gateway is 198.18.1.254"));
    let saved = std::fs::read_to_string(lab.config()).expect("config");
    assert!(
        saved.contains("default_gateway = \"198.18.1.254\""),
        "{saved}"
    );
    let status = daemon.stop();
    assert!(status.success(), "{status}\n{}", lab.log());
    assert!(
        !lab.stack
            .exec("ip", &["link", "show", "vmk0"])
            .status
            .success(),
        "TAP removed on shutdown"
    );
}

#[test]
fn unprivileged_daemon_in_namespaces_needs_and_uses_cap_sys_admin() {
    let Some(()) = require_root("unprivileged_daemon_in_namespaces_needs_and_uses_cap_sys_admin")
    else {
        return;
    };
    let lab = Lab::builder("unpriv-ns")
        .tap_host("h1", "vmk0", "198.18.2.10/24")
        .build();
    lab.write_config(&format!(
        "[[vmknic]]\nname = \"vmk0\"\nportgroup = \"lab\"\nip = \"198.18.2.1/24\"\n\
         netns = \"{}\"\n",
        lab.ns("h1").name
    ));
    // CAP_NET_ADMIN alone: refused at start, naming what is missing and why.
    let mut refused = spawn_unprivileged(&lab, "+net_admin", true);
    let child = &mut refused.child;
    let exited = wait_until(Duration::from_secs(10), || {
        child.try_wait().ok().flatten().is_some()
    });
    assert!(
        exited,
        "a daemon without CAP_SYS_ADMIN kept running: {}",
        lab.log()
    );
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(1), "{}", lab.log());
    let log = lab.log();
    assert!(
        log.contains(
            "vmkstack: missing capabilities: the daemon needs CAP_SYS_ADMIN (to configure the \
             TAPs of vmk0 inside their network namespaces (`ip -n`))"
        ),
        "{log}"
    );
    assert!(
        !lab.ns("h1")
            .exec("ip", &["link", "show", "vmk0"])
            .status
            .success(),
        "no TAP made"
    );
    // With CAP_SYS_ADMIN too, it runs and answers through the namespace.
    let daemon = spawn_unprivileged(&lab, "+net_admin,+sys_admin", true);
    lab.wire_hosts();
    lab.wait_control();
    let (code, out, err) = lab.esx(&["vmkping", "-c", "1", "198.18.2.10"]);
    assert_eq!(code, 0, "{out}{err}\n{}", lab.log());
    assert_eq!(proc_status(daemon.pid(), "CapEff:"), "0000000000201000");
    let status = daemon.stop();
    assert!(status.success(), "{status}");
}

#[test]
fn missing_capability_or_device_access_is_named() {
    let Some(()) = require_root("missing_capability_or_device_access_is_named") else {
        return;
    };
    let lab = Lab::builder("nocaps")
        .bridge_host("h1", "vmk0", "br0", "198.18.3.10/24")
        .build();
    lab.write_config(bridge_config());
    let run = |caps: &str, tun_0666: bool| -> String {
        let _ = std::fs::remove_file(lab.dir.file("daemon.log"));
        let mut daemon = spawn_unprivileged(&lab, caps, tun_0666);
        let child = &mut daemon.child;
        assert!(
            wait_until(Duration::from_secs(10), || {
                child.try_wait().ok().flatten().is_some()
            }),
            "the daemon kept running: {}",
            lab.log()
        );
        let status = child.wait().expect("wait");
        assert_eq!(status.code(), Some(1), "{}", lab.log());
        assert!(!Path::new(&lab.socket()).exists(), "no control socket left");
        lab.log()
    };
    // No capability at all.
    let log = run("-net_admin", true);
    assert!(
        log.contains(
            "missing capabilities: the daemon needs CAP_NET_ADMIN (to create and configure \
             the TAPs of vmk0)"
        ),
        "{log}"
    );
    // The capability, but a /dev/net/tun only root may open (this machine's own node).
    let log = run("+net_admin", false);
    assert!(
        log.contains("cannot open /dev/net/tun: Permission denied")
            && log.contains("needs read-write access to it"),
        "{log}"
    );
    assert!(
        !lab.stack
            .exec("ip", &["link", "show", "vmk0"])
            .status
            .success(),
        "no TAP made"
    );
}
