//! Root only. IPv6 Neighbour Discovery with kernel peers (RFC 4861, RFC 4862):
//! - router advertisements: vmk0 autoconfigures (`ipv6_autoconf`) behind a kernel router `r`
//!   that runs radvd for 2001:db8:1::/64; vmk0 gets its EUI-64 address, `ping -6` from host
//!   `h` behind the router reaches it through the learned default router, `esxcli ... ipv6 set
//!   -r false` and `esxcfg-vmknic -P true` turn it off and on (saved), and the address goes when
//!   its valid lifetime ends;
//! - neighbour states: the router's entry goes REACHABLE → STALE after the advertised
//!   ReachableTime, → DELAY when used, → REACHABLE after the kernel answers the unicast probe,
//!   and is removed when the router stops answering;
//! - DAD: a kernel host on the same bridge already holds one of vmk0's static addresses: it is
//!   DUPLICATE, logged and unused, while the other is PREFERRED;
//! - the default router list: two kernel routers run radvd on vmk0's bridge; the first one
//!   heard is in use (`esxcli network ip route ipv6 list` shows it, Source DYNAMIC) and stays
//!   when the second is heard; once the first one's link dies, Neighbour Unreachability
//!   Detection gives up on it and the stack's pings reach the far host through the second.

mod common;

use std::time::Duration;

use common::lab::Lab;
use common::{require_root, squeeze, wait_until, Netns, Proc};

const VMK0_MAC: &str = "02:50:56:01:00:01";
/// vmk0's EUI-64 address on the advertised prefix (from `VMK0_MAC`).
const SLAAC: &str = "2001:db8:1:0:50:56ff:fe01:1";

/// A command's stdout (panics on failure, with its stderr).
fn esx_ok(lab: &Lab, args: &[&str]) -> String {
    let (code, out, err) = lab.esx(args);
    assert_eq!(code, 0, "{args:?}: {err}{out}");
    out
}

/// The State column of `esxcli network ip neighbor list` for `ip`, if listed.
fn neighbor_state(lab: &Lab, ip: &str) -> Option<String> {
    let out = esx_ok(lab, &["esxcli", "network", "ip", "neighbor", "list"]);
    let row = squeeze(&out)
        .lines()
        .find(|l| l.starts_with(&format!("{ip} ")))?
        .to_string();
    [
        "INCOMPLETE",
        "REACHABLE",
        "STALE",
        "DELAY",
        "PROBE",
        "FAILED",
    ]
    .iter()
    .find(|s| row.split(' ').any(|w| w == **s))
    .map(|s| s.to_ascii_lowercase())
}

/// The Type column of vmk0's `esxcfg-vmknic -l` row for `addr` (`AUTOCONF, PREFERRED`), if any.
fn vmknic_type(lab: &Lab, addr: &str) -> Option<String> {
    let out = esx_ok(lab, &["esxcfg-vmknic", "-l"]);
    let row = squeeze(&out)
        .lines()
        .find(|l| l.contains(&format!(" {addr} ")))?
        .to_string();
    ["STATIC", "AUTOCONF"].iter().find_map(|kind| {
        let at = row.find(&format!("{kind}, "))?;
        let rest = &row[at..];
        Some(rest.splitn(3, ' ').take(2).collect::<Vec<_>>().join(" "))
    })
}

fn ping6(ns: &Netns, dst: &str) -> bool {
    ns.exec("ping", &["-6", "-n", "-c", "1", "-W", "1", dst])
        .status
        .success()
}

/// Starts radvd in `r` for 2001:db8:1::/64 on vmk0: advertisements every 3-4 s, router
/// lifetime 30 s, ReachableTime 1 s, prefix valid 20 s and preferred 10 s.
fn radvd(lab: &Lab, r: &Netns) -> Proc {
    radvd_with(
        lab,
        r,
        "radvd",
        "interface vmk0 {\n AdvSendAdvert on;\n MinRtrAdvInterval 3;\n MaxRtrAdvInterval 4;\n \
         AdvDefaultLifetime 30;\n AdvReachableTime 1000;\n \
         prefix 2001:db8:1::/64 {\n  AdvOnLink on;\n  AdvAutonomous on;\n  \
         AdvValidLifetime 20;\n  AdvPreferredLifetime 10;\n };\n};\n",
    )
}

