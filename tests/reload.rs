//! Root only. A hand-edited configuration applied to a running daemon (issue 15): SIGHUP and
//! `vmkstack reload` apply the difference live without touching unchanged vmknics, or refuse
//! the file with every problem named and change nothing; a change through the control socket
//! while the file holds an edit not yet loaded is refused with a message saying to reload
//! first. Skipped with `SKIPPED (needs root)` outside CI, a failure inside CI when not root.
//!
//! Lab: the daemon in namespace `stack`, forwarding on; vmk0 (198.18.20.1/24) on bridge `br0`
//! with host `h0` (198.18.20.10), vmk1 (198.18.21.1/24) on bridge `br1` with host `h1`
//! (198.18.21.10). h0 pings vmk0 throughout: the reloads must not cost it a reply, and vmk0's
//! TAP keeps its interface index (it is never re-created).

mod common;

use std::time::Duration;

use common::lab::Lab;
use common::{require_root, wait_until, Netns};

const VMK0: &str = "198.18.20.1";
const H0: &str = "198.18.20.10";
const VMK1: &str = "198.18.21.1";
const H1: &str = "198.18.21.10";

fn base(vmk1_mtu: u16, extra: &str) -> String {
    format!(
        "forwarding = true\n{extra}\n[[vmknic]]\nname = \"vmk0\"\nportgroup = \"A\"\n\
         ip = \"{VMK0}/24\"\nbridge = \"br0\"\n\n[[vmknic]]\nname = \"vmk1\"\n\
         portgroup = \"B\"\nip = \"{VMK1}/24\"\nbridge = \"br1\"\nmtu = {vmk1_mtu}\n"
    )
}

/// vmk0's interface index in the daemon's namespace.
fn ifindex(ns: &Netns, dev: &str) -> String {
    ns.ip(&["-o", "link", "show", dev])
        .split(':')
        .next()
        .unwrap_or_default()
        .to_string()
}

fn ok(lab: &Lab, args: &[&str]) -> String {
    let (code, out, err) = lab.esx(args);
    assert_eq!(code, 0, "{args:?}: {out}{err}");
    out
}

