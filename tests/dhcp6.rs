//! Root only. A vmknic's IPv6 address sources other than static addresses and SLAAC, against
//! real peers in namespaces the test creates: first the link-local address alone (`esxcli
//! network ip interface ipv6 set -e true`), then DHCPv6 (`-d true`) from dnsmasq (a stateful
//! range, router advertisements with the M flag):
//!
//! ```text
//! stack (daemon) --vmk1 (Storage, 198.18.61.100/24)-- srv 198.18.61.1/24, 2001:db8:61::1/64
//!                                                     (dnsmasq: 2001:db8:61::10-20, RA M)
//! ```

mod common;

use std::time::Duration;

use common::lab::Lab;
use common::{require_root, squeeze, wait_until, Netns, Proc, Scratch};

const VMK1_MAC: &str = "02:50:56:01:00:61";
/// vmk1's link-local address (EUI-64 of `VMK1_MAC`).
const VMK1_LL: &str = "fe80::50:56ff:fe01:61";

/// A command's stdout (panics on failure, with its stderr).
fn esx_ok(lab: &Lab, args: &[&str]) -> String {
    let (code, out, err) = lab.esx(args);
    assert_eq!(code, 0, "{args:?}: {err}{out}");
    out
}

/// `esxcli network ip interface ipv6 <args>` for vmk1.
fn ipv6(lab: &Lab, args: &[&str]) -> (i32, String, String) {
    let mut argv = vec!["esxcli", "network", "ip", "interface", "ipv6"];
    argv.extend_from_slice(args);
    lab.esx(&argv)
}

/// vmk1's rows of `esxcli network ip interface ipv6 address list`, squeezed.
fn addr_rows(lab: &Lab) -> Vec<String> {
    let out = esx_ok(
        lab,
        &[
            "esxcli",
            "network",
            "ip",
            "interface",
            "ipv6",
            "address",
            "list",
        ],
    );
    squeeze(&out)
        .lines()
        .filter(|l| l.starts_with("vmk1 "))
        .map(str::to_string)
        .collect()
}

/// vmk1's row of `esxcli network ip interface ipv6 get`, squeezed.
fn get_row(lab: &Lab) -> String {
    let (_, out, _) = ipv6(lab, &["get", "-i", "vmk1"]);
    squeeze(&out)
        .lines()
        .find(|l| l.starts_with("vmk1 "))
        .unwrap_or_default()
        .to_string()
}

/// Waits until vmk1 lists a DHCP address that is PREFERRED; returns it.
fn wait_dhcp6(lab: &Lab, dir: &Scratch) -> String {
    let mut addr = String::new();
    let ok = wait_until(Duration::from_secs(15), || {
        addr = addr_rows(lab)
            .iter()
            .find(|r| r.ends_with(" 64 DHCP PREFERRED"))
            .and_then(|r| r.split(' ').nth(1))
            .unwrap_or_default()
            .to_string();
        !addr.is_empty()
    });
    assert!(
        ok,
        "no DHCPv6 address: {:?}\ndnsmasq: {}\ndaemon: {}",
        addr_rows(lab),
        dnsmasq_log(dir),
        lab.log()
    );
    addr
}

/// Starts dnsmasq for DHCPv6 only (`--port=0`: no DNS) on vmk1 in `ns`: addresses
/// 2001:db8:61::10-20 for 120 s, router advertisements (M set for a stateful range).
fn dnsmasq(ns: &Netns, dir: &Scratch) -> Proc {
    let f = |name: &str| dir.file(name).display().to_string();
    ns.spawn(
        "dnsmasq",
        &[
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--port=0",
            "--user=root",
            "--interface=vmk1",
            "--bind-interfaces",
            "--dhcp-range=2001:db8:61::10,2001:db8:61::20,64,120",
            "--enable-ra",
            &format!("--dhcp-leasefile={}", f("leases")),
            &format!("--pid-file={}", f("dnsmasq.pid")),
            &format!("--log-facility={}", f("dnsmasq.log")),
            "--log-dhcp",
            "--dhcp-authoritative",
        ],
    )
}

fn dnsmasq_log(dir: &Scratch) -> String {
    std::fs::read_to_string(dir.file("dnsmasq.log")).unwrap_or_default()
}

fn ping6(ns: &Netns, dst: &str) -> bool {
    let o = ns.exec("ping", &["-6", "-n", "-c", "1", "-W", "2", dst]);
    if !o.status.success() {
        eprintln!("ping -6 {dst}: {}", common::describe(&o));
    }
    o.status.success()
}

/// The server side's global address (no DAD: dnsmasq binds to it at once).
fn srv_addr(srv: &Netns) {
    srv.ip(&[
        "-6",
        "addr",
        "replace",
        "2001:db8:61::1/64",
        "dev",
        "vmk1",
        "nodad",
    ]);
}

