//! Kubernetes resource quantities (`500m`, `1.5Gi`, `2e3`), compared exactly.

use std::collections::BTreeMap;
use std::fmt;

use initguard_core::k8s_openapi::apimachinery::pkg::api::resource::Quantity as QuantityText;

/// Requests or limits of a container, as k8s-openapi reads them.
pub type ResourceList = BTreeMap<String, QuantityText>;

/// The regular expression the apiserver quotes when a quantity does not parse.
pub const QUANTITY_PATTERN: &str = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$";

/// A quantity in billionths of a unit: exact for every suffix down to `n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Quantity(i128);

const NANO: i128 = 1_000_000_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("quantities must match the regular expression '{QUANTITY_PATTERN}'")]
pub struct QuantityError;

impl Quantity {
    pub const ZERO: Self = Self(0);

    pub fn parse(text: &str) -> Result<Self, QuantityError> {
        let (negative, unsigned) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        let number_end = unsigned
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(unsigned.len());
        let (number, suffix) = unsigned.split_at(number_end);
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
            return Err(QuantityError);
        }
        let digits = |s: &str| -> Result<i128, QuantityError> {
            if s.is_empty() {
                Ok(0)
            } else {
                s.parse::<i128>().map_err(|_| QuantityError)
            }
        };
        // Precision below a billionth is dropped, rounding up as the apiserver does.
        let kept = &fraction[..fraction.len().min(9)];
        let mut nanos = digits(whole)?
            .checked_mul(NANO)
            .and_then(|w| w.checked_add(digits(kept).ok()? * 10_i128.pow(9 - kept.len() as u32)))
            .ok_or(QuantityError)?;
        if fraction.len() > 9 && fraction[9..].bytes().any(|b| b != b'0') {
            nanos += 1;
        }
        let scaled = apply_suffix(nanos, suffix)?;
        Ok(Self(if negative { -scaled } else { scaled }))
    }

    pub fn is_negative(self) -> bool {
        self.0 < 0
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// `Quantity.Value`: whole units, rounded up.
    pub fn ceil_units(self) -> i128 {
        ceil_div(self.0, NANO)
    }

    /// `Quantity.MilliValue`: thousandths, rounded up.
    pub fn ceil_millis(self) -> i128 {
        ceil_div(self.0, 1_000_000)
    }

    /// `self` divided by `other`, for ratios in messages and settings.
    pub fn ratio(self, other: Self) -> f64 {
        self.0 as f64 / other.0 as f64
    }
}

/// `a / b` rounded towards positive infinity, for `b > 0`.
fn ceil_div(a: i128, b: i128) -> i128 {
    -(-a).div_euclid(b)
}

fn apply_suffix(nanos: i128, suffix: &str) -> Result<i128, QuantityError> {
    let multiply = |factor: i128| nanos.checked_mul(factor).ok_or(QuantityError);
    let divide = |divisor: i128| Ok((nanos + divisor - 1) / divisor);
    match suffix {
        "" => Ok(nanos),
        "n" => divide(NANO),
        "u" => divide(1_000_000),
        "m" => divide(1_000),
        "k" => multiply(1_000),
        "M" => multiply(1_000_000),
        "G" => multiply(NANO),
        "T" => multiply(1_000_000_000_000),
        "P" => multiply(1_000_000_000_000_000),
        "E" => multiply(1_000_000_000_000_000_000),
        "Ki" => multiply(1 << 10),
        "Mi" => multiply(1 << 20),
        "Gi" => multiply(1 << 30),
        "Ti" => multiply(1 << 40),
        "Pi" => multiply(1 << 50),
        "Ei" => multiply(1 << 60),
        exponent => {
            let digits = exponent.strip_prefix(['e', 'E']).ok_or(QuantityError)?;
            let power: i32 = digits.parse().map_err(|_| QuantityError)?;
            if power >= 0 {
                multiply(10_i128.checked_pow(power as u32).ok_or(QuantityError)?)
            } else {
                divide(
                    10_i128
                        .checked_pow(power.unsigned_abs())
                        .ok_or(QuantityError)?,
                )
            }
        }
    }
}

/// A quantity and the notation it was written in, which is how the apiserver prints it back in
/// its messages: apimachinery `pkg/api/resource/quantity.go` `Quantity.String` and
/// `CanonicalizeBytes` (`1.5` is `1500m`, `2048Mi` is `2Gi`, `1.5Gi` is `1536Mi`, `1e3` stays
/// `1e3`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub value: Quantity,
    notation: Notation,
}

/// `resource.Format`: which suffix family the text used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Notation {
    DecimalSi,
    BinarySi,
    DecimalExponent,
}

