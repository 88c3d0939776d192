//! The `vmkstack` binary's command line: [`args`] says what it accepts, [`native`] runs the
//! client subcommands against the daemon, and [`run`] dispatches a whole argv, including the
//! ESX personalities (by subcommand or by the name the binary was invoked under).

pub mod args;
pub mod generate;
pub mod logging;
pub mod native;
pub mod top;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;

use self::args::{Cli, Command, Generate, PassThrough};
use self::native::{
    run_forward, run_neighbor, run_netstack, run_probe, run_reload, run_route, run_stats,
    run_vmknic,
};
use crate::check::check;
use crate::client::{control_path_from_env, with_daemon, CliError, Console, Control, Exit};
use crate::personality::{self, Personality};

/// Runs `scripts/demo.sh` of this source tree with this binary.
fn demo() -> ExitCode {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/demo.sh");
    let bin = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("vmkstack"));
    match std::process::Command::new("bash")
        .arg(&script)
        .env("VMKSTACK_BIN", bin)
        .status()
    {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("vmkstack demo: cannot run {}: {e}", script.display());
            ExitCode::FAILURE
        }
    }
}

/// An error with its chain of causes, one `: ` apart (the daemon's last words).
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        // thiserror's `transparent` and `{0}` variants repeat their source's text.
        if !text.ends_with(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// `vmkstack daemon --check-config`: 0 when the daemon would start with the file, 1 with
/// every problem named.
fn check_config(config: &Path) -> ExitCode {
    match vmkstack_stack::service::check_config(config) {
        Ok(report) => {
            println!("{}", report.summary);
            for w in &report.warnings {
                println!("warning (the daemon starts anyway): {w}");
            }
            let needs: Vec<String> = report.needs.iter().map(ToString::to_string).collect();
            if needs.is_empty() {
                println!("capabilities needed: none");
            } else {
                println!("capabilities needed: {}", needs.join(", "));
            }
            for e in &report.errors {
                eprintln!("{e}");
            }
            if report.errors.is_empty() {
                println!("{}: ok", config.display());
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn daemon(config: &std::path::Path, control: &std::path::Path, log: Option<&str>) -> ExitCode {
    logging::init(log);
    let signals = match vmkstack_stack::daemon::shutdown_on_signals() {
        Ok(s) => s,
        Err(e) => {
            logging::fatal(&format!("vmkstack: cannot install signal handlers: {e}"));
            return ExitCode::FAILURE;
        }
    };
    match vmkstack_stack::daemon::run(config, control, signals) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            logging::fatal(&format!("vmkstack: {}", chain(&e)));
            ExitCode::FAILURE
        }
    }
}

/// `vmkstack generate completions|man DIR`.
fn generate(what: Generate) -> ExitCode {
    let (dir, result) = match what {
        Generate::Completions { dir } => {
            let r = generate::completions(&dir);
            (dir, r)
        }
        Generate::Man { dir } => {
            let r = generate::man_pages(&dir);
            (dir, r)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vmkstack generate: {}: {e}", dir.display());
            ExitCode::FAILURE
        }
    }
}

/// Runs a native client command against the daemon at `control`, on netstack `netstack`
/// (`-N`; `None`: the default one).
fn client_on(
    control: &Path,
    netstack: Option<&str>,
    command: impl FnOnce(&mut dyn Control, &mut Console<'_>) -> Result<(), CliError>,
) -> ExitCode {
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr());
    let mut console = Console {
        out: &mut out,
        err: &mut err,
    };
    let result = with_daemon("vmkstack", control, |ctl| {
        ctl.set_netstack(netstack.map(str::to_string));
        command(ctl, &mut console)
    });
    console.finish(result).into()
}

/// Runs a native client command against the daemon at `control`.
fn client(
    control: &Path,
    command: impl FnOnce(&mut dyn Control, &mut Console<'_>) -> Result<(), CliError>,
) -> ExitCode {
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr());
    let mut console = Console {
        out: &mut out,
        err: &mut err,
    };
    let result = with_daemon("vmkstack", control, |ctl| command(ctl, &mut console));
    console.finish(result).into()
}

/// Runs personality `p` on `argv` (its own name first).
fn run_personality(p: Personality, argv: Vec<OsString>, control: &Path) -> ExitCode {
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr());
    let mut console = Console {
        out: &mut out,
        err: &mut err,
    };
    let exit: Exit = personality::run(p, argv, control, &mut console);
    exit.into()
}

/// Runs the `vmkstack` binary on `argv` (the program path first) and gives its exit status.
pub fn run(argv: Vec<OsString>) -> ExitCode {
    let mut argv = argv;
    // Invoked through a symlink named after an ESX command: that command's argv, as on ESX.
    if let Some(p) = argv.first().and_then(|a| Personality::from_argv0(a)) {
        argv[0] = OsString::from(p.name());
        return run_personality(p, argv, &control_path_from_env(None));
    }
    let cli = Cli::parse_from(argv);
    let control = control_path_from_env(cli.control.as_deref());
    let pass = |p: Personality, args: PassThrough| {
        run_personality(p, personality::subcommand_argv(p, args.args), &control)
    };
    match cli.command {
        Command::Check {
            config,
            lookups,
            json,
            ..
        } => match check(&config, &lookups) {
            Ok(report) => {
                if json {
                    match serde_json::to_string_pretty(&report) {
                        Ok(s) => println!("{s}"),
                        Err(e) => {
                            eprintln!("vmkstack: cannot encode JSON: {e}");
                            return ExitCode::FAILURE;
                        }
                    }
                } else {
                    print!("{}", report.to_text());
                    for p in &report.problems {
                        eprintln!("{p}");
                    }
                }
                if report.ok() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                }
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        Command::Daemon {
            config,
            check_config: true,
            ..
        } => check_config(&config),
        Command::Daemon {
            config,
            control,
            log,
            ..
        } => daemon(&config, &control, log.as_deref()),
        Command::Vmknic(on) => client_on(&control, on.netstack.as_deref(), |ctl, c| {
            run_vmknic(&on.command, ctl, c)
        }),
        Command::Route(on) => client_on(&control, on.netstack.as_deref(), |ctl, c| {
            run_route(&on.command, ctl, c)
        }),
        Command::Neighbor(on) => client_on(&control, on.netstack.as_deref(), |ctl, c| {
            run_neighbor(&on.command, ctl, c)
        }),
        Command::Netstack(on) => client_on(&control, on.netstack.as_deref(), |ctl, c| {
            run_netstack(&on.command, ctl, c)
        }),
        Command::Stats(args) => client(&control, |ctl, c| match args.interval {
            Some(every) => top::run_stats_interval(every, args.count, ctl, c),
            None if args.runtime => top::run_runtime(args.json, ctl, c),
            None => run_stats(args.json, ctl, c),
        }),
        Command::Top(args) => client(&control, |ctl, c| top::run_top(&args, ctl, c)),
        Command::Forward(cmd) => client_on(&control, cmd.netstack.as_deref(), |ctl, c| {
            run_forward(&cmd, ctl, c)
        }),
        Command::Probe(on) => client_on(&control, on.netstack.as_deref(), |ctl, c| {
            run_probe(&on.command, ctl, c)
        }),
        Command::Reload => client(&control, run_reload),
        Command::Demo => demo(),
        Command::EsxcfgRoute(args) => pass(Personality::EsxcfgRoute, args),
        Command::EsxcfgVmknic(args) => pass(Personality::EsxcfgVmknic, args),
        Command::Vmkping(args) => pass(Personality::Vmkping, args),
        Command::Esxcli(args) => pass(Personality::Esxcli, args),
        Command::Nc(args) => pass(Personality::Nc, args),
        Command::Generate(what) => generate(what),
        Command::PktcapUw(args) | Command::Capture(args) => pass(Personality::PktcapUw, args),
    }
}
