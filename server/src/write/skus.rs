//! POST /styles/:id/skus, DELETE /skus/:id, and the stock ledger:
//! POST /skus/:id/movements.

use atelier_schema::statements;
use serde_json::Value;
use tokio_postgres::Row;

use crate::error::ApiError;
use crate::write::input::{Fields, SkuSpec, NAME_CHARS_MAX};
use crate::write::{body_of, Answer, Deletable, Params, Write};

/// POST /styles/:id/skus: the sku, and its initial quantity as the first
/// movement of its ledger.
pub struct Create {
    style_id: i64,
    sku: SkuSpec,
}

impl Create {
    pub fn parse(style_id: i64, body: &Value) -> Result<Create, ApiError> {
        Ok(Create { style_id, sku: SkuSpec::parse(&Fields::of(body)?)? })
    }
}

impl Write for Create {
    const STATEMENT: &'static str = statements::CREATE_SKU;

    fn params(&self) -> Params {
        vec![Box::new(self.style_id), Box::new(self.sku.size.clone()), Box::new(self.sku.quantity)]
    }

    fn answer(&self, row: &Row) -> Result<Answer, ApiError> {
        Ok(Answer::created(body_of(row, 0)?, None))
    }
}

/// DELETE /skus/:id (`Delete<Sku>`).
pub enum Sku {}

impl Deletable for Sku {
    const STATEMENT: &'static str = statements::DELETE_SKU;
}

/// POST /skus/:id/movements: a signed, non-zero stock change within
/// ±2,147,483,647. The database refuses one that would go below zero (409).
pub struct RecordMovement {
    pub(super) sku_id: i64,
    pub(super) delta: i64,
    pub(super) reason: Option<String>,
}

impl RecordMovement {
    pub fn parse(sku_id: i64, body: &Value) -> Result<RecordMovement, ApiError> {
        let fields = Fields::of(body)?;
        let delta = fields.integer("delta", -i64::from(i32::MAX), i64::from(i32::MAX))?;
        if delta == 0 {
            return Err(ApiError::field("delta", "must not be 0"));
        }
        Ok(RecordMovement { sku_id, delta, reason: fields.optional_text("reason", NAME_CHARS_MAX)? })
    }
}

impl Write for RecordMovement {
    const STATEMENT: &'static str = statements::RECORD_MOVEMENT;

    fn params(&self) -> Params {
        vec![Box::new(self.sku_id), Box::new(self.delta), Box::new(self.reason.clone())]
    }

    fn answer(&self, row: &Row) -> Result<Answer, ApiError> {
        Ok(Answer::created(body_of(row, 0)?, None))
    }
}
