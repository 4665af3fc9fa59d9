//! GET /openapi.json: the whole contract as an OpenAPI 3.1 document
//! (`openapi.json`, built into the binary), which schemathesis checks
//! against the running server in the test command.

use bytes::Bytes;
use hyper::header::{HeaderMap, HeaderValue, CONTENT_TYPE};

use crate::error::ApiError;
use crate::http::respond::{self, HttpResponse};
use crate::read::Document;

const OPENAPI: &[u8] = include_bytes!("openapi.json");

pub fn document(request_headers: &HeaderMap) -> Result<HttpResponse, ApiError> {
    let mut response =
        respond::document(request_headers, Document::with_content_etag(Bytes::from_static(OPENAPI), None))?;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::OPENAPI;
    use crate::http::routes::ENDPOINTS;
    use crate::write::input::{NAME_CHARS_MAX, PRICE_WHOLE_DIGITS_MAX, TEXT_CHARS_MAX};
    use serde_json::Value;
    use std::collections::{BTreeMap, BTreeSet};

    fn contract() -> Value {
        serde_json::from_slice(OPENAPI).expect("openapi.json is JSON")
    }

    /// `/products/{product_id}` as the route table labels it, `/products/:id`.
    fn route_label(path: &str) -> String {
        path.split('/').map(|part| if part.starts_with('{') { ":id" } else { part }).collect::<Vec<_>>().join("/")
    }

    /// The contract documents exactly the (path, method) pairs the route
    /// table answers: a route added or removed on one side fails here.
    #[test]
    fn the_contract_lists_exactly_the_route_table() {
        let mut documented = BTreeSet::new();
        for (path, item) in contract()["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys().filter(|k| *k != "parameters") {
                documented.insert((route_label(path), method.to_uppercase()));
            }
        }
        let routed: BTreeSet<(String, String)> = ENDPOINTS
            .iter()
            .map(|(resource, verb, _)| (resource.label().to_string(), verb.name().to_string()))
            .collect();
        assert_eq!(documented, routed);
    }

    /// Every `(property, keyword, value)` limit in the contract's schemas,
    /// named by the nearest enclosing property (`properties.<name>`).
    fn limits(value: &Value, property: &str, out: &mut Vec<(String, String, Value)>) {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    if key == "maxLength" || key == "maximum" {
                        out.push((property.to_string(), key.clone(), child.clone()));
                    } else if key == "properties" {
                        for (name, schema) in child.as_object().unwrap() {
                            limits(schema, name, out);
                        }
                    } else {
                        limits(child, property, out);
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|item| limits(item, property, out)),
            _ => {}
        }
    }

    /// The length limit the write schema checks on each column
    /// (`check (char_length(col) <= N)`).
    fn write_schema() -> &'static str {
        let migrations = atelier_schema::migrations::MIGRATIONS;
        migrations.iter().find(|m| m.name == "write_schema").expect("the write schema is a migration").sql
    }

    fn schema_lengths() -> BTreeMap<String, u64> {
        let sql = write_schema();
        let mut lengths = BTreeMap::new();
        for rest in sql.split("char_length(").skip(1) {
            let (column, tail) = rest.split_once(") <= ").expect("char_length(col) <= N");
            let digits: String = tail.chars().take_while(char::is_ascii_digit).collect();
            lengths.insert(column.to_string(), digits.parse().unwrap());
        }
        lengths
    }

    /// The contract's length and number limits are the ones the input
    /// parser enforces and the write schema checks: a limit changed in one
    /// place only fails here.
    #[test]
    fn the_contract_limits_are_the_parser_and_schema_limits() {
        let mut found = Vec::new();
        limits(&contract()["components"], "", &mut found);
        let lengths = schema_lengths();
        let price_max = format!("{}.99", "9".repeat(PRICE_WHOLE_DIGITS_MAX));
        let (mut lengths_seen, mut prices_seen) = (0, 0);
        for (property, keyword, value) in &found {
            match keyword.as_str() {
                "maxLength" => {
                    let max = value.as_u64().unwrap();
                    assert!([NAME_CHARS_MAX as u64, TEXT_CHARS_MAX as u64].contains(&max), "{property}: {max}");
                    assert_eq!(lengths.get(property), Some(&max), "{property}: the schema checks another length");
                    lengths_seen += 1;
                }
                _ if property.ends_with("price") => {
                    assert_eq!(value.to_string(), price_max, "{property}");
                    prices_seen += 1;
                }
                _ if ["quantity", "delta"].contains(&property.as_str()) => {
                    assert_eq!(value.as_i64(), Some(i64::from(i32::MAX)), "{property}");
                }
                _ => assert_eq!(value.as_u64(), Some(i64::MAX as u64), "{property}: ids are positive bigints"),
            }
        }
        assert!(lengths_seen >= 20 && prices_seen >= 6, "the walk found the limits: {found:?}");
        // numeric(12,2): the ten whole digits the parser allows.
        assert!(write_schema().contains("numeric(12,2)"));
        assert_eq!(PRICE_WHOLE_DIGITS_MAX, 12 - 2);
    }
}
