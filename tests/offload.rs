//! Root only. Checksum and TCP segmentation offloads on real TAPs (skipped with
//! `SKIPPED (needs root)` outside CI, a failure in CI when not root).
//!
//! ```text
//! client ns (vmk0's kernel side 198.18.10.2) -- vmkstack daemon -- server ns (vmk1 198.18.11.2)
//! ```
//!
//! Bulk TCP crosses the stack with offloads on and off, both ways, and every byte arrives
//! (SHA-256 on both ends); the counters show how: super-frames forwarded whole, or cut by the
//! daemon. Super-frames whose segments exceed the egress MTU get Fragmentation Needed with DF
//! and are segmented and fragmented without it; super-frames for the stack's own addresses
//! reach smoltcp whole (one packet each, not cut into segments).

mod common;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use common::lab::Lab;
use common::{require_root, wait_until, Netns};

/// Moves `MB` MiB over one TCP connection and prints `bytes sha256`. Roles: `listen-recv`,
/// `connect-send`, `listen-send`, `connect-recv`.
const BULK: &str = r#"
import hashlib, random, socket, sys
role, addr, port, mb = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
if role.startswith("listen"):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(1)
    print("listening", flush=True)
    c, _ = s.accept()
else:
    c = socket.create_connection((addr, port), timeout=30)
c.settimeout(60)
h, n = hashlib.sha256(), 0
if role.endswith("send"):
    block = bytearray(random.Random(7).randbytes(1 << 20))
    for i in range(mb):
        block[0] = i % 256
        c.sendall(block)
        h.update(block)
        n += len(block)
    c.shutdown(socket.SHUT_WR)
    c.recv(1)
else:
    while True:
        d = c.recv(1 << 20)
        if not d:
            break
        h.update(d)
        n += len(d)
c.close()
print(n, h.hexdigest(), flush=True)
"#;

/// Two vmknics with forwarding on, vmk0's kernel side in the client namespace and vmk1's
/// in the server's; `extra` goes at the top of the configuration.
fn offload_lab(tag: &str, extra: &str, mtu0: u16, mtu1: u16) -> Lab {
    let lab = Lab::builder(tag)
        .tap_host("client", "vmk0", "198.18.10.2/24")
        .route("client", "default", "198.18.10.1")
        .tap_host("server", "vmk1", "198.18.11.2/24")
        .route("server", "default", "198.18.11.1")
        .build();
    lab.write_config(&format!(
        "forwarding = true\n{extra}\n\
         [[vmknic]]\nname = \"vmk0\"\nportgroup = \"A\"\nip = \"198.18.10.1/24\"\n\
         mtu = {mtu0}\nnetns = \"{}\"\n\
         [[vmknic]]\nname = \"vmk1\"\nportgroup = \"B\"\nip = \"198.18.11.1/24\"\n\
         mtu = {mtu1}\nnetns = \"{}\"\n",
        lab.ns("client").name,
        lab.ns("server").name
    ));
    lab
}

