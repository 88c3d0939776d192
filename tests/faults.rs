//! Root only. The world changing under a running daemon (issue 15): a vmknic's TAP deleted
//! from outside, its bridge deleted or the TAP taken off it, its netdev set down, its
//! namespace deleted and created again. Skipped with `SKIPPED (needs root)` outside CI, a
//! failure inside CI when not root.
//!
//! Lab: the daemon in namespace `stack` with forwarding on and two vmknics. vmk0
//! (198.18.10.1/24) joins bridge `br0` in the daemon's namespace, with host `h0`
//! (198.18.10.10) on it. vmk1 (198.18.11.1/24) reaches host `h1` (198.18.11.10): through
//! bridge `br1` in the daemon's namespace in the first test, through bridge `brx` inside a
//! namespace of its own (config keys `netns` and `bridge`) in the second. Each fault is
//! injected while pings cross the stack (h0 -> h1, forwarded) and h0 pings vmk0 all along:
//! every listing names the fault, the log has one line for it, vmkping says why it cannot
//! send, the connected route is withdrawn, vmk0 loses nothing, and the forwarded pings
//! resume without a restart once the daemon has repaired what it can.

mod common;

use std::time::Duration;

use common::lab::Lab;
use common::{require_root, veth, wait_until, Netns};

/// How long a fault may take to show, and a repair to bring traffic back.
const NOTICE: Duration = Duration::from_secs(3);
const RECOVER: Duration = Duration::from_secs(10);

const VMK0: &str = "198.18.10.1";
const H0: &str = "198.18.10.10";
const VMK1: &str = "198.18.11.1";
const H1: &str = "198.18.11.10";

/// vmk1's `link_down` as `vmkstack vmknic list --json` reports it.
fn link_down(lab: &Lab, vmknic: &str) -> Option<String> {
    let (code, out, err) = lab.esx(&["vmknic", "list", "--json"]);
    assert_eq!(code, 0, "vmknic list: {err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    v.as_array()
        .and_then(|a| a.iter().find(|x| x["name"] == vmknic))
        .and_then(|x| x["link_down"].as_str().map(str::to_string))
}

/// One ping from `ns` to `dst` answered within a second.
fn ping_ok(ns: &Netns, dst: &str) -> bool {
    ns.exec("ping", &["-c", "1", "-W", "1", dst])
        .status
        .success()
}

/// Waits until vmk1 is reported down with a reason containing `want`; checks every listing,
/// vmkping and the route table while it is.
fn expect_down(lab: &Lab, want: &str) {
    let mut why = None;
    assert!(
        wait_until(NOTICE, || {
            why = link_down(lab, "vmk1");
            why.as_deref().is_some_and(|w| w.contains(want))
        }),
        "vmk1 not reported down with `{want}` (last: {why:?}); log:\n{}",
        lab.log()
    );
    let (_, out, _) = lab.esx(&["esxcfg-vmknic", "-l"]);
    assert!(
        out.contains("vmk1 is down: ") && out.contains(want),
        "esxcfg-vmknic -l: {out}"
    );
    let (_, out, _) = lab.esx(&["esxcli", "network", "ip", "interface", "list"]);
    assert!(out.contains("   Link Down: "), "esxcli: {out}");
    let (code, out, err) = lab.esx(&["vmkping", "-c", "1", "-I", "vmk1", H1]);
    assert_ne!(code, 0, "vmkping through a down vmknic: {out}");
    assert!(
        err.contains("sendto() failed (Network is down: vmk1 is down: "),
        "vmkping -I vmk1: {out}{err}"
    );
    let (code, _, err) = lab.esx(&["vmkping", "-c", "1", H1]);
    assert!(
        code != 0 && err.contains("Network is down"),
        "vmkping {H1}: {err}"
    );
    let (_, routes, _) = lab.esx(&["esxcfg-route", "-l"]);
    assert!(
        !routes.contains("198.18.11.0"),
        "the connected route is still there: {routes}"
    );
    assert!(
        !ping_ok(lab.ns("h0"), H1),
        "forwarded ping through a down vmknic"
    );
}

/// Waits until vmk1 is up again and forwarded pings cross it.
fn expect_back(lab: &Lab, what: &str) {
    assert!(
        wait_until(RECOVER, || link_down(lab, "vmk1").is_none()
            && ping_ok(lab.ns("h0"), H1)),
        "{what}: vmk1 did not come back ({:?}); log:\n{}",
        link_down(lab, "vmk1"),
        lab.log()
    );
    let (_, routes, _) = lab.esx(&["esxcfg-route", "-l"]);
    assert!(routes.contains("198.18.11.0"), "{what}: {routes}");
}

/// The daemon's log lines that contain `what`.
fn log_lines(lab: &Lab, what: &str) -> usize {
    lab.log().lines().filter(|l| l.contains(what)).count()
}

/// h0 pings vmk0 in the background for `secs` seconds (five a second); the output.
fn steady_ping(lab: &Lab, secs: u32) -> std::process::Child {
    lab.ns("h0")
        .command(
            "ping",
            &["-c", &(secs * 5).to_string(), "-i", "0.2", "-W", "1", VMK0],
        )
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("ping")
}

fn no_loss(child: std::process::Child) {
    let o = child.wait_with_output().expect("ping");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains(" 0% packet loss"),
        "vmk0 lost pings while vmk1 failed: {out}"
    );
}

