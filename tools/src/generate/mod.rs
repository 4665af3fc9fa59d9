//! The seeded catalog generator. The same seed and size always give the
//! same catalog, byte for byte: every product draws from its own generator,
//! seeded from (seed, product id), and ids of styles, photos, skus, ledger
//! rows and related rows are assigned by walking products in id order.
//!
//! Distributions (per product unless said otherwise):
//! - features: 0 to 4 (uniform), a fifth of their values null;
//! - styles: 1 to 8 (uniform), with a 2% chance of 20 (never none: the
//!   public data gave every product a style, and storefronts rely on it);
//!   one default style in 90% of products;
//! - photos per style: 10% none, else 1 to 6; URLs drawn from 1,000 images;
//! - skus per style: 10% none, else 1 to 6 consecutive sizes; quantity 0 to
//!   60, a tenth of them 0 (sold out);
//! - sale price: a third of styles, 10% to 50% off;
//! - related: 0 to 6 distinct other products (15% none).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The demo catalog's size: big enough to page through and to show every
/// odd case, small enough to load in a second or two.
pub const DEMO_PRODUCTS: i64 = 3_000;
pub const DEFAULT_SEED: u64 = 42;
/// The full Atelier data set's size.
pub const FULL_SIZE_PRODUCTS: i64 = 1_000_000;
/// Distinct images photo URLs are drawn from (the brief: about a thousand).
pub const IMAGE_COUNT: u32 = 1_000;
/// Seconds since the Unix epoch of product 1's created_at: 2026-01-01T00:00:00Z.
pub const CREATED_AT_BASE: i64 = 1_767_225_600;

pub struct Product {
    pub id: i64,
    pub name: String,
    pub slogan: String,
    pub description: String,
    pub category: &'static str,
    pub default_price_cents: i64,
    /// Seconds since the Unix epoch; updated_at is the same.
    pub created_at: i64,
    pub features: Vec<(&'static str, Option<&'static str>)>,
    pub styles: Vec<Style>,
    pub related: Vec<i64>,
}

