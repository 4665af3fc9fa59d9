//! PUT /products/:id/related: the list in the given order, repeats counted
//! once; unknown ids and the product itself are 422 (checked by the
//! database, which knows which products exist).

use atelier_schema::statements;
use serde_json::Value;
use tokio_postgres::Row;

use crate::error::ApiError;
use crate::write::input::integral;
use crate::write::{body_of, Answer, Params, Write};

pub struct Put {
    product_id: i64,
    related: Vec<i64>,
}

impl Put {
    pub fn parse(product_id: i64, body: &Value) -> Result<Put, ApiError> {
        let items = body.as_array().ok_or_else(|| ApiError::field("related", "must be an array of product ids"))?;
        let related = items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                item.as_number()
                    .and_then(integral)
                    .filter(|id| *id > 0)
                    .ok_or_else(|| ApiError::field(&format!("related[{i}]"), "must be a positive integer"))
            })
            .collect::<Result<Vec<i64>, ApiError>>()?;
        Ok(Put { product_id, related })
    }
}

impl Write for Put {
    const STATEMENT: &'static str = statements::PUT_RELATED;

    fn params(&self) -> Params {
        vec![Box::new(self.product_id), Box::new(self.related.clone())]
    }

    fn answer(&self, row: &Row) -> Result<Answer, ApiError> {
        Ok(Answer::ok(body_of(row, 0)?))
    }
}
