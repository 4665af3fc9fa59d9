//! The numbers requests carry as text: ids in paths, `page` and `count` in
//! query strings. Shared by the route parser and the paging parser.

/// Digits-only positive i64, or None: no sign, no spaces, no leading `+`,
/// at least 1, at most 9223372036854775807.
pub fn parse_positive(text: &str) -> Option<i64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<i64>().ok().filter(|n| *n > 0)
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
    }
}