pub struct Style {
    pub name: String,
    pub original_price_cents: i64,
    pub sale_price_cents: Option<i64>,
    pub is_default: bool,
    /// Image numbers (below IMAGE_COUNT); see `thumbnail_url` and `photo_url`.
    /// URLs are formatted only by whoever writes them out.
    pub photos: Vec<u32>,
    /// (size, quantity)
    pub skus: Vec<(&'static str, i64)>,
}

const CATEGORIES: [&str; 12] = [
    "Jackets",
    "Accessories",
    "Pants",
    "Dress Shoes",
    "Basketball Shoes",
    "Kicks",
    "Shirts",
    "Heels",
    "Sweatpants",
    "Shorts",
    "Hoodies",
    "Backpacks",
];
const ADJECTIVES: [&str; 24] = [
    "Camo",
    "Bright",
    "Morning",
    "Slacker's",
    "Heir",
    "Pumped",
    "Blues",
    "Summer",
    "Retro",
    "Alpine",
    "Urban",
    "Coastal",
    "Midnight",
    "Velvet",
    "Rugged",
    "Classic",
    "Electric",
    "Golden",
    "Quiet",
    "Swift",
    "Cozy",
    "Bold",
    "Wild",
    "Breezy",
];
const NOUNS: [&str; 24] = [
    "Onesie",
    "Future Sunglasses",
    "Joggers",
    "Slacks",
    "Force",
    "Up Shoes",
    "Suede Shoes",
    "Air Minis",
    "Trail Runners",
    "Parka",
    "Windbreaker",
    "Chinos",
    "Tote",
    "Beanie",
    "Cargo Shorts",
    "Oxfords",
    "High Tops",
    "Hoodie",
    "Tee",
    "Flannel",
    "Loafers",
    "Daypack",
    "Bomber",
    "Pumps",
];
const SLOGANS: [&str; 12] = [
    "Blend in to your crowd",
    "You've got to wear shades",
    "Make yourself a morning person",
    "Comfortable for everything, nothing",
    "A summer outfit for the ages",
    "Full court support",
    "Built for the long way home",
    "Light enough to forget",
    "Dress for the weather you want",
    "Everyday, every way",
    "Made to be worn out",
    "Stand out by standing still",
];
const SENTENCES: [&str; 10] = [
    "The fabric breathes on warm days and holds heat when the wind picks up.",
    "Stitched seams and reinforced stress points keep it in shape season after season.",
    "Whether you're gym bound or not, everyone looks good in these.",
    "A relaxed fit that still looks sharp at the office.",
    "Where you're going you might not need roads, but you definitely need these.",
    "Recycled materials, without giving up anything on comfort.",
    "Pairs with everything already in your closet.",
    "Tested on city streets and mountain trails alike.",
    "Machine washable, line dry, and ready again by morning.",
    "Designed in-house and made in small batches.",
];
const FEATURES: [(&str, [&str; 4]); 8] = [
    ("Fabric", ["Canvas", "100% Cotton", "Merino Wool", "Recycled Polyester"]),
    ("Buttons", ["Brass", "Wooden", "Metal", "Horn"]),
    ("Sole", ["Rubber", "FullControlSkin", "EVA Foam", "Leather"]),
    ("Material", ["FullControlSkin", "Suede", "Nylon", "Mesh"]),
    ("Lenses", ["Ultrasheen", "Polarized", "Mirrored", "Gradient"]),
    ("Cut", ["Skinny", "Relaxed", "Straight", "Tapered"]),
    ("Stitching", ["Double Stitch", "Cross Stitch", "Flat Lock", "Blind"]),
    ("Green Leaf Certified", ["Yes", "Pending", "Partial", "Yes"]),
];
const COLOURS: [&str; 16] = [
    "Forest Green",
    "Black",
    "Desert Brown",
    "Tan",
    "Ocean Blue",
    "White",
    "Crimson",
    "Grey",
    "Navy",
    "Olive",
    "Sand",
    "Charcoal",
    "Mustard",
    "Rose",
    "Teal",
    "Cream",
];
const SIZES: [&str; 14] = ["XS", "S", "M", "L", "XL", "XXL", "7", "7.5", "8", "8.5", "9", "9.5", "10", "11"];

pub fn thumbnail_url(image: u32) -> String {
    format!("https://images.atelier.example/{image:04}/thumbnail.jpg")
}

pub fn photo_url(image: u32) -> String {
    format!("https://images.atelier.example/{image:04}/full.jpg")
}

/// The catalog of `products` products generated from `seed`.
#[derive(Clone, Copy, Debug)]
pub struct Catalog {
    pub seed: u64,
    pub products: i64,
}

impl Catalog {
    /// Product `id` (1-based), independent of every other product.
    pub fn product(&self, id: i64) -> Product {
        let mut rng = StdRng::seed_from_u64(self.seed ^ (id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let adjective = ADJECTIVES[rng.random_range(0..ADJECTIVES.len())];
        let noun = NOUNS[rng.random_range(0..NOUNS.len())];
        let model = rng.random_range(100..1000);
        let name = format!("{adjective} {noun} {model}");
        let sentences = rng.random_range(1..=3);
        let description =
            (0..sentences).map(|_| SENTENCES[rng.random_range(0..SENTENCES.len())]).collect::<Vec<_>>().join(" ");
        let default_price_cents = rng.random_range(5..=400) * 100 + if rng.random_bool(0.3) { 99 } else { 0 };

        let feature_count = rng.random_range(0..=4);
        let first_feature = rng.random_range(0..FEATURES.len());
        let features = (0..feature_count)
            .map(|i| {
                let (feature, values) = FEATURES[(first_feature + i) % FEATURES.len()];
                let value = (!rng.random_bool(0.2)).then(|| values[rng.random_range(0..values.len())]);
                (feature, value)
            })
            .collect();

        // Every product has a style: storefronts read results[0] unguarded
        // (a product with none, made by a write, is still served correctly).
        let style_count = if rng.random_bool(0.02) { 20 } else { rng.random_range(1..=8) };
        let default_style = rng.random_bool(0.9).then(|| rng.random_range(0..style_count.max(1)));
        let styles = (0..style_count)
            .map(|i| {
                let colour_a = COLOURS[rng.random_range(0..COLOURS.len())];
                let colour_b = COLOURS[rng.random_range(0..COLOURS.len())];
                let name = if colour_a == colour_b { colour_a.to_string() } else { format!("{colour_a} & {colour_b}") };
                let sale_price_cents =
                    rng.random_bool(1.0 / 3.0).then(|| default_price_cents * (100 - rng.random_range(10..=50)) / 100);
                let photo_count = if rng.random_bool(0.1) { 0 } else { rng.random_range(1..=6) };
                let photos = (0..photo_count).map(|_| rng.random_range(0..IMAGE_COUNT)).collect();
                let sku_count = if rng.random_bool(0.1) { 0 } else { rng.random_range(1..=6) };
                let first_size = rng.random_range(0..SIZES.len() - sku_count.max(1) + 1);
                let skus = (0..sku_count)
                    .map(|k| {
                        let quantity = if rng.random_bool(0.1) { 0 } else { rng.random_range(1..=60) };
                        (SIZES[first_size + k], quantity)
                    })
                    .collect();
                Style {
                    name,
                    original_price_cents: default_price_cents,
                    sale_price_cents,
                    is_default: default_style == Some(i),
                    photos,
                    skus,
                }
            })
            .collect();

        let related_count = if rng.random_bool(0.15) || self.products < 2 { 0 } else { rng.random_range(1..=6) };
        let mut related: Vec<i64> = Vec::with_capacity(related_count);
        for _ in 0..related_count * 3 {
            if related.len() == related_count {
                break;
            }
            let other = rng.random_range(1..=self.products);
            if other != id && !related.contains(&other) {
                related.push(other);
            }
        }

        Product {
            id,
            name,
            slogan: SLOGANS[rng.random_range(0..SLOGANS.len())].to_string(),
            description,
            category: CATEGORIES[rng.random_range(0..CATEGORIES.len())],
            default_price_cents,
            created_at: CREATED_AT_BASE + id * 37,
            features,
            styles,
            related,
        }
    }

    /// Every product in id order.
    pub fn iter(&self) -> impl Iterator<Item = Product> + '_ {
        (1..=self.products).map(|id| self.product(id))
    }
}

mod rows;
pub use rows::{FeatureRow, IdWalk, PhotoRow, ProductRows, RelatedRow, SkuRow, StyleRow};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_product_other_seed_other_product() {
        let a = Catalog { seed: 7, products: 100 };
        let b = Catalog { seed: 8, products: 100 };
        let fingerprint = |c: &Catalog| {
            c.iter().map(|p| format!("{}|{}|{:?}", p.name, p.styles.len(), p.related)).collect::<Vec<_>>()
        };
        assert_eq!(fingerprint(&a), fingerprint(&a));
        assert_ne!(fingerprint(&a), fingerprint(&b));
    }

