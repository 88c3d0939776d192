//! Root only. DHCP for vmknics against a real DHCP server (dnsmasq) in namespaces the tests
//! create (skipped with `SKIPPED (needs root)` outside CI, a failure in CI when not root).
//!
//! ```text
//! stack (daemon) --vmk0 dhcp (Mgmt)----- dhcp 198.18.7.1 (dnsmasq: 198.18.7.50-60, router
//!                                        198.18.7.1, T1 3 s) | 198.18.107.1 -- far 198.18.107.20
//!                --vmk1 dhcp (Storage)-- the daemon's namespace: 198.18.9.1 (dnsmasq: 198.18.9.50-60,
//!                                        no router)
//! ```

mod common;

use std::time::Duration;

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
