//! `page` and `count` of GET /products.

use crate::error::ApiError;
use crate::numbers::parse_positive;

/// The page asked for, and its size when none is given.
pub const COUNT_DEFAULT: u32 = 5;

/// Parses `page` and `count`: positive integers, count at most `count_max`.
/// Other parameters are ignored; a repeated parameter's last value wins.
pub fn paging(query: Option<&str>, count_max: u32) -> Result<(i64, u32), ApiError> {
    let (mut page, mut count) = (1_i64, COUNT_DEFAULT);
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "page" => {
                page = parse_positive(value)
                    .ok_or_else(|| ApiError::BadRequest(format!("page must be a positive integer, got {value:?}")))?;
            }
            "count" => {
                count = parse_positive(value)
                    .filter(|c| *c <= i64::from(count_max))
                    .and_then(|c| u32::try_from(c).ok())
                    .ok_or_else(|| {
                        ApiError::BadRequest(format!("count must be an integer from 1 to {count_max}, got {value:?}"))
                    })?;
            }
            _ => {}
        }
    }
    Ok((page, count))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_defaults_and_bounds() {
        assert_eq!(paging(None, 1000).unwrap(), (1, 5));
        assert_eq!(paging(Some("page=3&count=10"), 1000).unwrap(), (3, 10));
        assert_eq!(paging(Some("count=1000&other=x"), 1000).unwrap(), (1, 1000));
        for bad in ["page=0", "page=-1", "page=", "count=0", "count=1001", "count=abc", "page=1.5", "count"] {
            assert!(matches!(paging(Some(bad), 1000), Err(ApiError::BadRequest(_))), "{bad}");
        }
    }
}
