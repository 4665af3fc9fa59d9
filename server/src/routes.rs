//! The route table: which paths exist, their ids, and the methods each
//! accepts (for 405 and its Allow header).

use crate::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Products,
    Product(i64),
    ProductStyles(i64),
    ProductRelated(i64),
    Style(i64),
    StyleSkus(i64),
    Sku(i64),
    SkuMovements(i64),
    Healthz,
    Readyz,
    Metrics,
}

impl Route {
    /// Parses a request path. One trailing slash is tolerated, as the
    /// public API's Express routing did. Unknown paths are 404; a known
    /// path with an id that is not a positive 64-bit integer is 400.
    pub fn parse(path: &str) -> Result<Route, ApiError> {
        let path = path.strip_suffix('/').filter(|p| !p.is_empty()).unwrap_or(path);
        let mut parts = path.strip_prefix('/').unwrap_or(path).split('/');
        let route = match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some("products"), None, None, None) => Route::Products,
            (Some("products"), Some(id), None, None) => Route::Product(parse_id(id)?),
            (Some("products"), Some(id), Some("styles"), None) => Route::ProductStyles(parse_id(id)?),
            (Some("products"), Some(id), Some("related"), None) => Route::ProductRelated(parse_id(id)?),
            (Some("styles"), Some(id), None, None) => Route::Style(parse_id(id)?),
            (Some("styles"), Some(id), Some("skus"), None) => Route::StyleSkus(parse_id(id)?),
            (Some("skus"), Some(id), None, None) => Route::Sku(parse_id(id)?),
            (Some("skus"), Some(id), Some("movements"), None) => Route::SkuMovements(parse_id(id)?),
            (Some("healthz"), None, None, None) => Route::Healthz,
            (Some("readyz"), None, None, None) => Route::Readyz,
            (Some("metrics"), None, None, None) => Route::Metrics,
            _ => return Err(ApiError::NotFound(format!("no route for {path}"))),
        };
        Ok(route)
    }

    /// The methods this route answers, as the Allow header lists them.
    pub fn allow(self) -> &'static str {
        match self {
            Route::Products => "GET, HEAD, POST",
            Route::Product(_) => "GET, HEAD, PUT, PATCH, DELETE",
            Route::ProductStyles(_) => "GET, HEAD, POST",
            Route::ProductRelated(_) => "GET, HEAD, PUT",
            Route::Style(_) => "PUT, DELETE",
            Route::StyleSkus(_) => "POST",
            Route::Sku(_) => "DELETE",
            Route::SkuMovements(_) => "POST",
            Route::Healthz | Route::Readyz | Route::Metrics => "GET, HEAD",
        }
    }

    /// A label for metrics and logs: the path pattern, not the id.
    pub fn label(self) -> &'static str {
        match self {
            Route::Products => "/products",
            Route::Product(_) => "/products/:id",
            Route::ProductStyles(_) => "/products/:id/styles",
            Route::ProductRelated(_) => "/products/:id/related",
            Route::Style(_) => "/styles/:id",
            Route::StyleSkus(_) => "/styles/:id/skus",
            Route::Sku(_) => "/skus/:id",
            Route::SkuMovements(_) => "/skus/:id/movements",
            Route::Healthz => "/healthz",
            Route::Readyz => "/readyz",
            Route::Metrics => "/metrics",
        }
    }
}

/// A positive integer that fits in a signed 64-bit column: ASCII digits
/// only (no sign, no spaces), at least 1, at most 9223372036854775807.
pub fn parse_id(text: &str) -> Result<i64, ApiError> {
    parse_positive(text)
        .ok_or_else(|| ApiError::BadRequest(format!("malformed id {text:?}: expected a positive integer")))
}

/// Digits-only positive i64, or None.
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
    fn ids_must_be_positive_i64() {
        assert_eq!(parse_positive("1"), Some(1));
        assert_eq!(parse_positive("9223372036854775807"), Some(i64::MAX));
        for bad in ["", "0", "-1", "+1", "1.0", "1e3", " 1", "9223372036854775808", "abc", "１"] {
            assert_eq!(parse_positive(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn paths_map_to_routes() {
        assert_eq!(Route::parse("/products").unwrap(), Route::Products);
        assert_eq!(Route::parse("/products/").unwrap(), Route::Products);
        assert_eq!(Route::parse("/products/7/styles").unwrap(), Route::ProductStyles(7));
        assert_eq!(Route::parse("/skus/3/movements").unwrap(), Route::SkuMovements(3));
        assert!(matches!(Route::parse("/products/x"), Err(ApiError::BadRequest(_))));
        assert!(matches!(Route::parse("/products/1/reviews"), Err(ApiError::NotFound(_))));
        assert!(matches!(Route::parse("/"), Err(ApiError::NotFound(_))));
        assert!(matches!(Route::parse("/products//"), Err(ApiError::BadRequest(_))));
    }
}