/// Starts radvd in `r` with the configuration `conf_text` (files named after `name`).
fn radvd_with(lab: &Lab, r: &Netns, name: &str, conf_text: &str) -> Proc {
    let conf = lab.dir.file(&format!("{name}.conf"));
    std::fs::write(&conf, conf_text).unwrap_or_else(|e| panic!("{name}.conf: {e}"));
    let pid = lab.dir.file(&format!("{name}.pid"));
    r.spawn(
        "radvd",
        &[
            "-n",
            "-m",
            "stderr",
            "-C",
            &conf.to_string_lossy(),
            "-p",
            &pid.to_string_lossy(),
        ],
    )
}

#[test]
fn slaac_default_router_neighbour_states_and_expiry() {
    let Some(()) = require_root("slaac_default_router_neighbour_states_and_expiry") else {
        return;
    };
    let lab = Lab::builder("ipv6-nd")
        .tap_host("r", "vmk0", "198.18.1.10/24")
        .behind("r", "h", "198.18.9.1/24", "198.18.9.10/24")
        .build();
    lab.write_config(&format!(
        "[[vmknic]]\nname = \"vmk0\"\nportgroup = \"A\"\nip = \"198.18.1.1/24\"\n\
         mac = \"{VMK0_MAC}\"\nipv6_autoconf = true\nnetns = \"{}\"\n",
        lab.ns("r").name,
    ));
    let mut daemon = lab.start();
    let (r, h) = (lab.ns("r"), lab.ns("h"));
    for (ns, dev) in [(r, "vmk0"), (r, "r-h"), (h, "eth0")] {
        ns.run(
            "sysctl",
            &["-qw", &format!("net.ipv6.conf.{dev}.disable_ipv6=0")],
        );
    }
    r.run("sysctl", &["-qw", "net.ipv6.conf.all.forwarding=1"]);
    r.ip(&[
        "-6",
        "addr",
        "replace",
        "2001:db8:9::1/64",
        "dev",
        "r-h",
        "nodad",
    ]);
    h.ip(&[
        "-6",
        "addr",
        "replace",
        "2001:db8:9::10/64",
        "dev",
        "eth0",
        "nodad",
    ]);
    h.ip(&["-6", "route", "replace", "default", "via", "2001:db8:9::1"]);
    let router = r.link_local("vmk0");
    // Given once the kernel's link-local address is settled: given earlier, while the TAP's
    // IPv6 was just enabled, the kernel dropped it now and then.
    r.ip(&[
        "-6",
        "addr",
        "replace",
        "2001:db8:1::1/64",
        "dev",
        "vmk0",
        "nodad",
    ]);
    let ra = radvd(&lab, r);

    // The EUI-64 address on the advertised prefix: tentative, then preferred.
    let got = wait_until(Duration::from_secs(15), || {
        vmknic_type(&lab, SLAAC).as_deref() == Some("AUTOCONF, PREFERRED")
    });
    assert!(
        got,
        "no SLAAC address: {}\n{}",
        esx_ok(&lab, &["esxcfg-vmknic", "-l"]),
        lab.log()
    );
    // No default gateway is configured: h reaches it through the advertised router.
    let reached = wait_until(Duration::from_secs(10), || ping6(h, SLAAC));
    assert!(
        reached,
        "h cannot ping {SLAAC}: r's addresses {}, stack routes {}, neighbours {}, stats {}, log {}",
        r.ip(&["addr"]),
        esx_ok(&lab, &["esxcli", "network", "ip", "route", "ipv6", "list"]),
        esx_ok(&lab, &["esxcli", "network", "ip", "neighbor", "list"]),
        esx_ok(&lab, &["stats"]),
        lab.log(),
    );
    let routes = esx_ok(&lab, &["esxcli", "network", "ip", "route", "ipv6", "list"]);
    assert!(routes.contains(&router), "default via {router}:\n{routes}");

    // Neighbour states: ReachableTime 1 s (0.5-1.5 s randomised), so the router's entry is
    // STALE soon after the last confirmation...
    let stale = wait_until(Duration::from_secs(10), || {
        neighbor_state(&lab, &router).as_deref() == Some("stale")
    });
    assert!(stale, "{:?}", neighbor_state(&lab, &router));
    // ...used (the echo reply goes to the router), DELAY...
    assert!(ping6(h, SLAAC));
    assert_eq!(neighbor_state(&lab, &router).as_deref(), Some("delay"));
    // ...then a unicast probe the kernel answers: REACHABLE (DELAY_FIRST_PROBE_TIME is 5 s).
    let reachable = wait_until(Duration::from_secs(8), || {
        neighbor_state(&lab, &router).as_deref() == Some("reachable")
    });
    assert!(reachable, "{:?}", neighbor_state(&lab, &router));

    // Off (saved), the autoconfigured address goes; on again, it comes back.
    esx_ok(
        &lab,
        &[
            "esxcli",
            "network",
            "ip",
            "interface",
            "ipv6",
            "set",
            "-i",
            "vmk0",
            "-r",
            "false",
        ],
    );
    assert_eq!(vmknic_type(&lab, SLAAC), None);
    let file = std::fs::read_to_string(lab.config()).unwrap_or_default();
    assert!(!file.contains("ipv6_autoconf"), "{file}");
    esx_ok(&lab, &["esxcfg-vmknic", "-P", "true", "A"]);
    let file = std::fs::read_to_string(lab.config()).unwrap_or_default();
    assert!(file.contains("ipv6_autoconf = true"), "{file}");
    let back = wait_until(Duration::from_secs(15), || {
        vmknic_type(&lab, SLAAC).as_deref() == Some("AUTOCONF, PREFERRED")
    });
    assert!(back, "{}", lab.log());
    assert!(wait_until(Duration::from_secs(10), || ping6(h, SLAAC)));
    let (code, _, err) = lab.esx(&["esxcfg-vmknic", "-P", "maybe", "A"]);
    assert_ne!(code, 0);
    assert!(err.contains("true or false"), "{err}");

    // The router stops answering: radvd killed (no final advertisement, so the default router
    // stays for its lifetime) and IPv6 off on its side. Traffic to it finds the entry STALE,
    // DELAY, three unanswered probes, and the entry is gone.
    let settled = wait_until(Duration::from_secs(10), || {
        neighbor_state(&lab, &router).as_deref() == Some("reachable")
    });
    assert!(settled, "{:?}", neighbor_state(&lab, &router));
    let mut ra = ra;
    ra.child.kill().ok();
    ra.child.wait().ok();
    r.run("sysctl", &["-qw", "net.ipv6.conf.vmk0.disable_ipv6=1"]);
    let stale = wait_until(Duration::from_secs(10), || {
        neighbor_state(&lab, &router).as_deref() == Some("stale")
    });
    assert!(stale, "{:?}", neighbor_state(&lab, &router));
    let (code, out, _) = lab.esx(&["vmkping", "-6", "-c", "1", "-W", "1", "2001:db8:9::10"]);
    assert_ne!(code, 0, "{out}");
    let state = neighbor_state(&lab, &router);
    assert!(
        matches!(state.as_deref(), Some("delay" | "probe")),
        "{state:?}"
    );
    let gone = wait_until(Duration::from_secs(15), || {
        neighbor_state(&lab, &router).is_none()
    });
    assert!(gone, "{:?}", neighbor_state(&lab, &router));

    // The prefix's valid lifetime (20 s) ends without a new advertisement: the address goes.
    let expired = wait_until(Duration::from_secs(25), || {
        vmknic_type(&lab, SLAAC).is_none()
    });
    assert!(expired, "{}", esx_ok(&lab, &["esxcfg-vmknic", "-l"]));
    assert!(lab.log().contains("valid lifetime ended"), "{}", lab.log());
    // The router's lifetime (30 s) ends too: no default router any more.
    let no_default = wait_until(Duration::from_secs(20), || {
        !esx_ok(&lab, &["esxcli", "network", "ip", "route", "ipv6", "list"]).contains(&router)
    });
    assert!(no_default, "{}", lab.log());

    // It is saved: after kill -9 and a restart autoconfiguration is still on.
    daemon.child.kill().ok();
    daemon.child.wait().ok();
    drop(daemon);
    let _daemon = lab.start();
    let out = esx_ok(&lab, &["vmknic", "list", "--json"]);
    assert!(out.contains("\"ipv6_autoconf\": true"), "{out}");
}

