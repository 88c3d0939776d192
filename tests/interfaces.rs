//! Root only. ESXi 6.x-8.x's interface commands against a real daemon in namespaces the tests
//! create: `esxcli network ip interface add|remove|set|list`, `interface ipv4 get|set`,
//! `esxcli --formatter`, `vmkping -N` and `esxcli network diag ping` (skipped with
//! `SKIPPED (needs root)` outside CI, a failure in CI when not root).
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

use std::time::Duration;

use common::fixtures::{article, article_lab, STORAGE};
use common::lab::Lab;
use common::{require_root, squeeze, wait_until};

/// The article's lab with the article's configuration written.
fn article_daemon_lab(tag: &str) -> Lab {
    let lab = article_lab(Lab::builder(tag)).build();
    lab.write_config(&article(&lab.ns("router").name, &lab.ns("host").name));
    lab
}

/// `esxcli network ip ARGS...`.
fn esxcli(lab: &Lab, args: &[&str]) -> (i32, String, String) {
    let mut argv = vec!["esxcli", "network", "ip"];
    argv.extend_from_slice(args);
    lab.esx(&argv)
}

/// Asserts a usage error (exit 2) whose message contains `want`.
fn usage(lab: &Lab, args: &[&str], want: &str) {
    let (code, out, err) = esxcli(lab, args);
    assert_eq!(code, 2, "{args:?}: {out}{err}");
    assert!(err.contains(want), "{args:?}: `{err}` lacks `{want}`");
}

/// Asserts a refusal (exit 1) whose message contains `want`.
fn refused(lab: &Lab, args: &[&str], want: &str) {
    let (code, out, err) = esxcli(lab, args);
    assert_eq!(code, 1, "{args:?}: {out}{err}");
    assert!(err.contains(want), "{args:?}: `{err}` lacks `{want}`");
}

/// Everything the listings say, to compare before and after a refused change.
fn state(lab: &Lab) -> String {
    let (_, a, _) = esxcli(lab, &["interface", "list"]);
    let (_, b, _) = esxcli(lab, &["interface", "ipv4", "get"]);
    let (_, c, _) = lab.esx(&["esxcfg-vmknic", "-l"]);
    format!("{a}{b}{c}")
}

/// The `ipv4 get` row of a vmknic, squeezed.
fn ipv4_row(lab: &Lab, vmknic: &str) -> String {
    let (code, out, err) = esxcli(lab, &["interface", "ipv4", "get", "-i", vmknic]);
    assert_eq!(code, 0, "{err}");
    squeeze(&out)
        .lines()
        .find(|l| l.starts_with(&format!("{vmknic} ")))
        .unwrap_or_else(|| panic!("{out}"))
        .to_string()
}

