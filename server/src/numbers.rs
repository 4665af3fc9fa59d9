//! The numbers requests carry as text: ids in paths (which must fit a
//! bigint), `page` and `count` in query strings (which may be any size).

/// Digits-only positive i64, or None: no sign, no spaces, no leading `+`,
/// at least 1, at most 9223372036854775807.
pub fn parse_positive(text: &str) -> Option<i64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<i64>().ok().filter(|n| *n > 0)
}

/// A positive integer of any length, digits only; values past i64 are
/// i64::MAX. None for anything else (no sign, no spaces, not zero).
pub fn parse_positive_saturating(text: &str) -> Option<i64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) || text.bytes().all(|b| b == b'0') {
        return None;
    }
    Some(text.parse::<i64>().unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positive_i64_only() {
        assert_eq!(parse_positive("1"), Some(1));
        assert_eq!(parse_positive("9223372036854775807"), Some(i64::MAX));
        for bad in ["", "0", "-1", "+1", "1.0", "1e3", " 1", "9223372036854775808", "abc", "１"] {
            assert_eq!(parse_positive(bad), None, "{bad:?}");
        }
        assert_eq!(parse_positive_saturating("9223372036854775808"), Some(i64::MAX));
        assert_eq!(parse_positive_saturating("007"), Some(7));
        assert_eq!(parse_positive_saturating("000"), None);
    }
}
