//! Root only. The io_uring TAP port against the real kernel: a burst larger than its
//! provided-buffer pool arrives whole and in order (the multishot read ends when the buffers
//! run out and is re-armed when they come back), and frames sent, small ones staged and large
//! ones written at once, reach the kernel's UDP socket whole and in order. With and without
//! TAP offloads (without them the frame lands after a header's room). The threaded port
//! (a writer thread per TAP) keeps the same order: small frames written at once or behind
//! queued large ones. The TAP's own epoll registration (beside the ring's) survives the
//! read's re-arms and keeps waking the loop.
#![allow(unsafe_code)]

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{in_netns, ip, tap_name};
use vmkstack_vmknic::{
    MacAddr, Port, RxBatch, Tap, TapPort, ThreadedTap, UringSizes, UringTap, ETH_HDR, VNET_HDR_LEN,
};

/// The wire side's address and the one our frames come from.
const WIRE_IP: [u8; 4] = [198, 18, 9, 1];
const OUR_IP: [u8; 4] = [198, 18, 9, 2];
const OUR_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
/// Datagrams the wire sends us: far more than the pool's buffers.
const BURST: usize = 200;
/// Datagrams we send; every `LARGE_EVERY`-th is larger than a staging slot.
const SENT: usize = 300;
const LARGE_EVERY: usize = 50;

#[test]
fn test_uring_tap_burst_and_order_with_offloads() {
    in_netns("test_uring_tap_burst_and_order_with_offloads", |wire| {
        burst_and_order(wire, 'u', true)
    });
}

#[test]
fn test_uring_tap_burst_and_order_without_offloads() {
    in_netns("test_uring_tap_burst_and_order_without_offloads", |wire| {
        burst_and_order(wire, 'w', false)
    });
}

#[test]
fn test_threaded_tap_sends_in_order() {
    in_netns("test_threaded_tap_sends_in_order", |wire| {
        let (tap, wire_mac) = wire_tap(wire, 't', 65000, true);
        let threaded = ThreadedTap::new(tap).map_err(|(_, e)| e).expect("writer");
        let mut port = TapPort::Threaded(Box::new(threaded));
        assert_eq!(port.io_name(), "threaded");
        // Large frames (above the writer's 16 KiB) go to the writer thread; the small ones
        // after them must not overtake them.
        let got = send_and_receive(wire, SENT, |i| {
            let frame = udp_frame(wire_mac, i, if i % 7 == 3 { 20_000 } else { 0 });
            let mut buf = vec![0u8; VNET_HDR_LEN];
            buf.extend_from_slice(&frame);
            if i % 7 == 3 {
                port.send_offloaded(&buf).ok()
            } else {
                port.send(&frame).ok()
            }
        });
        let want: Vec<usize> = (0..SENT).collect();
        assert_eq!(got, want, "every frame sent, in order");
        if let TapPort::Threaded(t) = &port {
            assert_eq!(t.tx_errors(), 0);
        }
    });
}

/// A TAP moved into `wire` with the wire's address on it and ours as a permanent neighbour;
/// returns it and the wire side's MAC.
fn wire_tap(wire: &str, suffix: char, mtu: u16, offload: bool) -> (Tap, [u8; 6]) {
    let name = tap_name(suffix);
    let mut tap =
        Tap::create(&name, MacAddr::local_from_name(&name), mtu, offload).expect("create TAP");
    tap.move_to_netns(wire).expect("move TAP");
    ip(&["-n", wire, "addr", "add", "198.18.9.1/24", "dev", &name]);
    ip(&[
        "-n",
        wire,
        "neigh",
        "add",
        "198.18.9.2",
        "lladdr",
        "02:00:00:00:00:02",
        "dev",
        &name,
        "nud",
        "permanent",
    ]);
    let wire_mac = netdev_mac(wire, &name);
    (tap, wire_mac)
}

/// Starts a UDP receiver on the wire, sends `count` frames with `send(i)` (each must be
/// taken) and returns the sequence numbers received, in arrival order.
fn send_and_receive(
    wire: &str,
    count: usize,
    mut send: impl FnMut(usize) -> Option<bool>,
) -> Vec<usize> {
    let recv = format!(
        "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         s.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)\n\
         s.bind(('198.18.9.1', 7777))\ns.settimeout(5)\nprint('ready', flush=True)\n\
         got = []\ntry:\n    while len(got) < {count}:\n        d, _ = s.recvfrom(65536)\n\
         \x20       got.append(d.split(b':')[1].split(b' ')[0].decode())\nexcept socket.timeout:\n    pass\n\
         print(' '.join(got), flush=True)\n"
    );
    let mut child = Command::new("ip")
        .args(["netns", "exec", wire, "python3", "-c", &recv])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn receiver");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("ready line");
    assert_eq!(line.trim(), "ready");
    for i in 0..count {
        assert_eq!(send(i), Some(true), "frame {i} taken");
    }
    line.clear();
    out.read_line(&mut line).expect("received line");
    let _ = child.wait();
    line.split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect()
}

