//! Human-friendly sizes ("128MiB"), durations ("30s"), link rates
//! ("100Mbit") and percentages ("1%") shared by the CLI, the peer and the
//! scenario language.

use serde::{Deserialize, Deserializer, de};
use std::fmt;
use std::time::Duration;

/// Parses `"512MiB"`, `"4 KiB"`, `"1GB"`, `"1000"` into bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("`{text}` is not a size (try \"512MiB\" or a byte count)"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        other => {
            return Err(format!(
                "`{text}`: unknown size unit `{other}` (use B, KiB, MiB, GiB, KB, MB, GB)"
            ));
        }
    };
    let bytes = value * mult as f64;
    if bytes.fract() != 0.0 || bytes < 0.0 {
        return Err(format!("`{text}` is not a whole number of bytes"));
    }
    Ok(bytes as u64)
}

/// Parses `"500ms"`, `"30s"`, `"2m"`, `"1.5s"`; a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (try \"30s\" or \"500ms\")"))?;
    let secs = match unit.trim() {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" | "min" => value * 60.0,
        other => {
            return Err(format!(
                "`{text}`: unknown duration unit `{other}` (use ms, s, m)"
            ));
        }
    };
    Ok(Duration::from_secs_f64(secs))
}

/// Parses a link rate, `"100Mbit"`, `"1.5Gbit"`, `"800kbit"`, `"10MiB/s"`,
/// into bits per second. Units follow tc: `bit` suffixes are decimal bits,
/// `B/s` suffixes bytes (KiB/s, MiB/s binary).
pub fn parse_rate(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("`{text}` is not a rate (try \"100Mbit\")"))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "bit" | "bps" => 1.0,
        "kbit" => 1e3,
        "mbit" => 1e6,
        "gbit" => 1e9,
        "b/s" => 8.0,
        "kb/s" => 8e3,
        "mb/s" => 8e6,
        "gb/s" => 8e9,
        "kib/s" => 8.0 * 1024.0,
        "mib/s" => 8.0 * 1024.0 * 1024.0,
        "gib/s" => 8.0 * 1024.0 * 1024.0 * 1024.0,
        "" => return Err(format!("`{text}`: a rate needs a unit (e.g. \"100Mbit\")")),
        other => {
            return Err(format!(
                "`{text}`: unknown rate unit `{other}` (use bit, kbit, Mbit, Gbit or KiB/s, MiB/s)"
            ));
        }
    };
    let bits = value * mult;
    if !bits.is_finite() || bits < 1.0 {
        return Err(format!("`{text}` is not a usable rate (at least 1bit)"));
    }
    Ok(bits.round() as u64)
}

/// Parses a percentage, `"1%"`, `"0.1%"`, into a fraction (`0.01`). The `%`
/// is required, so `"1"` cannot be mistaken for 100 %.
pub fn parse_percent(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let num = t
        .strip_suffix('%')
        .ok_or_else(|| format!("`{text}` is not a percentage (write it with %, e.g. \"1%\")"))?;
    let value: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a percentage (e.g. \"0.5%\")"))?;
    if !(0.0..=100.0).contains(&value) {
        return Err(format!("`{text}` is not between 0% and 100%"));
    }
    Ok(value / 100.0)
}

/// A byte count written as a number or a string with a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size(pub u64);

/// A duration written as seconds (number) or a string with a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span(pub Duration);

struct SizeVisitor;
impl de::Visitor<'_> for SizeVisitor {
    type Value = Size;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a size: a byte count or a string like \"128MiB\"")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Size, E> {
        Ok(Size(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Size, E> {
        u64::try_from(v)
            .map(Size)
            .map_err(|_| E::custom("a size cannot be negative"))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Size, E> {
        if v >= 0.0 && v.fract() == 0.0 {
            Ok(Size(v as u64))
        } else {
            Err(E::custom(format!("{v} is not a whole number of bytes")))
        }
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Size, E> {
        parse_size(v).map(Size).map_err(E::custom)
    }
}
impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SizeVisitor)
    }
}

struct SpanVisitor;
impl de::Visitor<'_> for SpanVisitor {
    type Value = Span;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a duration: seconds as a number or a string like \"30s\"")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Span, E> {
        Ok(Span(Duration::from_secs(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Span, E> {
        u64::try_from(v)
            .map(|s| Span(Duration::from_secs(s)))
            .map_err(|_| E::custom("a duration cannot be negative"))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Span, E> {
        if v >= 0.0 && v.is_finite() {
            Ok(Span(Duration::from_secs_f64(v)))
        } else {
            Err(E::custom(format!("{v} is not a duration")))
        }
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Span, E> {
        parse_duration(v).map(Span).map_err(E::custom)
    }
}
impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SpanVisitor)
    }
}

/// A link rate in bits per second, written as a string like `"100Mbit"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate(pub u64);

/// A fraction written as a percentage string like `"1%"`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percent(pub f64);

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Only strings: a bare number would leave its unit to guesswork.
        let text = String::deserialize(d)?;
        parse_rate(&text).map(Rate).map_err(de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        parse_percent(&text).map(Percent).map_err(de::Error::custom)
    }
}

/// Formats a byte count for people: `134217728` → `128 MiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else if value.fract() == 0.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_and_decimal_units() {
        assert_eq!(parse_size("128MiB"), Ok(128 << 20));
        assert_eq!(parse_size("4 KiB"), Ok(4096));
        assert_eq!(parse_size("1GB"), Ok(1_000_000_000));
        assert_eq!(parse_size("1.5KiB"), Ok(1536));
        assert_eq!(parse_size("77"), Ok(77));
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("0.3B").is_err());
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("3 fortnights").is_err());
    }

    #[test]
    fn rates_parse_as_bits_per_second() {
        assert_eq!(parse_rate("100Mbit"), Ok(100_000_000));
        assert_eq!(parse_rate("1.5Gbit"), Ok(1_500_000_000));
        assert_eq!(parse_rate("800kbit"), Ok(800_000));
        assert_eq!(parse_rate("1MiB/s"), Ok(8 * 1024 * 1024));
        assert_eq!(parse_rate("10 MB/s"), Ok(80_000_000));
        assert!(parse_rate("100").is_err(), "a bare number has no unit");
        assert!(parse_rate("100Mfurlongs").is_err());
        assert!(parse_rate("0bit").is_err());
    }

    #[test]
    fn percentages_parse_as_fractions() {
        assert_eq!(parse_percent("1%"), Ok(0.01));
        assert_eq!(parse_percent("0.1%"), Ok(0.001));
        assert_eq!(parse_percent(" 100 %"), Ok(1.0));
        assert!(parse_percent("1").is_err(), "the % sign is required");
        assert!(parse_percent("101%").is_err());
        assert!(parse_percent("-1%").is_err());
        assert!(parse_percent("x%").is_err());
    }

    #[test]
    fn rates_and_percentages_deserialize_from_strings_only() {
        let r: Rate = serde_json::from_str("\"100Mbit\"").unwrap();
        assert_eq!(r, Rate(100_000_000));
        assert!(serde_json::from_str::<Rate>("100").is_err());
        let p: Percent = serde_json::from_str("\"0.5%\"").unwrap();
        assert_eq!(p, Percent(0.005));
        assert!(serde_json::from_str::<Percent>("0.5").is_err());
        assert!(serde_json::from_str::<Percent>("\"150%\"").is_err());
    }

    #[test]
    fn human_bytes_rounds_sensibly() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(128 << 20), "128 MiB");
        assert_eq!(human_bytes(1536), "1.5 KiB");
    }
}
