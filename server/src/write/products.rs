//! POST /products, PUT and PATCH /products/:id, DELETE /products/:id.

use atelier_schema::{statements, Money};
use serde_json::Value;
use tokio_postgres::Row;

use crate::error::ApiError;
use crate::write::input::{Feature, Fields, NAME_CHARS_MAX, TEXT_CHARS_MAX};
use crate::write::{body_of, Answer, Deletable, Params, Write};

/// POST /products: every field required; features optional.
pub struct Create {
    name: String,
    slogan: String,
    description: String,
    category: String,
    default_price: Money,
    features: Vec<Feature>,
}

impl Create {
    pub fn parse(body: &Value) -> Result<Create, ApiError> {
        let fields = Fields::of(body)?;
        Ok(Create {
            name: fields.required_text("name", NAME_CHARS_MAX)?,
            slogan: fields.required_text("slogan", TEXT_CHARS_MAX)?,
            description: fields.required_text("description", TEXT_CHARS_MAX)?,
            category: fields.required_text("category", NAME_CHARS_MAX)?,
            default_price: fields.required_price("default_price")?,
            features: fields.list("features", Feature::parse)?.unwrap_or_default(),
        })
    }
}

impl Write for Create {
    const STATEMENT: &'static str = statements::CREATE_PRODUCT;

    fn params(&self) -> Params {
        let (names, values) = feature_arrays(&self.features);
        vec![
            Box::new(self.name.clone()),
            Box::new(self.slogan.clone()),
            Box::new(self.description.clone()),
            Box::new(self.category.clone()),
            Box::new(self.default_price),
            Box::new(names),
            Box::new(values),
        ]
    }

    fn answer(&self, row: &Row) -> Result<Answer, ApiError> {
        let id: i64 = row.try_get(0)?;
        Ok(Answer::created(body_of(row, 1)?, Some(format!("/products/{id}"))))
    }
}

/// PUT /products/:id (every field; features absent = none) or PATCH (any
/// subset; features replaced only when given). None keeps the field.
pub struct Update {
    id: i64,
    name: Option<String>,
    slogan: Option<String>,
    description: Option<String>,
    category: Option<String>,
    default_price: Option<Money>,
    features: Option<Vec<Feature>>,
}

impl Update {
    pub fn replace(id: i64, body: &Value) -> Result<Update, ApiError> {
        let Create { name, slogan, description, category, default_price, features } = Create::parse(body)?;
        Ok(Update {
            id,
            name: Some(name),
            slogan: Some(slogan),
            description: Some(description),
            category: Some(category),
            default_price: Some(default_price),
            features: Some(features),
        })
    }

    pub fn patch(id: i64, body: &Value) -> Result<Update, ApiError> {
        let fields = Fields::of(body)?;
        let update = Update {
            id,
            name: fields.patched_text("name", NAME_CHARS_MAX)?,
            slogan: fields.patched_text("slogan", TEXT_CHARS_MAX)?,
            description: fields.patched_text("description", TEXT_CHARS_MAX)?,
            category: fields.patched_text("category", NAME_CHARS_MAX)?,
            default_price: fields.optional_price("default_price")?,
            features: fields.list("features", Feature::parse)?,
        };
        // Null would mean "keep" to the database; for a PATCH it is a
        // mistake worth saying. (A null `features` keeps the features.)
        for field in ["name", "slogan", "description", "category", "default_price"] {
            if fields.is_null(field) {
                return Err(ApiError::field(field, "must not be null"));
            }
        }
        Ok(update)
    }
}

impl Write for Update {
    const STATEMENT: &'static str = statements::UPDATE_PRODUCT;

    fn params(&self) -> Params {
        let (names, values) = match &self.features {
            Some(features) => {
                let (names, values) = feature_arrays(features);
                (Some(names), Some(values))
            }
            None => (None, None),
        };
        vec![
            Box::new(self.id),
            Box::new(self.name.clone()),
            Box::new(self.slogan.clone()),
            Box::new(self.description.clone()),
            Box::new(self.category.clone()),
            Box::new(self.default_price),
            Box::new(names),
            Box::new(values),
        ]
    }

    fn answer(&self, row: &Row) -> Result<Answer, ApiError> {
        Ok(Answer::ok(body_of(row, 0)?))
    }
}

/// DELETE /products/:id (`Delete<Product>`).
pub enum Product {}

impl Deletable for Product {
    const STATEMENT: &'static str = statements::DELETE_PRODUCT;
}

/// Features as the two arrays the function takes.
fn feature_arrays(features: &[Feature]) -> (Vec<String>, Vec<Option<String>>) {
    features.iter().map(|f| (f.name.clone(), f.value.clone())).unzip()
}
