//! YAML 1.1 scalar resolution as kubectl performs it.
//!
//! kubectl reads manifests with sigs.k8s.io/yaml, whose `goyaml.v2` fork resolves untagged plain
//! scalars in `resolve.go` (`resolve`, `resolveMapList`, `yamlStyleFloat`): YAML 1.1 booleans
//! (`yes`, `on`, `off`, `y`, …), nulls (`~`, `null`, empty), Go's `strconv.ParseInt(s, 0, 64)`
//! integers after removing `_` (so `0400` is octal, `0x1F` hex, `0b101` binary), then floats.
//! Timestamps stay strings when decoded into `interface{}` (`decode.go`, `(*decoder).scalar`).
//! This module mirrors those functions; the tests cite them case by case.

/// What a scalar resolves to before it becomes JSON.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Null,
    Bool(bool),
    Int(i64),
    /// An integer above `i64::MAX` that fits `u64` (`strconv.ParseUint`).
    Uint(u64),
    /// An integer beyond 64 bits (`math/big`), kept as the nearest float.
    BigInt(f64),
    Float(f64),
    String(String),
}

/// Why a tagged scalar could not be resolved (`resolve`'s deferred check).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagMismatch {
    pub message: String,
}

const CORE: &str = "tag:yaml.org,2002:";

/// Resolves one scalar: `tag` is the long form (`tag:yaml.org,2002:int`, `!local`) or `None`,
/// `plain` whether it was written without quotes or block indicators.
pub fn resolve(value: &str, plain: bool, tag: Option<&str>) -> Result<Scalar, TagMismatch> {
    let Some(tag) = tag else {
        // decode.go (*decoder).scalar: `n.tag == "" && !n.implicit` is a string.
        return Ok(if plain {
            resolve_untagged(value)
        } else {
            Scalar::String(value.to_owned())
        });
    };
    let Some(short) = tag.strip_prefix(CORE) else {
        // Local and non-specific tags are not resolvable (`resolvableTag`): the text as is.
        return Ok(Scalar::String(value.to_owned()));
    };
    match short {
        "binary" => Ok(Scalar::String(binary(value)?)),
        "bool" | "int" | "float" | "null" => {
            let resolved = resolve_untagged(value);
            let matches = matches!(
                (short, &resolved),
                ("bool", Scalar::Bool(_))
                    | ("int", Scalar::Int(_) | Scalar::Uint(_) | Scalar::BigInt(_))
                    | ("float", Scalar::Float(_))
                    | ("null", Scalar::Null)
            );
            match (short, resolved) {
                (_, resolved) if matches => Ok(resolved),
                // An integer tagged !!float becomes a float.
                ("float", Scalar::Int(i)) => Ok(Scalar::Float(i as f64)),
                (_, resolved) => Err(TagMismatch {
                    message: format!(
                        "cannot decode {} `{value}` as a !!{short}",
                        short_tag(&resolved)
                    ),
                }),
            }
        }
        // !!str, !!timestamp (a string in `interface{}`), and !!map, !!seq, !!merge and
        // unknown core tags (not resolvable): the text as is.
        _ => Ok(Scalar::String(value.to_owned())),
    }
}

fn short_tag(scalar: &Scalar) -> &'static str {
    match scalar {
        Scalar::Null => "!!null",
        Scalar::Bool(_) => "!!bool",
        Scalar::Int(_) | Scalar::Uint(_) | Scalar::BigInt(_) => "!!int",
        Scalar::Float(_) => "!!float",
        Scalar::String(_) => "!!str",
    }
}

fn binary(value: &str) -> Result<String, TagMismatch> {
    use base64::Engine as _;
    let compact: String = value.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .map_err(|_| TagMismatch {
            message: "!!binary value contains invalid base64 data".to_owned(),
        })
}