fn two_bridged_vmknics(tag: &str) -> Lab {
    let lab = Lab::builder(tag)
        .bridge_host("h0", "vmk0", "br0", &format!("{H0}/24"))
        .route("h0", "default", VMK0)
        .bridge_host("h1", "vmk1", "br1", &format!("{H1}/24"))
        .route("h1", "default", VMK1)
        .quiet()
        .build();
    lab.write_config(&format!(
        "forwarding = true\n\n[[vmknic]]\nname = \"vmk0\"\nportgroup = \"A\"\n\
         ip = \"{VMK0}/24\"\nbridge = \"br0\"\n\n[[vmknic]]\nname = \"vmk1\"\n\
         portgroup = \"B\"\nip = \"{VMK1}/24\"\nbridge = \"br1\"\n"
    ));
    lab
}

#[test]
fn tap_deleted_bridge_deleted_and_set_down_recover() {
    let Some(()) = require_root("tap_deleted_bridge_deleted_and_set_down_recover") else {
        return;
    };
    let lab = two_bridged_vmknics("wire");
    let _daemon = lab.start();
    assert!(
        wait_until(NOTICE, || ping_ok(lab.ns("h0"), H1)),
        "no forwarding at start: {}",
        lab.log()
    );
    let steady = steady_ping(&lab, 20);

    // 1. `ip link del`: noticed at once (the TAP's read error or the link event), re-created
    // and back in its bridge at once; one "vmknic link down" line, one "back up".
    lab.stack.ip(&["link", "del", "vmk1"]);
    assert!(
        wait_until(NOTICE, || log_lines(&lab, "vmknic back up") == 1),
        "no recovery after ip link del: {}",
        lab.log()
    );
    let log = lab.log();
    assert!(log.contains("TAP `vmk1` was deleted from outside"), "{log}");
    assert_eq!(log_lines(&lab, "vmknic link down"), 1, "{log}");
    assert!(log.contains("TAP re-created"), "{log}");
    expect_back(&lab, "ip link del");

    // 2. The bridge deleted: down until a bridge of that name exists again.
    lab.stack.ip(&["link", "del", "br1"]);
    expect_down(&lab, "is not a port of bridge `br1`");
    lab.stack.ip(&["link", "add", "br1", "type", "bridge"]);
    lab.stack.ip(&["link", "set", "br1", "up"]);
    lab.stack.ip(&["link", "set", "br1-port", "master", "br1"]);
    expect_back(&lab, "bridge re-created");

    // 3. Taken off the bridge by hand: rejoined at once.
    let before = log_lines(&lab, "vmknic back up");
    lab.stack.ip(&["link", "set", "vmk1", "nomaster"]);
    assert!(
        wait_until(NOTICE, || log_lines(&lab, "vmknic back up") > before),
        "not rejoined: {}",
        lab.log()
    );
    expect_back(&lab, "nomaster");

    // 4. Set down by hand: down (and waited for, not forced up) until set up again.
    lab.stack.ip(&["link", "set", "vmk1", "down"]);
    expect_down(&lab, "was set down");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(link_down(&lab, "vmk1").is_some(), "forced up");
    lab.stack.ip(&["link", "set", "vmk1", "up"]);
    expect_back(&lab, "set up");

    no_loss(steady);
    // One "vmknic link down" line per fault, and the daemon is still the one started.
    assert_eq!(log_lines(&lab, "vmknic link down"), 4, "{}", lab.log());
    assert!(!lab.log().contains("panicked"), "{}", lab.log());
}

