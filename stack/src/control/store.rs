//! The configuration file as the single store (like esx.conf): every accepted change is
//! written atomically (temporary file, fsync, rename, fsync of the directory) before it is
//! acknowledged, and a copy of the last configuration that loaded or was saved is kept beside
//! it.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tracing::info;
use vmkstack_api::{ErrorKind, RemoteError};

use crate::config::Config;

/// Writes `text` to `path` atomically: a temporary file beside it, fsync, rename over it,
/// fsync of the directory. After a crash the file is the old or the new version, whole.
pub fn save_atomic(path: &Path, text: &str) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Where the last configuration that loaded (or was saved) is kept: `FILE.last-good`.
pub fn last_good(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".last-good");
    PathBuf::from(p)
}

/// Removes `.NAME.tmp-PID` files a killed daemon left beside the configuration (only those:
/// the name pattern is ours).
pub fn remove_stale_temp_files(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let prefix = format!(".{}.tmp-", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        let ours = n
            .strip_prefix(&prefix)
            .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()));
        if ours {
            let _ = std::fs::remove_file(e.path());
            info!(file = %e.path().display(), "removed a temporary file left by a killed daemon");
        }
    }
}

/// Saves `cfg` to `path` (atomically), then as the last good copy. On failure nothing changed
/// on disk, and the error says so.
pub fn commit(path: &Path, cfg: &Config) -> Result<(), RemoteError> {
    let text = cfg.to_toml();
    save_atomic(path, &text).map_err(|e| {
        RemoteError::new(
            ErrorKind::Io,
            format!("cannot save {}: {e}; nothing changed", path.display()),
        )
    })?;
    let _ = save_atomic(&last_good(path), &text);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_save_atomic_replaces_whole_file() {
        let dir = std::env::temp_dir().join(format!("vmks-save-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("c.toml");
        save_atomic(&p, "a = 1\n").unwrap();
        save_atomic(&p, "b = 2\n").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "b = 2\n");
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
