//! TAP device naming rules (the device itself arrives with the data plane).

use thiserror::Error;

/// Longest Linux interface name (IFNAMSIZ - 1).
pub const MAX_IFNAME: usize = 15;

/// A TAP name the kernel would refuse.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TapNameError {
    /// Empty name.
    #[error("a TAP name must not be empty")]
    Empty,
    /// Longer than 15 bytes.
    #[error("TAP name `{0}` is {len} bytes; Linux allows at most 15", len = .0.len())]
    TooLong(String),
    /// A byte Linux refuses in interface names.
    #[error("TAP name `{0}` contains `/`, `:`, whitespace or NUL, which Linux refuses")]
    BadChar(String),
    /// `.` and `..` are reserved.
    #[error("TAP name `{0}` is reserved")]
    Reserved(String),
}

/// Checks a TAP name the way the kernel's `dev_valid_name` does, before any ioctl.
pub fn validate_tap_name(name: &str) -> Result<(), TapNameError> {
    if name.is_empty() {
        return Err(TapNameError::Empty);
    }
    if name.len() > MAX_IFNAME {
        return Err(TapNameError::TooLong(name.to_string()));
    }
    if name == "." || name == ".." {
        return Err(TapNameError::Reserved(name.to_string()));
    }
    if name
        .bytes()
        .any(|b| b == b'/' || b == b':' || b == 0 || b.is_ascii_whitespace())
    {
        return Err(TapNameError::BadChar(name.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_tap_names() {
        assert_eq!(validate_tap_name("vmk0"), Ok(()));
        assert_eq!(validate_tap_name("abcdefghijklmno"), Ok(()));
        let e = validate_tap_name("abcdefghijklmnop").unwrap_err();
        assert_eq!(
            e.to_string(),
            "TAP name `abcdefghijklmnop` is 16 bytes; Linux allows at most 15"
        );
        assert!(validate_tap_name("").is_err());
        assert!(validate_tap_name("a b").is_err());
        assert!(validate_tap_name("a/b").is_err());
        assert!(validate_tap_name("..").is_err());
    }
}
