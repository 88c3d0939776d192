//! A handle on `scripts/storage-lab.sh`: a real iSCSI target and NFS server in namespace
//! `NAME-storage` behind a Linux router in `NAME-router` (198.18.1.1 | 198.18.100.1 -- storage
//! 198.18.100.20); with `--ipv6` ([`StorageLab::up_ipv6`]) the servers listen on IPv6 only
//! (2001:db8:1::1 | 2001:db8:100::1 -- storage [`SERVER6`]). `down` on Drop, so that a failing
//! assertion leaves nothing behind.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::lab::Lab;
use super::{describe, wait_until};

/// The script.
pub const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/storage-lab.sh");
/// The lab's iSCSI target.
pub const IQN: &str = "iqn.2026-11.lab.vmkstack:storage";
/// The server's address in an IPv6 lab (`up --ipv6`), the only address its servers listen on.
pub const SERVER6: &str = "2001:db8:100::20";
/// The router's address on the vmknic side in an IPv6 lab (after `attach`).
pub const ROUTER6: &str = "2001:db8:1::1";
/// How long a first `up` may take (on a fresh machine it installs the Debian packages).
pub const UP_LIMIT: Duration = Duration::from_secs(900);

/// A storage lab by name (`vmks-<tag><pid>`); `down` on Drop.
#[derive(Debug)]
pub struct StorageLab {
    /// The `--name` given to the script.
    pub name: String,
}

impl StorageLab {
    /// A handle; nothing is made until [`StorageLab::ok`] runs `up`.
    pub fn new(tag: &str) -> StorageLab {
        StorageLab {
            name: format!("vmks-{tag}{}", std::process::id()),
        }
    }

    /// A lab that is up (panics unless `up` succeeds within [`UP_LIMIT`]).
    pub fn up(tag: &str) -> StorageLab {
        let lab = StorageLab::new(tag);
        lab.ok(&["up"], UP_LIMIT);
        lab
    }

    /// An IPv6 lab that is up (`up --ipv6`; panics unless it succeeds within [`UP_LIMIT`]).
    pub fn up_ipv6(tag: &str) -> StorageLab {
        let lab = StorageLab::new(tag);
        lab.ok(&["up", "--ipv6"], UP_LIMIT);
        lab
    }

    /// Runs the script with `args --name NAME` and `envs` under `timeout`, so that a hang
    /// fails the test instead of blocking it (the script's TERM trap still cleans up).
    pub fn script(&self, args: &[&str], envs: &[(&str, &str)], limit: Duration) -> Output {
        let mut c = Command::new("timeout");
        c.arg(limit.as_secs().to_string())
            .arg(SCRIPT)
            .args(args)
            .args(["--name", &self.name])
            .stdin(Stdio::null());
        for (k, v) in envs {
            c.env(k, v);
        }
        let t = Instant::now();
        let o = c
            .output()
            .unwrap_or_else(|e| panic!("cannot run {SCRIPT}: {e}"));
        eprintln!(
            "storage-lab.sh {} --name {} -> {} in {:.1} s",
            args.join(" "),
            self.name,
            o.status,
            t.elapsed().as_secs_f64()
        );
        o
    }