#[test]
fn sighup_and_reload_apply_the_difference_or_refuse_it_whole() {
    let Some(()) = require_root("sighup_and_reload_apply_the_difference_or_refuse_it_whole") else {
        return;
    };
    let lab = Lab::builder("reload")
        .bridge_host("h0", "vmk0", "br0", &format!("{H0}/24"))
        .route("h0", "default", VMK0)
        .bridge_host("h1", "vmk1", "br1", &format!("{H1}/24"))
        .route("h1", "default", VMK1)
        .quiet()
        .build();
    lab.write_config(&base(1500, ""));
    let daemon = lab.start();
    let h0 = lab.ns("h0");
    assert!(
        wait_until(Duration::from_secs(3), || h0
            .exec("ping", &["-c", "1", "-W", "1", H1])
            .status
            .success()),
        "no forwarding at start: {}",
        lab.log()
    );
    let vmk0_index = ifindex(&lab.stack, "vmk0");
    let steady = h0
        .command("ping", &["-c", "40", "-i", "0.2", "-W", "1", VMK0])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("ping");

    // 1. A hand edit: a route, the gateway, a new vmknic, vmk1's MTU, a forward.
    let edited = base(
        9000,
        "default_gateway = \"198.18.21.254\"\n\n[[route]]\nnetwork = \"198.18.60.0/24\"\n\
         gateway = \"198.18.20.254\"\n\n[[forward]]\nlisten = \"127.0.0.1:15301\"\n\
         remote = \"198.18.21.10:5301\"\n",
    ) + "\n[[vmknic]]\nname = \"vmk2\"\nportgroup = \"C\"\nip = \"198.18.22.1/24\"\n";
    lab.write_config(&edited);
    // Before it is loaded, a change through the socket is refused and the file kept.
    let (code, _, err) = lab.esx(&["esxcfg-route", "-a", "198.18.70.0/24", "198.18.20.254"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("was edited since the daemon loaded it") && err.contains("vmkstack reload"),
        "{err}"
    );
    let on_disk = std::fs::read_to_string(lab.config()).unwrap();
    assert!(
        on_disk.contains("198.18.60.0/24") && !on_disk.contains("198.18.70.0"),
        "the hand edit was overwritten: {on_disk}"
    );
    // SIGHUP applies it.
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &daemon.pid().to_string()])
        .status()
        .expect("kill");
    assert!(hup.success());
    assert!(
        wait_until(Duration::from_secs(5), || lab
            .log()
            .contains("configuration reloaded")),
        "no reload: {}",
        lab.log()
    );
    let routes = ok(&lab, &["esxcfg-route", "-l"]);
    assert!(routes.contains("198.18.60.0"), "{routes}");
    assert!(routes.contains("198.18.21.254"), "{routes}");
    let vmknics = ok(&lab, &["esxcfg-vmknic", "-l"]);
    assert!(
        vmknics.contains("vmk2") && vmknics.contains("9000"),
        "{vmknics}"
    );
    assert!(lab.stack.ip(&["link", "show", "vmk2"]).contains("vmk2"));
    assert!(lab.stack.ip(&["link", "show", "vmk1"]).contains("mtu 9000"));
    assert!(ok(&lab, &["forward", "list"]).contains("127.0.0.1:15301"));
    assert!(
        h0.exec("ping", &["-c", "1", "-W", "1", H1])
            .status
            .success(),
        "forwarding after the reload"
    );
    // Now a change through the socket goes through (and is saved).
    ok(
        &lab,
        &["esxcfg-route", "-a", "198.18.70.0/24", "198.18.20.254"],
    );
    assert!(std::fs::read_to_string(lab.config())
        .unwrap()
        .contains("198.18.70.0/24"));

    // 2. A bad file: refused whole, every problem named, nothing changed.
    let before_routes = ok(&lab, &["esxcfg-route", "-l"]);
    let saved = std::fs::read_to_string(lab.config()).unwrap();
    let bad = base(1500, "offloads = false\n")
        + "\n[[vmknic]]\nname = \"vmk3\"\nportgroup = \"D\"\nip = \"198.18.300.1/24\"\n\
           \n[[vmknic]]\nname = \"vmk4\"\nportgroup = \"E\"\nip = \"198.18.23.1/24\"\nmtu = 99999\n";
    lab.write_config(&bad);
    let (code, out, err) = lab.esx(&["reload"]);
    assert_ne!(code, 0, "a bad file was accepted: {out}");
    assert!(err.contains("reload refused, nothing changed"), "{err}");
    assert!(
        err.contains("198.18.300.1"),
        "the bad address is not named: {err}"
    );
    assert!(err.contains("99999"), "the bad MTU is not named: {err}");
    assert_eq!(ok(&lab, &["esxcfg-route", "-l"]), before_routes);
    assert!(ok(&lab, &["esxcfg-vmknic", "-l"]).contains("vmk2"));
    // A key that cannot change live is refused by name.
    lab.write_config(&saved.replace("offloads = true", "offloads = false"));
    if !saved.contains("offloads") {
        lab.write_config(&format!("offloads = false\n{saved}"));
    }
    let (code, _, err) = lab.esx(&["reload"]);
    assert_ne!(code, 0);
    assert!(err.contains("`offloads` cannot change"), "{err}");

    // 3. `vmkstack reload` back to the start: vmk2, the routes, the gateway and the forward go,
    // vmk1's MTU comes back; each change is listed.
    lab.write_config(&base(1500, ""));
    let out = ok(&lab, &["reload"]);
    for want in [
        "vmk2 removed",
        "vmk1 MTU 1500",
        "route 198.18.60.0/24 via 198.18.20.254 removed",
        "default gateway removed",
        "forward 127.0.0.1:15301 -> 198.18.21.10:5301 removed",
    ] {
        assert!(out.contains(want), "`{want}` missing: {out}");
    }
    assert!(!ok(&lab, &["esxcfg-vmknic", "-l"]).contains("vmk2"));
    assert!(!lab
        .stack
        .exec("ip", &["link", "show", "vmk2"])
        .status
        .success());
    assert_eq!(ok(&lab, &["reload"]).trim(), "reloaded: nothing changed");

    // vmk0 was never touched: same TAP, no ping lost.
    assert_eq!(
        ifindex(&lab.stack, "vmk0"),
        vmk0_index,
        "vmk0 was re-created"
    );
    let o = steady.wait_with_output().expect("ping");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains(" 0% packet loss"), "vmk0 lost pings: {out}");
    assert!(!lab.log().contains("panicked"), "{}", lab.log());
}