/// Counters by vmknic, from `stats --json`.
fn stats(lab: &Lab) -> BTreeMap<String, serde_json::Value> {
    let o = lab.cli(&["stats", "--json"]);
    assert!(o.status.success(), "stats: {}", common::describe(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("stats JSON");
    v.as_array()
        .expect("an array")
        .iter()
        .map(|s| {
            (
                s["vmknic"].as_str().unwrap_or("").to_string(),
                s["counters"].clone(),
            )
        })
        .collect()
}

/// One counter of one vmknic.
fn counter(stats: &BTreeMap<String, serde_json::Value>, vmk: &str, name: &str) -> u64 {
    stats[vmk][name].as_u64().unwrap_or(0)
}

/// One drop counter of one vmknic.
fn drops(stats: &BTreeMap<String, serde_json::Value>, vmk: &str, reason: &str) -> u64 {
    stats[vmk]["drops"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|d| d[0] == reason)
        .and_then(|d| d[1].as_u64())
        .unwrap_or(0)
}

/// Moves `mb` MiB from a sender to a receiver over TCP; the listener runs in `listen_ns` on
/// `addr`. Panics unless both ends saw the same bytes; returns the byte count.
fn bulk(
    listen_ns: &Netns,
    connect_ns: &Netns,
    addr: &str,
    port: u16,
    mb: u32,
    listener_sends: bool,
) -> u64 {
    let (lrole, crole) = if listener_sends {
        ("listen-send", "connect-recv")
    } else {
        ("listen-recv", "connect-send")
    };
    let (port, mb) = (port.to_string(), mb.to_string());
    let mut l = listen_ns.command("python3", &["-c", BULK, lrole, addr, &port, &mb]);
    l.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let listener = l.spawn().expect("listener");
    assert!(wait_until(Duration::from_secs(5), || {
        listen_ns
            .run("ss", &["-ltn"])
            .contains(&format!("{addr}:{port}"))
    }));
    let c = connect_ns.exec("python3", &["-c", BULK, crole, addr, &port, &mb]);
    let l = listener.wait_with_output().expect("listener output");
    let (ct, lt) = (common::describe(&c), common::describe(&l));
    assert!(
        c.status.success() && l.status.success(),
        "connector: {ct}\nlistener: {lt}"
    );
    let last = |o: &std::process::Output| {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .last()
            .unwrap_or("")
            .to_string()
    };
    let (cl, ll) = (last(&c), last(&l));
    let expected = u64::from(mb.parse::<u32>().unwrap_or(0)) << 20;
    assert_eq!(cl, ll, "both ends must see the same bytes");
    assert!(cl.starts_with(&format!("{expected} ")), "{cl}");
    expected
}

#[test]
fn bulk_tcp_crosses_whole_with_offloads_and_as_frames_without() {
    let Some(()) = require_root("bulk_tcp_crosses_whole_with_offloads_and_as_frames_without")
    else {
        return;
    };
    for offloads in [true, false] {
        let lab = offload_lab("gso", &format!("offloads = {offloads}"), 1500, 1500);
        let _daemon = lab.start();
        // Client to server, then server to client: each way, the sender's kernel makes
        // super-frames when the TAP offers TSO.
        bulk(
            lab.ns("server"),
            lab.ns("client"),
            "198.18.11.2",
            5001,
            64,
            false,
        );
        bulk(
            lab.ns("client"),
            lab.ns("server"),
            "198.18.10.2",
            5002,
            64,
            false,
        );
        let s = stats(&lab);
        let (whole0, whole1) = (
            counter(&s, "vmk0", "gso_forwarded"),
            counter(&s, "vmk1", "gso_forwarded"),
        );
        eprintln!("offloads {offloads}: super-frames forwarded whole: vmk0 {whole0}, vmk1 {whole1}; {s:?}");
        if offloads {
            assert!(whole1 > 100 && whole0 > 100, "{s:?}\n{}", lab.log());
            // Far fewer frames than 1448-byte segments would take for 64 MiB.
            assert!(counter(&s, "vmk1", "tx_packets") < 40_000, "{s:?}");
        } else {
            assert_eq!((whole0, whole1), (0, 0), "{s:?}");
            assert!(counter(&s, "vmk1", "tx_packets") > 40_000, "{s:?}");
        }
        for vmk in ["vmk0", "vmk1"] {
            assert_eq!(drops(&s, vmk, "bad_offload"), 0, "{s:?}");
            assert_eq!(counter(&s, vmk, "gso_segmented"), 0, "{s:?}");
        }
    }
}

#[test]
fn super_frames_too_big_for_the_egress_mtu() {
    let Some(()) = require_root("super_frames_too_big_for_the_egress_mtu") else {
        return;
    };
    // vmk1 is configured with MTU 1500 but the server's side of its wire claims 9000, so the
    // server announces an MSS of 8960 and the client's super-frames carry 8948-byte segments.
    let lab = offload_lab("mtu", "", 9000, 1500);
    let _daemon = lab.start();
    lab.ns("server").ip(&["link", "set", "vmk1", "mtu", "9000"]);

    // Without DF (path MTU discovery off in the client), the daemon cuts them into segments
    // and fragments each to 1500; the server reassembles.
    lab.ns("client")
        .run("sysctl", &["-qw", "net.ipv4.ip_no_pmtu_disc=1"]);
    bulk(
        lab.ns("server"),
        lab.ns("client"),
        "198.18.11.2",
        5003,
        8,
        false,
    );
    let s = stats(&lab);
    assert!(
        counter(&s, "vmk1", "gso_segmented") > 0,
        "{s:?}\n{}",
        lab.log()
    );
    assert_eq!(drops(&s, "vmk0", "too_big"), 0, "{s:?}");

    // With DF: Fragmentation Needed (MTU 1500) for the super-frames; the client lowers its
    // path MTU and the transfer completes.
    lab.ns("client")
        .run("sysctl", &["-qw", "net.ipv4.ip_no_pmtu_disc=0"]);
    bulk(
        lab.ns("server"),
        lab.ns("client"),
        "198.18.11.2",
        5004,
        8,
        false,
    );
    let after = stats(&lab);
    assert!(drops(&after, "vmk0", "too_big") > 0, "{after:?}");
    assert!(counter(&after, "vmk0", "icmp_errors") > 0, "{after:?}");
    let route = lab.ns("client").run("ip", &["route", "get", "198.18.11.2"]);
    assert!(
        route.contains("mtu 1500"),
        "the client learned the path MTU: {route}"
    );
    for vmk in ["vmk0", "vmk1"] {
        assert_eq!(drops(&after, vmk, "bad_offload"), 0, "{after:?}");
    }
}

#[test]
fn super_frames_for_the_stack_reach_smoltcp_whole() {
    let Some(()) = require_root("super_frames_for_the_stack_reach_smoltcp_whole") else {
        return;
    };
    for offloads in [true, false] {
        // A port forward in the daemon's namespace to a server on vmk1's wire: the server's
        // replies (a download) arrive as super-frames for the stack's own address.
        let extra = format!(
            "offloads = {offloads}\n[[forward]]\nlisten = \"127.0.0.1:15005\"\n\
             remote = \"198.18.11.2:5005\"\n"
        );
        let lab = offload_lab("local", &extra, 1500, 1500);
        let _daemon = lab.start();
        assert!(wait_until(Duration::from_secs(5), || {
            lab.stack.run("ss", &["-ltn"]).contains("127.0.0.1:15005")
        }));
        // Download: the server sends, through smoltcp, to a client in the daemon's namespace.
        let mut l = lab.ns("server").command(
            "python3",
            &["-c", BULK, "listen-send", "198.18.11.2", "5005", "16"],
        );
        l.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let listener = l.spawn().expect("listener");
        assert!(wait_until(Duration::from_secs(5), || {
            lab.ns("server")
                .run("ss", &["-ltn"])
                .contains("198.18.11.2:5005")
        }));
        let c = lab.stack.exec(
            "python3",
            &["-c", BULK, "connect-recv", "127.0.0.1", "15005", "16"],
        );
        let l = listener.wait_with_output().expect("listener output");
        assert!(
            c.status.success(),
            "{}\n{}",
            common::describe(&c),
            lab.log()
        );
        assert!(
            l.status.success(),
            "{}\n{}",
            common::describe(&l),
            lab.log()
        );
        let (cs, ls) = (
            String::from_utf8_lossy(&c.stdout),
            String::from_utf8_lossy(&l.stdout),
        );
        assert_eq!(
            cs.lines().last(),
            ls.lines().last(),
            "same bytes through smoltcp"
        );
        assert!(cs.starts_with(&format!("{} ", 16u64 << 20)), "{cs}");
        let s = stats(&lab);
        let cut = counter(&s, "vmk1", "gso_segmented");
        let delivered = counter(&s, "vmk1", "delivered");
        eprintln!("offloads {offloads}: packets into smoltcp: {delivered}; {s:?}");
        assert_eq!(cut, 0, "nothing is cut for smoltcp: {s:?}");
        // 16 MiB in segments of at most 1460 bytes are at least 11,491 packets; whole
        // super-frames are far fewer. Without offloads every segment is a packet of its own.
        let segments = (16u64 << 20) / 1460;
        if offloads {
            assert!(delivered < segments / 4, "{s:?}");
        } else {
            assert!(delivered >= segments, "{s:?}");
        }
        assert_eq!(drops(&s, "vmk1", "bad_offload"), 0, "{s:?}");
        assert_eq!(drops(&s, "vmk1", "bad_checksum"), 0, "{s:?}");
    }
}