/// `resolve("", in)` of goyaml.v2's resolve.go for a plain scalar.
pub fn resolve_untagged(value: &str) -> Scalar {
    match value {
        // resolveMapList.
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Scalar::Bool(true);
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Scalar::Bool(false);
        }
        "" | "~" | "null" | "Null" | "NULL" => return Scalar::Null,
        ".nan" | ".NaN" | ".NAN" => return Scalar::Float(f64::NAN),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Scalar::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Scalar::Float(f64::NEG_INFINITY),
        _ => {}
    }
    match value.as_bytes()[0] {
        // hint '.': strconv.ParseFloat of the text as is.
        b'.' if is_yaml_style_float(value) => {
            if let Some(float) = parse_finite(value) {
                return Scalar::Float(float);
            }
        }
        // hints 'D' and 'S': integer, float (timestamps stay strings).
        b'0'..=b'9' | b'+' | b'-' => {
            let plain = value.replace('_', "");
            match go_parse_int(&plain) {
                Ok(int) => return Scalar::Int(int),
                Err(IntError::Range) => {
                    if let Some(uint) = go_parse_uint(&plain) {
                        return Scalar::Uint(uint);
                    }
                }
                Err(IntError::Syntax) => {}
            }
            if let Some(float) = is_yaml_style_float(&plain)
                .then(|| parse_finite(&plain))
                .flatten()
            {
                return Scalar::Float(float);
            }
            // strconv.ParseInt already reads `0b`/`-0b`; only overflow is left: math/big.
            if let Some(big) = big_int(&plain) {
                return Scalar::BigInt(big);
            }
        }
        _ => {}
    }
    Scalar::String(value.to_owned())
}

