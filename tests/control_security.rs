//! Root only. The control socket under stress and attack: `kill -9` in the middle of a burst of
//! changes, malformed and hostile clients, and callers without rights (every daemon runs in a
//! namespace these tests create; addresses from 198.18.0.0/15; skipped with
//! `SKIPPED (needs root)` outside CI, a failure in CI when not root).

mod common;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::lab::Lab;
use common::{describe, require_root, wait_until, Proc};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_vmkstack");
const VMK0: &str =
    "forwarding = false\n[[vmknic]]\nname = \"vmk0\"\nportgroup = \"A\"\nip = \"198.18.1.1/24\"\n";
const GW: &str = "198.18.1.254";

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A lab of only the daemon's namespace, its scratch directory reachable by other users.
fn socket_lab(tag: &str) -> Lab {
    Lab::builder(tag).world_readable().build()
}

/// Starts the daemon of `lab` and waits until its event loop answers a `route_list`.
fn start(lab: &Lab) -> Proc {
    let ctl = lab.dir.file("ctl.sock");
    let mut daemon = lab.spawn_daemon();
    let up = wait_until(Duration::from_secs(10), || {
        Conn::open(&ctl).is_ok_and(|mut c| c.call(json!({"op": "route_list"}))["ok"] == true)
    });
    let exit = daemon.child.try_wait();
    assert!(up, "daemon never answered ({exit:?}): {}", lab.log());
    daemon
}

/// One control connection speaking raw lines.
struct Conn {
    r: BufReader<UnixStream>,
    w: UnixStream,
}

impl Conn {
    fn open(ctl: &Path) -> std::io::Result<Conn> {
        Conn::wrap(UnixStream::connect(ctl)?)
    }
    fn wrap(st: UnixStream) -> std::io::Result<Conn> {
        st.set_read_timeout(Some(Duration::from_secs(5)))?;
        Ok(Conn {
            w: st.try_clone()?,
            r: BufReader::new(st),
        })
    }
    fn send(&mut self, action: Value) -> std::io::Result<()> {
        self.w
            .write_all(format!("{}\n", json!({"v": 1, "action": action})).as_bytes())
    }
    /// The next response line; None at end of stream.
    fn read(&mut self) -> std::io::Result<Option<Value>> {
        let mut line = Vec::new();
        if self.r.read_until(b'\n', &mut line)? == 0 {
            return Ok(None);
        }
        serde_json::from_slice(&line)
            .map(Some)
            .map_err(|e| std::io::Error::new(ErrorKind::InvalidData, e))
    }
    fn call(&mut self, action: Value) -> Value {
        self.send(action).expect("send");
        self.read().expect("read").expect("connection closed")
    }
}

fn connect_many(ctl: &Path, n: usize) -> Vec<UnixStream> {
    (0..n)
        .map(|_| UnixStream::connect(ctl).expect("connect"))
        .collect()
}

/// The error kind of a failed response (panics on success).
fn kind(resp: &Value) -> &str {
    assert_eq!(resp["ok"], false, "expected an error: {resp}");
    assert_eq!(resp["v"], 1, "{resp}");
    resp["error"]["kind"].as_str().expect("error kind")
}

/// The static routes of `route_list`, as "network via gateway".
fn static_routes(ctl: &Path) -> Vec<String> {
    let resp = Conn::open(ctl)
        .expect("connect")
        .call(json!({"op": "route_list"}));
    assert_eq!(resp["ok"], true, "{resp}");
    let rows = resp["result"].as_array().expect("route rows");
    let field = |r: &Value, k: &str| r[k].as_str().unwrap_or("?").to_string();
    rows.iter()
        .filter(|r| r["origin"] == "static")
        .map(|r| format!("{} via {}", field(r, "network"), field(r, "gateway")))
        .collect()
}

