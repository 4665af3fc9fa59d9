//! The query string of GET /products, parsed into the page it asks for
//! before `read/` sees it.

use crate::error::ApiError;
use crate::numbers::parse_positive_saturating;
use crate::read::Page;

/// The size of a page when none is given.
pub const COUNT_DEFAULT: u32 = 5;

/// Parses `page` and `count`: positive integers of any size (a page beyond
/// 2^63 is past the end anyway). A count above `count_max` is served as
/// `count_max`: storefronts ask for `count=1011` to cache a small catalog.
/// Other parameters are ignored; a repeated parameter's last value wins.
pub fn page(query: Option<&str>, count_max: u32) -> Result<Page, ApiError> {
    let (mut page, mut count) = (1_i64, COUNT_DEFAULT);
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let positive = || {
            parse_positive_saturating(value)
                .ok_or_else(|| ApiError::BadRequest(format!("{key} must be a positive integer, got {value:?}")))
        };
        match key {
            "page" => page = positive()?,
            "count" => count = u32::try_from(positive()?).unwrap_or(u32::MAX).min(count_max),
            _ => {}
        }
    }
    Ok(Page { number: page, count })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paging(query: Option<&str>, count_max: u32) -> Result<(i64, u32), ApiError> {
        page(query, count_max).map(|page| (page.number, page.count))
    }

    #[test]
    fn paging_defaults_and_bounds() {
        assert_eq!(paging(None, 1000).unwrap(), (1, 5));
        assert_eq!(paging(Some("page=3&count=10"), 1000).unwrap(), (3, 10));
        assert_eq!(paging(Some("count=1000&other=x"), 1000).unwrap(), (1, 1000));
        assert_eq!(paging(Some("count=1011"), 1000).unwrap(), (1, 1000), "above the maximum: the maximum");
        assert_eq!(paging(Some("count=99999999999999999999999"), 1000).unwrap(), (1, 1000));
        assert_eq!(paging(Some("page=99999999999999999999999"), 1000).unwrap(), (i64::MAX, 5));
        for bad in ["page=0", "page=-1", "page=", "count=0", "count=-5", "count=abc", "page=1.5", "count", "count=00"] {
            assert!(matches!(paging(Some(bad), 1000), Err(ApiError::BadRequest(_))), "{bad}");
        }
    }
}
