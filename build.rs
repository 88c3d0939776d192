//! Build script of the `vmkstack` binary: records the git commit it is built from, for
//! `vmkstack --version`.
//!
//! `VMKSTACK_GIT_COMMIT` set in the environment wins (a build from a source tarball or a
//! package builder that knows the commit); otherwise `git rev-parse` in this source tree;
//! otherwise (not a git checkout, or no git) "unknown". The build never fails over it.

use std::path::Path;
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn main() {
    println!("cargo:rerun-if-env-changed=VMKSTACK_GIT_COMMIT");
    let dir = std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let commit = match std::env::var("VMKSTACK_GIT_COMMIT") {
        Ok(c) if !c.trim().is_empty() => c.trim().to_string(),
        _ => {
            // Rebuild when HEAD moves: HEAD itself, the branch it points to, packed refs.
            // (A path that does not exist would rerun the script on every build: skip it.)
            let branch = git(&dir, &["symbolic-ref", "-q", "HEAD"]);
            for path in ["HEAD", "packed-refs"].into_iter().chain(branch.as_deref()) {
                let abs = ["rev-parse", "--path-format=absolute", "--git-path", path];
                if let Some(p) = git(&dir, &abs).filter(|p| Path::new(p).exists()) {
                    println!("cargo:rerun-if-changed={p}");
                }
            }
            git(&dir, &["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".to_string())
        }
    };
    println!("cargo:rustc-env=VMKSTACK_GIT_COMMIT={commit}");
}