#[test]
fn link_local_only_then_dhcpv6_leased_renewed_released() {
    let Some(()) = require_root("link_local_only_then_dhcpv6_leased_renewed_released") else {
        return;
    };
    let lab = Lab::builder("dhcp6")
        .tap_host("srv", "vmk1", "198.18.61.1/24")
        .build();
    let dir = Scratch::new("dhcp6-srv");
    lab.write_config(&format!(
        "[[vmknic]]\nname = \"vmk1\"\nportgroup = \"Storage\"\nip = \"198.18.61.100/24\"\n\
         mac = \"{VMK1_MAC}\"\nnetns = \"{}\"\n",
        lab.ns("srv").name
    ));
    let daemon = lab.start();
    let srv = lab.ns("srv");
    srv_addr(srv);

    // IPv6 off: no address. `-e true` alone: the link-local address, through DAD, answers
    // ping6 from the link and is the source of vmkping -6 -I to a link-local peer; saved.
    assert!(addr_rows(&lab).is_empty(), "{:?}", addr_rows(&lab));
    let (code, out, err) = ipv6(&lab, &["set", "-i", "vmk1", "-e", "true"]);
    assert_eq!(code, 0, "{out}{err}");
    let ll_row = format!("vmk1 {VMK1_LL} 64 LINK_LOCAL PREFERRED");
    assert!(
        wait_until(Duration::from_secs(5), || addr_rows(&lab)
            == [ll_row.clone()]),
        "{:?}",
        addr_rows(&lab)
    );
    assert_eq!(get_row(&lab), "vmk1 true false false false ::");
    // (The server side's own link-local address first: its DAD done, ping has a source.)
    let srv_ll = srv.link_local("vmk1");
    assert!(ping6(srv, &format!("{VMK1_LL}%vmk1")), "{}", lab.log());
    let out = esx_ok(&lab, &["vmkping", "-6", "-c", "1", "-I", "vmk1", &srv_ll]);
    assert!(out.contains("1 packets received"), "{out}");
    let saved = std::fs::read_to_string(lab.config()).unwrap_or_default();
    assert!(saved.contains("ipv6_enabled = true"), "{saved}");

    // A bad -d value is refused by name and changes nothing.
    let (code, _, err) = ipv6(&lab, &["set", "-i", "vmk1", "-d", "maybe"]);
    assert_ne!(code, 0);
    assert!(err.contains("`maybe` is not a boolean"), "{err}");
    assert_eq!(get_row(&lab), "vmk1 true false false false ::");

    // -d true: an address from dnsmasq (Type DHCP), through DAD, reachable from the server;
    // the switch is saved, the lease is not.
    let dns = dnsmasq(srv, &dir);
    let (code, out, err) = ipv6(&lab, &["set", "-i", "vmk1", "-d", "true"]);
    assert_eq!(code, 0, "{out}{err}");
    let leased = wait_dhcp6(&lab, &dir);
    assert!(leased.starts_with("2001:db8:61::1"), "{leased}");
    assert_eq!(get_row(&lab), "vmk1 true true false false ::");
    assert!(ping6(srv, &leased), "{}", lab.log());
    let rows = squeeze(&esx_ok(&lab, &["esxcfg-vmknic", "-l"]));
    assert!(
        rows.contains(&format!(
            " IPv6 {leased} 64 {VMK1_MAC} 1500 65535 true DHCP, PREFERRED"
        )),
        "{rows}"
    );
    let json = esx_ok(
        &lab,
        &[
            "esxcli",
            "--formatter=json",
            "network",
            "ip",
            "interface",
            "ipv6",
            "address",
            "list",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    let rows = v.as_array().expect("a list");
    assert!(
        rows.iter()
            .any(|r| r["Address"] == leased.as_str() && r["Type"] == "DHCP"),
        "{json}"
    );
    let saved = std::fs::read_to_string(lab.config()).unwrap_or_default();
    assert!(saved.contains("ipv6_dhcp = true"), "{saved}");
    assert!(!saved.contains(&leased), "the lease is saved: {saved}");

    // kill -9 and restart: the setting survives and the address is asked for again (the
    // same one: dnsmasq knows our DUID and IAID).
    let mut daemon = daemon;
    daemon.child.kill().expect("SIGKILL the daemon");
    let _ = daemon.child.wait();
    drop(daemon);
    drop(dns);
    let requests = dnsmasq_log(&dir).matches("DHCPREQUEST(vmk1)").count();
    let _daemon = lab.start();
    srv_addr(srv);
    let _dns = dnsmasq(srv, &dir);
    assert_eq!(wait_dhcp6(&lab, &dir), leased);
    assert!(
        dnsmasq_log(&dir).matches("DHCPREQUEST(vmk1)").count() > requests,
        "{}",
        dnsmasq_log(&dir)
    );
    assert!(ping6(srv, &leased), "{}", lab.log());

    // -d false: the address is released (dnsmasq logs it) and goes; the link-local stays.
    let (code, out, err) = ipv6(&lab, &["set", "-i", "vmk1", "-d", "false"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        wait_until(Duration::from_secs(5), || dnsmasq_log(&dir)
            .contains("DHCPRELEASE(vmk1)")),
        "no release: {}",
        dnsmasq_log(&dir)
    );
    assert_eq!(addr_rows(&lab), [ll_row]);
    assert_eq!(get_row(&lab), "vmk1 true false false false ::");
    let saved = std::fs::read_to_string(lab.config()).unwrap_or_default();
    assert!(!saved.contains("ipv6_dhcp"), "{saved}");

    // -e false with no address source left: IPv6 off again.
    let (code, out, err) = ipv6(&lab, &["set", "-i", "vmk1", "-e", "false"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(addr_rows(&lab).is_empty(), "{:?}", addr_rows(&lab));
    assert!(!ping6(srv, &format!("{VMK1_LL}%vmk1")));
}
