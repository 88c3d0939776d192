//! Root only. The live control plane with the ESX tools, against a real daemon in namespaces
//! the tests create (skipped with `SKIPPED (needs root)` outside CI, a failure in CI when not
//! root).
//!
//! Lab: the article's layout on lab addresses, [`common::fixtures`]:
//!
//! ```text
//! stack (daemon) --vmk0 198.18.1.100/24 (iSCSI_SAN)-- router 198.18.1.1 | 198.18.100.1
//!                                                       -- storage 198.18.100.20
//!                --vmk1 198.18.2.100/24 (VMotion)--- host 198.18.2.10
//! ```
//! The default gateway starts as 198.18.0.254, on neither vmknic subnet.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::fixtures::{article, article_lab, GATEWAY_MSG};
use common::lab::Lab;
use common::{require_root, squeeze, wait_until};

/// The article's lab with the article's configuration written.
fn article_daemon_lab(tag: &str) -> Lab {
    let lab = article_lab(Lab::builder(tag)).build();
    lab.write_config(&article(&lab.ns("router").name, &lab.ns("host").name));
    lab
}

#[test]
fn esx_article_replayed_on_a_running_daemon() {
    let Some(()) = require_root("esx_article_replayed_on_a_running_daemon") else {
        return;
    };
    let lab = article_daemon_lab("article");
    let daemon = lab.start();

    // 1. The off-subnet gateway: ESX's message at start-up.
    assert!(lab.log().lines().any(|l| l == GATEWAY_MSG), "{}", lab.log());

    // 2. esxcfg-vmknic -l and esxcfg-route -l show it.
    let (code, out, err) = lab.esx(&["esxcfg-vmknic", "-l"]);
    assert_eq!(code, 0, "{err}");
    let out = squeeze(&out);
    assert!(
        out.contains("vmk0 iSCSI_SAN IPv4 198.18.1.100 255.255.255.0 198.18.1.255"),
        "{out}"
    );
    assert!(
        out.contains("vmk1 VMotion IPv4 198.18.2.100 255.255.255.0 198.18.2.255"),
        "{out}"
    );
    let (code, out, _) = lab.esx(&["esxcfg-route", "-l"]);
    assert_eq!(code, 0);
    let out = squeeze(&out);
    assert!(out.contains("VMkernel Routes:"), "{out}");
    assert!(
        out.contains("198.18.1.0 255.255.255.0 Local Subnet vmk0"),
        "{out}"
    );
    assert!(out.contains("default 0.0.0.0 198.18.0.254 None"), "{out}");

    // Refused gateways change nothing.
    let (code, _, err) = lab.esx(&["esxcfg-route", "198.18.0.1"]);
    assert_eq!(code, 1);
    assert_eq!(err.trim(), GATEWAY_MSG);
    let (_, out, _) = lab.esx(&["esxcfg-route"]);
    assert_eq!(out.trim(), "VMkernel default gateway is 198.18.0.254");

    // 3. The fix.
    let (code, out, err) = lab.esx(&["esxcfg-route", "198.18.1.1"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "VMkernel default gateway is 198.18.1.1");
    let (_, out, _) = lab.esx(&["esxcfg-route", "-l"]);
    assert!(
        squeeze(&out).contains("default 0.0.0.0 198.18.1.1 vmk0"),
        "{out}"
    );

    // 4. Static routes, both forms; an off-subnet gateway for a route is refused.
    let (code, out, err) = lab.esx(&["esxcfg-route", "-a", "198.18.100.0/24", "198.18.1.1"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.trim(),
        "Adding static route 198.18.100.0/24 to VMkernel"
    );
    let (code, out, _) = lab.esx(&[
        "esxcfg-route",
        "-a",
        "198.18.101.0",
        "255.255.255.0",
        "198.18.1.1",
    ]);
    assert_eq!(code, 0);
    assert_eq!(
        out.trim(),
        "Adding static route 198.18.101.0/24 to VMkernel"
    );
    let (code, _, err) = lab.esx(&["esxcfg-route", "-a", "198.18.102.0/24", "198.18.0.1"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("as there are not VMkernel interfaces on the same network"),
        "{err}"
    );
    let (code, _, err) = lab.esx(&["esxcfg-route", "-a", "198.18.100.0/24", "198.18.1.1"]);
    assert_eq!(code, 1, "duplicate");
    assert!(err.contains("already exists"), "{err}");
    let (_, out, _) = lab.esx(&["esxcfg-route", "-l"]);
    let out = squeeze(&out);
    assert!(
        out.contains("198.18.100.0 255.255.255.0 198.18.1.1 vmk0"),
        "{out}"
    );
    assert!(
        out.contains("198.18.101.0 255.255.255.0 198.18.1.1 vmk0"),
        "{out}"
    );
    assert!(!out.contains("198.18.102.0"), "{out}");

    // 5. vmkping reaches the storage server behind the router, from the userspace stack.
    let (code, out, err) = lab.esx(&["vmkping", "-c", "3", "-i", "0.2", "198.18.100.20"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with("PING 198.18.100.20 (198.18.100.20): 56 data bytes"),
        "{out}"
    );
    assert!(
        out.contains("64 bytes from 198.18.100.20: icmp_seq=0 ttl=63 time="),
        "{out}"
    );
    assert!(
        out.contains("--- 198.18.100.20 ping statistics ---"),
        "{out}"
    );
    assert!(
        out.contains("3 packets transmitted, 3 packets received, 0% packet loss"),
        "{out}"
    );
    assert!(out.contains("round-trip min/avg/max = "), "{out}");

    // And `route get` explains it.
    let (_, out, _) = lab.esx(&["route", "get", "198.18.100.20"]);
    assert!(
        out.contains(
            "198.18.100.20 via 198.18.1.1 dev vmk0 src 198.18.1.100 route 198.18.100.0/24 (static)"
        ),
        "{out}"
    );

    // 6. Remove the routes, both forms.
    let (code, out, _) = lab.esx(&["esxcfg-route", "-d", "198.18.100.0/24", "198.18.1.1"]);
    assert_eq!(code, 0);
    assert_eq!(
        out.trim(),
        "Deleting static route 198.18.100.0/24 from VMkernel"
    );
    let (code, out, _) = lab.esx(&[
        "esxcfg-route",
        "-d",
        "198.18.101.0",
        "255.255.255.0",
        "198.18.1.1",
    ]);
    assert_eq!(code, 0);
    assert_eq!(
        out.trim(),
        "Deleting static route 198.18.101.0/24 from VMkernel"
    );
    let (code, _, err) = lab.esx(&["esxcfg-route", "-d", "198.18.101.0/24"]);
    assert_eq!(code, 1);
    assert!(err.contains("no static route to 198.18.101.0/24"), "{err}");

    // 7. Restart: the state is what was acknowledged.
    assert!(daemon.stop().success());
    let saved = std::fs::read_to_string(lab.config()).expect("config");
    assert!(
        saved.contains("default_gateway = \"198.18.1.1\""),
        "{saved}"
    );
    assert!(!saved.contains("198.18.100.0"), "{saved}");
    let _daemon = lab.start();
    let (_, out, _) = lab.esx(&["esxcfg-route", "-l"]);
    let out = squeeze(&out);
    assert!(out.contains("default 0.0.0.0 198.18.1.1 vmk0"), "{out}");
    assert!(
        !out.contains("198.18.100.0") && !out.contains("198.18.101.0"),
        "{out}"
    );
    assert_eq!(
        lab.log().lines().filter(|l| *l == GATEWAY_MSG).count(),
        1,
        "the second start has a valid gateway"
    );
}

#[test]
fn vmkping_errors_and_nc_from_the_stack() {
    let Some(()) = require_root("vmkping_errors_and_nc_from_the_stack") else {
        return;
    };
    let lab = article_daemon_lab("vmkping");
    let _daemon = lab.start();
    // No default gateway yet (198.18.0.254 is inactive): a remote address has no route.
    let (code, _, err) = lab.esx(&["vmkping", "-c", "1", "198.18.100.20"]);
    assert_eq!(code, 1);
    assert!(err.contains("sendto() failed (No route to host)"), "{err}");
    // DF and too big for MTU 1500: 1472 fits, 1473 does not.
    let (code, out, err) = lab.esx(&["vmkping", "-c", "1", "-d", "-s", "1472", "198.18.1.1"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("1480 bytes from 198.18.1.1"), "{out}");
    let (code, _, err) = lab.esx(&["vmkping", "-c", "1", "-d", "-s", "1473", "198.18.1.1"]);
    assert_eq!(code, 1);
    assert!(err.contains("sendto() failed (Message too long)"), "{err}");
    // Without DF, a ping larger than the MTU leaves in fragments and its reply comes back in
    // fragments that the stack reassembles.
    let (code, out, err) = lab.esx(&["vmkping", "-c", "1", "-s", "3000", "198.18.1.1"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("3008 bytes from 198.18.1.1: icmp_seq=0 ttl=64"),
        "{out}"
    );
    // Jumbo frames after an MTU change: -d -s 8972 passes on MTU 9000 (the router's side of
    // the TAP is the same netdev, so it follows).
    let (code, _, err) = lab.esx(&["esxcfg-vmknic", "-m", "9000", "iSCSI_SAN"]);
    assert_eq!(code, 0, "{err}");
    assert!(lab
        .ns("router")
        .ip(&["link", "show", "vmk0"])
        .contains("mtu 9000"));
    let (code, out, err) = lab.esx(&["vmkping", "-c", "1", "-d", "-s", "8972", "198.18.1.1"]);
    assert_eq!(code, 0, "{out}{err}");
    // Nobody has 198.18.2.99: ARP fails.
    let (code, _, err) = lab.esx(&["vmkping", "-c", "1", "-W", "4", "198.18.2.99"]);
    assert_eq!(code, 1);
    assert!(err.contains("sendto() failed (Host is down)"), "{err}");
    // -I sends from the named vmknic.
    let (code, out, err) = lab.esx(&["vmkping", "-c", "1", "-I", "vmk1", "198.18.2.10"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, err) = lab.esx(&["vmkping", "-c", "1", "-I", "vmk7", "198.18.2.10"]);
    assert_eq!(code, 1);
    assert!(err.contains("vmk7"), "{err}");

    // nc -z through the gateway to a real listener, a closed port, and no route.
    let (code, _, err) = lab.esx(&["esxcfg-route", "198.18.1.1"]);
    assert_eq!(code, 0, "{err}");
    // Accepts for 30 s and writes each peer's address to `peers`.
    let peers = lab.dir.file("peers");
    let listener = format!(
        r#"
import socket, time
s = socket.socket()
s.bind(("198.18.100.20", 3260))
s.listen(8)
s.settimeout(30)
f = open("{}", "a")
end = time.time() + 30
while time.time() < end:
    c, peer = s.accept()
    f.write(peer[0] + "\n")
    f.flush()
    c.close()
"#,
        peers.display()
    );
    let _iscsi = lab.ns("storage").spawn("python3", &["-c", &listener]);
    assert!(wait_until(Duration::from_secs(5), || {
        lab.ns("storage")
            .run("ss", &["-ltn"])
            .contains("198.18.100.20:3260")
    }));
    // As netcat: the exit status answers; -v reports on standard error.
    let (code, out, err) = lab.esx(&["nc", "-z", "-w", "3", "198.18.100.20", "3260"]);
    assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""));
    let (code, out, err) = lab.esx(&["nc", "-zv", "-w", "3", "198.18.100.20", "3260"]);
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    assert_eq!(
        err,
        "Connection to 198.18.100.20 3260 port [tcp/*] succeeded!\n"
    );
    let (code, out, err) = lab.esx(&["nc", "-z", "-w", "3", "198.18.100.20", "3261"]);
    assert_eq!((code, out.as_str(), err.as_str()), (1, "", ""));
    let (code, _, err) = lab.esx(&["nc", "-zv", "-w", "3", "198.18.100.20", "3261"]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "nc: connect to 198.18.100.20 port 3261 (tcp) failed: Connection refused\n"
    );
    // -s chooses the source address (and so the vmknic), as ESXi's netcat; the storage
    // server sees the connection come from it.
    let (code, _, err) = lab.esx(&[
        "nc",
        "-zv",
        "-s",
        "198.18.2.100",
        "-w",
        "3",
        "198.18.100.20",
        "3260",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        wait_until(Duration::from_secs(5), || {
            std::fs::read_to_string(&peers)
                .unwrap_or_default()
                .lines()
                .any(|l| l == "198.18.2.100")
        }),
        "no connection from 198.18.2.100: {:?}",
        std::fs::read_to_string(&peers)
    );
    let (code, _, err) = lab.esx(&["nc", "-z", "-s", "198.18.9.9", "198.18.100.20", "3260"]);
    assert_eq!(code, 1);
    assert_eq!(err, "nc: bind failed: Cannot assign requested address\n");
    let (code, _, err) = lab.esx(&["nc", "-zv", "-I", "vmk1", "198.18.100.20", "3260"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = lab.esx(&["esxcfg-route", "-d", "default"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = lab.esx(&["nc", "-zv", "-w", "3", "198.18.100.20", "3260"]);
    assert_eq!(code, 1);
    assert!(err.contains("failed: No route to host"), "{err}");
}

#[test]
fn vmknic_changes_apply_live_and_leave_other_flows_alone() {
    let Some(()) = require_root("vmknic_changes_apply_live_and_leave_other_flows_alone") else {
        return;
    };
    let lab = article_daemon_lab("live");
    let daemon = lab.start();
    // A steady flow on vmk1 while vmk0 and the routes change.
    let flow = lab
        .ns("host")
        .command("ping", &["-c", "40", "-i", "0.05", "198.18.2.100"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("ping");

    // Disable vmk0: carrier off on the router's side, its connected route withdrawn.
    let (code, _, err) = lab.esx(&["esxcfg-vmknic", "-D", "iSCSI_SAN"]);
    assert_eq!(code, 0, "{err}");
    assert!(lab
        .ns("router")
        .ip(&["link", "show", "vmk0"])
        .contains("NO-CARRIER"));
    let (_, out, _) = lab.esx(&["esxcfg-route", "-l"]);
    assert!(
        !squeeze(&out).contains("198.18.1.0 255.255.255.0 Local Subnet"),
        "{out}"
    );
    let (_, out, _) = lab.esx(&["esxcfg-vmknic", "-l"]);
    assert!(
        squeeze(&out).contains("vmk0 iSCSI_SAN IPv4 198.18.1.100")
            && squeeze(&out).contains("false"),
        "{out}"
    );
    let (ok_while_down, _) = (
        lab.ns("router")
            .exec("ping", &["-c", "1", "-W", "1", "198.18.1.100"])
            .status
            .success(),
        (),
    );
    assert!(!ok_while_down, "a disabled vmknic answered");
    // Enable: both come back.
    let (code, _, err) = lab.esx(&["esxcfg-vmknic", "-e", "iSCSI_SAN"]);
    assert_eq!(code, 0, "{err}");
    assert!(!lab
        .ns("router")
        .ip(&["link", "show", "vmk0"])
        .contains("NO-CARRIER"));
    assert!(wait_until(Duration::from_secs(5), || {
        lab.ns("router")
            .exec("ping", &["-c", "1", "-W", "1", "198.18.1.100"])
            .status
            .success()
    }));

    // Add and remove a vmknic at run time (its TAP stays in the daemon's namespace).
    let (code, _, err) = lab.esx(&[
        "esxcfg-vmknic",
        "-a",
        "-i",
        "198.18.3.100",
        "-n",
        "255.255.255.0",
        "NFS",
    ]);
    assert_eq!(code, 0, "{err}");
    let (_, out, _) = lab.esx(&["esxcfg-vmknic", "-l"]);
    assert!(
        squeeze(&out).contains("vmk2 NFS IPv4 198.18.3.100 255.255.255.0 198.18.3.255"),
        "{out}"
    );
    assert!(lab
        .stack
        .exec("ip", &["link", "show", "vmk2"])
        .status
        .success());
    // Overlapping subnets are refused and change nothing.
    let (code, _, err) = lab.esx(&[
        "esxcfg-vmknic",
        "-a",
        "-i",
        "198.18.3.0",
        "-n",
        "255.255.0.0",
        "Bad",
    ]);
    assert_ne!(code, 0, "{err}");
    let (code, _, err) = lab.esx(&["esxcfg-vmknic", "-d", "NFS"]);
    assert_eq!(code, 0, "{err}");
    assert!(!lab
        .stack
        .exec("ip", &["link", "show", "vmk2"])
        .status
        .success());

    let out = flow.wait_with_output().expect("ping");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("40 packets transmitted, 40 received"),
        "{text}"
    );

    // Restart: vmk0 enabled, no vmk2, everything as acknowledged.
    assert!(daemon.stop().success());
    let _daemon = lab.start();
    let (_, out, _) = lab.esx(&["esxcfg-vmknic", "-l"]);
    let out = squeeze(&out);
    assert!(
        out.contains("vmk0 iSCSI_SAN IPv4 198.18.1.100") && !out.contains("vmk2"),
        "{out}"
    );
    assert!(!out.contains("false"), "{out}");
}

#[test]
fn esxcli_listings_and_route_changes() {
    let Some(()) = require_root("esxcli_listings_and_route_changes") else {
        return;
    };
    let lab = article_daemon_lab("esxcli");
    let _daemon = lab.start();
    let (code, _, err) = lab.esx(&[
        "esxcli",
        "network",
        "ip",
        "route",
        "ipv4",
        "add",
        "--network",
        "198.18.100.0/24",
        "--gateway",
        "198.18.1.1",
    ]);
    assert_eq!(code, 0, "{err}");
    // ESXi 6.x-8.x: the default route first (here the article's, inactive).
    let (code, out, _) = lab.esx(&["esxcli", "network", "ip", "route", "ipv4", "list"]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "Network       Netmask        Gateway       Interface  Source\n\
         ------------  -------------  ------------  ---------  ------\n\
         default       0.0.0.0        198.18.0.254  None       MANUAL\n\
         198.18.100.0  255.255.255.0  198.18.1.1    vmk0       MANUAL\n\
         198.18.1.0    255.255.255.0  0.0.0.0       vmk0       MANUAL\n\
         198.18.2.0    255.255.255.0  0.0.0.0       vmk1       MANUAL\n"
    );
    let (code, out, _) = lab.esx(&["esxcfg-route", "-l"]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "VMkernel Routes:\n\
         Network          Netmask          Gateway          Interface\n\
         198.18.100.0     255.255.255.0    198.18.1.1       vmk0\n\
         198.18.1.0       255.255.255.0    Local Subnet     vmk0\n\
         198.18.2.0       255.255.255.0    Local Subnet     vmk1\n\
         default          0.0.0.0          198.18.0.254     None\n"
    );
    let (_, out, _) = lab.esx(&["esxcli", "network", "ip", "interface", "list"]);
    assert!(out.contains("vmk0\n   Name: vmk0\n"), "{out}");
    assert!(out.contains("   Portgroup: iSCSI_SAN"), "{out}");
    // The host learned through ARP shows in the neighbour lists.
    let (code, out, err) = lab.esx(&["vmkping", "-c", "1", "198.18.2.10"]);
    assert_eq!(code, 0, "{out}{err}");
    let (_, out, _) = lab.esx(&["esxcli", "network", "ip", "neighbor", "list"]);
    assert!(squeeze(&out).contains("198.18.2.10"), "{out}");
    let (_, out, _) = lab.esx(&["esxcfg-route", "-n"]);
    assert!(squeeze(&out).contains("198.18.2.10"), "{out}");
    // As ESXi: Type Unknown, State empty; `-i` keeps one vmknic's.
    let neighbors_on = |vmknic: &str| {
        let (code, out, err) =
            lab.esx(&["esxcli", "network", "ip", "neighbor", "list", "-i", vmknic]);
        assert_eq!(code, 0, "{err}");
        out
    };
    let out = neighbors_on("vmk1");
    let row = out
        .lines()
        .find(|l| l.starts_with("198.18.2.10  "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        row.contains(" vmk1 ") && row.ends_with(" sec         Unknown"),
        "{row:?}"
    );
    assert!(!neighbors_on("vmk0").contains("198.18.2.10"));
    // Removing it from the wrong vmknic is refused and changes nothing; from its own, it goes.
    let remove = |extra: &[&str]| {
        let mut args = vec![
            "esxcli",
            "network",
            "ip",
            "neighbor",
            "remove",
            "-a",
            "198.18.2.10",
        ];
        args.extend_from_slice(extra);
        lab.esx(&args)
    };
    let (code, _, err) = remove(&["-i", "vmk0"]);
    assert_eq!(code, 1);
    assert_eq!(err.trim(), "no neighbour 198.18.2.10 on vmk0");
    assert!(neighbors_on("vmk1").contains("198.18.2.10"));
    let (code, out, err) = remove(&["-v", "4", "-i", "vmk1"]);
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    assert!(!neighbors_on("vmk1").contains("198.18.2.10"));
    let (code, _, err) = remove(&[]);
    assert_eq!(code, 1);
    assert_eq!(err.trim(), "no neighbour 198.18.2.10");
    let (code, _, _) = lab.esx(&[
        "esxcli",
        "network",
        "ip",
        "route",
        "ipv4",
        "remove",
        "--network",
        "198.18.100.0/24",
        "--gateway",
        "198.18.1.1",
    ]);
    assert_eq!(code, 0);
    let (_, out, _) = lab.esx(&["route", "list", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert!(v
        .as_array()
        .is_some_and(|a| a.iter().all(|r| r["network"] != "198.18.100.0/24")));
}
