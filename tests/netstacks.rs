//! Root only. Several netstacks in one daemon (ESXi 6.0+: `defaultTcpipStack`, `vmotion`,
//! custom ones) and the per-vmknic default gateway (ESXi 6.5+), with real routers and servers:
//!
//! ```text
//!                  defaultTcpipStack                      vmotion
//! stack --vmk0 198.18.10.100/24-- ra 198.18.10.1 | 198.18.100.1 -- sa 198.18.100.20
//!       --vmk1 198.18.10.100/24-- rb 198.18.10.1 | 198.18.100.1 -- sb 198.18.100.20
//! ```
//!
//! Both netstacks hold the same subnet, the same address and a gateway of the same address;
//! behind each gateway a server of the same address. Which server answers, and the counters of
//! each router's interface toward its server, show which netstack the traffic used.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::time::Duration;

use common::counters::forwarded_ipv4;
use common::lab::Lab;
use common::{require_root, wait_until};

/// The message ESX prints for a gateway on no vmknic subnet.
const GATEWAY_MSG: &str =
    "Unable to set VMkernel gateway as there are not VMkernel interfaces on the same network";

/// Kills the daemon with SIGKILL (stale socket and lock left behind) and waits for it.
fn kill_9(daemon: &mut common::Proc) {
    let pid = daemon.pid().to_string();
    let killed = Command::new("kill").args(["-KILL", &pid]).status();
    assert!(killed.is_ok_and(|s| s.success()), "kill -KILL {pid}");
    let status = daemon.child.wait().expect("wait");
    assert_eq!(status.signal(), Some(9), "daemon exit {status}");
}

/// The two-netstack lab; `tag` names its scratch directory (config, socket, log), so it must
/// differ between tests that run at the same time.
fn two_stack_lab(tag: &str) -> Lab {
    let lab = Lab::builder(tag)
        .tap_host("ra", "vmk0", "198.18.10.1/24")
        .behind("ra", "sa", "198.18.100.1/24", "198.18.100.20/24")
        .tap_host("rb", "vmk1", "198.18.10.1/24")
        .behind("rb", "sb", "198.18.100.1/24", "198.18.100.20/24")
        .quiet()
        .build();
    lab.write_config(&format!(
        r#"default_gateway = "198.18.10.1"

[[netstack_instance]]
name = "vmotion"
default_gateway = "198.18.10.1"

[[vmknic]]
name = "vmk0"
portgroup = "Storage"
ip = "198.18.10.100/24"
netns = "{}"

[[vmknic]]
name = "vmk1"
portgroup = "vMotion"
ip = "198.18.10.100/24"
netstack = "vmotion"
netns = "{}"
"#,
        lab.ns("ra").name,
        lab.ns("rb").name,
    ));
    lab
}

/// (exit code, stdout, stderr) of a command, asserting success.
fn ok(lab: &Lab, args: &[&str]) -> String {
    let (code, out, err) = lab.esx(args);
    assert_eq!(code, 0, "{args:?}: {out}{err}\n{}", lab.log());
    out
}