#[test]
fn dad_marks_an_address_a_kernel_host_holds_duplicate() {
    let Some(()) = require_root("dad_marks_an_address_a_kernel_host_holds_duplicate") else {
        return;
    };
    let lab = Lab::builder("ipv6-dad")
        .bridge_host("k", "vmk0", "brdad", "198.18.2.20/24")
        .build();
    let k = lab.ns("k");
    k.run("sysctl", &["-qw", "net.ipv6.conf.eth0.disable_ipv6=0"]);
    k.ip(&[
        "-6",
        "addr",
        "add",
        "2001:db8:2::10/64",
        "dev",
        "eth0",
        "nodad",
    ]);
    lab.write_config(&format!(
        "[[vmknic]]\nname = \"vmk0\"\nportgroup = \"A\"\nip = \"198.18.2.1/24\"\n\
         mac = \"{VMK0_MAC}\"\nbridge = \"brdad\"\n\
         ipv6 = [\"2001:db8:2::10/64\", \"2001:db8:2::11/64\"]\n"
    ));
    let _daemon = lab.start();
    let settled = wait_until(Duration::from_secs(10), || {
        vmknic_type(&lab, "2001:db8:2::11").as_deref() == Some("STATIC, PREFERRED")
    });
    assert!(settled, "{}", esx_ok(&lab, &["esxcfg-vmknic", "-l"]));
    assert_eq!(
        vmknic_type(&lab, "2001:db8:2::10").as_deref(),
        Some("STATIC, DUPLICATE"),
        "{}",
        esx_ok(&lab, &["esxcfg-vmknic", "-l"])
    );
    let log = lab.log();
    assert!(
        log.contains("duplicate IPv6 address") && log.contains("2001:db8:2::10/64"),
        "{log}"
    );
    let json = esx_ok(&lab, &["vmknic", "list", "--json"]);
    assert!(json.contains("\"status\": \"DUPLICATE\""), "{json}");
    // The other address works; the duplicate one is never answered by us: k's own.
    assert!(wait_until(Duration::from_secs(5), || ping6(
        k,
        "2001:db8:2::11"
    )));
    let neigh = k.ip(&["-6", "neigh", "show", "2001:db8:2::10"]);
    assert!(!neigh.contains(&VMK0_MAC.to_string()), "{neigh}");
}