/// One burst: `route_add` of networks `first..first + 250` one after another until the
/// connection breaks; returns the acknowledged routes and the one sent but not answered.
fn burst(ctl: &Path, first: usize) -> (Vec<String>, Option<String>) {
    let mut c = Conn::open(ctl).expect("connect");
    let mut acks = Vec::new();
    for k in first..first + 250 {
        // 198.19.N.M/26: three rounds of 250 never repeat a network.
        let net = format!("198.19.{}.{}/26", k / 4, (k % 4) * 64);
        let route = format!("{net} via {GW}");
        let sent = c.send(json!({"op": "route_add", "network": net, "gateway": GW}));
        match sent.and_then(|()| c.read()) {
            Ok(Some(r)) if r["ok"] == true => acks.push(route),
            Ok(Some(r)) => panic!("route_add {net} refused: {r}"),
            _ => return (acks, Some(route)),
        }
    }
    (acks, None)
}

#[test]
fn kill_dash_nine_during_route_burst_loses_nothing_acknowledged() {
    let Some(()) = require_root("kill_dash_nine_during_route_burst_loses_nothing_acknowledged")
    else {
        return;
    };
    let lab = socket_lab("kill9");
    let (ns, dir) = (&lab.stack, &lab.dir);
    let cfg = dir.file("vmkstack.toml");
    std::fs::write(&cfg, VMK0).expect("config");
    let ctl = dir.file("ctl.sock");
    let clock = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock");
    let mut seed = u64::from(std::process::id()) << 32 | u64::from(clock.subsec_nanos());
    // `kept`: every acknowledged route, plus unanswered ones that turned out to be saved.
    let (mut kept, mut acked, mut maybe) = (Vec::<String>::new(), 0, None::<String>);
    for round in 0..=3 {
        let mut daemon = start(&lab);
        let now = static_routes(&ctl);
        let mut unique = now.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), now.len(), "restart {round}: duplicates");
        let lost: Vec<_> = kept.iter().filter(|r| !now.contains(r)).collect();
        assert!(
            lost.is_empty(),
            "restart {round}: acknowledged {lost:?} lost"
        );
        let extra: Vec<_> = now.iter().filter(|r| !kept.contains(r)).collect();
        assert!(
            extra.iter().all(|r| maybe.as_ref() == Some(*r)),
            "{extra:?}"
        );
        println!(
            "restart {round}: {} routes, unanswered add saved: {}",
            now.len(),
            !extra.is_empty()
        );
        kept = now;
        if round == 3 {
            println!("after 3 kills: {acked} acknowledged, {} listed", kept.len());
            assert!(daemon.stop().success(), "clean stop");
            break;
        }
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let delay = Duration::from_millis(20 + (seed >> 33) % 131);
        let ctl2 = ctl.clone();
        let sender = std::thread::spawn(move || burst(&ctl2, round * 250));
        std::thread::sleep(delay);
        let pid = daemon.pid().to_string();
        let killed = Command::new("kill").args(["-KILL", &pid]).status();
        assert!(killed.is_ok_and(|s| s.success()), "kill -KILL {pid}");
        let status = daemon.child.wait().expect("wait");
        assert_eq!(status.signal(), Some(9), "daemon exit {status}");
        let (acks, unanswered) = sender.join().expect("burst thread");
        let names = std::fs::read_dir(&dir.0).expect("scratch").flatten();
        let tmp = names.filter(|e| e.file_name().to_string_lossy().contains(".tmp-"));
        let (n, tmp) = (acks.len(), tmp.count());
        let u = unanswered.as_deref().unwrap_or("none");
        println!("round {round}: kill -9 after {delay:?}: {n} acknowledged; unanswered: {u}");
        println!("round {round}: {tmp} temp files left beside the config");
        acked += n;
        kept.extend(acks);
        maybe = unanswered;
    }
    // The file still parses: `check` prints the listing (a file that does not load prints only
    // its error) and never a parse error.
    let check = ns.exec(BIN, &["check", "--config", s(&cfg)]);
    let out = String::from_utf8_lossy(&check.stdout);
    let all = describe(&check);
    assert!(matches!(check.status.code(), Some(0 | 1)), "{all}");
    assert!(
        !all.contains("parse error") && out.contains("vmk0"),
        "{all}"
    );
    let last = kept.last().and_then(|r| r.split('/').next());
    let last = last.expect("routes");
    assert!(out.contains(last), "{last} not in: {out}");
}

