//! An independent oracle for the write side: a model of the catalog kept by
//! the test and rendered to JSON by the test, following the contract (key
//! order, prices with two decimals, the all-null photo of a style without
//! photos, skus keyed by id, null feature values, related order). Random
//! writes go to the API and to the model; every answer's status must be the
//! one the model predicts, every answer's body what the model renders, and
//! at the end every document the API serves must equal the model's.
//!
//! Only what the server assigns is taken from its answers: ids and the
//! products' timestamps.

use std::collections::BTreeMap;

#[derive(Clone, Debug)]
pub struct Product {
    pub id: i64,
    name: String,
    slogan: String,
    description: String,
    category: String,
    price_cents: i64,
    created_at: String,
    updated_at: String,
    features: Vec<(String, Option<String>)>,
    /// By style id.
    styles: BTreeMap<i64, Style>,
    related: Vec<i64>,
}

#[derive(Clone, Debug)]
struct Style {
    name: String,
    original_cents: i64,
    sale_cents: Option<i64>,
    default: bool,
    photos: Vec<(Option<String>, Option<String>)>,
    /// sku id → (size, quantity)
    skus: BTreeMap<i64, (String, i64)>,
}

/// A JSON string, escaped as PostgreSQL's to_json escapes it.
fn s(text: &str) -> String {
    serde_json::to_string(text).unwrap()
}

fn opt(text: &Option<String>) -> String {
    text.as_deref().map_or("null".to_string(), s)
}

fn price(cents: i64) -> String {
    format!("\"{}.{:02}\"", cents / 100, cents % 100)
}

impl Product {
    fn fields(&self) -> String {
        format!(
            "{{\"id\":{},\"name\":{},\"slogan\":{},\"description\":{},\"category\":{},\"default_price\":{},\"created_at\":{},\"updated_at\":{}",
            self.id,
            s(&self.name),
            s(&self.slogan),
            s(&self.description),
            s(&self.category),
            price(self.price_cents),
            s(&self.created_at),
            s(&self.updated_at)
        )
    }

    /// An element of GET /products.
    pub fn card(&self) -> String {
        format!("{}}}", self.fields())
    }

    /// GET /products/:id
    pub fn detail(&self) -> String {
        let features: Vec<String> = self
            .features
            .iter()
            .map(|(name, value)| format!("{{\"feature\":{},\"value\":{}}}", s(name), opt(value)))
            .collect();
        format!("{},\"features\":[{}]}}", self.fields(), features.join(","))
    }

    /// GET /products/:id/styles
    pub fn styles(&self) -> String {
        let results: Vec<String> = self.styles.iter().map(|(id, style)| style.render(*id)).collect();
        format!("{{\"product_id\":\"{}\",\"results\":[{}]}}", self.id, results.join(","))
    }

    /// GET /products/:id/related
    pub fn related(&self) -> String {
        format!("[{}]", self.related.iter().map(i64::to_string).collect::<Vec<_>>().join(","))
    }
}

impl Style {
    fn render(&self, id: i64) -> String {
        let photos = if self.photos.is_empty() {
            "[{\"thumbnail_url\":null,\"url\":null}]".to_string()
        } else {
            let each: Vec<String> = self
                .photos
                .iter()
                .map(|(t, u)| format!("{{\"thumbnail_url\":{},\"url\":{}}}", opt(t), opt(u)))
                .collect();
            format!("[{}]", each.join(","))
        };
        let skus: Vec<String> = self
            .skus
            .iter()
            .map(|(id, (size, quantity))| format!("\"{id}\":{{\"quantity\":{quantity},\"size\":{}}}", s(size)))
            .collect();
        format!(
            "{{\"style_id\":{id},\"name\":{},\"original_price\":{},\"sale_price\":{},\"default?\":{},\"photos\":{photos},\"skus\":{{{}}}}}",
            s(&self.name),
            price(self.original_cents),
            self.sale_cents.map_or("null".to_string(), price),
            self.default,
            skus.join(",")
        )
    }
}

/// One writer's slice of the catalog: the products it created (it never
/// touches anyone else's, so its model is exact even with other writers
/// running), and every id it ever saw, deleted ones included, so that
/// writes to things that are gone are tried too.
#[derive(Default)]
pub struct Catalog {
    pub products: BTreeMap<i64, Product>,
    seen_products: Vec<i64>,
    seen_styles: Vec<i64>,
    seen_skus: Vec<i64>,
}

impl Catalog {
    fn style_owner(&self, style_id: i64) -> Option<i64> {
        self.products.values().find(|p| p.styles.contains_key(&style_id)).map(|p| p.id)
    }

    fn sku_owner(&self, sku_id: i64) -> Option<(i64, i64)> {
        self.products.values().find_map(|p| {
            p.styles.iter().find(|(_, style)| style.skus.contains_key(&sku_id)).map(|(style_id, _)| (p.id, *style_id))
        })
    }
}

mod steps;
pub use steps::random_writes;
