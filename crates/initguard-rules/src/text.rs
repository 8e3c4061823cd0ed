//! The apiserver's name rules, with its message texts.

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`; the length limit is checked apart, as the apiserver does.
pub fn is_dns1123_label(name: &str) -> bool {
    let bytes = name.as_bytes();
    let edge_ok = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    edge_ok(bytes.first())
        && edge_ok(bytes.last())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

/// The messages of the apiserver's `IsValidPortName` (an IANA service name), in its order.
pub fn port_name_errors(name: &str) -> Vec<&'static str> {
    let mut errors = Vec::new();
    if name.len() > 15 {
        errors.push("must be no more than 15 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        errors.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)");
    }
    if !name.bytes().any(|b| b.is_ascii_lowercase()) {
        errors.push("must contain at least one letter (a-z)");
    }
    if name.contains("--") {
        errors.push("must not contain consecutive hyphens (-)");
    }
    if name.starts_with('-') || name.ends_with('-') {
        errors.push("must not begin or end with a hyphen (-)");
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns1123_labels() {
        for good in ["a", "init-1", "0abc", "a-b-c"] {
            assert!(is_dns1123_label(good), "{good}");
        }
        for bad in ["", "A", "-a", "a-", "a_b", "a.b", "ä"] {
            assert!(!is_dns1123_label(bad), "{bad}");
        }
    }

    #[test]
    fn port_names() {
        assert!(port_name_errors("http").is_empty());
        assert!(port_name_errors("metrics-9090").is_empty());
        assert_eq!(
            port_name_errors("8080"),
            ["must contain at least one letter (a-z)"]
        );
        assert_eq!(
            port_name_errors("-Web--"),
            [
                "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
                "must not contain consecutive hyphens (-)",
                "must not begin or end with a hyphen (-)"
            ]
        );
        assert_eq!(
            port_name_errors("a-very-long-port-name"),
            ["must be no more than 15 characters"]
        );
    }
}
