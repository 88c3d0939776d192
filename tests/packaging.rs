//! Installing and running vmkstack as a Linux service, without root: the generated
//! completions and man pages against the binary's clap definitions, `scripts/install.sh` into
//! a scratch root and back out, the unit checked by `systemd-analyze verify`, the `.deb`
//! built by cargo-deb and unpacked into a scratch root, `--version`, `daemon --check-config`,
//! systemd's readiness datagrams on an abstract socket, and the journal's log format.
//!
//! The daemons started here have no vmknic: no TAP, nothing configured in any namespace,
//! so they run in the test's own namespace without root. Tests that need a tool
//! (`systemd-analyze`, `cargo deb`, `dpkg-deb`) print `SKIPPED (needs TOOL)` without it
//! outside CI and fail in CI, where `scripts/test.sh` installs them.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{describe, wait_until, Proc, Scratch};

const BIN: &str = env!("CARGO_BIN_EXE_vmkstack");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn vmkstack(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(ROOT)
        .output()
        .expect("run vmkstack")
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every file under `dir`, by path relative to it, with its bytes.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, into: &mut BTreeMap<String, Vec<u8>>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                walk(base, &path, into);
            } else {
                let rel = path.strip_prefix(base).expect("under base");
                let bytes = std::fs::read(&path).expect("read");
                into.insert(rel.display().to_string(), bytes);
            }
        }
    }
    let mut files = BTreeMap::new();
    walk(dir, dir, &mut files);
    files
}

/// Whether `tool` runs; outside CI a missing tool skips the test (with a line saying so),
/// in CI it fails it.
fn have_tool(tool: &str, test: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{test} needs {tool} (scripts/test.sh installs it)"
        );
        eprintln!("SKIPPED (needs {tool}): {test}");
    }
    found
}

#[test]
fn generated_completions_and_man_pages_match_the_clap_definitions() {
    let dir = Scratch::new("generate");
    for what in ["completions", "man"] {
        let fresh = dir.file(what);
        let o = vmkstack(&["generate", what, fresh.to_str().expect("utf-8")]);
        assert!(o.status.success(), "{}", describe(&o));
        let committed = Path::new(ROOT).join("packaging").join(what);
        let (want, have) = (tree(&fresh), tree(&committed));
        let names = |t: &BTreeMap<String, Vec<u8>>| t.keys().cloned().collect::<Vec<_>>();
        assert_eq!(
            names(&have),
            names(&want),
            "packaging/{what} lists other files than the binary generates; refresh with \
             `vmkstack generate {what} packaging/{what}` (after removing the old ones)"
        );
        for (name, bytes) in &want {
            assert!(
                have[name] == *bytes,
                "packaging/{what}/{name} differs from what the binary generates; refresh with \
                 `vmkstack generate {what} packaging/{what}`"
            );
        }
    }
    // They come from the definitions: flags of the native commands and of each personality.
    let bash = |name: &str| {
        std::fs::read_to_string(dir.file("completions/bash").join(name)).expect("bash completion")
    };
    assert!(bash("vmkstack").contains("--check-config"));
    assert!(
        bash("vmkstack").contains("--neighbor-list"),
        "personality subcommand flags"
    );
    assert!(bash("esxcfg-route").contains("--neighbor-list"));
    assert!(bash("esxcfg-vmknic").contains("--enable-vmknic"));
    assert!(bash("esxcli").contains("ipv4"));
    let fish = std::fs::read_to_string(dir.file("completions/fish/vmkping.fish")).expect("fish");
    assert!(fish.contains("-s I"), "{fish}");
    let zsh = std::fs::read_to_string(dir.file("completions/zsh/_vmkstack")).expect("zsh");
    assert!(zsh.starts_with("#compdef vmkstack"), "{zsh}");
    for page in [
        "vmkstack.1",
        "vmkstack-daemon.1",
        "esxcfg-route.1",
        "esxcfg-vmknic.1",
    ] {
        assert!(dir.file("man").join(page).exists(), "{page}");
    }
    assert!(!dir.file("man/nc.1").exists(), "nc gets no page of its own");
    assert!(
        !dir.file("completions/bash/nc").exists(),
        "nc gets no completion of its own"
    );
    let vmkping = std::fs::read_to_string(dir.file("man/vmkping.1")).expect("vmkping.1");
    assert!(vmkping.contains("ICMP payload bytes"), "{vmkping}");
}

