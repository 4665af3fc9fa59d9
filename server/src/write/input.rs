//! Request bodies as typed values. `Fields` reads one JSON object and knows
//! the path of each field (`features[0].feature`) for the 422 it answers;
//! the value types here (`Feature`, `Photo`, `SkuSpec`, prices as `Money`)
//! are what the resource files build their writes from. Nothing past this
//! module sees a JSON map.

use atelier_schema::Money;
use serde_json::{Map, Value};

use crate::error::ApiError;

/// Names, categories, sizes, feature names and values, reasons.
pub const NAME_CHARS_MAX: usize = 255;
/// Descriptions, slogans and URLs.
pub const TEXT_CHARS_MAX: usize = 2048;
/// Prices are numeric(12,2): at most ten digits before the point.
pub const PRICE_WHOLE_DIGITS_MAX: usize = 10;

/// One JSON object of a request body, and where it sits in the body.
pub struct Fields<'a> {
    object: &'a Map<String, Value>,
    prefix: String,
}

impl<'a> Fields<'a> {
    /// The body itself, which must be an object.
    pub fn of(body: &'a Value) -> Result<Fields<'a>, ApiError> {
        let object = body.as_object().ok_or_else(|| ApiError::Unprocessable {
            message: "the body must be a JSON object".into(),
            fields: Default::default(),
        })?;
        Ok(Fields { object, prefix: String::new() })
    }

    fn path(&self, field: &str) -> String {
        format!("{}{field}", self.prefix)
    }

    /// Is `field` present with the value null?
    pub fn is_null(&self, field: &str) -> bool {
        self.object.get(field).is_some_and(Value::is_null)
    }

    /// A string of at most `max` characters that must be there and not blank.
    pub fn required_text(&self, field: &str, max: usize) -> Result<String, ApiError> {
        self.text(field, max, true).map(Option::unwrap_or_default)
    }

    /// A string of at most `max` characters, or None when absent or null.
    pub fn optional_text(&self, field: &str, max: usize) -> Result<Option<String>, ApiError> {
        self.text(field, max, false)
    }

    /// A field a PATCH may leave out, but which, when given, follows the
    /// rules of a required one (not blank); None when absent or null.
    pub fn patched_text(&self, field: &str, max: usize) -> Result<Option<String>, ApiError> {
        match self.object.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => self.text(field, max, true),
        }
    }

    fn text(&self, field: &str, max: usize, required: bool) -> Result<Option<String>, ApiError> {
        let path = self.path(field);
        match self.object.get(field) {
            None | Some(Value::Null) if required => Err(ApiError::field(&path, "is required")),
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.chars().count() > max => {
                Err(ApiError::field(&path, &format!("must be at most {max} characters")))
            }
            Some(Value::String(s)) if required && is_blank(s) => Err(ApiError::field(&path, "must not be empty")),
            // PostgreSQL text cannot hold NUL.
            Some(Value::String(s)) if s.contains('\0') => {
                Err(ApiError::field(&path, "must not contain NUL characters"))
            }
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(ApiError::field(&path, "must be a string")),
        }
    }

    /// A price that must be there.
    pub fn required_price(&self, field: &str) -> Result<Money, ApiError> {
        self.price(field, true).map(|price| price.unwrap_or(Money(0)))
    }

    /// A price, or None when absent or null.
    pub fn optional_price(&self, field: &str) -> Result<Option<Money>, ApiError> {
        self.price(field, false)
    }

    /// A price: a decimal string or number, >= 0, at most two decimals,
    /// below 10^10.
    fn price(&self, field: &str, required: bool) -> Result<Option<Money>, ApiError> {
        let path = self.path(field);
        let text = match self.object.get(field) {
            None | Some(Value::Null) if required => return Err(ApiError::field(&path, "is required")),
            None | Some(Value::Null) => return Ok(None),
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(_) => return Err(ApiError::field(&path, "must be a decimal string or number")),
        };
        let invalid = |problem: &str| ApiError::Unprocessable {
            message: format!("{path} must be a non-negative amount with at most two decimals"),
            fields: [(path.clone(), problem.to_string())].into(),
        };
        if text.starts_with('-') {
            return Err(invalid("must be >= 0"));
        }
        parse_cents(&text)
            .map(|cents| Some(Money(cents)))
            .ok_or_else(|| invalid("must be a non-negative amount with at most two decimals"))
    }

    /// An integer within [min, max] that must be there. A number written
    /// with a zero fraction (`5.0`) is an integer, as JSON Schema counts it.
    pub fn integer(&self, field: &str, min: i64, max: i64) -> Result<i64, ApiError> {
        let path = self.path(field);
        match self.object.get(field) {
            None | Some(Value::Null) => Err(ApiError::field(&path, "is required")),
            Some(Value::Number(n)) => match integral(n) {
                Some(v) if (min..=max).contains(&v) => Ok(v),
                _ => Err(ApiError::field(&path, &format!("must be an integer from {min} to {max}"))),
            },
            Some(_) => Err(ApiError::field(&path, "must be an integer")),
        }
    }

