//! The TAP device against the real kernel (root only).
//!
//! Nothing touches the daemon's (root) namespace: each root test re-runs itself inside a fresh
//! "daemon" namespace (`ip netns exec`), where the TAP is created, and a second "wire"
//! namespace receives the TAP's kernel side. Both are named `vmks-<pid>-<n>` and deleted on
//! drop, also when the test fails.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::{in_netns, ip, tap_name};
use vmkstack_vmknic::{MacAddr, Netns, Tap, TapError, TapNameError, VnetHdr, VNET_HDR_LEN};

/// Whether `frame` is an ARP request for `target`.
fn is_arp_request_for(frame: &[u8], target: [u8; 4]) -> bool {
    frame.len() >= 42
        && frame[12..14] == [0x08, 0x06]
        && frame[20..22] == [0x00, 0x01]
        && frame[38..42] == target
}

#[test]
fn test_bad_name() {
    let e = Tap::create(
        "abcdefghijklmnop",
        MacAddr::local_from_name("x"),
        1500,
        false,
    )
    .unwrap_err();
    assert!(
        matches!(e, TapError::Name(TapNameError::TooLong(_))),
        "{e:?}"
    );
}

#[test]
fn test_wire_in_netns_sees_arp_and_vanishes_on_drop() {
    in_netns("test_wire_in_netns_sees_arp_and_vanishes_on_drop", |wire| {
        wire_sees_arp_and_vanishes(wire, 'a', false);
    });
}

#[test]
fn test_offload_tap_sees_arp_with_plain_header_and_vanishes_on_drop() {
    in_netns(
        "test_offload_tap_sees_arp_with_plain_header_and_vanishes_on_drop",
        |wire| wire_sees_arp_and_vanishes(wire, 'o', true),
    );
}

