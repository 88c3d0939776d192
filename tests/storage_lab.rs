//! Root only. The storage lab script (`scripts/storage-lab.sh`, driven through
//! [`common::storage_lab`]): a real iSCSI target (tgt) and NFS server (nfs-ganesha) behind a
//! Linux router namespace, reached with the userspace clients (libiscsi-bin, libnfs-utils) from
//! the router namespace; `up` is idempotent, `down` leaves nothing behind, a failed `up` cleans
//! up after itself, and `up --ipv6` serves on IPv6 only. Skipped with `SKIPPED (needs root)`
//! outside CI (namespaces), a failure in CI when not root; `up` installs the Debian packages
//! when they are missing.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::storage_lab::{StorageLab, IQN, SERVER6, UP_LIMIT};

const SERVER: &str = "198.18.100.20";

/// The labs of this file run one at a time (a first `up` may run apt-get).
static SERIAL: Mutex<()> = Mutex::new(());

/// Whether `pid` is a live process (a zombie has exited: it only waits to be reaped).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat.rsplit_once(") ").map(|(_, r)| r.chars().next());
            !matches!(state, Some(Some('Z' | 'X')))
        }
        Err(_) => false,
    }
}

/// The PIDs in `dir/*.pid`.
fn pid_files(dir: &Path) -> Vec<(String, u32)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("state dir").flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".pid") {
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            let pid = text
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("bad {name}: {text:?}"));
            out.push((stem.to_owned(), pid));
        }
    }
    out.sort();
    out
}

/// A temporary file removed on Drop.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// 1 MiB of reproducible, incompressible-looking bytes.
fn mib_pattern() -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..1 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[test]
fn storage_lab_serves_iscsi_and_nfs_and_leaves_nothing_behind() {
    let Some(()) =
        common::require_root("storage_lab_serves_iscsi_and_nfs_and_leaves_nothing_behind")
    else {
        return;
    };
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let t0 = Instant::now();
    let lab = StorageLab::new("t");

    // up (a first run on a fresh machine installs the packages, hence the long limit).
    let out = lab.ok(&["up"], UP_LIMIT);
    eprintln!("{out}");
    assert!(out.contains(IQN), "summary lacks the IQN:\n{out}");
    assert_eq!(
        lab.namespaces().len(),
        2,
        "expected NAME-storage and NAME-router"
    );
    let pids = pid_files(&lab.state_dir());
    let names: Vec<&str> = pids.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["ganesha", "rpcbind", "tgtd"]);
    for (n, pid) in &pids {
        assert!(alive(*pid), "{n} (pid {pid}) is not running");
    }
    let t_up = t0.elapsed();

    // iSCSI from the router namespace.
    let ls = lab.in_router_ok("iscsi-ls", &["-s", &format!("iscsi://{SERVER}/")]);
    assert!(ls.contains(IQN), "iscsi-ls:\n{ls}");
    let lun = format!("iscsi://{SERVER}/{IQN}/1");
    let inq = lab.in_router_ok("iscsi-inq", &[&lun]);
    assert!(inq.contains("DIRECT_ACCESS"), "iscsi-inq:\n{inq}");
    let cap = lab.in_router_ok("iscsi-readcapacity16", &[&lun]);
    assert!(
        cap.lines().any(|l| l.trim() == "Total size:67108864"),
        "iscsi-readcapacity16 (expected 64 MiB):\n{cap}"
    );

    // NFS from the router namespace.
    let export = format!("nfs://{SERVER}/export");
    let ls = lab.in_router_ok("nfs-ls", &[&export]);
    assert!(
        ls.contains("hello.txt") && ls.contains("data.bin"),
        "nfs-ls:\n{ls}"
    );
    let hello = lab.in_router_ok("nfs-cat", &[&format!("{export}/hello.txt")]);
    assert_eq!(hello, "hello from the vmkstack lab\n");
    let data = mib_pattern();
    let up = TempFile(std::env::temp_dir().join(format!("{}-up.bin", lab.name)));
    let down = TempFile(std::env::temp_dir().join(format!("{}-down.bin", lab.name)));
    std::fs::write(&up.0, &data).expect("write the 1 MiB file");
    let remote = format!("{export}/roundtrip.bin");
    let up_path = up.0.to_string_lossy().into_owned();
    let down_path = down.0.to_string_lossy().into_owned();
    lab.in_router_ok("nfs-cp", &[&up_path, &remote]);
    lab.in_router_ok("nfs-cp", &[&remote, &down_path]);
    let back = std::fs::read(&down.0).expect("read the copied-back file");
    assert!(
        back == data,
        "nfs-cp round trip differs ({} bytes back)",
        back.len()
    );
    let on_server = std::fs::read(lab.state_dir().join("export/roundtrip.bin")).expect("export");
    assert!(on_server == data, "the exported file differs");
    let t_clients = t0.elapsed();

    // status, and a second up that only reports.
    let st = lab.ok(&["status"], Duration::from_secs(60));
    assert!(st.contains("answers"), "status:\n{st}");
    let again = lab.ok(&["up"], Duration::from_secs(60));
    assert!(again.contains("already up"), "second up:\n{again}");
    assert_eq!(
        pid_files(&lab.state_dir()),
        pids,
        "a second up restarted something"
    );

    // down: nothing left.
    let t_down = Instant::now();
    lab.ok(&["down"], Duration::from_secs(120));
    let t_down = t_down.elapsed();
    lab.assert_gone();
    for (n, pid) in &pids {
        assert!(!alive(*pid), "{n} (pid {pid}) still runs after down");
    }
    let st = lab.script(&["status"], &[], Duration::from_secs(60));
    assert_eq!(
        st.status.code(),
        Some(1),
        "status after down: {}",
        common::describe(&st)
    );
    lab.ok(&["down"], Duration::from_secs(60));
    lab.assert_gone();
    eprintln!(
        "timings: up {:.1} s, clients {:.1} s, down {:.1} s, total {:.1} s",
        t_up.as_secs_f64(),
        (t_clients - t_up).as_secs_f64(),
        t_down.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
}

