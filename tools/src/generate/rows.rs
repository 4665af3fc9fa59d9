//! The catalog as write-model rows: each product's features, styles,
//! photos, skus and related products, with ids assigned in walk order.

use super::{Product, Style};

/// The rows a product owns in each write-model table, with their ids.
pub struct ProductRows<'a> {
    pub product: &'a Product,
    pub features: Vec<FeatureRow<'a>>,
    pub styles: Vec<StyleRow<'a>>,
    pub photos: Vec<PhotoRow>,
    pub skus: Vec<SkuRow<'a>>,
    pub related: Vec<RelatedRow>,
}

pub struct FeatureRow<'a> {
    pub id: i64,
    pub product_id: i64,
    pub feature: &'a str,
    pub value: Option<&'a str>,
}

pub struct StyleRow<'a> {
    pub id: i64,
    pub product_id: i64,
    pub style: &'a Style,
}

pub struct PhotoRow {
    pub id: i64,
    pub style_id: i64,
    /// The image number: see `thumbnail_url` and `photo_url`.
    pub image: u32,
}

pub struct SkuRow<'a> {
    pub id: i64,
    pub style_id: i64,
    pub size: &'a str,
    pub quantity: i64,
}

pub struct RelatedRow {
    pub id: i64,
    pub product_id: i64,
    pub related_product_id: i64,
}

/// Assigns the ids of child rows as products are walked in id order, so
/// every walk of the same catalog (a direct load, or CSV files) writes the
/// same rows with the same ids. Within a product: features, styles (each
/// style's photos and skus numbered in style order), related products.
#[derive(Default)]
pub struct IdWalk {
    feature: i64,
    style: i64,
    photo: i64,
    sku: i64,
    related: i64,
}

impl IdWalk {
    /// The next product's rows; call once per product, in id order.
    pub fn rows<'a>(&mut self, product: &'a Product) -> ProductRows<'a> {
        let mut rows = ProductRows {
            product,
            features: Vec::with_capacity(product.features.len()),
            styles: Vec::with_capacity(product.styles.len()),
            photos: Vec::new(),
            skus: Vec::new(),
            related: Vec::with_capacity(product.related.len()),
        };
        for (feature, value) in &product.features {
            self.feature += 1;
            rows.features.push(FeatureRow { id: self.feature, product_id: product.id, feature, value: *value });
        }
        for style in &product.styles {
            self.style += 1;
            rows.styles.push(StyleRow { id: self.style, product_id: product.id, style });
            for image in &style.photos {
                self.photo += 1;
                rows.photos.push(PhotoRow { id: self.photo, style_id: self.style, image: *image });
            }
            for (size, quantity) in &style.skus {
                self.sku += 1;
                rows.skus.push(SkuRow { id: self.sku, style_id: self.style, size, quantity: *quantity });
            }
        }
        for related in &product.related {
            self.related += 1;
            rows.related.push(RelatedRow { id: self.related, product_id: product.id, related_product_id: *related });
        }
        rows
    }
}
