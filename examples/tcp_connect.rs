//! Embeds vmkstack as a library: brings up the vmknics of a configuration, opens a TCP
//! connection from the stack's own endpoint through the routing core (the source address is
//! the egress vmknic's), sends a message and prints the echo.
//!
//! ```sh
//! cargo run --example tcp_connect -- CONFIG IP:PORT [MESSAGE [SETTLE_MS]]
//! ```
//! SETTLE_MS runs the stack that long before connecting (for a peer that configures its side
//! of the TAP once it appears).
//! Run as root, in a network namespace of your own: it creates the config's TAP devices.

use std::net::SocketAddrV4;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use smoltcp::socket::tcp;
use vmkstack_stack::{Config, Netstack};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(config), Some(remote)) = (args.first(), args.get(1)) else {
        eprintln!("usage: tcp_connect CONFIG IP:PORT [MESSAGE [SETTLE_MS]]");
        return ExitCode::from(2);
    };
    let message = args.get(2).map_or("hello vmkstack", String::as_str);
    let settle = args
        .get(3)
        .and_then(|s| s.parse().ok())
        .map_or(Duration::ZERO, Duration::from_millis);
    let remote: SocketAddrV4 = match remote.parse() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tcp_connect: `{remote}` is not IP:PORT: {e}");
            return ExitCode::from(2);
        }
    };
    match run(config, remote, message, settle) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tcp_connect: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(
    config: &str,
    remote: SocketAddrV4,
    message: &str,
    settle: Duration,
) -> Result<(), Box<dyn std::error::Error>> {
    let cfg = Config::load(config.as_ref())?;
    let (mut stack, problems) = Netstack::new(&cfg)?;
    for p in problems {
        eprintln!("{}", p.1);
    }
    let explanation = stack.routing().explain(*remote.ip())?;
    println!("route: {explanation}");
    let until = Instant::now() + settle;
    while Instant::now() < until {
        stack.run_once(Duration::from_millis(10))?;
    }

    let start = Instant::now();
    let handle = stack.tcp_connect(remote.into(), None, 65536, 65536)?;
    stack.poll_local();
    let deadline = start + Duration::from_secs(10);
    let mut sent = false;
    let mut echo = Vec::new();
    while Instant::now() < deadline {
        stack.run_once(Duration::from_millis(5))?;
        let sock = stack.sockets().get_mut::<tcp::Socket>(handle);
        if !sent && sock.may_send() {
            let local = sock
                .local_endpoint()
                .map(|e| e.to_string())
                .unwrap_or_default();
            println!(
                "connected from {local} to {remote} in {:.1} ms",
                start.elapsed().as_secs_f64() * 1000.0
            );
            sock.send_slice(message.as_bytes())?;
            sent = true;
        }
        if sock.can_recv() {
            sock.recv(|data| {
                echo.extend_from_slice(data);
                (data.len(), ())
            })?;
        }
        if echo.len() >= message.len() {
            println!("echo: {}", String::from_utf8_lossy(&echo));
            sock.close();
            stack.poll_local();
            return Ok(());
        }
        if !sock.is_open() {
            return Err(format!("connection to {remote} closed ({})", sock.state()).into());
        }
        if sent {
            stack.poll_local();
        }
    }
    Err(format!("no answer from {remote} within 10 s").into())
}