#[test]
fn two_netstacks_with_overlapping_subnets_use_their_own_gateways() {
    let Some(()) = require_root("two_netstacks_with_overlapping_subnets_use_their_own_gateways")
    else {
        return;
    };
    let lab = two_stack_lab("netstacks");
    // A TCP listener on each server, on different ports: a connection that succeeds says
    // which server it reached.
    let _ia = lab.ns("sa").spawn("iperf3", &["-s", "-p", "5301"]);
    let _ib = lab.ns("sb").spawn("iperf3", &["-s", "-p", "5302"]);
    let mut daemon = lab.start();

    // ESXi's listing: both netstacks.
    let list = ok(&lab, &["esxcli", "network", "ip", "netstack", "list"]);
    assert_eq!(
        list,
        "defaultTcpipStack\n   Key: defaultTcpipStack\n   Name: defaultTcpipStack\n   \
         State: 4660\n\nvmotion\n   Key: vmotion\n   Name: vmotion\n   State: 4660\n"
    );
    let csv = ok(
        &lab,
        &[
            "esxcli",
            "--formatter=csv",
            "network",
            "ip",
            "netstack",
            "list",
        ],
    );
    assert_eq!(
        csv,
        "Key,Name,State,\ndefaultTcpipStack,defaultTcpipStack,4660,\nvmotion,vmotion,4660,\n"
    );
    let get = ok(
        &lab,
        &[
            "esxcli", "network", "ip", "netstack", "get", "-N", "vmotion",
        ],
    );
    assert!(
        get.starts_with("vmotion\n   Key: vmotion\n   Name: vmotion\n"),
        "{get}"
    );

    // Pings from each netstack leave through its own router only.
    let check_path = |netstack: Option<&str>, mine: (&str, &str), other: (&str, &str)| {
        let (m0, o0) = (forwarded_ipv4(&lab, mine.0), forwarded_ipv4(&lab, other.0));
        let mut args = vec!["vmkping", "-c", "5", "-i", "0.05"];
        if let Some(n) = netstack {
            args.extend(["-S", n]);
        }
        args.push("198.18.100.20");
        let out = ok(&lab, &args);
        assert!(out.contains("5 packets received"), "{out}");
        let (m1, o1) = (forwarded_ipv4(&lab, mine.0), forwarded_ipv4(&lab, other.0));
        println!(
            "{netstack:?}: {} via {}, {} via {}",
            m1 - m0,
            mine.0,
            o1 - o0,
            other.0
        );
        assert!(
            m1 - m0 >= 5,
            "{netstack:?}: {} packets via {}",
            m1 - m0,
            mine.0
        );
        assert_eq!(
            o1 - o0,
            0,
            "{netstack:?}: traffic leaked through {}",
            other.0
        );
    };
    check_path(None, ("ra", "r-sa"), ("rb", "r-sb"));
    check_path(Some("vmotion"), ("rb", "r-sb"), ("ra", "r-sa"));
    check_path(Some("defaultTcpipStack"), ("ra", "r-sa"), ("rb", "r-sb"));

    // TCP: each netstack reaches its own server (the other port is closed there).
    let nc = |args: &[&str]| lab.esx(&[&["nc", "-z", "-w", "3"], args].concat()).0;
    assert_eq!(nc(&["198.18.100.20", "5301"]), 0, "default -> sa");
    assert_ne!(
        nc(&["198.18.100.20", "5302"]),
        0,
        "default must not reach sb"
    );
    assert_eq!(
        nc(&["-N", "vmotion", "198.18.100.20", "5302"]),
        0,
        "vmotion -> sb"
    );
    assert_ne!(
        nc(&["-N", "vmotion", "198.18.100.20", "5301"]),
        0,
        "vmotion must not reach sa"
    );
    let probe = lab.esx(&[
        "probe",
        "-N",
        "vmotion",
        "iscsi",
        "198.18.100.20:5302",
        "-w",
        "2",
    ]);
    assert!(
        probe.1.contains("tcp connect 198.18.100.20:5302"),
        "{probe:?}"
    );

    // Each neighbour table holds its own router's MAC for the same address.
    let ra_mac = {
        let out = lab.ns("ra").ip(&["-br", "link", "show", "dev", "vmk0"]);
        out.split_whitespace()
            .nth(2)
            .unwrap_or_default()
            .to_string()
    };
    let rb_mac = {
        let out = lab.ns("rb").ip(&["-br", "link", "show", "dev", "vmk1"]);
        out.split_whitespace()
            .nth(2)
            .unwrap_or_default()
            .to_string()
    };
    assert_ne!(ra_mac, rb_mac);
    let n_default = ok(&lab, &["esxcli", "network", "ip", "neighbor", "list"]);
    let n_vmotion = ok(
        &lab,
        &[
            "esxcli", "network", "ip", "neighbor", "list", "-N", "vmotion",
        ],
    );
    assert!(
        n_default.contains(&ra_mac) && !n_default.contains(&rb_mac),
        "{n_default}"
    );
    assert!(
        n_vmotion.contains(&rb_mac) && !n_vmotion.contains(&ra_mac),
        "{n_vmotion}"
    );

    // A route added to one netstack never appears in the other.
    let out = ok(
        &lab,
        &[
            "esxcfg-route",
            "-N",
            "vmotion",
            "-a",
            "198.18.60.0/24",
            "198.18.10.1",
        ],
    );
    assert!(out.contains("198.18.60.0/24"), "{out}");
    let v = ok(&lab, &["esxcfg-route", "-N", "vmotion", "-l"]);
    let d = ok(&lab, &["esxcfg-route", "-l"]);
    assert!(v.contains("198.18.60.0"), "{v}");
    assert!(!d.contains("198.18.60.0"), "{d}");
    let e = ok(
        &lab,
        &[
            "esxcli", "network", "ip", "route", "ipv4", "list", "-N", "vmotion",
        ],
    );
    assert!(e.contains("198.18.60.0"), "{e}");
    let e = ok(&lab, &["esxcli", "network", "ip", "route", "ipv4", "list"]);
    assert!(!e.contains("198.18.60.0"), "{e}");
    ok(
        &lab,
        &[
            "esxcli",
            "network",
            "ip",
            "route",
            "ipv4",
            "add",
            "-N",
            "vmotion",
            "-n",
            "198.18.61.0/24",
            "-g",
            "198.18.10.1",
        ],
    );
    ok(
        &lab,
        &[
            "esxcli",
            "network",
            "ip",
            "route",
            "ipv4",
            "remove",
            "-N",
            "vmotion",
            "-n",
            "198.18.61.0/24",
            "-g",
            "198.18.10.1",
        ],
    );
    let v = ok(&lab, &["route", "list", "-N", "vmotion"]);
    assert!(
        v.contains("198.18.60.0") && !v.contains("198.18.61.0"),
        "{v}"
    );

    // The gateway rule holds per netstack, with ESX's words; the refusal changes nothing.
    let before = std::fs::read_to_string(lab.config()).expect("config");
    let (code, _, err) = lab.esx(&["esxcfg-route", "-N", "vmotion", "198.18.11.1"]);
    assert_eq!(code, 1);
    assert!(err.contains(GATEWAY_MSG), "{err}");
    assert_eq!(
        std::fs::read_to_string(lab.config()).expect("config"),
        before
    );
    let gw = ok(&lab, &["esxcfg-route", "-N", "vmotion"]);
    assert!(gw.contains("198.18.10.1"), "{gw}");

    // Wrong forms: usage errors that name the problem.
    let (code, _, err) = lab.esx(&["esxcfg-route", "-l", "-N"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("a value is required for '--netstack <NETSTACK>'"),
        "{err}"
    );
    let (code, _, err) = lab.esx(&["esxcfg-vmknic", "-d", "-N", "vmotion", "vMotion"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("-N/--netstack"), "{err}");
    let (code, _, err) = lab.esx(&["esxcli", "network", "ip", "netstack", "add"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--netstack"), "{err}");
    let (code, _, err) = lab.esx(&["vmkping", "-c", "1", "-S", "nosuch", "198.18.100.20"]);
    assert_eq!(code, 1);
    assert!(err.contains("no netstack named `nosuch`"), "{err}");
    let (code, _, err) = lab.esx(&["esxcli", "network", "ip", "netstack", "add", "-N", "a/b"]);
    assert_eq!(code, 1);
    assert!(err.contains("a netstack name is"), "{err}");

    // The native listing: each netstack's gateway, vmknics and route count.
    let native = ok(&lab, &["netstack", "list"]);
    let row = native
        .lines()
        .find(|l| l.starts_with("vmotion"))
        .unwrap_or_default();
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        cols,
        ["vmotion", "198.18.10.1", "false", "vmk1", "1"],
        "{native}"
    );

    // Refused changes leave the state unchanged.
    let before = std::fs::read_to_string(lab.config()).expect("config");
    let (code, _, err) = lab.esx(&[
        "esxcli", "network", "ip", "netstack", "remove", "-N", "vmotion",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("in use by vmk1"), "{err}");
    let (code, _, err) = lab.esx(&[
        "esxcli", "network", "ip", "netstack", "add", "-N", "vmotion",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("already exists"), "{err}");
    let (code, _, err) = lab.esx(&[
        "esxcli",
        "network",
        "ip",
        "netstack",
        "remove",
        "-N",
        "defaultTcpipStack",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot be removed"), "{err}");
    assert_eq!(
        std::fs::read_to_string(lab.config()).expect("config"),
        before
    );
    assert!(ok(&lab, &["esxcli", "network", "ip", "netstack", "list"]).contains("vmotion"));

    // Adding and removing a netstack does not disturb traffic on the others: a ping from
    // each router to its vmknic runs throughout.
    let ping = |role: &str| {
        let mut c = lab
            .ns(role)
            .command("ping", &["-c", "40", "-i", "0.05", "-q", "198.18.10.100"]);
        c.stdout(std::process::Stdio::piped());
        c.spawn().expect("ping")
    };
    let (pa, pb) = (ping("ra"), ping("rb"));
    std::thread::sleep(Duration::from_millis(300));
    ok(
        &lab,
        &[
            "esxcli",
            "network",
            "ip",
            "netstack",
            "add",
            "-N",
            "provisioning",
        ],
    );
    ok(
        &lab,
        &[
            "esxcli", "network", "ip", "netstack", "add", "-N", "scratch",
        ],
    );
    ok(
        &lab,
        &[
            "esxcli", "network", "ip", "netstack", "remove", "-N", "scratch",
        ],
    );
    for p in [pa, pb] {
        let out = p.wait_with_output().expect("ping");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(" 0% packet loss"), "{text}");
    }
    // A vmknic joins the new netstack (esxcfg-vmknic -a -N) and lists under it.
    ok(
        &lab,
        &[
            "esxcfg-vmknic",
            "-a",
            "-i",
            "198.18.10.100",
            "-n",
            "255.255.255.0",
            "-N",
            "provisioning",
            "Provisioning",
        ],
    );
    let l = ok(&lab, &["esxcfg-vmknic", "-l", "-N", "provisioning"]);
    assert!(l.contains("Provisioning") && !l.contains("vMotion"), "{l}");
    let l = ok(&lab, &["vmknic", "list", "--json"]);
    assert!(l.contains("\"netstack\": \"provisioning\""), "{l}");

    // Everything survives kill -9 and a restart.
    kill_9(&mut daemon);
    let daemon = lab.start();
    let list = ok(&lab, &["esxcli", "network", "ip", "netstack", "list"]);
    for n in ["defaultTcpipStack", "vmotion", "provisioning"] {
        assert!(list.contains(&format!("   Name: {n}\n")), "{list}");
    }
    assert!(!list.contains("scratch"), "{list}");
    let v = ok(&lab, &["esxcfg-route", "-N", "vmotion", "-l"]);
    assert!(v.contains("198.18.60.0"), "{v}");
    assert!(!ok(&lab, &["esxcfg-route", "-l"]).contains("198.18.60.0"));
    assert!(wait_until(Duration::from_secs(5), || {
        lab.esx(&["vmkping", "-c", "1", "-S", "vmotion", "198.18.100.20"])
            .0
            == 0
    }));
    check_path(Some("vmotion"), ("rb", "r-sb"), ("ra", "r-sa"));
    check_path(None, ("ra", "r-sa"), ("rb", "r-sb"));
    // stats --runtime covers every netstack's engine: each handled its own frames.
    let o = lab.cli(&["stats", "--runtime", "--json"]);
    assert!(o.status.success(), "{}", common::describe(&o));
    let stages: serde_json::Value = serde_json::from_slice(&o.stdout).expect("runtime JSON");
    for n in ["defaultTcpipStack", "vmotion", "provisioning"] {
        let handle = stages
            .as_array()
            .and_then(|a| {
                a.iter()
                    .find(|s| s["stage"] == "handle" && s["netstack"] == n)
            })
            .unwrap_or_else(|| panic!("no handle stage of {n}: {stages}"));
        let packets = handle["packets"].as_u64().unwrap_or(0);
        // provisioning's vmknic has no peer: present, whatever it saw.
        assert!(packets > 0 || n == "provisioning", "{n}: {stages}");
    }
    let text = ok(&lab, &["stats", "--runtime"]);
    assert!(
        text.starts_with("Netstack defaultTcpipStack:\n") && text.contains("\nNetstack vmotion:\n"),
        "{text}"
    );
    drop(daemon);
}

/// Two vmknics of one netstack with different gateways to the same remote subnet (ESXi 6.5+
/// "override default gateway"):
///
/// ```text
/// stack --vmk0 198.18.1.100/24-- ra 198.18.1.1 | 198.18.100.1 -- sa 198.18.100.20
///       --vmk1 198.18.2.100/24-- rb 198.18.2.1 | 198.18.100.1 -- sb 198.18.100.20
/// ```
///
/// The netstack's default gateway is ra. Traffic from vmk1's address (connections it opens,
/// replies to sb's pings) must leave through vmk1's own gateway rb: through ra it would reach
/// sa, which shares sb's address and answers for nothing it did not send.
#[test]
fn per_vmknic_gateway_sends_each_vmknics_traffic_through_its_own_router() {
    let Some(()) =
        require_root("per_vmknic_gateway_sends_each_vmknics_traffic_through_its_own_router")
    else {
        return;
    };
    let lab = Lab::builder("vmkgw")
        .tap_host("ra", "vmk0", "198.18.1.1/24")
        .behind("ra", "sa", "198.18.100.1/24", "198.18.100.20/24")
        .tap_host("rb", "vmk1", "198.18.2.1/24")
        .behind("rb", "sb", "198.18.100.1/24", "198.18.100.20/24")
        .quiet()
        .build();
    lab.write_config(&format!(
        r#"default_gateway = "198.18.1.1"

[[vmknic]]
name = "vmk0"
portgroup = "iSCSI-A"
ip = "198.18.1.100/24"
netns = "{}"

[[vmknic]]
name = "vmk1"
portgroup = "iSCSI-B"
ip = "198.18.2.100/24"
netns = "{}"
"#,
        lab.ns("ra").name,
        lab.ns("rb").name,
    ));
    let _ia = lab.ns("sa").spawn("iperf3", &["-s", "-p", "5301"]);
    let _ib = lab.ns("sb").spawn("iperf3", &["-s", "-p", "5302"]);
    let mut daemon = lab.start();
    let sb_ping = || {
        lab.ns("sb")
            .exec("ping", &["-c", "2", "-i", "0.1", "-W", "1", "198.18.2.100"])
            .status
            .success()
    };
    let nc_from = |src: &str, port: &str| {
        lab.esx(&["nc", "-z", "-w", "2", "-s", src, "198.18.100.20", port])
            .0
    };

    // Without vmk1's own gateway, its replies follow the default gateway ra and are lost.
    assert!(
        !sb_ping(),
        "replies from vmk1 must not come back without its gateway"
    );
    let out = ok(
        &lab,
        &["route", "get", "198.18.100.20", "--source", "198.18.2.100"],
    );
    assert!(out.contains("via 198.18.1.1 dev vmk0"), "{out}");

    // Wrong form, refused change: a gateway off vmk1's subnet, with ESX's words; nothing saved.
    let (code, _, err) = lab.esx(&["vmknic", "set", "vmk1", "--gateway", "nonsense"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("nonsense"), "{err}");
    let before = std::fs::read_to_string(lab.config()).expect("config");
    let (code, _, err) = lab.esx(&["vmknic", "set", "vmk1", "--gateway", "198.18.1.1"]);
    assert_eq!(code, 1);
    assert!(err.contains(GATEWAY_MSG), "{err}");
    assert_eq!(
        std::fs::read_to_string(lab.config()).expect("config"),
        before
    );

    // Set live: vmk1's traffic now leaves through rb.
    ok(&lab, &["vmknic", "set", "vmk1", "--gateway", "198.18.2.1"]);
    let out = ok(
        &lab,
        &["route", "get", "198.18.100.20", "--source", "198.18.2.100"],
    );
    assert!(out.contains("via 198.18.2.1 dev vmk1"), "{out}");
    assert!(
        out.contains("vmk1's own default gateway 198.18.2.1 wins"),
        "{out}"
    );
    // Without a source, the netstack's default gateway: ra.
    let out = ok(&lab, &["route", "get", "198.18.100.20"]);
    assert!(out.contains("via 198.18.1.1 dev vmk0"), "{out}");
    // A more specific route still wins over vmk1's gateway, and says so.
    ok(&lab, &["route", "add", "198.18.100.0/25", "198.18.1.1"]);
    let out = ok(
        &lab,
        &["route", "get", "198.18.100.20", "--source", "198.18.2.100"],
    );
    assert!(
        out.contains("via 198.18.1.1 dev vmk0") && out.contains("more specific"),
        "{out}"
    );
    ok(&lab, &["route", "remove", "198.18.100.0/25"]);

    let check = |lab: &Lab| {
        let (a0, b0) = (forwarded_ipv4(lab, "ra"), forwarded_ipv4(lab, "rb"));
        assert!(
            wait_until(Duration::from_secs(5), sb_ping),
            "sb's pings to vmk1 get replies through rb"
        );
        // Connections from each vmknic reach the server behind its own gateway.
        assert_eq!(nc_from("198.18.2.100", "5302"), 0, "vmk1 -> rb -> sb");
        assert_ne!(nc_from("198.18.2.100", "5301"), 0, "vmk1 must not reach sa");
        assert_eq!(nc_from("198.18.1.100", "5301"), 0, "vmk0 -> ra -> sa");
        assert_ne!(nc_from("198.18.1.100", "5302"), 0, "vmk0 must not reach sb");
        // vmkping -I vmk1 uses vmk1's gateway too.
        let out = ok(
            lab,
            &[
                "vmkping",
                "-c",
                "3",
                "-i",
                "0.05",
                "-I",
                "vmk1",
                "198.18.100.20",
            ],
        );
        assert!(out.contains("3 packets received"), "{out}");
        let (a1, b1) = (forwarded_ipv4(lab, "ra"), forwarded_ipv4(lab, "rb"));
        println!("through ra: {}, through rb: {}", a1 - a0, b1 - b0);
        assert!(b1 - b0 >= 5, "rb forwarded {}", b1 - b0);
        assert!(a1 - a0 >= 1, "ra forwarded {}", a1 - a0);
    };
    check(&lab);

    // The gateway is saved, and survives kill -9 and a restart.
    let saved = std::fs::read_to_string(lab.config()).expect("config");
    assert!(saved.contains("gateway = \"198.18.2.1\""), "{saved}");
    kill_9(&mut daemon);
    let daemon = lab.start();
    let list = ok(&lab, &["vmknic", "list", "--json"]);
    assert!(list.contains("\"gateway\": \"198.18.2.1\""), "{list}");
    check(&lab);

    // Cleared: the netstack's default gateway applies again.
    ok(&lab, &["vmknic", "set", "vmk1", "--no-gateway"]);
    assert!(
        !sb_ping(),
        "cleared: replies follow the default gateway again"
    );
    drop(daemon);
}

/// A server that greets each connection with its name, then echoes what it reads.
fn greeter(name: &str) -> String {
    format!(
        r#"
import socket, threading
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("198.18.100.20", 7000))
s.listen(16)
def serve(c):
    c.sendall(b"{name}\n")
    while True:
        d = c.recv(65536)
        if not d:
            break
        c.sendall(d)
    c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#
    )
}

/// What a connection to `listen` (in the daemon's namespace) reads back after sending a
/// line: the server's greeting and the echo, or the client's error.
fn through(lab: &Lab, listen: &str) -> String {
    let (host, port) = listen.split_once(':').expect("host:port");
    let script = format!(
        r#"
import socket, sys
try:
    c = socket.create_connection(("{host}", {port}), timeout=5)
    c.sendall(b"ping-{port}\n")
    c.shutdown(socket.SHUT_WR)
    got = b""
    while True:
        d = c.recv(65536)
        if not d:
            break
        got += d
    sys.stdout.write(got.decode())
except Exception as e:
    sys.stdout.write("error: %s" % e)
"#
    );
    lab.stack.run("python3", &["-c", &script])
}

/// Waits until `listen` answers with `want` (the forward listens and its netstack's route
/// and neighbour are there), and returns the last answer.
fn answers(lab: &Lab, listen: &str, want: &str) -> String {
    let mut last = String::new();
    wait_until(Duration::from_secs(10), || {
        last = through(lab, listen);
        last == want
    });
    last
}

/// Port forwards on two netstacks of overlapping subnets: each forward's connections leave
/// from its own netstack's vmknic, through its own router, to its own server (the two servers
/// share an address and port; their greeting tells them apart). `-N` on `forward`, the
/// `netstack` key of `[[forward]]`, the Netstack column, the refusals, `reload`, `kill -9`.
#[test]
fn forwards_on_each_netstack_reach_their_own_server() {
    let Some(()) = require_root("forwards_on_each_netstack_reach_their_own_server") else {
        return;
    };
    let lab = two_stack_lab("ns-forwards");
    // One forward in the file, on `vmotion`.
    let text = std::fs::read_to_string(lab.config()).expect("config");
    lab.write_config(&format!(
        "{text}\n[[forward]]\nlisten = \"127.0.0.1:17002\"\nremote = \"198.18.100.20:7000\"\n\
         netstack = \"vmotion\"\n"
    ));
    let _sa = lab.ns("sa").spawn("python3", &["-c", &greeter("sa")]);
    let _sb = lab.ns("sb").spawn("python3", &["-c", &greeter("sb")]);
    let mut daemon = lab.start();
    let (from_a, from_b) = ("sa\nping-17001\n", "sb\nping-17002\n");
    // One on the default netstack, added live without -N.
    ok(&lab, &["forward", "127.0.0.1:17001", "198.18.100.20:7000"]);
    assert_eq!(
        answers(&lab, "127.0.0.1:17002", from_b),
        from_b,
        "{}",
        lab.log()
    );
    assert_eq!(
        answers(&lab, "127.0.0.1:17001", from_a),
        from_a,
        "{}",
        lab.log()
    );
    // Each through its own router: vmotion's connection crossed rb toward sb, not ra.
    let (a0, b0) = (forwarded_ipv4(&lab, "ra"), forwarded_ipv4(&lab, "rb"));
    assert_eq!(through(&lab, "127.0.0.1:17002"), from_b);
    let (a1, b1) = (forwarded_ipv4(&lab, "ra"), forwarded_ipv4(&lab, "rb"));
    assert!(b1 - b0 >= 3 && a1 == a0, "ra {a0}->{a1}, rb {b0}->{b1}");

    // `netstack get` counts a netstack's forwards in its Max Connections (64 each by
    // default, beside 64 `nc -z` probes and 16 storage probes).
    let get = ok(
        &lab,
        &[
            "esxcli", "network", "ip", "netstack", "get", "-N", "vmotion",
        ],
    );
    assert!(
        get.contains(
            "   Max Connections: 144\n   Current Max Connections: 144\n   \
                      Congestion Control Algorithm: cubic\n"
        ),
        "{get}"
    );
    // The listing names each forward's netstack; -N shows one netstack's.
    let list = common::squeeze(&ok(&lab, &["forward", "list"]));
    assert!(
        list.contains("Listen Remote Vmknic Netstack Active"),
        "{list}"
    );
    assert!(
        list.contains("127.0.0.1:17001 198.18.100.20:7000 auto defaultTcpipStack"),
        "{list}"
    );
    assert!(
        list.contains("127.0.0.1:17002 198.18.100.20:7000 auto vmotion"),
        "{list}"
    );
    let only: serde_json::Value =
        serde_json::from_str(&ok(&lab, &["forward", "list", "-N", "vmotion", "--json"]))
            .expect("JSON");
    let listed: Vec<_> = only
        .as_array()
        .expect("array")
        .iter()
        .map(|f| (f["listen"].clone(), f["netstack"].clone()))
        .collect();
    assert_eq!(
        listed,
        [(
            serde_json::json!("127.0.0.1:17002"),
            serde_json::json!("vmotion")
        )]
    );

    // Refused with the reason, nothing changed: an unknown netstack, a vmknic of another
    // netstack, a remove that names the wrong netstack, a netstack still carrying forwards.
    let before = std::fs::read_to_string(lab.config()).expect("config");
    let refusals: [(&[&str], &str); 3] = [
        (
            &[
                "forward",
                "-N",
                "nosuch",
                "127.0.0.1:17009",
                "198.18.100.20:7000",
            ],
            "no netstack named `nosuch`",
        ),
        (
            &[
                "forward",
                "-N",
                "vmotion",
                "-I",
                "vmk0",
                "127.0.0.1:17009",
                "198.18.100.20:7000",
            ],
            "this vmknic is in netstack `defaultTcpipStack`, the forward in `vmotion`",
        ),
        (
            &["forward", "remove", "-N", "vmotion", "127.0.0.1:17001"],
            "no forward on 127.0.0.1:17001 in netstack `vmotion` (it is netstack \
             `defaultTcpipStack`'s)",
        ),
    ];
    for (args, want) in refusals {
        let (code, out, err) = lab.esx(args);
        assert_ne!(code, 0, "{args:?}: {out}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    ok(
        &lab,
        &["esxcli", "network", "ip", "netstack", "add", "-N", "spare"],
    );
    ok(
        &lab,
        &[
            "forward",
            "-N",
            "spare",
            "127.0.0.1:17003",
            "198.18.100.20:7000",
        ],
    );
    let (code, _, err) = lab.esx(&[
        "esxcli", "network", "ip", "netstack", "remove", "-N", "spare",
    ]);
    assert_ne!(code, 0);
    assert!(
        err.contains("netstack `spare` is in use by the forward(s) on 127.0.0.1:17003"),
        "{err}"
    );
    assert!(ok(&lab, &["esxcli", "network", "ip", "netstack", "list"]).contains("Name: spare"));
    ok(
        &lab,
        &["forward", "remove", "-N", "spare", "127.0.0.1:17003"],
    );
    ok(
        &lab,
        &[
            "esxcli", "network", "ip", "netstack", "remove", "-N", "spare",
        ],
    );
    assert_eq!(
        std::fs::read_to_string(lab.config()).expect("config"),
        before
    );

    // kill -9 and a restart: both forwards come back on their own netstacks.
    kill_9(&mut daemon);
    let daemon = lab.start();
    assert_eq!(
        answers(&lab, "127.0.0.1:17001", from_a),
        from_a,
        "{}",
        lab.log()
    );
    assert_eq!(
        answers(&lab, "127.0.0.1:17002", from_b),
        from_b,
        "{}",
        lab.log()
    );

    // A hand edit, reloaded: vmotion's forward moves to another port and the default one
    // moves to vmotion; only the difference is applied.
    let text = std::fs::read_to_string(lab.config()).expect("config");
    let edited = text.replace("127.0.0.1:17002", "127.0.0.1:17004").replace(
        "listen = \"127.0.0.1:17001\"\nremote = \"198.18.100.20:7000\"\n",
        "listen = \"127.0.0.1:17001\"\nremote = \"198.18.100.20:7000\"\nnetstack = \"vmotion\"\n",
    );
    assert_ne!(
        edited.matches("netstack = \"vmotion\"").count(),
        text.matches("netstack = \"vmotion\"").count(),
        "{text}"
    );
    lab.write_config(&edited);
    let out = ok(&lab, &["reload"]);
    assert!(
        out.contains("forward 127.0.0.1:17004 -> 198.18.100.20:7000 added"),
        "{out}"
    );
    assert_eq!(
        answers(&lab, "127.0.0.1:17004", "sb\nping-17004\n"),
        "sb\nping-17004\n"
    );
    assert_eq!(
        answers(&lab, "127.0.0.1:17001", "sb\nping-17001\n"),
        "sb\nping-17001\n"
    );
    assert!(through(&lab, "127.0.0.1:17002").starts_with("error:"));
    // A file whose forward names a netstack it does not configure is refused whole.
    lab.write_config(&edited.replace("netstack = \"vmotion\"\n", "netstack = \"gone\"\n"));
    let (code, _, err) = lab.esx(&["reload"]);
    assert_ne!(code, 0);
    assert!(
        err.contains(".netstack = \"gone\": no such netstack"),
        "{err}"
    );
    assert_eq!(through(&lab, "127.0.0.1:17004"), "sb\nping-17004\n");
    lab.write_config(&edited);
    drop(daemon);
}

/// `pktcap-uw --vmk` on a vmknic of any netstack: the vmknic's name says which netstack's
/// engine taps. The two vmknics share their address and gateway; pings of different sizes
/// from each netstack tell their frames apart in `tcpdump -r` of each capture.
#[test]
fn pktcap_uw_captures_the_vmknics_of_every_netstack() {
    let Some(()) = require_root("pktcap_uw_captures_the_vmknics_of_every_netstack") else {
        return;
    };
    let lab = two_stack_lab("ns-pktcap");
    let _daemon = lab.start();
    for netstack in ["defaultTcpipStack", "vmotion"] {
        assert!(
            wait_until(Duration::from_secs(5), || lab
                .esx(&["vmkping", "-c", "1", "-S", netstack, "198.18.100.20"])
                .0
                == 0),
            "{netstack}: {}",
            lab.log()
        );
    }
    let dir = common::Scratch::new("pktcap-netstacks");
    let start = |vmk: &str| {
        let file = dir.file(&format!("{vmk}.pcapng"));
        let mut c = Command::new(env!("CARGO_BIN_EXE_vmkstack"));
        c.arg("--control")
            .arg(lab.socket())
            .args(["pktcap-uw", "--vmk", vmk, "--dir", "2", "-o"])
            .arg(&file)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        let p = common::Proc::spawn(c);
        assert!(
            wait_until(Duration::from_secs(5), || std::fs::metadata(&file)
                .is_ok_and(|m| m.len() >= 60)),
            "capture on {vmk} did not start"
        );
        (p, file)
    };
    let (p0, f0) = start("vmk0");
    let (p1, f1) = start("vmk1");
    ok(&lab, &["vmkping", "-c", "3", "-s", "100", "198.18.100.20"]);
    ok(
        &lab,
        &[
            "vmkping",
            "-c",
            "3",
            "-s",
            "200",
            "-S",
            "vmotion",
            "198.18.100.20",
        ],
    );
    for p in [p0, p1] {
        assert!(p.stop().success());
    }
    let read = |file: &std::path::Path| -> String {
        let o = Command::new("tcpdump")
            .args(["-nr", file.to_str().unwrap_or_default(), "icmp"])
            .output()
            .expect("tcpdump");
        assert!(o.status.success(), "{}", common::describe(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let count = |text: &str, what: &str| text.lines().filter(|l| l.contains(what)).count();
    let (t0, t1) = (read(&f0), read(&f1));
    // Each capture holds its own netstack's echoes, both ways, and none of the other's.
    for (text, mine, other) in [
        (&t0, "length 108", "length 208"),
        (&t1, "length 208", "length 108"),
    ] {
        let requests = text
            .lines()
            .filter(|l| l.contains("198.18.10.100 > 198.18.100.20: ICMP echo request"))
            .filter(|l| l.contains(mine))
            .count();
        let replies = text
            .lines()
            .filter(|l| l.contains("198.18.100.20 > 198.18.10.100: ICMP echo reply"))
            .filter(|l| l.contains(mine))
            .count();
        assert!(requests >= 3 && replies >= 3, "{text}");
        assert_eq!(count(text, other), 0, "{text}");
    }
}