#[test]
fn esxcli_interface_add_set_ipv4_remove() {
    let Some(()) = require_root("esxcli_interface_add_set_ipv4_remove") else {
        return;
    };
    let lab = article_daemon_lab("iface");
    let daemon = lab.start();

    // Wrong forms: usage errors that say what is wrong, nothing sent.
    usage(
        &lab,
        &["interface", "add", "-i", "vmk2"],
        "--portgroup-name",
    );
    usage(
        &lab,
        &["interface", "add", "-i", "eth0", "-p", "NFS"],
        "`eth0` is not a VMkernel interface name (expected vmkN)",
    );
    usage(
        &lab,
        &["interface", "add", "-i", "vmk2", "-p", "NFS", "-m", "9001"],
        "`9001` is not an MTU (expected 68-9000)",
    );
    usage(
        &lab,
        &["interface", "set", "-i", "vmk1"],
        "nothing to set: give -e/--enabled true|false and/or -m/--mtu",
    );
    usage(
        &lab,
        &["interface", "set", "-i", "vmk1", "-e", "maybe"],
        "`maybe` is not a boolean",
    );
    usage(&lab, &["interface", "remove"], "--interface-name");
    usage(
        &lab,
        &[
            "interface",
            "ipv4",
            "set",
            "-i",
            "vmk1",
            "-t",
            "static",
            "-I",
            "198.18.2.5",
        ],
        "-t static needs -N/--netmask",
    );
    usage(
        &lab,
        &[
            "interface",
            "ipv4",
            "set",
            "-i",
            "vmk1",
            "-t",
            "dhcp",
            "-I",
            "198.18.2.5",
        ],
        "-I/--ipv4 and -N/--netmask go only with -t static",
    );
    usage(
        &lab,
        &[
            "interface",
            "ipv4",
            "set",
            "-i",
            "vmk1",
            "-t",
            "static",
            "-I",
            "198.18.2.255",
            "-N",
            "255.255.255.0",
        ],
        "198.18.2.255 is the broadcast",
    );
    usage(
        &lab,
        &[
            "interface",
            "ipv4",
            "set",
            "-i",
            "vmk1",
            "-t",
            "dhcp",
            "-g",
            "198.18.2.1",
        ],
        "-g/--gateway goes only with -t static",
    );
    usage(
        &lab,
        &["interface", "ipv4", "set", "-i", "vmk1", "-t", "auto"],
        "auto",
    );
    usage(
        &lab,
        &["interface", "ipv4", "frob"],
        "expected one of: get, set",
    );

    // The listings as ESXi shows them.
    let (code, out, err) = esxcli(&lab, &["interface", "list"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("vmk1\n   Name: vmk1\n"), "{out}");
    assert!(
        out.contains("   Netstack Instance: defaultTcpipStack\n"),
        "{out}"
    );
    assert!(out.contains("   MTU: 1500\n   TSO MSS: 65535\n"), "{out}");
    assert_eq!(
        ipv4_row(&lab, "vmk0"),
        "vmk0 198.18.1.100 255.255.255.0 198.18.1.255 STATIC 0.0.0.0 false"
    );
    let (code, out, _) = esxcli(&lab, &["interface", "ipv4", "get"]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with(
            "Name  IPv4 Address  IPv4 Netmask   IPv4 Broadcast  Address Type  Gateway  DHCP DNS\n\
             ----  ------------  -------------  --------------  ------------  -------  --------\n"
        ),
        "{out}"
    );
    let (code, out, _) = esxcli(
        &lab,
        &["interface", "ipv4", "get", "-N", "defaultTcpipStack"],
    );
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 4, "{out}");

    // Refused changes leave everything as it was.
    let before = state(&lab);
    refused(
        &lab,
        &[
            "interface",
            "add",
            "-i",
            "vmk2",
            "-p",
            "NFS",
            "-N",
            "vmotion",
        ],
        "no netstack named `vmotion`",
    );
    refused(
        &lab,
        &["interface", "add", "-i", "vmk1", "-p", "NFS"],
        "vmk1 is defined twice",
    );
    refused(
        &lab,
        &["interface", "add", "-i", "vmk2", "-p", "VMotion"],
        "port group already used by vmk1",
    );
    refused(
        &lab,
        &["interface", "set", "-i", "vmk7", "-e", "false"],
        "Invalid interface name vmk7",
    );
    refused(&lab, &["interface", "remove", "-i", "vmk7"], "vmk7");
    refused(
        &lab,
        &[
            "interface",
            "ipv4",
            "set",
            "-i",
            "vmk1",
            "-t",
            "static",
            "-I",
            "198.18.1.100",
            "-N",
            "255.255.255.0",
        ],
        "address 198.18.1.100 is already used by vmk0",
    );
    refused(
        &lab,
        &[
            "interface",
            "ipv4",
            "set",
            "-i",
            "vmk1",
            "-t",
            "static",
            "-I",
            "198.18.2.50",
            "-N",
            "24",
            "-g",
            "198.18.9.1",
        ],
        "Unable to set VMkernel gateway 198.18.9.1 for vmk1: it is not on the interface's network 198.18.2.0/24",
    );
    refused(
        &lab,
        &["interface", "ipv4", "get", "-N", "vmotion"],
        "no netstack named `vmotion`",
    );
    refused(&lab, &["interface", "ipv4", "get", "-i", "vmk7"], "vmk7");
    assert_eq!(state(&lab), before, "a refused change changed something");
    assert!(!lab
        .stack
        .exec("ip", &["link", "show", "vmk2"])
        .status
        .success());

    // Add: no address yet (Address Type NONE), its TAP exists with the MTU asked for.
    let (code, out, err) = esxcli(
        &lab,
        &[
            "interface",
            "add",
            "-i",
            "vmk2",
            "-p",
            "NFS",
            "-m",
            "9000",
            "-M",
            "02:50:56:00:00:42",
            "-N",
            "defaultTcpipStack",
        ],
    );
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    let (_, out, _) = esxcli(&lab, &["interface", "list"]);
    assert!(
        out.contains("vmk2\n   Name: vmk2\n   MAC Address: 02:50:56:00:00:42\n   Enabled: true\n"),
        "{out}"
    );
    assert!(out.contains("   Portgroup: NFS\n"), "{out}");
    assert_eq!(
        ipv4_row(&lab, "vmk2"),
        "vmk2 0.0.0.0 0.0.0.0 0.0.0.0 NONE 0.0.0.0 false"
    );
    let (_, out, _) = lab.esx(&["esxcfg-vmknic", "-l"]);
    assert!(
        squeeze(&out).contains(
            "vmk2 NFS IPv4 N/A N/A N/A 02:50:56:00:00:42 9000 65535 true NONE defaultTcpipStack"
        ),
        "{out}"
    );
    assert!(lab.stack.ip(&["link", "show", "vmk2"]).contains("mtu 9000"));

    // ipv4 set -t static: live (a host on the TAP's kernel side pings it).
    let (code, out, err) = esxcli(
        &lab,
        &[
            "interface",
            "ipv4",
            "set",
            "-i",
            "vmk2",
            "-t",
            "static",
            "-I",
            "198.18.3.100",
            "-N",
            "255.255.255.0",
            "-g",
            "198.18.3.1",
        ],
    );
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    // -g: the vmknic's own default gateway (ESXi 6.5+), shown as its Gateway.
    assert_eq!(
        ipv4_row(&lab, "vmk2"),
        "vmk2 198.18.3.100 255.255.255.0 198.18.3.255 STATIC 198.18.3.1 false"
    );
    lab.stack
        .ip(&["addr", "add", "198.18.3.1/24", "dev", "vmk2"]);
    lab.stack.ip(&["link", "set", "vmk2", "up"]);
    let pings = |ns: &common::Netns| {
        wait_until(Duration::from_secs(5), || {
            ns.exec("ping", &["-c", "1", "-W", "1", "198.18.3.100"])
                .status
                .success()
        })
    };
    assert!(pings(&lab.stack), "vmk2's new address does not answer");

    // Another subnet and its gateway in one command: the old gateway does not stand in the
    // way, and back. Without -g the old gateway, off the new subnet, refuses the change.
    let set = |ip: &str, gw: Option<&str>| {
        let mut args = vec![
            "interface",
            "ipv4",
            "set",
            "-i",
            "vmk2",
            "-t",
            "static",
            "-I",
            ip,
            "-N",
            "255.255.255.0",
        ];
        args.extend(gw.map(|g| ["-g", g]).into_iter().flatten());
        esxcli(&lab, &args)
    };
    let before = state(&lab);
    let (code, _, err) = set("198.18.4.100", None);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("gateway") && err.contains("198.18.3.1"),
        "{err}"
    );
    assert_eq!(state(&lab), before);
    let (code, _, err) = set("198.18.4.100", Some("198.18.4.1"));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        ipv4_row(&lab, "vmk2"),
        "vmk2 198.18.4.100 255.255.255.0 198.18.4.255 STATIC 198.18.4.1 false"
    );
    let (code, _, err) = set("198.18.3.100", Some("198.18.3.1"));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        ipv4_row(&lab, "vmk2"),
        "vmk2 198.18.3.100 255.255.255.0 198.18.3.255 STATIC 198.18.3.1 false"
    );
    assert!(
        pings(&lab.stack),
        "vmk2 does not answer on its address again"
    );

    // set: MTU and disable in one command.
    let (code, _, err) = esxcli(
        &lab,
        &[
            "interface",
            "set",
            "-i",
            "vmk2",
            "-m",
            "1400",
            "-e",
            "false",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let (_, out, _) = esxcli(&lab, &["interface", "list"]);
    let vmk2 = out
        .split("\n\n")
        .find(|b| b.starts_with("vmk2\n"))
        .unwrap_or_default();
    assert!(vmk2.contains("   Enabled: false\n"), "{out}");
    assert!(vmk2.contains("   MTU: 1400\n"), "{out}");
    assert!(lab.stack.ip(&["link", "show", "vmk2"]).contains("mtu 1400"));

    // kill -9 and restart: every acknowledged change is there.
    let mut daemon = daemon;
    daemon.child.kill().expect("SIGKILL the daemon");
    let _ = daemon.child.wait();
    drop(daemon);
    let daemon = lab.start();
    let (_, out, _) = lab.esx(&["esxcfg-vmknic", "-l"]);
    assert!(
        squeeze(&out).contains(
            "vmk2 NFS IPv4 198.18.3.100 255.255.255.0 198.18.3.255 02:50:56:00:00:42 1400 65535 \
             false STATIC defaultTcpipStack"
        ),
        "{out}"
    );
    assert_eq!(
        ipv4_row(&lab, "vmk2"),
        "vmk2 198.18.3.100 255.255.255.0 198.18.3.255 STATIC 198.18.3.1 false"
    );
    let (code, _, err) = esxcli(&lab, &["interface", "set", "-i", "vmk2", "-e", "true"]);
    assert_eq!(code, 0, "{err}");
    lab.stack
        .ip(&["addr", "replace", "198.18.3.1/24", "dev", "vmk2"]);
    lab.stack.ip(&["link", "set", "vmk2", "up"]);
    assert!(pings(&lab.stack), "vmk2 does not answer after the restart");

    // ipv4 set -t none: the address goes (and no longer answers).
    let (code, _, err) = esxcli(
        &lab,
        &["interface", "ipv4", "set", "-i", "vmk2", "-t", "none"],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        ipv4_row(&lab, "vmk2"),
        "vmk2 0.0.0.0 0.0.0.0 0.0.0.0 NONE 0.0.0.0 false"
    );
    assert!(!lab
        .stack
        .exec("ping", &["-c", "1", "-W", "1", "198.18.3.100"])
        .status
        .success());

    // remove: the vmknic and its TAP go, and stay gone after a restart.
    let (code, out, err) = esxcli(&lab, &["interface", "remove", "-i", "vmk2"]);
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    assert!(!lab
        .stack
        .exec("ip", &["link", "show", "vmk2"])
        .status
        .success());
    assert!(daemon.stop().success());
    let _daemon = lab.start();
    let (_, out, _) = esxcli(&lab, &["interface", "list"]);
    assert!(!out.contains("vmk2"), "{out}");
    assert!(out.contains("vmk1\n"), "{out}");
}

#[test]
fn esxcli_formatters() {
    let Some(()) = require_root("esxcli_formatters") else {
        return;
    };
    let lab = article_daemon_lab("fmt");
    let _daemon = lab.start();

    let (code, out, err) = lab.esx(&[
        "esxcli",
        "--formatter=csv",
        "network",
        "ip",
        "interface",
        "ipv4",
        "get",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "AddressType,DHCPDNS,Gateway,IPv4Address,IPv4Broadcast,IPv4Netmask,Name,\n\
         STATIC,false,0.0.0.0,198.18.1.100,198.18.1.255,255.255.255.0,vmk0,\n\
         STATIC,false,0.0.0.0,198.18.2.100,198.18.2.255,255.255.255.0,vmk1,\n"
    );
    let (code, out, err) = lab.esx(&[
        "esxcli",
        "--formatter",
        "json",
        "network",
        "ip",
        "route",
        "ipv4",
        "list",
    ]);
    assert_eq!(code, 0, "{err}");
    let routes: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(routes[0]["Network"], "default");
    assert_eq!(routes[0]["Gateway"], "198.18.0.254");
    assert_eq!(routes[1]["Interface"], "vmk0");
    assert_eq!(routes[1]["Source"], "MANUAL");
    let (code, out, err) = lab.esx(&[
        "esxcli",
        "--formatter=keyvalue",
        "network",
        "ip",
        "interface",
        "list",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("NetworkInterface.NetstackInstance.string=defaultTcpipStack\n"),
        "{out}"
    );
    assert!(out.contains("NetworkInterface.MTU.integer=1500\n"), "{out}");
    assert!(
        out.contains("NetworkInterface.Enabled.boolean=true\n"),
        "{out}"
    );
    let (code, out, err) = lab.esx(&[
        "esxcli",
        "--formatter=json",
        "network",
        "ip",
        "neighbor",
        "list",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        serde_json::from_str::<serde_json::Value>(&out).is_ok(),
        "{out}"
    );

    // A formatter esxcli has but vmkstack does not: a usage error naming the ones there are.
    let (code, _, err) = lab.esx(&[
        "esxcli",
        "--formatter=xml",
        "network",
        "ip",
        "interface",
        "list",
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("xml") && err.contains("csv, keyvalue, json"),
        "{err}"
    );
}

#[test]
fn vmkping_next_hop_and_diag_ping() {
    let Some(()) = require_root("vmkping_next_hop_and_diag_ping") else {
        return;
    };
    let lab = article_daemon_lab("nexthop");
    let _daemon = lab.start();

    // The default gateway is on no vmknic subnet: no route to the storage server...
    let (code, _, err) = lab.esx(&["vmkping", "-c", "1", STORAGE]);
    assert_eq!(code, 1);
    assert!(err.contains("No route to host"), "{err}");
    // ...but -N sends through the router anyway, bypassing the table.
    let (code, out, err) = lab.esx(&[
        "vmkping",
        "-c",
        "2",
        "-i",
        "0.2",
        "-N",
        "198.18.1.1",
        STORAGE,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("bytes from {STORAGE}: icmp_seq=0 ttl=63")),
        "{out}"
    );
    // A next hop on no vmknic subnet, or not on the -I vmknic's, is refused.
    let (code, _, err) = lab.esx(&["vmkping", "-c", "1", "-N", "198.18.5.1", STORAGE]);
    assert_eq!(code, 1);
    assert!(
        err.contains("next hop 198.18.5.1 is on no VMkernel interface subnet"),
        "{err}"
    );
    let (code, _, err) = lab.esx(&[
        "vmkping",
        "-c",
        "1",
        "-I",
        "vmk1",
        "-N",
        "198.18.1.1",
        STORAGE,
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("next hop 198.18.1.1"), "{err}");
    let (code, _, err) = lab.esx(&["vmkping", "-N", "198.18.1", STORAGE]);
    assert_eq!(code, 2);
    assert!(err.contains("198.18.1"), "{err}");

    // esxcli network diag ping: Trace and Summary.
    let (code, out, err) = lab.esx(&[
        "esxcli",
        "network",
        "diag",
        "ping",
        "-H",
        STORAGE,
        "--nexthop",
        "198.18.1.1",
        "-c",
        "2",
        "-i",
        "0.2",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with("   Trace: \n         Received Bytes: 64\n"),
        "{out}"
    );
    assert!(
        out.contains(&format!("         Host: {STORAGE}\n")),
        "{out}"
    );
    assert!(out.contains("         TTL: 63\n"), "{out}");
    assert!(out.contains("   Summary: \n"), "{out}");
    assert!(
        out.contains("         Transmitted: 2\n         Recieved: 2\n"),
        "{out}"
    );
    assert!(out.contains("         Packet Lost: 0\n"), "{out}");
    let (code, out, err) = lab.esx(&[
        "esxcli",
        "--formatter=json",
        "network",
        "diag",
        "ping",
        "-H",
        "198.18.2.10",
        "-I",
        "vmk1",
        "-N",
        "defaultTcpipStack",
        "-c",
        "1",
        "-s",
        "100",
        "-d",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(v["Summary"]["Recieved"], 1);
    assert_eq!(v["Trace"][0]["ReceivedBytes"], 108);
    // No reply: Summary with 100% lost, exit 1.
    let (code, out, _) = lab.esx(&[
        "esxcli", "network", "diag", "ping", "-H", STORAGE, "-c", "1",
    ]);
    assert_eq!(code, 1);
    assert!(out.contains("Packet Lost: 100\n"), "{out}");
    assert!(
        out.contains("Detail: sendto() failed (No route to host)"),
        "{out}"
    );
    // Wrong forms and a netstack that does not exist.
    let (code, _, err) = lab.esx(&["esxcli", "network", "diag", "ping", "-c", "1"]);
    assert_eq!(code, 2);
    assert!(err.contains("--host"), "{err}");
    let (code, _, err) = lab.esx(&[
        "esxcli", "network", "diag", "ping", "-H", STORAGE, "-N", "vmotion",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("no netstack named `vmotion`"), "{err}");
}
