//! Prometheus-style durations (`30s`, `5m`, `1h30m`, `250ms`), as every duration flag and the web
//! configuration file write them.
//!
//! Written here rather than pulled in as a crate because the grammar is a dozen lines, and kept
//! apart from [`crate::config`] because the web configuration file reads durations too: neither
//! should have to know the other.

use std::time::Duration;

/// Why a text is not a duration; callers add which flag or key carried it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Nothing was given.
    #[error("empty duration")]
    Empty,
    /// A part does not start with a number.
    #[error("invalid duration {0:?}: expected a number, e.g. 30s or 5m")]
    NoNumber(String),
    /// A number has no unit after it.
    #[error("invalid duration {0:?}: missing unit (ms, s, m, h, d, w)")]
    NoUnit(String),
    /// A unit that is not one of `ms`, `s`, `m`, `h`, `d`, `w`.
    #[error("invalid duration {text:?}: unknown unit {unit:?}")]
    UnknownUnit {
        /// The whole text.
        text: String,
        /// The unit found.
        unit: String,
    },
    /// The duration does not fit.
    #[error("invalid duration {0:?}: too large")]
    TooLarge(String),
}

/// Parses a Prometheus-style duration: one or more `<number><unit>` parts, units `ms`, `s`, `m`,
/// `h`, `d`, `w` (e.g. `30s`, `5m`, `1h30m`, `250ms`). A bare `0` is zero.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return Err(DurationError::Empty);
    }
    let too_large = || DurationError::TooLarge(text.to_owned());
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(DurationError::NoNumber(text.to_owned()));
        }
        let number: u64 = rest[..digits].parse().map_err(|_| too_large())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let millis_per_unit: u64 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            "" => return Err(DurationError::NoUnit(text.to_owned())),
            other => {
                return Err(DurationError::UnknownUnit {
                    text: text.to_owned(),
                    unit: other.to_owned(),
                });
            }
        };
        let part = number.checked_mul(millis_per_unit).ok_or_else(too_large)?;
        total = total
            .checked_add(Duration::from_millis(part))
            .ok_or_else(too_large)?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_prometheus() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration(" 0 "), Ok(Duration::ZERO));
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
        assert_eq!(parse_duration("5"), Err(DurationError::NoUnit("5".into())));
        assert_eq!(
            parse_duration("m"),
            Err(DurationError::NoNumber("m".into()))
        );
        assert_eq!(
            parse_duration("5x"),
            Err(DurationError::UnknownUnit {
                text: "5x".into(),
                unit: "x".into()
            })
        );
        for bad in ["-5s", "1.5s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be refused");
        }
        assert_eq!(
            parse_duration("99999999999999999999s"),
            Err(DurationError::TooLarge("99999999999999999999s".into()))
        );
    }
}