fn wire_sees_arp_and_vanishes(wire: &str, suffix: char, offload: bool) {
    {
        let name = tap_name(suffix);
        let mac = MacAddr::local_from_name(&name);
        let mut tap = Tap::create(&name, mac, 9000, offload).expect("create TAP");
        assert_eq!(tap.offload(), offload);
        assert_eq!(tap.name(), name);
        tap.move_to_netns(wire).expect("move TAP");
        let state = tap.link().expect("the TAP's link");
        assert_eq!(state.netns, Netns::Named(wire.to_string()));
        assert_eq!((state.mtu, state.up, state.carrier), (9000, true, true));
        let link = ip(&["-n", wire, "link", "show", "dev", &name]);
        assert!(link.contains("mtu 9000") && link.contains(",UP"), "{link}");
        assert!(
            !link.contains(&mac.to_string()),
            "the vmknic MAC must not be the netdev's: {link}"
        );
        ip(&["-n", wire, "addr", "add", "198.18.7.1/24", "dev", &name]);

        let mut ping = Command::new("ip")
            .args(["netns", "exec", wire, "ping", "-c1", "-W1", "198.18.7.2"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn ping");
        let mut buf = [0u8; 9100];
        let deadline = Instant::now() + Duration::from_secs(1);
        let mut arp = None;
        while arp.is_none() && Instant::now() < deadline {
            match tap.recv(&mut buf).expect("recv") {
                Some(n) if is_arp_request_for(&buf[VNET_HDR_LEN..n], [198, 18, 7, 2]) => {
                    assert!(VnetHdr::read(&buf).is_plain(), "ARP needs no offload");
                    arp = Some(buf[VNET_HDR_LEN..n].to_vec())
                }
                Some(_) => {}
                None => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        let _ = ping.wait();
        let arp = arp.expect("an ARP request for 198.18.7.2 within a second");
        assert_eq!(arp[0..6], [0xff; 6], "broadcast");
        assert_ne!(arp[6..12], mac.0, "sent by the kernel side's own MAC");
        assert_eq!(arp[28..32], [198, 18, 7, 1], "sender IP");

        drop(tap);
        let deadline = Instant::now() + Duration::from_secs(2);
        let gone = loop {
            let o = Command::new("ip")
                .args(["-n", wire, "link", "show", "dev", &name])
                .output()
                .expect("run ip");
            if !o.status.success() {
                break true;
            }
            if Instant::now() > deadline {
                break false;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(
            gone,
            "{name} still exists in {wire} after the TAP was dropped"
        );
    }
}

#[test]
fn test_offload_tap_leaves_udp_checksum_to_the_reader() {
    in_netns(
        "test_offload_tap_leaves_udp_checksum_to_the_reader",
        |wire| {
            let name = tap_name('u');
            let mac = MacAddr::local_from_name(&name);
            let mut tap = Tap::create(&name, mac, 1500, true).expect("create TAP");
            tap.move_to_netns(wire).expect("move TAP");
            ip(&["-n", wire, "addr", "add", "198.18.7.1/24", "dev", &name]);
            let peer = "02:00:00:00:07:02";
            ip(&[
                "-n",
                wire,
                "neigh",
                "add",
                "198.18.7.2",
                "lladdr",
                peer,
                "dev",
                &name,
            ]);
            let sent = Command::new("ip")
                .args(["netns", "exec", wire, "bash", "-c"])
                .arg("echo offload > /dev/udp/198.18.7.2/9")
                .status()
                .expect("run bash");
            assert!(sent.success());
            let mut buf = [0u8; 2000];
            let deadline = Instant::now() + Duration::from_secs(2);
            let udp = loop {
                match tap.recv(&mut buf).expect("recv") {
                    // IPv4, protocol UDP.
                    Some(n) if n > VNET_HDR_LEN + 34 && buf[VNET_HDR_LEN + 23] == 17 => break n,
                    Some(_) => {}
                    None if Instant::now() > deadline => panic!("no UDP datagram within 2 s"),
                    None => std::thread::sleep(Duration::from_millis(5)),
                }
            };
            let hdr = VnetHdr::read(&buf);
            assert!(hdr.needs_csum(), "{hdr:?}");
            // Checksumming starts at the UDP header (Ethernet 14 + IPv4 20); the sum goes 6 in.
            assert_eq!((hdr.csum_start, hdr.csum_offset), (34, 6), "{hdr:?}");
            assert_eq!(&buf[VNET_HDR_LEN + 42..udp], b"offload\n");
        },
    );
}

#[test]
fn test_duplicate_name() {
    in_netns("test_duplicate_name", |_| {
        let name = tap_name('d');
        let mac = MacAddr::local_from_name(&name);
        let _first = Tap::create(&name, mac, 1500, false).expect("first TAP");
        let e = Tap::create(&name, mac, 1500, true).unwrap_err();
        assert!(
            matches!(&e, TapError::Create { tap, .. } if *tap == name),
            "{e:?}"
        );
    });
}

/// `ip -n NS -o link show dev NAME` (one line), or None when NAME is not in NS.
fn link_in(ns: &str, name: &str) -> Option<String> {
    let o = Command::new("ip")
        .args(["-n", ns, "-o", "link", "show", "dev", name])
        .output()
        .expect("run ip");
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
}

#[test]
fn test_every_netdev_operation_follows_a_tap_moved_by_hand() {
    in_netns(
        "test_every_netdev_operation_follows_a_tap_moved_by_hand",
        |wire| {
            let name = tap_name('h');
            let mut tap =
                Tap::create(&name, MacAddr::local_from_name(&name), 1500, true).expect("TAP");
            let here = tap.link().expect("link");
            assert_eq!(here.netns, Netns::Daemon, "{here:?}");
            assert_eq!(
                (here.name.as_str(), here.mtu, here.up),
                (name.as_str(), 1500, true)
            );

            // Moved by hand, behind the daemon's back: nothing by this name here any more.
            ip(&["link", "set", "dev", &name, "netns", wire]);
            assert!(
                !Command::new("ip")
                    .args(["link", "show", "dev", &name])
                    .output()
                    .expect("ip")
                    .status
                    .success(),
                "{name} still in the daemon's namespace"
            );
            let moved = tap.link().expect("link after the move");
            assert_eq!(moved.netns, Netns::Named(wire.to_string()));
            assert!(!moved.up, "a move takes a netdev down: {moved:?}");

            // MTU, up/down, carrier and the bridge all act where the netdev is now.
            tap.set_mtu(1400).expect("MTU on the moved TAP");
            assert_eq!(tap.mtu(), 1400);
            let l = link_in(wire, &name).expect("in the wire namespace");
            assert!(l.contains("mtu 1400"), "{l}");
            tap.set_up(true).expect("up");
            let l = link_in(wire, &name).expect("link");
            assert!(l.contains(",UP") || l.contains("<UP"), "{l}");
            tap.set_carrier(false).expect("carrier off");
            let l = link_in(wire, &name).expect("link");
            assert!(l.contains("NO-CARRIER"), "{l}");
            assert!(!tap.link().expect("link").carrier);
            tap.set_carrier(true).expect("carrier on");
            ip(&["-n", wire, "link", "add", "br-h", "type", "bridge"]);
            tap.join_bridge("br-h")
                .expect("bridge in the wire namespace");
            let l = link_in(wire, &name).expect("link");
            assert!(l.contains("master br-h"), "{l}");
            assert_eq!(tap.link().expect("link").master.as_deref(), Some("br-h"));
            // A bridge that is not there is refused, naming the bridge and the namespace.
            let e = tap.join_bridge("br-none").unwrap_err();
            let chain = format!(
                "{e}: {}",
                std::error::Error::source(&e)
                    .map(|s| s.to_string())
                    .unwrap_or_default()
            );
            assert!(chain.contains("br-none") && chain.contains(wire), "{chain}");
            tap.set_up(false).expect("down");
            let l = link_in(wire, &name).expect("link");
            assert!(!l.contains(",UP") && !l.contains("<UP"), "{l}");

            // Moved again, back into the daemon's namespace (the test's own, named by its
            // PID) and renamed on the way: the descriptor finds it there too.
            let renamed = format!("{name}x");
            let pid = std::process::id().to_string();
            ip(&[
                "-n", wire, "link", "set", "dev", &name, "netns", &pid, "name", &renamed,
            ]);
            let back = tap.link().expect("link after the second move");
            assert_eq!(back.netns, Netns::Daemon, "{back:?}");
            assert_eq!(back.name, renamed);
            assert_eq!(back.master, None, "a move leaves the bridge");
            tap.set_mtu(9000).expect("MTU after the second move");
            let l = ip(&["-o", "link", "show", "dev", &renamed]);
            assert!(l.contains("mtu 9000"), "{l}");
            // And once more into the wire namespace, by the TAP itself.
            tap.move_to_netns(wire).expect("move");
            let l = link_in(wire, &renamed).expect("moved by the TAP");
            assert!(l.contains("mtu 9000") && l.contains(",UP"), "{l}");
            // A namespace that does not exist is refused and the netdev stays where it was.
            let e = tap.move_to_netns("vmks-no-such-namespace").unwrap_err();
            assert!(matches!(e, TapError::Netns { .. }), "{e:?}");
            assert!(link_in(wire, &renamed).is_some());
            ip(&["-n", wire, "link", "del", "br-h"]);
        },
    );
}

/// A TAP moved between namespaces over and over while another thread keeps asking for its
/// name (TUNGETIFF, what the daemon's link watch takes for "gone" when it fails), its
/// namespace (TUNGETDEVNETNS) and reading it: none of it ever fails during a move, so a
/// moved TAP is never taken for a deleted one.
#[test]
fn test_a_tap_moved_back_and_forth_never_looks_deleted() {
    in_netns(
        "test_a_tap_moved_back_and_forth_never_looks_deleted",
        |wire| {
            let name = tap_name('m');
            let tap = Tap::create(&name, MacAddr::local_from_name(&name), 1500, true).expect("TAP");
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let watcher = {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let fd = tap.as_raw_fd();
                    let (mut looks, mut failures) = (0u64, Vec::new());
                    let mut buf = vec![0u8; 70000];
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        looks += 1;
                        if let Err(e) = vmkstack_vmknic::sys::tun_ifname(fd) {
                            failures.push(format!("TUNGETIFF: {e}"));
                        }
                        if let Err(e) = vmkstack_vmknic::sys::tun_netns(fd) {
                            failures.push(format!("TUNGETDEVNETNS: {e}"));
                        }
                        if let Err(e) = tap.recv(&mut buf) {
                            failures.push(format!("read: {e}"));
                        }
                    }
                    drop(tap);
                    (looks, failures)
                })
            };
            let pid = std::process::id().to_string();
            for _ in 0..100 {
                ip(&["link", "set", "dev", &name, "netns", wire]);
                ip(&["-n", wire, "link", "set", "dev", &name, "up"]);
                ip(&["-n", wire, "link", "set", "dev", &name, "netns", &pid]);
                ip(&["link", "set", "dev", &name, "up"]);
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            let (looks, failures) = watcher.join().expect("watcher");
            eprintln!("{looks} looks during 200 moves");
            assert!(looks > 200, "{looks}");
            assert!(
                failures.is_empty(),
                "{} failures: {:?}",
                failures.len(),
                &failures[..failures.len().min(10)]
            );
        },
    );
}