    /// Like [`StorageLab::script`] without environment, panicking unless it succeeds;
    /// returns stdout.
    pub fn ok(&self, args: &[&str], limit: Duration) -> String {
        let o = self.script(args, &[], limit);
        assert!(
            o.status.success(),
            "storage-lab.sh {args:?} failed: {}",
            describe(&o)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// The router namespace's name.
    pub fn router(&self) -> String {
        format!("{}-router", self.name)
    }

    /// The lab's state directory.
    pub fn state_dir(&self) -> PathBuf {
        PathBuf::from(format!("/tmp/{}", self.name))
    }

    /// Runs `cmd args` in the router namespace (30 s limit); returns the output.
    pub fn in_router(&self, cmd: &str, args: &[&str]) -> Output {
        Command::new("timeout")
            .args(["30", "ip", "netns", "exec", &self.router(), cmd])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"))
    }

    /// Like [`StorageLab::in_router`], panicking unless it succeeds; returns stdout.
    pub fn in_router_ok(&self, cmd: &str, args: &[&str]) -> String {
        let o = self.in_router(cmd, args);
        assert!(
            o.status.success(),
            "{cmd} {args:?} failed: {}",
            describe(&o)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Namespaces named `NAME-…`.
    pub fn namespaces(&self) -> Vec<String> {
        let o = Command::new("ip")
            .args(["netns", "list"])
            .output()
            .unwrap_or_else(|e| panic!("ip netns list: {e}"));
        let prefix = format!("{}-", self.name);
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|n| n.starts_with(&prefix))
            .map(str::to_owned)
            .collect()
    }

    /// Asserts that no namespace and no state dir of this lab remain.
    pub fn assert_gone(&self) {
        assert_eq!(
            self.namespaces(),
            Vec::<String>::new(),
            "namespaces left behind"
        );
        assert!(
            !self.state_dir().exists(),
            "{} left behind",
            self.state_dir().display()
        );
    }
}

impl Drop for StorageLab {
    fn drop(&mut self) {
        let _ = Command::new("timeout")
            .args(["120", SCRIPT, "down", "--name", &self.name])
            .stdin(Stdio::null())
            .output();
    }
}

/// Forwards 127.0.0.1:PORT in the daemon's namespace to `server`:PORT for each of `ports`
/// (`server`: an IPv4 address, or an IPv6 one in brackets) and waits until the last listens.
pub fn forward_ports(esx: &Lab, server: &str, ports: &[&str]) {
    for port in ports {
        let o = esx.cli(&[
            "forward",
            &format!("127.0.0.1:{port}"),
            &format!("{server}:{port}"),
        ]);
        assert!(o.status.success(), "{}", describe(&o));
    }
    let last = format!("127.0.0.1:{}", ports.last().expect("a port"));
    assert!(wait_until(Duration::from_secs(5), || {
        esx.stack.run("ss", &["-ltn"]).contains(&last)
    }));
}

/// libiscsi's clients through the forward on 127.0.0.1:3260: discovery, inquiry, capacity,
/// then 256 blocks written at `lba` and read back identical (tests/fixtures/iscsi_rw.c).
/// Returns the discovery output, for the portal the target reports.
pub fn iscsi_clients_through_forward(esx: &Lab, lba: &str) -> String {
    let ls = esx.stack.run("iscsi-ls", &["iscsi://127.0.0.1:3260/"]);
    assert!(ls.contains(&format!("Target:{IQN}")), "{ls}");
    let lun = format!("iscsi://127.0.0.1:3260/{IQN}/1");
    let inq = esx.stack.run("iscsi-inq", &[&lun]);
    assert!(
        inq.contains("Peripheral Device Type:DIRECT_ACCESS"),
        "{inq}"
    );
    let cap = esx.stack.run("iscsi-readcapacity16", &[&lun]);
    assert!(cap.contains("Total size:67108864"), "{cap}");
    let rw = compile_iscsi_rw(&esx.dir.0);
    let got = esx
        .stack
        .run(rw.to_str().expect("utf-8"), &[&lun, lba, "256"]);
    assert_eq!(got.trim(), format!("identical 131072 bytes at lba {lba}"));
    ls
}

/// Builds the libiscsi write/read-back helper (libiscsi-dev; scripts/test.sh installs it).
pub fn compile_iscsi_rw(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/iscsi_rw.c");
    let exe = dir.join("iscsi_rw");
    let o = Command::new("cc")
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .arg("-liscsi")
        .output()
        .expect("cc");
    assert!(o.status.success(), "cc iscsi_rw.c: {}", describe(&o));
    exe
}
