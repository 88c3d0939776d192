//! `vmkstack generate completions|man DIR` (hidden): shell completions (clap_complete) and man
//! pages (clap_mangen) made from the same clap definitions the binary parses with, for
//! `vmkstack` and each ESX personality. `packaging/` holds their output, which
//! `tests/packaging.rs` compares with a fresh run so that the installed files never drift
//! from the binary.

use std::fs;
use std::io;
use std::path::Path;

use clap::{CommandFactory, ValueEnum};

use clap_complete::Shell;

use super::args::Cli;
use crate::personality::Personality;

/// The shells that get completions.
pub const SHELLS: [Shell; 3] = [Shell::Bash, Shell::Zsh, Shell::Fish];

/// The `vmkstack` command as completions and man pages describe it. The personalities'
/// subcommands carry their own parsers' definitions: the binary hands their argv on untouched,
/// so its own clap view of them is only "ARGS". The version is the package's alone, so that
/// the generated files do not change with every commit.
pub fn vmkstack_command() -> clap::Command {
    let mut cmd = Cli::command().version(env!("CARGO_PKG_VERSION"));
    for &p in Personality::value_variants() {
        cmd = cmd.mut_subcommand(p.name(), |sub| {
            let mut own = p.command().bin_name(format!("vmkstack {}", p.name()));
            if let Some(about) = sub.get_about() {
                own = own.about(about.clone());
            }
            if let Some(long_about) = sub.get_long_about() {
                own = own.long_about(long_about.clone());
            }
            own
        });
    }
    cmd
}

/// The commands that get a completion script and a man page of their own: `vmkstack` and
/// the personalities that are installed as symlinks (not `nc`, which would shadow netcat).
pub fn commands() -> Vec<(&'static str, clap::Command)> {
    let mut all = vec![("vmkstack", vmkstack_command())];
    for p in Personality::SYMLINKS {
        all.push((p.name(), p.command().version(env!("CARGO_PKG_VERSION"))));
    }
    all
}

/// The file a completion script for `name` goes in, under its shell's directory.
pub fn completion_file(shell: Shell, name: &str) -> String {
    match shell {
        Shell::Zsh => format!("_{name}"),
        Shell::Fish => format!("{name}.fish"),
        _ => name.to_string(),
    }
}

/// Writes DIR/bash/NAME, DIR/zsh/_NAME and DIR/fish/NAME.fish for every command.
pub fn completions(dir: &Path) -> io::Result<()> {
    for shell in SHELLS {
        let sub = dir.join(shell.to_string());
        fs::create_dir_all(&sub)?;
        for (name, mut cmd) in commands() {
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut cmd, name, &mut buf);
            fs::write(sub.join(completion_file(shell, name)), buf)?;
        }
    }
    Ok(())
}

/// Writes NAME.1 for every command and each of its visible subcommands
/// (`vmkstack-route-add.1`, `esxcli-network-ip-route-ipv4-list.1`, ...).
pub fn man_pages(dir: &Path) -> io::Result<()> {
    fn page(cmd: clap::Command, dir: &Path) -> io::Result<()> {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned() {
            page(sub, dir)?;
        }
        clap_mangen::Man::new(cmd)
            .source(concat!("vmkstack ", env!("CARGO_PKG_VERSION")))
            .manual("vmkstack")
            .generate_to(dir)
            .map(drop)
    }
    fs::create_dir_all(dir)?;
    for (_, cmd) in commands() {
        let mut cmd = cmd.disable_help_subcommand(true);
        cmd.build();
        page(cmd, dir)?;
    }
    Ok(())
}