/// The default row of `esxcli network ip route ipv6 list`, squeezed.
fn default_route6(lab: &Lab) -> String {
    let out = esx_ok(lab, &["esxcli", "network", "ip", "route", "ipv6", "list"]);
    squeeze(&out)
        .lines()
        .find(|l| l.starts_with("default "))
        .unwrap_or_default()
        .to_string()
}

fn vmkping6(lab: &Lab, dst: &str) -> bool {
    lab.esx(&["vmkping", "-6", "-c", "1", "-W", "1", dst]).0 == 0
}

#[test]
fn default_router_list_moves_to_the_second_router_when_the_first_dies() {
    let Some(()) =
        require_root("default_router_list_moves_to_the_second_router_when_the_first_dies")
    else {
        return;
    };
    let lab = Lab::builder("ipv6-2r")
        .bridge_host("r1", "vmk0", "br2r", "198.18.3.11/24")
        .bridge_host("r2", "vmk0", "br2r", "198.18.3.12/24")
        .behind("r2", "h", "198.18.9.1/24", "198.18.9.10/24")
        .build();
    let (r1, r2, h) = (lab.ns("r1"), lab.ns("r2"), lab.ns("h"));
    for (ns, dev) in [(r1, "eth0"), (r2, "eth0"), (r2, "r-h"), (h, "eth0")] {
        ns.run(
            "sysctl",
            &["-qw", &format!("net.ipv6.conf.{dev}.disable_ipv6=0")],
        );
    }
    for (ns, dev, addr) in [
        (r1, "eth0", "2001:db8:3::11/64"),
        (r2, "eth0", "2001:db8:3::12/64"),
        (r2, "r-h", "2001:db8:9::1/64"),
        (h, "eth0", "2001:db8:9::10/64"),
    ] {
        ns.ip(&["-6", "addr", "replace", addr, "dev", dev, "nodad"]);
    }
    for r in [r1, r2] {
        r.run("sysctl", &["-qw", "net.ipv6.conf.all.forwarding=1"]);
    }
    // The far host is behind r2; r1 reaches it through r2 on the shared link.
    r1.ip(&[
        "-6",
        "route",
        "replace",
        "2001:db8:9::/64",
        "via",
        "2001:db8:3::12",
    ]);
    h.ip(&["-6", "route", "replace", "default", "via", "2001:db8:9::1"]);
    let (ll1, ll2) = (r1.link_local("eth0"), r2.link_local("eth0"));
    lab.write_config(&format!(
        "[[vmknic]]\nname = \"vmk0\"\nportgroup = \"A\"\nip = \"198.18.3.1/24\"\n\
         mac = \"{VMK0_MAC}\"\nipv6_autoconf = true\nbridge = \"br2r\"\n"
    ));
    let _daemon = lab.start();
    // Fast advertisements, a 1 s ReachableTime and 300 ms RetransTimer: NUD gives up on a dead
    // router within about 7 s (DELAY_FIRST_PROBE_TIME is 5 s).
    let conf = "interface eth0 {\n AdvSendAdvert on;\n MinRtrAdvInterval 3;\n \
                MaxRtrAdvInterval 4;\n AdvDefaultLifetime 60;\n AdvReachableTime 1000;\n \
                AdvRetransTimer 300;\n prefix 2001:db8:3::/64 {\n  AdvOnLink on;\n  \
                AdvAutonomous on;\n };\n};\n";
    let _ra1 = radvd_with(&lab, r1, "radvd1", conf);
    let chose_r1 = wait_until(Duration::from_secs(15), || {
        default_route6(&lab).contains(&ll1)
    });
    assert!(chose_r1, "{}\n{}", default_route6(&lab), lab.log());
    let row = default_route6(&lab);
    assert!(row.ends_with(" vmk0 DYNAMIC"), "{row}");
    let reached = wait_until(Duration::from_secs(10), || vmkping6(&lab, "2001:db8:9::10"));
    assert!(reached, "no ping through r1: {}", lab.log());

    // The second router is heard (its entry appears) and kept, but the first stays in use.
    let _ra2 = radvd_with(&lab, r2, "radvd2", conf);
    let heard = wait_until(Duration::from_secs(10), || {
        neighbor_state(&lab, &ll2).is_some()
    });
    assert!(
        heard,
        "{}",
        esx_ok(&lab, &["esxcli", "network", "ip", "neighbor", "list"])
    );
    assert!(
        default_route6(&lab).contains(&ll1),
        "{}",
        default_route6(&lab)
    );

    // r1's link dies: pings fail until NUD gives up on r1, then go through r2.
    r1.ip(&["link", "set", "eth0", "down"]);
    let moved = wait_until(Duration::from_secs(25), || vmkping6(&lab, "2001:db8:9::10"));
    assert!(
        moved,
        "no ping after r1 died: {} {}",
        default_route6(&lab),
        lab.log()
    );
    let row = default_route6(&lab);
    assert!(
        row.contains(&ll2) && row.ends_with(" vmk0 DYNAMIC"),
        "{row}"
    );
    assert!(
        lab.log().contains("IPv6 default router changed"),
        "{}",
        lab.log()
    );
}