/// Go's ParseFloat fails on overflow (ErrRange) where Rust returns infinity.
fn parse_finite(text: &str) -> Option<f64> {
    text.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// `yamlStyleFloat`: `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`. For a text
/// starting with `.` this is also exactly what Go's ParseFloat accepts (no underscores without
/// a base prefix), which resolve.go's `.` hint calls.
fn is_yaml_style_float(text: &str) -> bool {
    let rest = text.strip_prefix(['+', '-']).unwrap_or(text);
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(at) => (&rest[..at], Some(&rest[at + 1..])),
        None => (rest, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some(("", fraction)) => !fraction.is_empty() && all_digits(fraction),
        Some((whole, fraction)) => !whole.is_empty() && all_digits(whole) && all_digits(fraction),
        None => !mantissa.is_empty() && all_digits(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
        !digits.is_empty() && all_digits(digits)
    });
    mantissa_ok && exponent_ok
}

fn all_digits(text: &str) -> bool {
    text.bytes().all(|b| b.is_ascii_digit())
}

enum IntError {
    Syntax,
    Range,
}

/// The base and digits of `strconv.ParseUint(s, 0, _)`'s prefix rules: `0x`, `0o`, `0b`, and
/// a leading `0` for octal.
fn base_and_digits(text: &str) -> Option<(u32, &str)> {
    let bytes = text.as_bytes();
    let (base, digits) = if bytes.len() >= 2 && bytes[0] == b'0' {
        match bytes[1] {
            b'x' | b'X' => (16, &text[2..]),
            b'o' | b'O' => (8, &text[2..]),
            b'b' | b'B' => (2, &text[2..]),
            _ => (8, &text[1..]),
        }
    } else {
        (10, text)
    };
    (!digits.is_empty() && digits.chars().all(|c| c.is_digit(base))).then_some((base, digits))
}

/// `strconv.ParseInt(s, 0, 64)`.
fn go_parse_int(text: &str) -> Result<i64, IntError> {
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (base, digits) = base_and_digits(unsigned).ok_or(IntError::Syntax)?;
    let magnitude = u64::from_str_radix(digits, base).map_err(|_| IntError::Range)?;
    if negative {
        if magnitude <= i64::MAX as u64 + 1 {
            Ok(magnitude.cast_signed().wrapping_neg())
        } else {
            Err(IntError::Range)
        }
    } else {
        i64::try_from(magnitude).map_err(|_| IntError::Range)
    }
}

/// `strconv.ParseUint(s, 0, 64)` (no sign).
fn go_parse_uint(text: &str) -> Option<u64> {
    let (base, digits) = base_and_digits(text)?;
    u64::from_str_radix(digits, base).ok()
}

/// `big.Int.SetString(s, 0)`, reached only when `strconv.ParseUint` failed with ErrRange (an
/// unsigned integer beyond 64 bits), as the nearest float.
fn big_int(text: &str) -> Option<f64> {
    let (base, digits) = base_and_digits(text)?;
    Some(digits.chars().fold(0.0_f64, |acc, c| {
        acc * f64::from(base) + f64::from(c.to_digit(base).unwrap_or_default())
    }))
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 32)`, which sigs.k8s.io/yaml uses to turn a float map
/// key into a JSON key (`convertToJSONableObject`), with its `.inf`/`-.inf`/`.nan` spellings.
pub fn float_key(value: f64) -> String {
    if value.is_nan() {
        return ".nan".to_owned();
    }
    if value.is_infinite() {
        return if value > 0.0 { ".inf" } else { "-.inf" }.to_owned();
    }
    let single = value as f32;
    if single.is_infinite() {
        return if single > 0.0 { ".inf" } else { "-.inf" }.to_owned();
    }
    if single == 0.0 {
        return if single.is_sign_negative() { "-0" } else { "0" }.to_owned();
    }
    // Shortest digits that read back as the same f32, and the decimal exponent.
    let scientific = format!("{:e}", single.abs());
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let exponent: i32 = exponent.parse().unwrap_or_default();
    let sign = if single < 0.0 { "-" } else { "" };
    // %e when the exponent is < -4 or >= 6 (the shortest form's precision for this choice).
    if !(-4..6).contains(&exponent) {
        let (first, rest) = digits.split_at(1);
        let dot = if rest.is_empty() { "" } else { "." };
        let exponent_sign = if exponent < 0 { '-' } else { '+' };
        return format!(
            "{sign}{first}{dot}{rest}e{exponent_sign}{:02}",
            exponent.abs()
        );
    }
    let point = exponent + 1;
    let text = if point <= 0 {
        format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
    } else if point as usize >= digits.len() {
        format!("{digits}{}", "0".repeat(point as usize - digits.len()))
    } else {
        let (whole, fraction) = digits.split_at(point as usize);
        format!("{whole}.{fraction}")
    };
    format!("{sign}{text}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every scalar form of goyaml.v2 `resolve.go` (`resolve`, `resolveMapList`,
    /// `yamlStyleFloat`), with what kubectl makes of it (checked against
    /// `kubectl annotate --local -o json`): sigs.k8s.io/yaml `goyaml.v2/decode_test.go` has the
    /// same forms in its `unmarshalTests` table.
    #[test]
    fn plain_scalars_resolve_as_goyaml_v2_does() {
        use Scalar::{Bool, Float, Int, Null, Uint};
        let string = |s: &str| Scalar::String(s.to_owned());
        let table: &[(&str, Scalar)] = &[
            // resolveMapList: YAML 1.1 booleans, every spelling it lists.
            ("y", Bool(true)),
            ("Y", Bool(true)),
            ("yes", Bool(true)),
            ("Yes", Bool(true)),
            ("YES", Bool(true)),
            ("true", Bool(true)),
            ("True", Bool(true)),
            ("TRUE", Bool(true)),
            ("on", Bool(true)),
            ("On", Bool(true)),
            ("ON", Bool(true)),
            ("n", Bool(false)),
            ("N", Bool(false)),
            ("no", Bool(false)),
            ("No", Bool(false)),
            ("NO", Bool(false)),
            ("false", Bool(false)),
            ("False", Bool(false)),
            ("FALSE", Bool(false)),
            ("off", Bool(false)),
            ("Off", Bool(false)),
            ("OFF", Bool(false)),
            // Spellings it does not list stay strings.
            ("yEs", string("yEs")),
            ("tRue", string("tRue")),
            ("oN", string("oN")),
            // Nulls.
            ("", Null),
            ("~", Null),
            ("null", Null),
            ("Null", Null),
            ("NULL", Null),
            ("nULL", string("nULL")),
            // ParseInt(s, 0, 64) after removing `_`.
            ("0", Int(0)),
            ("-0", Int(0)),
            ("00", Int(0)),
            ("12", Int(12)),
            ("+12", Int(12)),
            ("-12", Int(-12)),
            ("1_000", Int(1000)),
            ("1__0", Int(10)),
            ("0400", Int(256)),
            ("+0400", Int(256)),
            ("0o17", Int(15)),
            ("0O17", Int(15)),
            ("0x1F", Int(31)),
            ("0X1f", Int(31)),
            ("-0x1F", Int(-31)),
            ("0b101", Int(5)),
            ("-0b101", Int(-5)),
            ("9223372036854775807", Int(i64::MAX)),
            ("-9223372036854775808", Int(i64::MIN)),
            // ParseUint beyond int64.
            ("9223372036854775808", Uint(9_223_372_036_854_775_808)),
            ("0xFFFFFFFFFFFFFFFF", Uint(u64::MAX)),
            // ParseUint out of range: math/big (signed overflow of a hex form stays a string).
            (
                "0x10000000000000000",
                Scalar::BigInt(18_446_744_073_709_551_616.0),
            ),
            ("-0x10000000000000000", string("-0x10000000000000000")),
            // Not an integer, but yamlStyleFloat: a float.
            ("0800", Float(800.0)),
            ("09", Float(9.0)),
            ("1.0", Float(1.0)),
            ("1.", Float(1.0)),
            ("1e3", Float(1000.0)),
            ("1.5e+3", Float(1500.0)),
            ("+.5e2", Float(50.0)),
            ("-.5", Float(-0.5)),
            ("1_0.5", Float(10.5)),
            ("1.25_5", Float(1.255)),
            ("18446744073709551616", Float(18_446_744_073_709_551_616.0)),
            // Hint '.': ParseFloat of the text as is.
            (".5", Float(0.5)),
            (".5e1", Float(5.0)),
            (".", string(".")),
            ("._5", string("._5")),
            (".INf", string(".INf")),
            // Overflowing floats fail ParseFloat: strings.
            ("1e400", string("1e400")),
            // Leading underscores, words, times, dates and sexagesimals stay strings.
            ("_1", string("_1")),
            ("0x", string("0x")),
            ("0b", string("0b")),
            ("0b102", string("0b102")),
            ("-", string("-")),
            ("+", string("+")),
            ("1:20", string("1:20")),
            ("2001-12-14", string("2001-12-14")),
            (
                "2001-12-14t21:59:43.10-05:00",
                string("2001-12-14t21:59:43.10-05:00"),
            ),
            ("1.2.3", string("1.2.3")),
            ("10Mi", string("10Mi")),
            ("500m", string("500m")),
            ("--appendonly", string("--appendonly")),
            ("<<", string("<<")),
        ];
        for (text, expected) in table {
            assert_eq!(&resolve_untagged(text), expected, "{text:?}");
        }
    }

    #[test]
    fn special_floats_resolve_and_are_not_json() {
        for text in [".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"] {
            assert_eq!(
                resolve_untagged(text),
                Scalar::Float(f64::INFINITY),
                "{text}"
            );
        }
        for text in ["-.inf", "-.Inf", "-.INF"] {
            assert_eq!(resolve_untagged(text), Scalar::Float(f64::NEG_INFINITY));
        }
        for text in [".nan", ".NaN", ".NAN"] {
            assert!(matches!(resolve_untagged(text), Scalar::Float(f) if f.is_nan()));
        }
    }

    /// decode.go `(*decoder).scalar`: quoted and block scalars are strings; resolve.go's
    /// deferred check: a tag the value does not fit is an error, an int tagged !!float a float.
    #[test]
    fn quoted_and_tagged_scalars() {
        assert_eq!(
            resolve("0400", false, None),
            Ok(Scalar::String("0400".into()))
        );
        assert_eq!(
            resolve("12", true, Some("tag:yaml.org,2002:str")),
            Ok(Scalar::String("12".into()))
        );
        assert_eq!(
            resolve("12", true, Some("tag:yaml.org,2002:float")),
            Ok(Scalar::Float(12.0))
        );
        assert_eq!(
            resolve("yes", true, Some("tag:yaml.org,2002:bool")),
            Ok(Scalar::Bool(true))
        );
        assert_eq!(
            resolve("12", true, Some("!")),
            Ok(Scalar::String("12".into()))
        );
        assert_eq!(
            resolve("abc", true, Some("tag:yaml.org,2002:int")),
            Err(TagMismatch {
                message: "cannot decode !!str `abc` as a !!int".into()
            })
        );
        assert_eq!(
            resolve("aGVsbG8=", true, Some("tag:yaml.org,2002:binary")),
            Ok(Scalar::String("hello".into()))
        );
    }

    /// sigs.k8s.io/yaml `convertToJSONableObject`: float keys via
    /// `strconv.FormatFloat(k, 'g', -1, 32)`.
    #[test]
    fn float_keys_format_as_go_does() {
        for (value, expected) in [
            (1.5, "1.5"),
            (1.0, "1"),
            (0.1, "0.1"),
            (100_000.0, "100000"),
            (1_000_000.0, "1e+06"),
            (1_234_567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (0.000_01, "1e-05"),
            (-2.5, "-2.5"),
            (1e20, "1e+20"),
            (f64::INFINITY, ".inf"),
        ] {
            assert_eq!(float_key(value), expected, "{value}");
        }
    }
}
