//! Command line and environment configuration.

use std::time::Duration;

/// Parses a Prometheus-style duration: one or more `<number><unit>` parts, units `ms`, `s`, `m`,
/// `h`, `d`, `w` (e.g. `30s`, `5m`, `1h30m`, `250ms`). A bare `0` is zero.
///
/// Written here rather than pulled in as a crate because the grammar is a dozen lines and the
/// error message must name the flag that carried the bad value, which the caller adds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return Err("empty duration".into());
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!(
                "invalid duration {text:?}: expected a number, e.g. 30s or 5m"
            ));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("invalid duration {text:?}: number too large"))?;
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
            "" => {
                return Err(format!(
                    "invalid duration {text:?}: missing unit (ms, s, m, h, d, w)"
                ));
            }
            other => return Err(format!("invalid duration {text:?}: unknown unit {other:?}")),
        };
        let part = number
            .checked_mul(millis_per_unit)
            .ok_or_else(|| format!("invalid duration {text:?}: too large"))?;
        total = total
            .checked_add(Duration::from_millis(part))
            .ok_or_else(|| format!("invalid duration {text:?}: too large"))?;
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
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        for bad in ["", "5", "m", "5x", "-5s", "1.5s", "99999999999999999999s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