/// Reload with netstacks: a hand edit that adds a `vmotion` netstack (its own gateway and
/// route) with a vmknic on it goes live without touching the default netstack; that vmknic's
/// TAP deleted from outside is marked down and re-created in its own netstack (the link watch
/// keys faults by netstack); reloading the old file removes the vmknic and the netstack.
#[test]
fn reload_adds_and_removes_a_netstack_and_its_vmknic_recovers_from_a_fault() {
    let Some(()) =
        require_root("reload_adds_and_removes_a_netstack_and_its_vmknic_recovers_from_a_fault")
    else {
        return;
    };
    const VMK2: &str = "198.18.22.1";
    const H2: &str = "198.18.22.10";
    let lab = Lab::builder("reloadns")
        .bridge_host("h0", "vmk0", "br0", &format!("{H0}/24"))
        .route("h0", "default", VMK0)
        .bridge_host("h1", "vmk1", "br1", &format!("{H1}/24"))
        .route("h1", "default", VMK1)
        .bridge_host("h2", "vmk2", "br2", &format!("{H2}/24"))
        .quiet()
        .build();
    // The edit: a vmotion netstack with a gateway and a route, vmk2 on it. The daemon starts
    // on it (so that the lab finds vmk2 on its bridge), then goes back to the file without
    // them and forth again, by reload.
    let edited = format!(
        "{}\n[[netstack_instance]]\nname = \"vmotion\"\ndefault_gateway = \"198.18.22.254\"\n\
         route = [{{ network = \"198.18.80.0/24\", gateway = \"198.18.22.253\" }}]\n\
         \n[[vmknic]]\nname = \"vmk2\"\nportgroup = \"vMotion\"\nip = \"{VMK2}/24\"\n\
         bridge = \"br2\"\nnetstack = \"vmotion\"\n",
        base(1500, "")
    );
    lab.write_config(&edited);
    let _daemon = lab.start();
    let h0 = lab.ns("h0");
    let h2 = lab.ns("h2");
    assert!(
        wait_until(Duration::from_secs(3), || ping_once(h0, H1)),
        "no forwarding at start: {}",
        lab.log()
    );
    let vmk0_index = ifindex(&lab.stack, "vmk0");
    let default_routes = ok(&lab, &["esxcfg-route", "-l"]);
    lab.write_config(&base(1500, ""));
    let out = ok(&lab, &["reload"]);
    assert!(
        out.contains("vmk2 removed") && out.contains("netstack vmotion removed"),
        "{out}"
    );
    assert!(!ok(&lab, &["esxcli", "network", "ip", "netstack", "list"]).contains("vmotion"));

    lab.write_config(&edited);
    let out = ok(&lab, &["reload"]);
    for want in [
        "netstack vmotion added",
        "vmk2 added",
        "route 198.18.80.0/24 via 198.18.22.253 added (netstack vmotion)",
        "default gateway 198.18.22.254 (netstack vmotion)",
    ] {
        assert!(out.contains(want), "`{want}` missing: {out}");
    }
    assert!(ok(&lab, &["esxcli", "network", "ip", "netstack", "list"]).contains("vmotion"));
    let vmotion = ok(&lab, &["esxcfg-route", "-N", "vmotion", "-l"]);
    assert!(
        vmotion.contains("198.18.80.0") && vmotion.contains("198.18.22.254"),
        "{vmotion}"
    );
    assert_eq!(
        ok(&lab, &["esxcfg-route", "-l"]),
        default_routes,
        "the default netstack's routes changed"
    );
    assert!(
        wait_until(Duration::from_secs(5), || ping_once(h2, VMK2)),
        "vmk2 does not answer after the reload: {}",
        lab.log()
    );
    let (code, out, err) = lab.esx(&["vmkping", "-S", "vmotion", "-c", "1", H2]);
    assert_eq!(code, 0, "vmkping -S vmotion: {out}{err}");

    // vmk2's TAP deleted from outside: marked down with the reason and re-created in its own
    // netstack (here at once: nothing outside is missing), then it answers again.
    lab.stack.ip(&["link", "del", "vmk2"]);
    assert!(
        wait_until(Duration::from_secs(10), || {
            let log = lab.log();
            log.contains("vmknic link down vmknic=vmk2")
                && log.contains("vmknic back up vmknic=vmk2")
        }),
        "vmk2 not marked down and back up: {}",
        lab.log()
    );
    assert!(
        wait_until(Duration::from_secs(10), || ping_once(h2, VMK2)),
        "vmk2 does not answer after its repair: {}",
        lab.log()
    );
    assert!(!ok(&lab, &["esxcfg-vmknic", "-l"]).contains("vmk2 is down"));
    let (code, out, err) = lab.esx(&["vmkping", "-S", "vmotion", "-c", "1", H2]);
    assert_eq!(code, 0, "vmkping -S vmotion after the repair: {out}{err}");

    // Back to the old file: vmk2 and the netstack go; the default netstack was never touched.
    lab.write_config(&base(1500, ""));
    let out = ok(&lab, &["reload"]);
    assert!(
        out.contains("vmk2 removed") && out.contains("netstack vmotion removed"),
        "{out}"
    );
    assert!(!ok(&lab, &["esxcli", "network", "ip", "netstack", "list"]).contains("vmotion"));
    assert!(!lab
        .stack
        .exec("ip", &["link", "show", "vmk2"])
        .status
        .success());
    assert_eq!(
        ifindex(&lab.stack, "vmk0"),
        vmk0_index,
        "vmk0 was re-created"
    );
    assert!(ping_once(h0, H1), "forwarding after the reloads");
    assert!(!lab.log().contains("panicked"), "{}", lab.log());
}

/// One ping from `ns` to `dst` answered within a second.
fn ping_once(ns: &Netns, dst: &str) -> bool {
    ns.exec("ping", &["-c", "1", "-W", "1", dst])
        .status
        .success()
}