    /// true or false, or None when absent or null.
    pub fn boolean(&self, field: &str) -> Result<Option<bool>, ApiError> {
        match self.object.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(ApiError::field(&self.path(field), "must be true or false")),
        }
    }

    /// An array of objects, each parsed by `each`; None when absent or null.
    pub fn list<T>(
        &self,
        field: &str,
        mut each: impl FnMut(&Fields<'_>) -> Result<T, ApiError>,
    ) -> Result<Option<Vec<T>>, ApiError> {
        let path = self.path(field);
        match self.object.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let prefix = format!("{path}[{i}]");
                    let object = item.as_object().ok_or_else(|| ApiError::field(&prefix, "must be an object"))?;
                    each(&Fields { object, prefix: format!("{prefix}.") })
                })
                .collect::<Result<Vec<T>, ApiError>>()
                .map(Some),
            Some(_) => Err(ApiError::field(&path, "must be an array")),
        }
    }
}

/// A JSON number's integer value, if it is one that fits an i64: `7`, or
/// `7.0`; not `7.5`.
pub fn integral(n: &serde_json::Number) -> Option<i64> {
    // Beyond ±2^53 a float no longer holds every integer; values that far
    // out are refused rather than rounded.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    n.as_i64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() <= EXACT).map(|f| f as i64))
}

/// Nothing but ASCII whitespace (space, tab, line feed, carriage return,
/// form feed, vertical tab). A narrow, exact definition, so that the
/// OpenAPI document's pattern for required strings says the same.
fn is_blank(text: &str) -> bool {
    text.bytes().all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' | b'\x0b'))
}

/// Digits, optionally a point and one or two more digits: cents.
fn parse_cents(text: &str) -> Option<i64> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let ok = !whole.is_empty()
        && whole.len() <= PRICE_WHOLE_DIGITS_MAX
        && digits(whole)
        && fraction.len() <= 2
        && digits(fraction)
        && !(text.contains('.') && fraction.is_empty());
    if !ok {
        return None;
    }
    let cents: i64 = format!("{fraction:0<2}").parse().ok()?;
    Some(whole.parse::<i64>().ok()? * 100 + cents)
}

/// A product feature; its value may be null.
pub struct Feature {
    pub name: String,
    pub value: Option<String>,
}

impl Feature {
    pub fn parse(fields: &Fields<'_>) -> Result<Feature, ApiError> {
        Ok(Feature {
            name: fields.required_text("feature", NAME_CHARS_MAX)?,
            value: fields.optional_text("value", NAME_CHARS_MAX)?,
        })
    }
}

/// A style's photo; either URL may be null.
pub struct Photo {
    pub thumbnail_url: Option<String>,
    pub url: Option<String>,
}

impl Photo {
    pub fn parse(fields: &Fields<'_>) -> Result<Photo, ApiError> {
        Ok(Photo {
            thumbnail_url: fields.optional_text("thumbnail_url", TEXT_CHARS_MAX)?,
            url: fields.optional_text("url", TEXT_CHARS_MAX)?,
        })
    }
}

/// A new sku: its size and initial quantity (0 to 2^31-1).
pub struct SkuSpec {
    pub size: String,
    pub quantity: i64,
}

impl SkuSpec {
    pub fn parse(fields: &Fields<'_>) -> Result<SkuSpec, ApiError> {
        Ok(SkuSpec {
            size: fields.required_text("size", NAME_CHARS_MAX)?,
            quantity: fields.integer("quantity", 0, i64::from(i32::MAX))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prices_become_cents() {
        for (text, cents) in
            [("0", 0), ("10.5", 1050), ("10.05", 1005), ("140.00", 14_000), ("9999999999.99", 999_999_999_999)]
        {
            assert_eq!(parse_cents(text), Some(cents), "{text}");
        }
        for bad in ["", "1.", ".5", "1.234", "1e3", "abc", "12345678901", "1,5", " 1"] {
            assert_eq!(parse_cents(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn integral_numbers_may_carry_a_zero_fraction() {
        let n = |v: Value| integral(v.as_number().unwrap());
        assert_eq!(n(json!(7)), Some(7));
        assert_eq!(n(json!(7.0)), Some(7));
        assert_eq!(n(json!(-3.0)), Some(-3));
        assert_eq!(n(json!(7.5)), None);
        assert_eq!(n(json!(1e300)), None);
    }

    #[test]
    fn nul_characters_are_refused() {
        let body = json!({"name": "a\u{0}b"});
        assert!(matches!(
            Fields::of(&body).unwrap().optional_text("name", NAME_CHARS_MAX),
            Err(ApiError::Unprocessable { .. })
        ));
    }

    #[test]
    fn nested_fields_name_their_path() {
        let body = json!({"features": [{"feature": "ok"}, {"feature": 5}]});
        let fields = Fields::of(&body).unwrap();
        match fields.list("features", Feature::parse) {
            Err(ApiError::Unprocessable { fields, .. }) => assert!(fields.contains_key("features[1].feature")),
            _ => panic!("expected a 422"),
        }
    }
}
