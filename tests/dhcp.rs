//! Root only. DHCP for vmknics against a real DHCP server (dnsmasq) in namespaces the tests
//! create (skipped with `SKIPPED (needs root)` outside CI, a failure in CI when not root).
//!
//! ```text
//! stack (daemon) --vmk0 dhcp (Mgmt)----- dhcp 198.18.7.1 (dnsmasq: 198.18.7.50-60, router
//!                                        198.18.7.1, T1 3 s) | 198.18.107.1 -- far 198.18.107.20
//!                --vmk1 dhcp (Storage)-- the daemon's namespace: 198.18.9.1 (dnsmasq: 198.18.9.50-60,
//!                                        no router)
//! ```
//!
//! [`dhcp_in_vmotion_netstack`] puts a DHCP vmknic in the `vmotion` netstack beside a static
//! one of the same subnet and address in `defaultTcpipStack`:
//!
//! ```text
//!        defaultTcpipStack
//! stack --vmk0 198.18.11.100/24 static-- ra 198.18.11.1 | 198.18.111.1 -- sa 198.18.111.20
//!        vmotion
//!       --vmk1 dhcp-------------------- rb 198.18.11.1 (dnsmasq: 198.18.11.100 only, router
//!                                          198.18.11.1, T1 3 s) | 198.18.111.1 -- sb 198.18.111.20
//! ```

mod common;

use std::time::Duration;

use common::counters::forwarded_ipv4;
use common::lab::Lab;
use common::{require_root, squeeze, wait_until, Netns, Proc, Scratch};