#[test]
fn failed_storage_lab_up_leaves_nothing_behind() {
    let Some(()) = common::require_root("failed_storage_lab_up_leaves_nothing_behind") else {
        return;
    };
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let lab = StorageLab::new("tx");

    // Refused before anything is made: only 198.18 and 192.168 are allowed.
    for prefix in ["10.0", "198.19", "192.168.1", ""] {
        let o = lab.script(&["up", "--prefix", prefix], &[], Duration::from_secs(60));
        assert!(!o.status.success(), "--prefix {prefix:?} accepted");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("--prefix"),
            "{}",
            common::describe(&o)
        );
        lab.assert_gone();
    }

    // A failure after every daemon has started (a test hook of the script): the trap runs
    // `down`, which stops each daemon by its PID and removes namespaces and state.
    let o = lab.script(&["up"], &[("STORAGE_LAB_FAIL_AFTER", "services")], UP_LIMIT);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!o.status.success(), "forced failure succeeded:\n{text}");
    let stopped: Vec<(String, u32)> = text
        .lines()
        .filter_map(|l| l.strip_prefix("storage-lab.sh: stopped "))
        .filter_map(|l| {
            let (comm, rest) = l.split_once(" (pid ")?;
            Some((comm.to_owned(), rest.trim_end_matches(')').parse().ok()?))
        })
        .collect();
    let comms: Vec<&str> = stopped.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(
        comms,
        ["ganesha.nfsd", "rpcbind", "tgtd"],
        "output:\n{text}"
    );
    for (comm, pid) in &stopped {
        assert!(!alive(*pid), "{comm} (pid {pid}) survived a failed up");
    }
    lab.assert_gone();
}

#[test]
fn ipv6_storage_lab_serves_on_ipv6_only_and_leaves_nothing_behind() {
    let Some(()) =
        common::require_root("ipv6_storage_lab_serves_on_ipv6_only_and_leaves_nothing_behind")
    else {
        return;
    };
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let lab = StorageLab::new("t6");
    let out = lab.ok(&["up", "--ipv6"], UP_LIMIT);
    assert!(
        out.contains(&format!("iscsi://[{SERVER6}]/{IQN}/1"))
            && out.contains(&format!("nfs://{SERVER6}/export")),
        "{out}"
    );
    // The router forwards IPv6; the servers listen on the IPv6 address only.
    let fwd = lab.in_router_ok("sysctl", &["-n", "net.ipv6.conf.all.forwarding"]);
    assert_eq!(fwd.trim(), "1");
    let ls = lab.in_router_ok("iscsi-ls", &[&format!("iscsi://[{SERVER6}]/")]);
    assert!(ls.contains(IQN), "iscsi-ls over IPv6:\n{ls}");
    let ls = lab.in_router_ok("nfs-ls", &[&format!("nfs://{SERVER6}/export")]);
    assert!(ls.contains("hello.txt"), "nfs-ls over IPv6:\n{ls}");
    let ss = Command::new("ip")
        .args([
            "netns",
            "exec",
            &format!("{}-storage", lab.name),
            "ss",
            "-ltnH",
        ])
        .output()
        .expect("ss");
    let ss = String::from_utf8_lossy(&ss.stdout);
    for port in [3260, 2049, 20048] {
        let on: Vec<&str> = ss
            .lines()
            .filter_map(|l| l.split_whitespace().nth(3))
            .filter(|a| a.ends_with(&format!(":{port}")))
            .collect();
        assert_eq!(on, [format!("[{SERVER6}]:{port}")], "{ss}");
    }
    let o = lab.in_router("iscsi-ls", &[&format!("iscsi://{SERVER}/")]);
    assert!(!o.status.success(), "iSCSI answers on IPv4 in IPv6 mode");

    // status names the IPv6 side; up without --ipv6 is refused and changes nothing.
    let st = lab.ok(&["status"], Duration::from_secs(60));
    assert!(
        st.contains(&format!("server {SERVER6}")) && st.contains("answers"),
        "status:\n{st}"
    );
    let pids = pid_files(&lab.state_dir());
    let o = lab.script(&["up"], &[], Duration::from_secs(60));
    assert_eq!(o.status.code(), Some(1), "{}", common::describe(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("already up with --ipv6"),
        "{}",
        common::describe(&o)
    );
    assert_eq!(pid_files(&lab.state_dir()), pids);

    lab.ok(&["down"], Duration::from_secs(120));
    lab.assert_gone();
    for (n, pid) in &pids {
        assert!(!alive(*pid), "{n} (pid {pid}) still runs after down");
    }
}