#[test]
fn version_names_the_git_commit() {
    let o = vmkstack(&["--version"]);
    assert!(o.status.success(), "{}", describe(&o));
    let line = out(&o);
    let want_prefix = format!("vmkstack {} (git ", env!("CARGO_PKG_VERSION"));
    assert!(line.starts_with(&want_prefix), "{line}");
    let commit = line
        .trim_end()
        .strip_prefix(&want_prefix)
        .and_then(|r| r.strip_suffix(')'))
        .expect("(git COMMIT)");
    // In a git checkout it is the checked-out commit (build.rs reruns when HEAD moves).
    let head = Command::new("git")
        .args(["-C", ROOT, "rev-parse", "--short=12", "HEAD"])
        .output();
    match head {
        Ok(h) if h.status.success() => assert_eq!(commit, out(&h).trim()),
        _ => assert_eq!(commit, "unknown"),
    }
    assert_eq!(out(&vmkstack(&["-V"])), line);
}

#[test]
fn check_config_validates_and_exits() {
    let dir = Scratch::new("checkcfg");
    let good = dir.file("good.toml");
    std::fs::write(
        &good,
        "default_gateway = \"198.18.9.1\"\n\
         [[vmknic]]\nname = \"vmk0\"\nportgroup = \"a\"\nip = \"198.18.1.1/24\"\n\
         netns = \"lab\"\n\
         [[forward]]\nlisten = \"127.0.0.1:111\"\nremote = \"198.18.100.20:111\"\n",
    )
    .expect("write");
    let o = vmkstack(&[
        "daemon",
        "--check-config",
        "--config",
        good.to_str().expect("utf-8"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    let text = out(&o);
    assert!(
        text.contains("1 vmknic(s), 0 static route(s), 1 forward(s)"),
        "{text}"
    );
    // ESX's gateway message is a warning: the daemon starts with it.
    assert!(
        text.contains("warning (the daemon starts anyway): Unable to set VMkernel gateway"),
        "{text}"
    );
    assert!(text.contains("CAP_NET_ADMIN (to create and configure the TAPs of vmk0)"));
    assert!(text.contains("CAP_SYS_ADMIN (to configure the TAPs of vmk0 inside"));
    assert!(text.contains("CAP_NET_BIND_SERVICE (to listen on privileged port(s)"));
    assert!(text.ends_with(": ok\n"), "{text}");
    // Nothing was created: no TAP, no socket, no last-good copy beside the file.
    assert!(!dir.file("good.toml.last-good").exists());

    let bad = dir.file("bad.toml");
    std::fs::write(
        &bad,
        "control_group = \"no-such-group-vmks\"\n\
         [[vmknic]]\nname = \"vmk0\"\nportgroup = \"a\"\nip = \"198.18.1.1\"\n\
         netmask = \"255.0.255.0\"\nmtu = 9001\n",
    )
    .expect("write");
    let o = vmkstack(&[
        "daemon",
        "--check-config",
        "--config",
        bad.to_str().expect("utf-8"),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    let e = err(&o);
    assert!(e.contains("2 problems"), "{e}");
    assert!(e.contains("netmask 255.0.255.0 is not contiguous"), "{e}");
    assert!(e.contains("MTU must be between 68 and 9000"), "{e}");

    let group = dir.file("group.toml");
    std::fs::write(&group, "control_group = \"no-such-group-vmks\"\n").expect("write");
    let o = vmkstack(&[
        "daemon",
        "--check-config",
        "--config",
        group.to_str().expect("utf-8"),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    assert!(
        err(&o).contains("control_group `no-such-group-vmks` is not a group on this host"),
        "{}",
        describe(&o)
    );
    let o = vmkstack(&[
        "daemon",
        "--check-config",
        "--config",
        "/nonexistent/vmks.toml",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    assert!(
        err(&o).contains("/nonexistent/vmks.toml"),
        "{}",
        describe(&o)
    );
}

/// A daemon with no vmknic in this namespace (no TAP: runs without root), its stderr in
/// `log`, with extra environment.
fn empty_daemon(dir: &Scratch, log: &Path, args: &[&str], env: &[(&str, &str)]) -> Proc {
    let cfg = dir.file("empty.toml");
    std::fs::write(&cfg, "forwarding = false\n").expect("config");
    let ctl = dir.file("ctl.sock");
    let mut c = Command::new(BIN);
    c.args(["daemon", "--config", cfg.to_str().expect("utf-8")])
        .args(["--control", ctl.to_str().expect("utf-8")])
        .args(args)
        .env_remove("NOTIFY_SOCKET")
        .env_remove("JOURNAL_STREAM")
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log"));
    let p = Proc::spawn(c);
    assert!(
        wait_until(Duration::from_secs(10), || {
            std::os::unix::net::UnixStream::connect(&ctl).is_ok()
        }),
        "the daemon never listened: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
    p
}

/// The next datagram on `sock` (panics after a timeout).
fn datagram(sock: &UnixDatagram) -> String {
    let mut buf = [0u8; 4096];
    let n = sock
        .recv(&mut buf)
        .expect("a notification within the timeout");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn notifies_readiness_reload_and_stop_on_an_abstract_socket() {
    use std::os::linux::net::SocketAddrExt;
    let dir = Scratch::new("notify-abstract");
    let name = format!("vmks-{}-notify", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).expect("name");
    let sock = UnixDatagram::bind_addr(&addr).expect("bind abstract");
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let log = dir.file("daemon.log");
    let notify = format!("@{name}");
    let daemon = empty_daemon(&dir, &log, &[], &[("NOTIFY_SOCKET", &notify)]);
    let ready = datagram(&sock);
    assert!(
        ready.starts_with("READY=1\nSTATUS=running: 0 vmknic(s)"),
        "{ready}"
    );
    // SIGHUP (the unit's ExecReload) reloads the file; it does not end the daemon.
    let pid = daemon.pid().to_string();
    assert!(Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .expect("kill")
        .success());
    assert_eq!(datagram(&sock), "RELOADING=1");
    assert!(datagram(&sock).starts_with("READY=1"));
    let log_text = std::fs::read_to_string(&log).expect("log");
    assert!(log_text.contains("configuration reloaded"), "{log_text}");
    let status = daemon.stop();
    assert!(status.success(), "{status}");
    assert_eq!(datagram(&sock), "STOPPING=1");
}

#[test]
fn logs_in_the_journal_format_only_on_the_journal_stream() {
    let dir = Scratch::new("journal");
    // stderr is the file named by JOURNAL_STREAM: priority prefixes, no timestamps.
    let log = dir.file("journal.log");
    std::fs::write(&log, "").expect("log");
    let m = std::fs::metadata(&log).expect("stat");
    let stream = format!("{}:{}", m.dev(), m.ino());
    let d = {
        let cfg = dir.file("empty.toml");
        std::fs::write(&cfg, "forwarding = false\n").expect("config");
        let ctl = dir.file("ctl.sock");
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(&log)
            .expect("log");
        let mut c = Command::new(BIN);
        c.args(["daemon", "--config", cfg.to_str().expect("utf-8")])
            .args(["--control", ctl.to_str().expect("utf-8")])
            .env("JOURNAL_STREAM", &stream)
            .env_remove("RUST_LOG")
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file);
        let p = Proc::spawn(c);
        assert!(wait_until(Duration::from_secs(10), || {
            std::fs::read_to_string(&log).is_ok_and(|t| t.contains("daemon running"))
        }));
        p
    };
    assert!(d.stop().success());
    let text = std::fs::read_to_string(&log).expect("log");
    let running = text
        .lines()
        .find(|l| l.contains("vmkstack daemon running"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        running.starts_with("<6>vmkstack daemon running config="),
        "{running}"
    );
    assert!(text.lines().all(|l| l.starts_with('<')), "{text}");
    assert!(!text.contains("INFO"), "{text}");

    // A JOURNAL_STREAM that is not stderr (redirected since): plain text with timestamps.
    let plain = dir.file("plain.log");
    let d = empty_daemon(&dir, &plain, &[], &[("JOURNAL_STREAM", &stream)]);
    assert!(d.stop().success());
    let text = std::fs::read_to_string(&plain).expect("log");
    let running = text
        .lines()
        .find(|l| l.contains("vmkstack daemon running"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(running.contains(" INFO "), "{running}");
    assert!(running.starts_with("20"), "a timestamp first: {running}");
}

#[test]
fn log_filter_from_the_option_or_rust_log() {
    let dir = Scratch::new("logfilter");
    let run = |name: &str, args: &[&str], env: &[(&str, &str)]| {
        let log = dir.file(name);
        let d = empty_daemon(&dir, &log, args, env);
        assert!(d.stop().success());
        std::fs::read_to_string(&log).expect("log")
    };
    let default = run("default.log", &[], &[]);
    assert!(default.contains("vmkstack daemon running"), "{default}");
    let warn_env = run("env.log", &[], &[("RUST_LOG", "warn")]);
    assert!(!warn_env.contains("daemon running"), "{warn_env}");
    let warn_opt = run("opt.log", &["--log", "warn"], &[]);
    assert!(!warn_opt.contains("daemon running"), "{warn_opt}");
    // --log wins over RUST_LOG.
    let both = run("both.log", &["--log", "info"], &[("RUST_LOG", "warn")]);
    assert!(both.contains("vmkstack daemon running"), "{both}");
    // Filters by module, as RUST_LOG takes them.
    let directives = "vmkstack_stack=warn,vmkstack_stack::engine=info";
    let by_module = run("module.log", &[], &[("RUST_LOG", directives)]);
    assert!(by_module.contains("netstack started"), "{by_module}");
    assert!(!by_module.contains("daemon running"), "{by_module}");
}

/// Every path under `root` (files and symlinks; directories only when empty), sorted.
fn listing(root: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, into: &mut Vec<String>) {
        let mut any = false;
        for entry in std::fs::read_dir(dir).expect("read dir") {
            any = true;
            let path = entry.expect("entry").path();
            let m = std::fs::symlink_metadata(&path).expect("lstat");
            if m.is_dir() {
                walk(base, &path, into);
            } else {
                into.push(format!(
                    "/{}",
                    path.strip_prefix(base).expect("base").display()
                ));
            }
        }
        if !any && dir != base {
            into.push(format!(
                "/{}/",
                dir.strip_prefix(base).expect("base").display()
            ));
        }
    }
    let mut all = Vec::new();
    if root.exists() {
        walk(root, root, &mut all);
    }
    all.sort();
    all
}

/// What an install under `prefix` holds (`man` pages as `page_suffix`, `.1` or `.1.gz`).
fn expected_files(prefix: &str, etc: &str, zsh: &str, page_suffix: &str) -> Vec<String> {
    let mut want = vec![
        format!("{prefix}/bin/vmkstack"),
        format!("{prefix}/lib/systemd/system/vmkstack.service"),
        format!("{prefix}/share/doc/vmkstack/README.md"),
        format!("{etc}/vmkstack/vmkstack.toml"),
    ];
    for name in [
        "esxcfg-route",
        "esxcfg-vmknic",
        "esxcli",
        "vmkping",
        "pktcap-uw",
    ] {
        want.push(format!("{prefix}/bin/{name}"));
    }
    for name in [
        "vmkstack",
        "esxcfg-route",
        "esxcfg-vmknic",
        "esxcli",
        "vmkping",
        "pktcap-uw",
    ] {
        want.push(format!("{prefix}/share/bash-completion/completions/{name}"));
        want.push(format!("{prefix}/share/{zsh}/_{name}"));
        want.push(format!(
            "{prefix}/share/fish/vendor_completions.d/{name}.fish"
        ));
    }
    let man = Path::new(ROOT).join("packaging/man");
    for page in std::fs::read_dir(man).expect("packaging/man") {
        let name = page.expect("entry").file_name();
        let name = name.to_string_lossy();
        let stem = name.strip_suffix(".1").expect("a .1 page");
        want.push(format!("{prefix}/share/man/man1/{stem}{page_suffix}"));
    }
    want.sort();
    want
}

fn install_sh(args: &[&str]) -> Output {
    Command::new("bash")
        .arg(Path::new(ROOT).join("scripts/install.sh"))
        .args(args)
        .env_remove("DESTDIR")
        .output()
        .expect("run install.sh")
}

#[test]
fn install_script_installs_into_a_scratch_root_and_uninstalls() {
    let dir = Scratch::new("install");
    let root = dir.file("root");
    let root_s = root.to_str().expect("utf-8");
    let o = install_sh(&["--destdir", root_s, "--prefix", "/usr", "--bin", BIN]);
    assert!(o.status.success(), "{}", describe(&o));
    assert!(
        out(&o).contains("systemctl enable --now vmkstack"),
        "{}",
        describe(&o)
    );
    let mut want = expected_files("/usr", "/etc", "zsh/vendor-completions", ".1");
    want.push("/usr/share/vmkstack/install-manifest".into());
    want.sort();
    assert_eq!(listing(&root), want);
    // The personalities are symlinks to the binary, and work under their own names.
    for name in [
        "esxcfg-route",
        "esxcfg-vmknic",
        "esxcli",
        "vmkping",
        "pktcap-uw",
    ] {
        let link = root.join("usr/bin").join(name);
        assert_eq!(
            std::fs::read_link(&link).expect("symlink"),
            Path::new("vmkstack")
        );
    }
    let o = Command::new(root.join("usr/bin/esxcfg-route"))
        .arg("--help")
        .output()
        .expect("run esxcfg-route");
    assert!(
        o.status.success() && out(&o).contains("esxcfg-route -l | -n"),
        "{}",
        describe(&o)
    );
    let o = Command::new(root.join("usr/bin/vmkstack"))
        .arg("--version")
        .output()
        .expect("run vmkstack");
    assert_eq!(out(&o), out(&vmkstack(&["--version"])));
    let unit = std::fs::read_to_string(root.join("usr/lib/systemd/system/vmkstack.service"))
        .expect("unit");
    for line in [
        "Type=notify",
        "ExecStart=/usr/bin/vmkstack daemon --config /etc/vmkstack/vmkstack.toml",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
        "User=vmkstack",
        "AmbientCapabilities=CAP_NET_ADMIN CAP_NET_BIND_SERVICE",
        "CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_BIND_SERVICE",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "RuntimeDirectory=vmkstack",
        "ReadWritePaths=/etc/vmkstack",
    ] {
        assert!(
            unit.lines().any(|l| l.starts_with(line)),
            "no `{line}` in\n{unit}"
        );
    }
    // A second install refuses (already installed); nothing changes.
    let o = install_sh(&["--destdir", root_s, "--prefix", "/usr", "--bin", BIN]);
    assert!(!o.status.success(), "{}", describe(&o));
    assert!(err(&o).contains("already installed"), "{}", describe(&o));

    // Uninstall removes what install added, and the directories it made.
    let o = install_sh(&["uninstall", "--destdir", root_s, "--prefix", "/usr"]);
    assert!(o.status.success(), "{}", describe(&o));
    assert_eq!(listing(&root), Vec::<String>::new(), "left behind");

    // A changed configuration survives uninstall (unless --purge); a foreign file in the way
    // stops install before it writes anything.
    let o = install_sh(&["--destdir", root_s, "--prefix", "/usr", "--bin", BIN]);
    assert!(o.status.success(), "{}", describe(&o));
    let cfg = root.join("etc/vmkstack/vmkstack.toml");
    std::fs::write(&cfg, "forwarding = true\n").expect("edit");
    let o = install_sh(&["uninstall", "--destdir", root_s, "--prefix", "/usr"]);
    assert!(out(&o).contains("keeping"), "{}", describe(&o));
    assert_eq!(listing(&root), ["/etc/vmkstack/vmkstack.toml"]);
    std::fs::remove_file(&cfg).expect("rm");
    std::fs::create_dir_all(root.join("usr/bin")).expect("mkdir");
    std::fs::write(root.join("usr/bin/esxcli"), "#!/bin/sh\n").expect("foreign esxcli");
    let o = install_sh(&["--destdir", root_s, "--prefix", "/usr", "--bin", BIN]);
    assert!(!o.status.success(), "{}", describe(&o));
    assert!(err(&o).contains("is not our symlink"), "{}", describe(&o));
    assert_eq!(listing(&root), ["/etc/vmkstack/", "/usr/bin/esxcli"]);
}

#[test]
fn unit_passes_systemd_analyze_verify() {
    if !have_tool("systemd-analyze", "unit_passes_systemd_analyze_verify")
        || !have_tool("man", "unit_passes_systemd_analyze_verify")
    {
        return;
    }
    // Installed into a prefix (not a staging root), so that the unit's ExecStart= and its
    // Documentation= man pages exist where it names them.
    let dir = Scratch::new("verify");
    let prefix = dir.file("usr");
    let etc = dir.file("etc");
    let o = install_sh(&[
        "--prefix",
        prefix.to_str().expect("utf-8"),
        "--sysconfdir",
        etc.to_str().expect("utf-8"),
        "--bin",
        BIN,
        "--no-user",
        "--no-systemctl",
    ]);
    assert!(o.status.success(), "{}", describe(&o));
    let unit = prefix.join("lib/systemd/system/vmkstack.service");
    let verify = |unit: &Path| {
        Command::new("systemd-analyze")
            .args(["verify", unit.to_str().expect("utf-8")])
            .env("MANPATH", prefix.join("share/man"))
            .env("SYSTEMD_LOG_COLOR", "0")
            .output()
            .expect("run systemd-analyze")
    };
    let o = verify(&unit);
    // verify exits 0 on unknown keys and bad values, which it only prints: both must be clean.
    assert!(o.status.success() && err(&o).is_empty(), "{}", describe(&o));
    // It can fail: a misspelt key and a missing man page are reported.
    let bad = dir.file("vmkstack.service");
    let text = std::fs::read_to_string(&unit).expect("unit");
    std::fs::write(
        &bad,
        text.replace("NoNewPrivileges=yes", "NoNewPrivilege=yes")
            .replace("man:vmkstack(1)", "man:vmkstack-nope(1)"),
    )
    .expect("write");
    let o = verify(&bad);
    assert!(err(&o).contains("Unknown key"), "{}", describe(&o));
    assert!(err(&o).contains("vmkstack-nope"), "{}", describe(&o));
    let o = install_sh(&[
        "uninstall",
        "--prefix",
        prefix.to_str().expect("utf-8"),
        "--sysconfdir",
        etc.to_str().expect("utf-8"),
        "--no-systemctl",
    ]);
    assert!(o.status.success(), "{}", describe(&o));
}

#[test]
fn deb_package_holds_the_same_files_and_unpacks_into_a_scratch_root() {
    const TEST: &str = "deb_package_holds_the_same_files_and_unpacks_into_a_scratch_root";
    if !have_tool("cargo-deb", TEST) || !have_tool("dpkg-deb", TEST) {
        return;
    }
    // cargo-deb packages target/release/vmkstack of CARGO_TARGET_DIR: this test's binary,
    // without a release build (--no-build) and unstripped (faster; the bytes are checked).
    let dir = Scratch::new("deb");
    let target = dir.file("target");
    std::fs::create_dir_all(target.join("release")).expect("mkdir");
    std::fs::copy(BIN, target.join("release/vmkstack")).expect("copy binary");
    let deb = dir.file("vmkstack.deb");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let o = Command::new(cargo)
        .args([
            "deb",
            "--no-build",
            "--no-strip",
            "--no-separate-debug-symbols",
            "--fast",
        ])
        .args(["--manifest-path", &format!("{ROOT}/Cargo.toml")])
        .args(["-o", deb.to_str().expect("utf-8")])
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .expect("run cargo deb");
    assert!(o.status.success(), "{}", describe(&o));
    let root = dir.file("root");
    let o = Command::new("dpkg-deb")
        .arg("-x")
        .args([&deb, &root])
        .output()
        .expect("dpkg-deb -x");
    assert!(o.status.success(), "{}", describe(&o));
    // The same files as install.sh with --prefix /usr (man pages gzipped, as Debian has them),
    // plus Debian's copyright file.
    let mut want = expected_files("/usr", "/etc", "zsh/vendor-completions", ".1.gz");
    want.push("/usr/share/doc/vmkstack/copyright".into());
    want.sort();
    assert_eq!(listing(&root), want);
    assert_eq!(
        std::fs::read(root.join("usr/bin/vmkstack")).expect("binary"),
        std::fs::read(BIN).expect("binary"),
    );
    assert_eq!(
        std::fs::read_link(root.join("usr/bin/vmkping")).expect("symlink"),
        Path::new("vmkstack")
    );
    assert_eq!(
        std::fs::read(root.join("usr/lib/systemd/system/vmkstack.service")).expect("unit"),
        std::fs::read(Path::new(ROOT).join("packaging/vmkstack.service")).expect("unit"),
    );
    // Control files: the configuration is a conffile, postinst makes the service's user.
    let control = dir.file("control");
    let o = Command::new("dpkg-deb")
        .arg("-e")
        .args([&deb, &control])
        .output()
        .expect("dpkg-deb -e");
    assert!(o.status.success(), "{}", describe(&o));
    let read = |name: &str| std::fs::read_to_string(control.join(name)).expect(name);
    assert_eq!(read("conffiles").trim(), "/etc/vmkstack/vmkstack.toml");
    assert!(read("postinst").contains("adduser --system --group"));
    assert!(
        read("postinst").contains("deb-systemd-helper"),
        "cargo-deb's unit handling"
    );
    assert!(read("control").contains("Depends:") && read("control").contains("iproute2"));
    let o = Command::new(root.join("usr/bin/vmkstack"))
        .arg("--version")
        .output()
        .expect("run");
    assert!(out(&o).starts_with("vmkstack "), "{}", describe(&o));
}
