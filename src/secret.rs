//! A string that never prints: API client secrets and bearer tokens travel in this type.

use std::fmt;

/// A secret value (OAuth2 client secret, access token).
///
/// `Debug` and `Display` print `***`, and there is no `Serialize`, so the value cannot leak through
/// logs, `{:?}` of a config struct, error messages or web pages. Code that truly needs the value
/// (building an `Authorization` header) calls [`Secret::expose`], which is easy to grep for.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The wrapped value. Call sites are the only places the secret leaves this type.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when the value is empty (a blank secret file, say).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "*** ***");
        assert_eq!(s.expose(), "hunter2");
    }
}