fn burst_and_order(wire: &str, suffix: char, offload: bool) {
    let (tap, wire_mac) = wire_tap(wire, suffix, 9000, offload);
    let sizes = UringSizes {
        rx_buffers: 8,
        rx_buffer: VNET_HDR_LEN + ETH_HDR + 65536,
    };
    let uring = UringTap::new(tap, sizes)
        .map_err(|(_, e)| e)
        .expect("io_uring");
    let mut port = TapPort::Uring(Box::new(uring));
    assert_eq!(port.io_name(), "uring");
    // The event loop waits on the ring and on the TAP itself (for the TAP's own wake-up):
    // the TAP's registration must survive the read's re-arms (the burst below forces them)
    // and keep waking the loop.
    let fds: Vec<_> = port.event_fds().collect();
    assert_eq!(fds.len(), 2, "the ring's descriptor and the TAP's");
    let tap_fd = fds[1];
    let epfd = Epoll::new();
    assert_eq!(epfd.add(tap_fd), 0, "registered");
    port.set_epoll(Some((epfd.0, TAP_TOKEN)));

    // Receive: the wire sends a burst; every datagram arrives, in order.
    let send = format!(
        "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         for i in range({BURST}):\n    s.sendto(b'seq:%d' % i, ('198.18.9.2', 9999))\n"
    );
    let status = Command::new("ip")
        .args(["netns", "exec", wire, "python3", "-c", &send])
        .status()
        .expect("run python3");
    assert!(status.success());
    let mut batch = RxBatch::new(32, sizes.rx_buffer, 64 * 1024);
    let mut seqs = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while seqs.len() < BURST && Instant::now() < deadline {
        let n = port.recv(&mut batch).expect("recv");
        for k in 0..n {
            let f = batch.get_mut(k).expect("frame");
            assert!(f.len() >= VNET_HDR_LEN, "a header at least");
            assert!(
                f[..VNET_HDR_LEN].iter().all(|&b| b == 0) || offload,
                "no header without offloads"
            );
            if let Some(seq) = udp_seq(&f[VNET_HDR_LEN..], 9999) {
                seqs.push(seq);
            }
        }
        port.release(&mut batch);
        port.flush().expect("flush (re-arms the read)");
        if n == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let want: Vec<usize> = (0..BURST).collect();
    assert_eq!(seqs, want, "every datagram of the burst, in order");
    assert_eq!(
        epfd.add(tap_fd),
        libc::EEXIST,
        "the TAP is still registered after the re-arms"
    );
    while epfd.wait(0).is_some() {}
    let one = "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
               s.sendto(b'seq:0', ('198.18.9.2', 9999))\n";
    let status = Command::new("ip")
        .args(["netns", "exec", wire, "python3", "-c", one])
        .status()
        .expect("run python3");
    assert!(status.success());
    assert_eq!(
        epfd.wait(5000),
        Some(TAP_TOKEN),
        "a frame wakes the TAP's entry"
    );
    // Take it, so that the send test below starts clean.
    let deadline = Instant::now() + Duration::from_secs(5);
    while port.recv(&mut batch).expect("recv") == 0 && Instant::now() < deadline {
        port.release(&mut batch);
        std::thread::sleep(Duration::from_millis(1));
    }
    port.release(&mut batch);
    port.flush().expect("flush");

    // Send: small frames staged, large ones written at once; all arrive, in order (the
    // receiver's buffer is forced large, SO_RCVBUFFORCE, so that it cannot drop any).
    let recv = format!(
        "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         s.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)\n\
         s.bind(('198.18.9.1', 7777))\ns.settimeout(5)\nprint('ready', flush=True)\n\
         got = []\ntry:\n    while len(got) < {SENT}:\n        d, _ = s.recvfrom(65536)\n\
         \x20       got.append(d.split(b':')[1].split(b' ')[0].decode())\nexcept socket.timeout:\n    pass\n\
         print(' '.join(got), flush=True)\n"
    );
    let mut child = Command::new("ip")
        .args(["netns", "exec", wire, "python3", "-c", &recv])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn receiver");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("ready line");
    assert_eq!(line.trim(), "ready");
    for i in 0..SENT {
        let pad = if i % LARGE_EVERY == LARGE_EVERY / 2 {
            3000
        } else {
            0
        };
        let frame = udp_frame(wire_mac, i, pad);
        assert_eq!(port.send(&frame).ok(), Some(true), "frame {i} taken");
        if i % 10 == 9 {
            port.flush().expect("flush");
        }
    }
    port.flush().expect("flush");
    line.clear();
    out.read_line(&mut line).expect("received line");
    let _ = child.wait();
    let got: Vec<usize> = line
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect();
    let want: Vec<usize> = (0..SENT).collect();
    assert_eq!(got, want, "every frame sent, in order");
    if let TapPort::Uring(u) = &port {
        assert_eq!(u.tx_errors(), 0);
    }
}

/// The epoll token the test registers the TAP under.
const TAP_TOKEN: u64 = 7;

/// An epoll instance, as mio makes one (edge-triggered, readable).
struct Epoll(i32);

impl Epoll {
    fn new() -> Epoll {
        // SAFETY: a plain system call.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        assert!(fd >= 0, "epoll_create1");
        Epoll(fd)
    }

    /// Registers `fd` under [`TAP_TOKEN`]: 0, or the errno.
    fn add(&self, fd: i32) -> i32 {
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLET | libc::EPOLLIN | libc::EPOLLRDHUP) as u32,
            u64: TAP_TOKEN,
        };
        // SAFETY: `ev` lives across the call.
        match unsafe { libc::epoll_ctl(self.0, libc::EPOLL_CTL_ADD, fd, &mut ev) } {
            0 => 0,
            _ => std::io::Error::last_os_error().raw_os_error().unwrap_or(-1),
        }
    }

    /// The token of one event within `ms` milliseconds.
    fn wait(&self, ms: i32) -> Option<u64> {
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        // SAFETY: room for one event.
        let n = unsafe { libc::epoll_wait(self.0, &mut ev, 1, ms) };
        (n == 1).then_some(ev.u64)
    }
}