#[test]
fn namespace_deleted_and_created_again() {
    let Some(()) = require_root("namespace_deleted_and_created_again") else {
        return;
    };
    let lab = Lab::builder("netns")
        .bridge_host("h0", "vmk0", "br0", &format!("{H0}/24"))
        .route("h0", "default", VMK0)
        .quiet()
        .build();
    let h1 = Netns::new("h1");
    let wire = Netns::new("wire");
    // The wire namespace: bridge `brx`, a veth to h1.
    let build_wire = || {
        wire.ip(&["link", "add", "brx", "type", "bridge"]);
        wire.ip(&["link", "set", "brx", "up"]);
        veth(&wire, "xport", "", &h1, "eth0", &format!("{H1}/24"));
        wire.ip(&["link", "set", "xport", "master", "brx"]);
        h1.ip(&["route", "replace", "default", "via", VMK1]);
    };
    build_wire();
    lab.write_config(&format!(
        "forwarding = true\n\n[[vmknic]]\nname = \"vmk0\"\nportgroup = \"A\"\n\
         ip = \"{VMK0}/24\"\nbridge = \"br0\"\n\n[[vmknic]]\nname = \"vmk1\"\n\
         portgroup = \"B\"\nip = \"{VMK1}/24\"\nnetns = \"{}\"\nbridge = \"brx\"\n",
        wire.name
    ));
    let _daemon = lab.start();
    let h1_ok = || ping_ok(lab.ns("h0"), H1);
    assert!(
        wait_until(NOTICE, h1_ok),
        "no forwarding at start: {}",
        lab.log()
    );
    let steady = steady_ping(&lab, 12);

    // The namespace deleted: its TAP goes with it (and h1's veth).
    let del = std::process::Command::new("ip")
        .args(["netns", "del", &wire.name])
        .status()
        .expect("ip");
    assert!(del.success());
    expect_down(&lab, &format!("namespace `{}` was deleted", wire.name));
    // Still down a while later: the daemon waits for the namespace (no busy loop: the log
    // does not grow with failed tries).
    let lines = lab.log().lines().count();
    std::thread::sleep(Duration::from_secs(2));
    assert!(link_down(&lab, "vmk1").is_some());
    assert!(
        lab.log().lines().count() <= lines + 1,
        "the log grows while waiting: {}",
        lab.log()
    );

    // Created again, the bridge a moment later: the TAP comes back into it.
    let add = std::process::Command::new("ip")
        .args(["netns", "add", &wire.name])
        .status()
        .expect("ip");
    assert!(add.success());
    wire.ip(&["link", "set", "lo", "up"]);
    std::thread::sleep(Duration::from_millis(300));
    build_wire();
    expect_back(&lab, "namespace re-created");
    assert!(
        wire.ip(&["link", "show", "master", "brx"]).contains("vmk1"),
        "vmk1 is not in brx"
    );
    no_loss(steady);
    assert_eq!(log_lines(&lab, "vmknic link down"), 1, "{}", lab.log());
}