impl Written {
    pub fn parse(text: &str) -> Result<Self, QuantityError> {
        let value = Quantity::parse(text)?;
        let suffix = text.trim_start_matches([
            '+', '-', '.', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9',
        ]);
        let notation = if suffix.ends_with('i') {
            Notation::BinarySi
        } else if suffix.len() > 1 && suffix.starts_with(['e', 'E']) {
            Notation::DecimalExponent
        } else {
            Notation::DecimalSi
        };
        Ok(Self { value, notation })
    }
}

impl fmt::Display for Written {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.value.0;
        if nanos == 0 {
            return f.write_str("0");
        }
        // Binary notation is kept only for whole values of at least 1024 (in magnitude).
        let binary =
            self.notation == Notation::BinarySi && nanos.abs() >= 1024 * NANO && nanos % NANO == 0;
        if binary {
            let (mut amount, mut power) = (nanos / NANO, 0);
            while amount % 1024 == 0 && power < 6 {
                amount /= 1024;
                power += 1;
            }
            let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][power];
            return write!(f, "{amount}{suffix}");
        }
        // `AsCanonicalBytes`: drop trailing zeros, then step down to an exponent that is a
        // multiple of three.
        let (mut amount, mut exponent) = (nanos, -9_i32);
        while amount % 10 == 0 {
            amount /= 10;
            exponent += 1;
        }
        match exponent.rem_euclid(3) {
            1 => (amount, exponent) = (amount * 10, exponent - 1),
            2 => (amount, exponent) = (amount * 100, exponent - 2),
            _ => {}
        }
        let decimal = match exponent {
            -9 => Some("n"),
            -6 => Some("u"),
            -3 => Some("m"),
            0 => Some(""),
            3 => Some("k"),
            6 => Some("M"),
            9 => Some("G"),
            12 => Some("T"),
            15 => Some("P"),
            18 => Some("E"),
            _ => None,
        };
        match (self.notation, decimal) {
            (Notation::DecimalExponent, _) | (_, None) if exponent != 0 => {
                write!(f, "{amount}e{exponent}")
            }
            (_, suffix) => write!(f, "{amount}{}", suffix.unwrap_or_default()),
        }
    }
}

impl std::ops::Add for Quantity {
    type Output = Self;
    fn add(self, other: Self) -> Self {
        Self(self.0.saturating_add(other.0))
    }
}

impl std::iter::Sum for Quantity {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        iter.fold(Self::ZERO, |a, b| a + b)
    }
}

/// Renders in the most readable exact form: whole units, then `m`, then `n`.
impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 % NANO == 0 {
            write!(f, "{}", self.0 / NANO)
        } else if self.0 % 1_000_000 == 0 {
            write!(f, "{}m", self.0 / 1_000_000)
        } else {
            write!(f, "{}n", self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_suffix_exactly() {
        let q = |s| Quantity::parse(s).unwrap();
        assert_eq!(q("1"), q("1000m"));
        assert_eq!(q("0.5"), q("500m"));
        assert_eq!(q("1Ki"), q("1024"));
        assert_eq!(q("1Gi"), q("1073741824"));
        assert_eq!(q("1G"), q("1e9"));
        assert_eq!(q("1k"), q("1E3"));
        assert_eq!(q("100u"), q("100000n"));
        assert_eq!(q("1.5Mi"), q("1572864"));
        assert!(q("2") > q("1999m"));
        assert!(q("-1").is_negative());
        assert_eq!(q("+3"), q("3"));
        assert_eq!(q(".5"), q("500m"));
        assert_eq!(q("250m").to_string(), "250m");
        assert_eq!(q("2Ki").to_string(), "2048");
    }

    /// apimachinery `pkg/api/resource/quantity_test.go` `TestQuantityString` and
    /// `TestQuantityParseEmit`: the text each quantity is printed as.
    #[test]
    fn prints_as_the_apiserver_prints() {
        let printed = |s: &str| Written::parse(s).unwrap().to_string();
        for (text, canonical) in [
            ("1.5", "1500m"),
            ("0.5", "500m"),
            ("1000m", "1"),
            ("2000", "2k"),
            ("1500", "1500"),
            ("1Ki", "1Ki"),
            ("1024", "1024"),
            ("2048Mi", "2Gi"),
            ("1.5Gi", "1536Mi"),
            ("0.5Ki", "512"),
            ("1.5Ki", "1536"),
            ("1e3", "1e3"),
            ("1E3", "1e3"),
            ("1.5e3", "1500"),
            ("100u", "100u"),
            ("0.0001", "100u"),
            ("-1", "-1"),
            ("-1.5", "-1500m"),
            ("0", "0"),
            ("0Mi", "0"),
            ("1E", "1E"),
            ("12e6", "12e6"),
        ] {
            assert_eq!(printed(text), canonical, "{text}");
        }
    }

    #[test]
    fn rejects_what_the_apiserver_rejects() {
        for bad in ["", "abc", "1.2.3", "1Qi", "1e", "m", "1 Gi", "--1", "1ee3"] {
            assert_eq!(Quantity::parse(bad), Err(QuantityError), "{bad:?}");
        }
    }
}