#[test]
fn malformed_and_hostile_clients_do_not_stall_the_daemon() {
    let Some(()) = require_root("malformed_and_hostile_clients_do_not_stall_the_daemon") else {
        return;
    };
    let lab = socket_lab("hostile");
    let dir = &lab.dir;
    // No vmknics; an inactive default gateway is state that a misparsed `gateway_clear` would
    // change.
    let cfg = dir.file("vmkstack.toml");
    let text = format!("forwarding = false\ndefault_gateway = \"{GW}\"\n");
    std::fs::write(&cfg, text).expect("cfg");
    let saved = std::fs::read(&cfg).expect("config");
    let ctl = dir.file("ctl.sock");
    let daemon = start(&lab);
    let mut c = Conn::open(&ctl).expect("connect");
    let state = |c: &mut Conn| {
        let routes = c.call(json!({"op": "route_list"}));
        let gw = c.call(json!({"op": "gateway_show"}));
        assert_eq!(routes["ok"], true, "{routes}");
        assert_eq!(gw["result"]["gateway"], GW, "{gw}");
        (routes, gw)
    };
    let before = state(&mut c);
    // Each line gets "kind: message" starting with the expected text, and changes nothing.
    #[rustfmt::skip]
    let cases: [(&[u8], &str); 8] = [
        (b"hello", "bad_request: not JSON"),
        (b"[]", "bad_request: missing protocol version"),
        (br#"{"action":{"op":"gateway_clear"}}"#, "bad_request: missing protocol"),
        (br#"{"v":2,"action":{"op":"gateway_clear"}}"#, "unsupported_version: protocol"),
        (br#"{"v":1,"action":{"op":"reboot"}}"#, "bad_request: bad request: unknown variant"),
        (br#"{"v":1,"action":{"op":"gateway_clear","x":1}}"#,
            "bad_request: bad request: unknown field `x`"),
        (br#"{"v":1,"action":{"op":"route_add","network":"x"}}"#,
            "bad_request: bad request: missing field"),
        (b"\xff\xfe{\"v\":1}", "bad_request: request is not UTF-8"),
    ];
    for (line, want) in cases {
        c.w.write_all(&[line, b"\n"].concat()).expect("send");
        let resp = c.read().expect("read").expect("connection closed");
        let shown = String::from_utf8_lossy(line);
        let msg = resp["error"]["message"].as_str().unwrap_or("");
        let got = format!("{}: {msg}", kind(&resp));
        assert!(got.starts_with(want), "{shown}: {resp}");
        assert_eq!(state(&mut c), before, "{shown} changed the state");
    }
    // 70 000 bytes in one line: too_long, then the daemon hangs up.
    let mut long = Conn::open(&ctl).expect("connect");
    let pad = "x".repeat(70_000);
    let line = format!("{{\"v\":1,\"action\":{{\"op\":\"gateway_clear\"}},\"pad\":\"{pad}\"}}\n");
    let _ = long.w.write_all(line.as_bytes()); // the daemon may hang up before the end
    let resp = long
        .read()
        .expect("read")
        .expect("an answer before the close");
    assert_eq!(kind(&resp), "too_long", "{resp}");
    match long.read() {
        Ok(None) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        other => panic!("connection still open after too_long: {other:?}"),
    }
    assert_eq!(state(&mut c), before, "the long line changed the state");
    drop(c);

    // Silent clients and half a line do not hold up anyone else.
    let silent = connect_many(&ctl, 5);
    let mut half = Conn::open(&ctl).expect("connect");
    let start_of_line = br#"{"v":1,"action":{"op":"gateway_clear""#;
    half.w.write_all(start_of_line).expect("half a line");
    std::thread::sleep(Duration::from_millis(100));
    let t = Instant::now();
    let mut other = Conn::open(&ctl).expect("connect");
    let resp = other.call(json!({"op": "route_list"}));
    assert_eq!(resp, before.0, "route_list beside silent clients");
    let took = t.elapsed();
    assert!(took < Duration::from_secs(1), "answer took {took:?}");
    // The half line is still buffered: completing it with an unknown field is refused whole.
    half.w.write_all(b",\"x\":1}}\n").expect("rest of the line");
    let resp = half.read().expect("read").expect("answer");
    assert_eq!(kind(&resp), "bad_request", "{resp}");
    drop((silent, half, other));
    std::thread::sleep(Duration::from_millis(300));

    // 40 at once: 32 are served, the rest told `busy` and closed.
    let many = connect_many(&ctl, 40);
    std::thread::sleep(Duration::from_millis(500));
    let mut busy = Vec::new();
    for (i, st) in many.iter().enumerate() {
        st.set_nonblocking(true).expect("nonblocking");
        let mut buf = [0u8; 512];
        match (&*st).read(&mut buf) {
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Ok(n) => {
                let resp: Value = serde_json::from_slice(&buf[..n]).expect("one JSON line");
                assert_eq!(kind(&resp), "busy", "connection {i}: {resp}");
                busy.push(i);
            }
            Err(e) => panic!("connection {i}: {e}"),
        }
    }
    println!("busy: {busy:?}");
    assert_eq!(busy, (32..40).collect::<Vec<_>>(), "busy connections");
    let st = many[0].try_clone().expect("clone");
    st.set_nonblocking(false).expect("blocking");
    let mut served = Conn::wrap(st).expect("served connection");
    assert_eq!(served.call(json!({"op": "route_list"})), before.0);
    drop((served, many));
    let mut last = Value::Null;
    let back = wait_until(Duration::from_secs(2), || {
        last = Conn::open(&ctl)
            .expect("connect")
            .call(json!({"op": "gateway_show"}));
        last["ok"] == true
    });
    assert!(back, "no service after the crowd left: {last}");
    assert_eq!(last, before.1);
    assert!(daemon.stop().success(), "clean stop");
    assert_eq!(
        std::fs::read(&cfg).expect("config"),
        saved,
        "the config file changed"
    );
}

/// A system user and a group, removed on drop (also on failure).
struct Account {
    user: String,
    group: String,
}

impl Drop for Account {
    fn drop(&mut self) {
        for (cmd, name) in [("userdel", &self.user), ("groupdel", &self.group)] {
            let _ = Command::new(cmd).arg(name).stderr(Stdio::null()).status();
        }
    }
}

fn run_ok(cmd: &str, args: &[&str]) -> String {
    let o = Command::new(cmd).args(args).output().expect(cmd);
    assert!(o.status.success(), "{cmd} {args:?}: {}", describe(&o));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// Asserts a CLI run's exit status and that its output (lowercased) holds every needle.
fn expect(o: &Output, code: i32, needles: &[&str]) {
    let all = describe(o);
    assert_eq!(o.status.code(), Some(code), "{all}");
    let low = all.to_lowercase();
    let missing: Vec<_> = needles.iter().filter(|n| !low.contains(*n)).collect();
    assert!(missing.is_empty(), "{missing:?} not in {all}");
}

#[test]
fn non_root_caller_may_list_but_not_change() {
    let Some(()) = require_root("non_root_caller_may_list_but_not_change") else {
        return;
    };
    let n = std::process::id() % 100_000;
    let acct = Account {
        user: format!("vmksu{n}"),
        group: format!("vmksg{n}"),
    };
    let (user, group) = (acct.user.as_str(), acct.group.as_str());
    run_ok("groupadd", &[group]);
    run_ok("useradd", &["-M", "-N", "-s", "/usr/sbin/nologin", user]);
    let (uid, gid) = (run_ok("id", &["-u", user]), run_ok("id", &["-g", user]));
    let ggid = run_ok("getent", &["group", group]);
    let ggid: u32 = ggid
        .split(':')
        .nth(2)
        .and_then(|g| g.parse().ok())
        .expect("gid");
    // The user must reach the binary (and the socket's directory: `world_readable` makes it
    // 0755).
    for a in Path::new(BIN).ancestors().skip(1) {
        let mode = std::fs::metadata(a).expect("ancestor").mode();
        assert!(mode & 0o001 != 0, "{} is not world-executable", a.display());
    }
    let lab = socket_lab("perm");
    let (ns, dir) = (&lab.stack, &lab.dir);
    let (ctl, cfg) = (dir.file("ctl.sock"), dir.file("vmkstack.toml"));
    // runuser sets the supplementary groups from /etc/group, as a login would.
    let as_user = |args: &[&str]| -> Output {
        let mut a = vec!["-u", user, "--", BIN, "--control", s(&ctl)];
        a.extend_from_slice(args);
        ns.exec("runuser", &a)
    };
    // The same user, no supplementary groups, with CAP_DAC_OVERRIDE: it can open the socket
    // whatever its mode, but it is neither root nor a member.
    let (reuid, regid) = (format!("--reuid={uid}"), format!("--regid={gid}"));
    let as_outsider = |args: &[&str]| -> Output {
        let caps = [
            "--clear-groups",
            "--inh-caps=+dac_override",
            "--ambient-caps=+dac_override",
        ];
        let mut a = vec![reuid.as_str(), regid.as_str()];
        a.extend_from_slice(&caps);
        a.extend_from_slice(&[BIN, "--control", s(&ctl)]);
        a.extend_from_slice(args);
        ns.exec("setpriv", &a)
    };
    let route = "198.19.7.0/24";
    let has_route = || static_routes(&ctl).iter().any(|r| r.starts_with(route));
    let in_file = || {
        std::fs::read_to_string(&cfg)
            .expect("cfg")
            .contains("198.19.7.0")
    };

    // (a) Default: the socket is root-only; the user cannot even list.
    std::fs::write(&cfg, VMK0).expect("config");
    let daemon = start(&lab);
    let mode = std::fs::metadata(&ctl).expect("socket").mode() & 0o777;
    assert_eq!(mode, 0o600, "socket mode {mode:o}");
    expect(
        &as_user(&["route", "list"]),
        1,
        &["permission denied", s(&ctl)],
    );
    assert!(daemon.stop().success());

    // (b) control_group: the socket is 0660 root:group, so a user outside the group cannot
    // connect at all (README: "anyone else who can connect may only list"); one that can
    // connect without being a member lists but may not change.
    std::fs::write(&cfg, format!("control_group = \"{group}\"\n{VMK0}")).expect("config");
    let daemon = start(&lab);
    let meta = std::fs::metadata(&ctl).expect("socket");
    assert_eq!(
        (meta.mode() & 0o777, meta.gid()),
        (0o660, ggid),
        "socket mode, group"
    );
    expect(&as_user(&["route", "list"]), 1, &["permission denied"]);
    expect(
        &as_user(&["route", "add", route, GW]),
        1,
        &["permission denied"],
    );
    expect(
        &as_outsider(&["route", "list"]),
        0,
        &["198.18.1.0", "local subnet"],
    );
    let o = as_outsider(&["route", "add", route, GW]);
    expect(
        &o,
        1,
        &["permission denied", &format!("uid {uid} may list"), group],
    );
    expect(&as_outsider(&["esxcfg-route", "-l"]), 0, &["198.18.1.0"]);
    assert!(!has_route() && !in_file(), "a refused add left {route}");

    // (c) Membership is read per connection: after usermod, without a restart, the add works.
    run_ok("usermod", &["-a", "-G", group, user]);
    expect(&as_user(&["route", "add", route, GW]), 0, &[]);
    assert!(
        has_route() && in_file(),
        "{route} missing after the member's add"
    );
    expect(&as_user(&["route", "remove", route]), 0, &[]);
    assert!(
        !has_route() && !in_file(),
        "{route} still there after the member's remove"
    );
    assert!(daemon.stop().success(), "clean stop");
}