/// Starts dnsmasq as a DHCP server only (`--port=0`: no DNS) on `iface` in `ns`, handing out
/// `range`, logging each DHCP message to `log`.
fn dnsmasq(ns: &Netns, dir: &Scratch, iface: &str, range: &str, extra: &[&str]) -> Proc {
    let log = dir.file(&format!("dnsmasq-{iface}.log"));
    let leases = dir.file(&format!("leases-{iface}"));
    let pid = dir.file(&format!("dnsmasq-{iface}.pid"));
    let mut args: Vec<String> = vec![
        "--keep-in-foreground".into(),
        "--conf-file=/dev/null".into(),
        "--port=0".into(),
        "--user=root".into(),
        format!("--interface={iface}"),
        "--bind-interfaces".into(),
        format!("--dhcp-range={range}"),
        format!("--dhcp-leasefile={}", leases.display()),
        format!("--pid-file={}", pid.display()),
        format!("--log-facility={}", log.display()),
        "--log-dhcp".into(),
        "--dhcp-authoritative".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ns.spawn("dnsmasq", &args)
}

/// What dnsmasq logged on `iface`.
fn dnsmasq_log(dir: &Scratch, iface: &str) -> String {
    std::fs::read_to_string(dir.file(&format!("dnsmasq-{iface}.log"))).unwrap_or_default()
}

/// How many times dnsmasq logged `what` (`DHCPACK(vmk0)`, ...).
fn count(dir: &Scratch, iface: &str, what: &str) -> usize {
    dnsmasq_log(dir, iface).matches(what).count()
}

/// `esxcli network ip interface ipv4 get -i vmknic`'s row, squeezed.
fn ipv4_row(lab: &Lab, vmknic: &str) -> String {
    let (_, out, _) = lab.esx(&[
        "esxcli",
        "network",
        "ip",
        "interface",
        "ipv4",
        "get",
        "-i",
        vmknic,
    ]);
    squeeze(&out)
        .lines()
        .find(|l| l.starts_with(&format!("{vmknic} ")))
        .unwrap_or_default()
        .to_string()
}

/// Waits until `vmknic` holds a DHCP lease in `prefix` (e.g. `198.18.7.5`); returns the row.
fn wait_lease(lab: &Lab, dir: &Scratch, vmknic: &str, prefix: &str) -> String {
    let ok = wait_until(Duration::from_secs(20), || {
        let row = ipv4_row(lab, vmknic);
        row.starts_with(&format!("{vmknic} {prefix}")) && row.contains(" DHCP ")
    });
    assert!(
        ok,
        "{vmknic} got no lease: {}\ndnsmasq: {}{}\ndaemon: {}",
        ipv4_row(lab, vmknic),
        dnsmasq_log(dir, "vmk0"),
        dnsmasq_log(dir, "vmk1"),
        lab.log()
    );
    ipv4_row(lab, vmknic)
}

#[test]
fn dhcp_leases_applied_renewed_released() {
    let Some(()) = require_root("dhcp_leases_applied_renewed_released") else {
        return;
    };
    let lab = Lab::builder("dhcp")
        .tap_host("dhcp", "vmk0", "198.18.7.1/24")
        .behind("dhcp", "far", "198.18.107.1/24", "198.18.107.20/24")
        .build();
    let dir = Scratch::new("dhcp-srv");
    lab.write_config(&format!(
        "[[vmknic]]\nname = \"vmk0\"\nportgroup = \"Mgmt\"\nip = \"dhcp\"\nnetns = \"{}\"\n",
        lab.ns("dhcp").name
    ));
    let daemon = lab.start();
    let server0 = || {
        dnsmasq(
            lab.ns("dhcp"),
            &dir,
            "vmk0",
            "198.18.7.50,198.18.7.60,255.255.255.0,120",
            &[
                "--dhcp-option=option:router,198.18.7.1",
                "--dhcp-option=option:T1,3",
                "--dhcp-option=option:T2,5",
            ],
        )
    };
    let dns0 = server0();

    // The lease's address, mask and router, live: shown as Address Type DHCP, the router
    // as the netstack's default gateway (none is configured), a host behind it reachable.
    let row = wait_lease(&lab, &dir, "vmk0", "198.18.7.5");
    assert!(
        row.ends_with(" 255.255.255.0 198.18.7.255 DHCP 198.18.7.1 false"),
        "{row}"
    );
    let lease0 = row.split(' ').nth(1).unwrap_or_default().to_string();
    let (_, out, _) = lab.esx(&["esxcfg-vmknic", "-l"]);
    assert!(
        squeeze(&out).contains(&format!(
            "vmk0 Mgmt IPv4 {lease0} 255.255.255.0 198.18.7.255"
        )),
        "{out}"
    );
    assert!(squeeze(&out).contains(" DHCP defaultTcpipStack"), "{out}");
    let (_, out, _) = lab.esx(&["esxcfg-route", "-l"]);
    assert!(
        squeeze(&out).contains("default 0.0.0.0 198.18.7.1 vmk0"),
        "{out}"
    );
    let (code, out, err) = lab.esx(&["vmkping", "-c", "1", "198.18.107.20"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(lab
        .ns("dhcp")
        .exec("ping", &["-c", "1", "-W", "2", &lease0])
        .status
        .success());

    // Renewed at T1 (3 s): dnsmasq acknowledges it again, the address stays.
    let acks = count(&dir, "vmk0", "DHCPACK(vmk0)");
    assert!(
        wait_until(Duration::from_secs(15), || count(
            &dir,
            "vmk0",
            "DHCPACK(vmk0)"
        ) > acks),
        "no renewal: {}",
        dnsmasq_log(&dir, "vmk0")
    );
    assert!(ipv4_row(&lab, "vmk0").contains(&lease0));

    // esxcfg-vmknic -a -i DHCP: vmk1, its TAP in the daemon's namespace, a server there.
    let (code, _, err) = lab.esx(&["esxcfg-vmknic", "-a", "-i", "DHCP", "-p", "Storage"]);
    assert_eq!(code, 0, "{err}");
    assert!(wait_until(Duration::from_secs(5), || {
        lab.stack
            .exec("ip", &["link", "show", "vmk1"])
            .status
            .success()
    }));
    lab.stack
        .ip(&["addr", "add", "198.18.9.1/24", "dev", "vmk1"]);
    lab.stack.ip(&["link", "set", "vmk1", "up"]);
    let server1 = || {
        dnsmasq(
            &lab.stack,
            &dir,
            "vmk1",
            "198.18.9.50,198.18.9.60,255.255.255.0,120",
            &["--dhcp-option=3"],
        )
    };
    let dns1 = server1();
    let row = wait_lease(&lab, &dir, "vmk1", "198.18.9.5");
    assert!(row.ends_with(" DHCP 0.0.0.0 false"), "no router: {row}");
    // The first lease's router stays the default gateway.
    let (_, out, _) = lab.esx(&["esxcfg-route", "-l"]);
    assert!(
        squeeze(&out).contains("default 0.0.0.0 198.18.7.1 vmk0"),
        "{out}"
    );

    // Static: the lease is released; back to DHCP: a lease again.
    let esxcli_set = |args: &[&str]| {
        let mut argv = vec![
            "esxcli",
            "network",
            "ip",
            "interface",
            "ipv4",
            "set",
            "-i",
            "vmk1",
        ];
        argv.extend_from_slice(args);
        lab.esx(&argv)
    };
    let (code, _, err) = esxcli_set(&["-t", "static", "-I", "198.18.9.100", "-N", "255.255.255.0"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        wait_until(Duration::from_secs(5), || count(
            &dir,
            "vmk1",
            "DHCPRELEASE(vmk1)"
        ) == 1),
        "no release: {}",
        dnsmasq_log(&dir, "vmk1")
    );
    assert_eq!(
        ipv4_row(&lab, "vmk1"),
        "vmk1 198.18.9.100 255.255.255.0 198.18.9.255 STATIC 0.0.0.0 false"
    );
    // Refused changes leave it so.
    let (code, _, err) = lab.esx(&[
        "esxcli",
        "network",
        "ip",
        "interface",
        "ipv4",
        "set",
        "-i",
        "vmk9",
        "-t",
        "dhcp",
    ]);
    assert_eq!(code, 1, "{err}");
    let (code, _, err) = lab.esx(&["esxcfg-vmknic", "-a", "-i", "DHCP", "-n", "24", "-p", "X"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("-n/--netmask cannot be used with this action"),
        "{err}"
    );
    assert!(ipv4_row(&lab, "vmk1").contains(" STATIC "));
    let (code, _, err) = esxcli_set(&["-t", "dhcp"]);
    assert_eq!(code, 0, "{err}");
    wait_lease(&lab, &dir, "vmk1", "198.18.9.5");

    // kill -9 and restart: both vmknics are DHCP still and lease again.
    let mut daemon = daemon;
    daemon.child.kill().expect("SIGKILL the daemon");
    let _ = daemon.child.wait();
    drop(daemon);
    drop((dns0, dns1));
    let _daemon = lab.start();
    lab.stack
        .ip(&["addr", "replace", "198.18.9.1/24", "dev", "vmk1"]);
    lab.stack.ip(&["link", "set", "vmk1", "up"]);
    let _dns0 = server0();
    let _dns1 = server1();
    wait_lease(&lab, &dir, "vmk0", "198.18.7.5");
    wait_lease(&lab, &dir, "vmk1", "198.18.9.5");

    // Removed: the lease is released, its router no longer the default gateway.
    let releases = count(&dir, "vmk0", "DHCPRELEASE(vmk0)");
    let (code, _, err) = lab.esx(&[
        "esxcli",
        "network",
        "ip",
        "interface",
        "remove",
        "-i",
        "vmk0",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        wait_until(Duration::from_secs(5), || {
            count(&dir, "vmk0", "DHCPRELEASE(vmk0)") > releases
        }),
        "no release: {}",
        dnsmasq_log(&dir, "vmk0")
    );
    let (_, out, _) = lab.esx(&["esxcfg-route", "-l"]);
    assert!(!out.contains("198.18.7.1"), "{out}");
}

/// A DHCP vmknic in a non-default netstack: its lease comes from the server on its own wire,
/// its router becomes the default gateway of `vmotion` only (traffic through it counted on
/// that router), renewal and release work, and a static vmknic holding the same subnet and
/// address in `defaultTcpipStack` is not disturbed.
#[test]
fn dhcp_in_vmotion_netstack() {
    let Some(()) = require_root("dhcp_in_vmotion_netstack") else {
        return;
    };
    let lab = Lab::builder("dhcp-ns")
        .tap_host("ra", "vmk0", "198.18.11.1/24")
        .behind("ra", "sa", "198.18.111.1/24", "198.18.111.20/24")
        .tap_host("rb", "vmk1", "198.18.11.1/24")
        .behind("rb", "sb", "198.18.111.1/24", "198.18.111.20/24")
        .quiet()
        .build();
    let dir = Scratch::new("dhcp-ns-srv");
    lab.write_config(&format!(
        r#"[[netstack_instance]]
name = "vmotion"

[[vmknic]]
name = "vmk0"
portgroup = "Mgmt"
ip = "198.18.11.100/24"
netns = "{}"

[[vmknic]]
name = "vmk1"
portgroup = "vMotion"
ip = "dhcp"
netstack = "vmotion"
netns = "{}"
"#,
        lab.ns("ra").name,
        lab.ns("rb").name
    ));
    let _daemon = lab.start();
    let route_list = |netstack: Option<&str>| {
        let mut args = vec!["esxcfg-route"];
        if let Some(n) = netstack {
            args.extend(["-N", n]);
        }
        args.push("-l");
        let (code, out, err) = lab.esx(&args);
        assert_eq!(code, 0, "{err}");
        squeeze(&out)
    };
    let default_routes = route_list(None);
    assert!(!default_routes.contains("default"), "{default_routes}");
    // The one address the server hands out is vmk0's in the other netstack.
    let _dns = dnsmasq(
        lab.ns("rb"),
        &dir,
        "vmk1",
        "198.18.11.100,198.18.11.100,255.255.255.0,120",
        &[
            "--dhcp-option=option:router,198.18.11.1",
            "--dhcp-option=option:T1,3",
            "--dhcp-option=option:T2,5",
        ],
    );
    let ok = wait_until(Duration::from_secs(20), || {
        ipv4_row(&lab, "vmk1").contains(" DHCP ")
            && ipv4_row(&lab, "vmk1").starts_with("vmk1 198.18.11.100 ")
    });
    assert!(
        ok,
        "no lease: {}\ndnsmasq: {}\ndaemon: {}",
        ipv4_row(&lab, "vmk1"),
        dnsmasq_log(&dir, "vmk1"),
        lab.log()
    );
    assert_eq!(
        ipv4_row(&lab, "vmk1"),
        "vmk1 198.18.11.100 255.255.255.0 198.18.11.255 DHCP 198.18.11.1 false"
    );
    let (_, out, _) = lab.esx(&["esxcfg-vmknic", "-l", "-N", "vmotion"]);
    assert!(
        squeeze(&out).contains("vmk1 vMotion IPv4 198.18.11.100 255.255.255.0 198.18.11.255"),
        "{out}"
    );
    assert!(squeeze(&out).contains(" DHCP vmotion"), "{out}");

    // The lease's router is vmotion's default gateway, not defaultTcpipStack's.
    let v = route_list(Some("vmotion"));
    assert!(v.contains("default 0.0.0.0 198.18.11.1 vmk1"), "{v}");
    assert_eq!(route_list(None), default_routes);
    let (_, out, _) = lab.esx(&["esxcfg-route"]);
    assert!(!out.contains("198.18.11.1"), "{out}");
    let (_, out, _) = lab.esx(&["esxcfg-route", "-N", "vmotion"]);
    assert!(out.contains("198.18.11.1"), "{out}");
    // vmk0 keeps its address, and answers on its own wire.
    assert!(
        ipv4_row(&lab, "vmk0")
            .starts_with("vmk0 198.18.11.100 255.255.255.0 198.18.11.255 STATIC "),
        "{}",
        ipv4_row(&lab, "vmk0")
    );

    // Traffic through the lease's router, counted on it; none through the other netstack's.
    let through = |n: &str| {
        let (a0, b0) = (forwarded_ipv4(&lab, "ra"), forwarded_ipv4(&lab, "rb"));
        let mut args = vec!["vmkping", "-c", "3", "-i", "0.05"];
        if n != "defaultTcpipStack" {
            args.extend(["-S", n]);
        }
        args.push("198.18.111.20");
        let (code, out, err) = lab.esx(&args);
        let (a1, b1) = (forwarded_ipv4(&lab, "ra"), forwarded_ipv4(&lab, "rb"));
        (code, format!("{out}{err}"), a1 - a0, b1 - b0)
    };
    let (code, out, a, b) = through("vmotion");
    assert_eq!(code, 0, "{out}");
    assert!(b >= 3 && a == 0, "ra {a} rb {b}: {out}");
    let (code, out, a, b) = through("defaultTcpipStack");
    assert_ne!(code, 0, "defaultTcpipStack has no default gateway: {out}");
    assert!(a == 0 && b == 0, "ra {a} rb {b}: {out}");
    let alive = |role: &str| {
        lab.ns(role)
            .exec("ping", &["-c", "1", "-W", "2", "198.18.11.100"])
            .status
            .success()
    };
    assert!(alive("ra") && alive("rb"));
    let (code, out, err) = lab.esx(&["vmkping", "-c", "1", "198.18.11.1"]);
    assert_eq!(code, 0, "{out}{err}");

    // A configured gateway wins over the lease's router; cleared, the router is back.
    let (code, _, err) = lab.esx(&["esxcfg-route", "-N", "vmotion", "198.18.11.2"]);
    assert_eq!(code, 0, "{err}");
    let v = route_list(Some("vmotion"));
    assert!(v.contains("default 0.0.0.0 198.18.11.2 vmk1"), "{v}");
    let (code, _, err) = lab.esx(&["esxcfg-route", "-N", "vmotion", "-d", "default"]);
    assert_eq!(code, 0, "{err}");
    let v = route_list(Some("vmotion"));
    assert!(v.contains("default 0.0.0.0 198.18.11.1 vmk1"), "{v}");
    assert_eq!(route_list(None), default_routes);

    // Renewed at T1 (3 s): acknowledged again, the address and gateway stay.
    let acks = count(&dir, "vmk1", "DHCPACK(vmk1)");
    assert!(
        wait_until(Duration::from_secs(15), || count(
            &dir,
            "vmk1",
            "DHCPACK(vmk1)"
        ) > acks),
        "no renewal: {}",
        dnsmasq_log(&dir, "vmk1")
    );
    assert!(ipv4_row(&lab, "vmk1").contains(" 198.18.11.100 "));
    assert!(route_list(Some("vmotion")).contains("default 0.0.0.0 198.18.11.1 vmk1"));
    let (code, out, _, b) = through("vmotion");
    assert!(code == 0 && b >= 3, "{out}");

    // Removed: the lease is released, its router gone from vmotion; vmk0 untouched.
    let (code, _, err) = lab.esx(&[
        "esxcli",
        "network",
        "ip",
        "interface",
        "remove",
        "-i",
        "vmk1",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        wait_until(Duration::from_secs(5), || count(
            &dir,
            "vmk1",
            "DHCPRELEASE(vmk1)"
        ) == 1),
        "no release: {}",
        dnsmasq_log(&dir, "vmk1")
    );
    let v = route_list(Some("vmotion"));
    assert!(!v.contains("198.18.11.1"), "{v}");
    assert_eq!(route_list(None), default_routes);
    assert!(alive("ra"));
    let (code, out, err) = lab.esx(&["vmkping", "-c", "1", "198.18.11.1"]);
    assert_eq!(code, 0, "{out}{err}");
}