impl Drop for Epoll {
    fn drop(&mut self) {
        // SAFETY: our own descriptor.
        unsafe { libc::close(self.0) };
    }
}

/// The netdev's MAC, as `ip` shows it.
fn netdev_mac(ns: &str, dev: &str) -> [u8; 6] {
    let out = ip(&["-n", ns, "-o", "link", "show", "dev", dev]);
    let mac = out
        .split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .expect("link/ether");
    let mut m = [0u8; 6];
    for (b, h) in m.iter_mut().zip(mac.split(':')) {
        *b = u8::from_str_radix(h, 16).expect("hex");
    }
    m
}

/// The sequence number of a `seq:N` UDP datagram to `port` in an Ethernet frame.
fn udp_seq(frame: &[u8], port: u16) -> Option<usize> {
    if frame.len() < ETH_HDR + 28 || frame[12..14] != [0x08, 0x00] || frame[ETH_HDR + 9] != 17 {
        return None;
    }
    let ihl = usize::from(frame[ETH_HDR] & 0x0f) * 4;
    let udp = frame.get(ETH_HDR + ihl..)?;
    if udp.len() < 8 || u16::from_be_bytes([udp[2], udp[3]]) != port {
        return None;
    }
    let text = std::str::from_utf8(&udp[8..]).ok()?;
    text.strip_prefix("seq:")?.parse().ok()
}

/// An Ethernet frame with a UDP datagram `seq:I` (and `pad` bytes after it) from us to the
/// wire's port 7777. The UDP checksum is left out (0), which IPv4 allows.
fn udp_frame(dst_mac: [u8; 6], i: usize, pad: usize) -> Vec<u8> {
    let mut payload = format!("seq:{i} ").into_bytes();
    payload.resize(payload.len() + pad, b'x');
    let udp_len = 8 + payload.len();
    let ip_len = 20 + udp_len;
    let mut f = Vec::with_capacity(ETH_HDR + ip_len);
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&OUR_MAC);
    f.extend_from_slice(&[0x08, 0x00]);
    let mut iph = [0u8; 20];
    iph[0] = 0x45;
    iph[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
    iph[8] = 64;
    iph[9] = 17;
    iph[12..16].copy_from_slice(&OUR_IP);
    iph[16..20].copy_from_slice(&WIRE_IP);
    let sum = iph
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum::<u32>();
    let sum = (sum & 0xffff) + (sum >> 16);
    let sum = !(((sum & 0xffff) + (sum >> 16)) as u16);
    iph[10..12].copy_from_slice(&sum.to_be_bytes());
    f.extend_from_slice(&iph);
    f.extend_from_slice(&40000u16.to_be_bytes());
    f.extend_from_slice(&7777u16.to_be_bytes());
    f.extend_from_slice(&(udp_len as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(&payload);
    f
}