    #[test]
    fn odd_cases_occur_and_bounds_hold() {
        let catalog = Catalog { seed: DEFAULT_SEED, products: 2_000 };
        let (mut no_photos, mut no_skus, mut null_value, mut no_related, mut twenty) = (0, 0, 0, 0, 0);
        for p in catalog.iter() {
            assert!(p.related.iter().all(|r| *r != p.id && (1..=catalog.products).contains(r)));
            let mut dedup = p.related.clone();
            dedup.sort();
            dedup.dedup();
            assert_eq!(dedup.len(), p.related.len(), "related ids repeat");
            assert!(p.styles.iter().filter(|s| s.is_default).count() <= 1);
            assert!(p.features.len() <= 4 && p.styles.len() <= 20 && p.related.len() <= 6);
            assert!(!p.styles.is_empty(), "product {} has no style", p.id);
            twenty += usize::from(p.styles.len() == 20);
            no_related += usize::from(p.related.is_empty());
            null_value += p.features.iter().filter(|f| f.1.is_none()).count();
            for s in &p.styles {
                no_photos += usize::from(s.photos.is_empty());
                no_skus += usize::from(s.skus.is_empty());
                assert!(s.sale_price_cents.is_none_or(|sale| sale < s.original_price_cents));
            }
        }
        for (what, n) in [
            ("no photos", no_photos),
            ("no skus", no_skus),
            ("null feature value", null_value),
            ("no related", no_related),
            ("20 styles", twenty),
        ] {
            assert!(n > 0, "{what} never occurs");
        }
    }
}
