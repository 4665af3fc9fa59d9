//! POST /products/:id/styles, PUT /styles/:id, DELETE /styles/:id.

use atelier_schema::{statements, Money};
use serde_json::Value;
use tokio_postgres::Row;

use crate::error::ApiError;
use crate::write::input::{Fields, Photo, SkuSpec, NAME_CHARS_MAX};
use crate::write::{body_of, Answer, Deletable, Params, Write};

/// The fields of a style that both POST and PUT set; photos absent = none.
struct StyleFields {
    name: String,
    original_price: Money,
    sale_price: Option<Money>,
    is_default: bool,
    photos: Vec<Photo>,
}

impl StyleFields {
    fn parse(fields: &Fields<'_>) -> Result<StyleFields, ApiError> {
        Ok(StyleFields {
            name: fields.required_text("name", NAME_CHARS_MAX)?,
            original_price: fields.required_price("original_price")?,
            sale_price: fields.optional_price("sale_price")?,
            is_default: fields.boolean("default?")?.unwrap_or(false),
            photos: fields.list("photos", Photo::parse)?.unwrap_or_default(),
        })
    }

    /// name, original_price, sale_price, default?, thumbnail urls, urls.
    fn params(&self) -> Params {
        let (thumbnails, urls): (Vec<Option<String>>, Vec<Option<String>>) =
            self.photos.iter().map(|p| (p.thumbnail_url.clone(), p.url.clone())).unzip();
        vec![
            Box::new(self.name.clone()),
            Box::new(self.original_price),
            Box::new(self.sale_price),
            Box::new(self.is_default),
            Box::new(thumbnails),
            Box::new(urls),
        ]
    }
}

/// POST /products/:id/styles, with photos and skus.
pub struct Create {
    product_id: i64,
    style: StyleFields,
    skus: Vec<SkuSpec>,
}

impl Create {
    pub fn parse(product_id: i64, body: &Value) -> Result<Create, ApiError> {
        let fields = Fields::of(body)?;
        let style = StyleFields::parse(&fields)?;
        let skus = fields.list("skus", SkuSpec::parse)?.unwrap_or_default();
        Ok(Create { product_id, style, skus })
    }
}

impl Write for Create {
    const STATEMENT: &'static str = statements::CREATE_STYLE;

    fn params(&self) -> Params {
        let (sizes, quantities): (Vec<String>, Vec<i64>) =
            self.skus.iter().map(|s| (s.size.clone(), s.quantity)).unzip();
        let mut params: Params = vec![Box::new(self.product_id)];
        params.extend(self.style.params());
        params.push(Box::new(sizes));
        params.push(Box::new(quantities));
        params
    }

    fn answer(&self, row: &Row) -> Result<Answer, ApiError> {
        Ok(Answer::created(body_of(row, 1)?, None))
    }
}

/// PUT /styles/:id: fields and photos replaced, skus left alone.
pub struct Update {
    style_id: i64,
    style: StyleFields,
}

impl Update {
    pub fn parse(style_id: i64, body: &Value) -> Result<Update, ApiError> {
        Ok(Update { style_id, style: StyleFields::parse(&Fields::of(body)?)? })
    }
}

impl Write for Update {
    const STATEMENT: &'static str = statements::UPDATE_STYLE;

    fn params(&self) -> Params {
        let mut params: Params = vec![Box::new(self.style_id)];
        params.extend(self.style.params());
        params
    }

    fn answer(&self, row: &Row) -> Result<Answer, ApiError> {
        Ok(Answer::ok(body_of(row, 0)?))
    }
}

/// DELETE /styles/:id (`Delete<Style>`).
pub enum Style {}

impl Deletable for Style {
    const STATEMENT: &'static str = statements::DELETE_STYLE;
}
