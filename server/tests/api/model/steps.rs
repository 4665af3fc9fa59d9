//! The random writes: each step picks a write, sends it to the API and
//! applies it to the model, and checks the answer against the model's.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use super::*;
use crate::helpers::{request, send, Response};

/// Random text, including what JSON must escape and non-ASCII letters.
fn text(rng: &mut StdRng, len_max: usize) -> String {
    const PIECES: [&str; 12] = ["Coat", "Shoe", " ", "\"q\"", "back\\slash", "é", "東京", "/", "\n", "\t", "100%", "x"];
    let mut out = PIECES[rng.random_range(0..2)].to_string();
    for _ in 0..rng.random_range(0..len_max) {
        out.push_str(PIECES[rng.random_range(0..PIECES.len())]);
    }
    out
}

fn cents(rng: &mut StdRng) -> i64 {
    rng.random_range(0..50_000)
}

/// A price as the API takes it: a string or a number, with 0 to 2 decimals.
fn price_input(cents: i64, rng: &mut StdRng) -> Value {
    match (rng.random_range(0..3), cents % 100) {
        (0, _) => json!(format!("{}.{:02}", cents / 100, cents % 100)),
        (1, 0) => json!(cents / 100),
        (1, c) if c % 10 == 0 => json!(format!("{}.{}", cents / 100, c / 10)),
        _ => json!(cents as f64 / 100.0),
    }
}

fn features(rng: &mut StdRng) -> Vec<(String, Option<String>)> {
    (0..rng.random_range(0..4)).map(|_| (text(rng, 2), rng.random_bool(0.7).then(|| text(rng, 2)))).collect()
}

fn features_json(features: &[(String, Option<String>)]) -> Value {
    json!(features.iter().map(|(f, v)| json!({"feature": f, "value": v})).collect::<Vec<_>>())
}

fn photos(rng: &mut StdRng) -> Vec<(Option<String>, Option<String>)> {
    (0..rng.random_range(0..3))
        .map(|i| {
            let thumb =
                rng.random_bool(0.8).then(|| format!("https://img.example/{i}/t-{}.jpg", rng.random_range(0..99)));
            (thumb, rng.random_bool(0.9).then(|| format!("https://img.example/{i}/u.jpg")))
        })
        .collect()
}

fn photos_json(photos: &[(Option<String>, Option<String>)]) -> Value {
    json!(photos.iter().map(|(t, u)| json!({"thumbnail_url": t, "url": u})).collect::<Vec<_>>())
}

fn pick(rng: &mut StdRng, ids: &[i64]) -> Option<i64> {
    (!ids.is_empty()).then(|| ids[rng.random_range(0..ids.len())])
}

/// One random write through the API and into the model. Returns what was
/// done, and a complaint when the API disagreed with the model.
pub fn step(rng: &mut StdRng, model: &mut Catalog, step: usize) -> Result<String, String> {
    let live: Vec<i64> = model.products.keys().copied().collect();
    let product = if rng.random_bool(0.85) { pick(rng, &live) } else { pick(rng, &model.seen_products) };
    let choice = if live.is_empty() { 0 } else { rng.random_range(0..13) };
    let (what, response, status, body): (String, Response, u16, Option<String>) = match (choice, product) {
        (0 | 1, _) | (_, None) => {
            let (name, slogan, description, category) = (text(rng, 3), text(rng, 3), text(rng, 8), text(rng, 1));
            let (price_cents, features) = (cents(rng), features(rng));
            let body = json!({"name": name, "slogan": slogan, "description": description, "category": category,
                              "default_price": price_input(price_cents, rng), "features": features_json(&features)});
            let r = send("POST", "/products", &body);
            let Some(id) = (r.status == 201).then(|| r.json()["id"].as_i64()).flatten() else {
                return Err(format!("step {step}: create product: {} {}", r.status, r.text()));
            };
            if r.header("location") != Some(format!("/products/{id}").as_str()) {
                return Err(format!("step {step}: create product {id}: Location {:?}", r.header("location")));
            }
            let created = r.json();
            let p = Product {
                id,
                name,
                slogan,
                description,
                category,
                price_cents,
                created_at: created["created_at"].as_str().unwrap_or_default().to_string(),
                updated_at: created["updated_at"].as_str().unwrap_or_default().to_string(),
                features,
                styles: BTreeMap::new(),
                related: Vec::new(),
            };
            let expected = p.detail();
            model.products.insert(id, p);
            model.seen_products.push(id);
            (format!("create product {id}"), r, 201, Some(expected))
        }
        (2 | 3, Some(id)) => {
            // PATCH a random subset; PUT replaces everything.
            let full = rng.random_bool(0.3);
            let mut body = serde_json::Map::new();
            let (name, slogan, category, price_cents) = (text(rng, 3), text(rng, 2), text(rng, 1), cents(rng));
            let new_features = features(rng);
            let set = |rng: &mut StdRng| full || rng.random_bool(0.5);
            let (set_name, set_slogan, set_category, set_price, set_features) =
                (set(rng), set(rng), set(rng), set(rng), full && rng.random_bool(0.7) || !full && rng.random_bool(0.4));
            if set_name {
                body.insert("name".into(), json!(name));
            }
            if set_slogan {
                body.insert("slogan".into(), json!(slogan));
            }
            if full {
                body.insert("description".into(), json!("replaced"));
            }
            if set_category {
                body.insert("category".into(), json!(category));
            }
            if set_price {
                body.insert("default_price".into(), price_input(price_cents, rng));
            }
            if set_features {
                body.insert("features".into(), features_json(&new_features));
            }
            let method = if full { "PUT" } else { "PATCH" };
            let r = send(method, &format!("/products/{id}"), &Value::Object(body));
            let Some(p) = model.products.get_mut(&id) else {
                return check((format!("{method} product {id} (deleted)"), r, 404, None));
            };
            if set_name {
                p.name = name;
            }
            if set_slogan {
                p.slogan = slogan;
            }
            if full {
                p.description = "replaced".into();
            }
            if set_category {
                p.category = category;
            }
            if set_price {
                p.price_cents = price_cents;
            }
            if set_features {
                p.features = new_features;
            } else if full {
                p.features.clear();
            }
            if r.status == 200 {
                p.updated_at = r.json()["updated_at"].as_str().unwrap_or_default().to_string();
            }
            (format!("{method} product {id}"), r, 200, Some(p.detail()))
        }
        (4 | 5, Some(id)) => {
            let (name, original, sale, default) =
                (text(rng, 2), cents(rng), rng.random_bool(0.3).then(|| cents(rng)), rng.random_bool(0.4));
            let new_photos = photos(rng);
            let sizes: Vec<(String, i64)> =
                (0..rng.random_range(0..4)).map(|i| (format!("S{i}"), rng.random_range(0..6))).collect();
            let body = json!({"name": name, "original_price": price_input(original, rng),
                              "sale_price": sale.map(|c| price_input(c, rng)), "default?": default,
                              "photos": photos_json(&new_photos),
                              "skus": sizes.iter().map(|(s, q)| json!({"size": s, "quantity": q})).collect::<Vec<_>>()});
            let r = send("POST", &format!("/products/{id}/styles"), &body);
            let Some(p) = model.products.get_mut(&id) else {
                return check((format!("new style on product {id} (deleted)"), r, 404, None));
            };
            let Some(style_id) = (r.status == 201).then(|| r.json()["style_id"].as_i64()).flatten() else {
                return Err(format!("step {step}: new style on {id}: {} {}", r.status, r.text()));
            };
            let mut sku_ids: Vec<i64> = r.json()["skus"]
                .as_object()
                .map(|m| m.keys().filter_map(|k| k.parse().ok()).collect())
                .unwrap_or_default();
            sku_ids.sort_unstable();
            if sku_ids.len() != sizes.len() {
                return Err(format!("step {step}: new style {style_id}: {} skus, sent {}", sku_ids.len(), sizes.len()));
            }
            if default {
                p.styles.values_mut().for_each(|s| s.default = false);
            }
            let skus = sku_ids.iter().copied().zip(sizes).collect();
            let style = Style { name, original_cents: original, sale_cents: sale, default, photos: new_photos, skus };
            let expected = style.render(style_id);
            model.seen_skus.extend(style.skus.keys());
            p.styles.insert(style_id, style);
            model.seen_styles.push(style_id);
            (format!("new style {style_id} on product {id}"), r, 201, Some(expected))
        }
        (6, _) => {
            let Some(style_id) = pick(rng, &model.seen_styles) else { return Ok("nothing".into()) };
            let (name, original, sale, default) =
                (text(rng, 2), cents(rng), rng.random_bool(0.3).then(|| cents(rng)), rng.random_bool(0.5));
            let new_photos = photos(rng);
            let body = json!({"name": name, "original_price": price_input(original, rng),
                              "sale_price": sale.map(|c| price_input(c, rng)), "default?": default,
                              "photos": photos_json(&new_photos)});
            let r = send("PUT", &format!("/styles/{style_id}"), &body);
            let Some(owner) = model.style_owner(style_id) else {
                return check((format!("put style {style_id} (deleted)"), r, 404, None));
            };
            let p = model.products.get_mut(&owner).unwrap();
            if default {
                p.styles.values_mut().for_each(|s| s.default = false);
            }
            let style = p.styles.get_mut(&style_id).unwrap();
            (style.name, style.original_cents, style.sale_cents, style.default, style.photos) =
                (name, original, sale, default, new_photos);
            (format!("put style {style_id}"), r, 200, Some(style.render(style_id)))
        }
        (7, _) => {
            let Some(style_id) = pick(rng, &model.seen_styles) else { return Ok("nothing".into()) };
            let r = request("DELETE", &format!("/styles/{style_id}"), &[], None);
            match model.style_owner(style_id) {
                Some(owner) => {
                    model.products.get_mut(&owner).unwrap().styles.remove(&style_id);
                    (format!("delete style {style_id}"), r, 204, None)
                }
                None => (format!("delete style {style_id} (gone)"), r, 404, None),
            }
        }
        (8, _) => {
            let Some(style_id) = pick(rng, &model.seen_styles) else { return Ok("nothing".into()) };
            let (size, quantity) = (text(rng, 1), rng.random_range(0..9));
            let r = send("POST", &format!("/styles/{style_id}/skus"), &json!({"size": size, "quantity": quantity}));
            let Some(owner) = model.style_owner(style_id) else {
                return check((format!("new sku on style {style_id} (deleted)"), r, 404, None));
            };
            let Some(sku_id) = (r.status == 201).then(|| r.json()["sku_id"].as_i64()).flatten() else {
                return Err(format!("step {step}: new sku on {style_id}: {} {}", r.status, r.text()));
            };
            let expected = format!("{{\"sku_id\":{sku_id},\"size\":{},\"quantity\":{quantity}}}", s(&size));
            model
                .products
                .get_mut(&owner)
                .unwrap()
                .styles
                .get_mut(&style_id)
                .unwrap()
                .skus
                .insert(sku_id, (size, quantity));
            model.seen_skus.push(sku_id);
            (format!("new sku {sku_id} on style {style_id}"), r, 201, Some(expected))
        }
        (9, _) => {
            let Some(sku_id) = pick(rng, &model.seen_skus) else { return Ok("nothing".into()) };
            let r = request("DELETE", &format!("/skus/{sku_id}"), &[], None);
            match model.sku_owner(sku_id) {
                Some((owner, style_id)) => {
                    model.products.get_mut(&owner).unwrap().styles.get_mut(&style_id).unwrap().skus.remove(&sku_id);
                    (format!("delete sku {sku_id}"), r, 204, None)
                }
                None => (format!("delete sku {sku_id} (gone)"), r, 404, None),
            }
        }
        (10, _) => {
            let Some(sku_id) = pick(rng, &model.seen_skus) else { return Ok("nothing".into()) };
            let delta: i64 = rng.random_range(1..6) * if rng.random_bool(0.5) { -1 } else { 1 };
            let r = send("POST", &format!("/skus/{sku_id}/movements"), &json!({"delta": delta, "reason": "model"}));
            let what = format!("movement {delta:+} on sku {sku_id}");
            match model.sku_owner(sku_id) {
                None => (what, r, 404, None),
                Some((owner, style_id)) => {
                    let sku = model.products.get_mut(&owner).unwrap().styles.get_mut(&style_id).unwrap();
                    let quantity = &mut sku.skus.get_mut(&sku_id).unwrap().1;
                    if *quantity + delta < 0 {
                        (what, r, 409, None)
                    } else {
                        *quantity += delta;
                        let expected = format!("{{\"sku_id\":{sku_id},\"quantity\":{quantity}}}");
                        (what, r, 201, Some(expected))
                    }
                }
            }
        }
        (11, Some(id)) => {
            let mut related: Vec<i64> =
                (0..rng.random_range(0..4)).filter_map(|_| pick(rng, &model.seen_products)).collect();
            related.retain(|r| *r != id || rng.random_bool(0.1));
            let r = send("PUT", &format!("/products/{id}/related"), &json!(related));
            let what = format!("related of {id}: {related:?}");
            if related.contains(&id) {
                (what, r, 422, None)
            } else if !model.products.contains_key(&id) {
                (what, r, 404, None)
            } else if related.iter().any(|r| !model.products.contains_key(r)) {
                (what, r, 422, None)
            } else {
                let p = model.products.get_mut(&id).unwrap();
                p.related.clear();
                for r in related {
                    if !p.related.contains(&r) {
                        p.related.push(r);
                    }
                }
                (what, r, 200, Some(p.related()))
            }
        }
        (_, Some(id)) => {
            let r = request("DELETE", &format!("/products/{id}"), &[], None);
            if model.products.remove(&id).is_some() {
                for p in model.products.values_mut() {
                    p.related.retain(|r| *r != id);
                }
                (format!("delete product {id}"), r, 204, None)
            } else {
                (format!("delete product {id} (gone)"), r, 404, None)
            }
        }
    };
    check((what, response, status, body)).map_err(|e| format!("step {step}: {e}"))
}

/// The answer must have the predicted status and, if given, body.
fn check((what, response, status, body): (String, Response, u16, Option<String>)) -> Result<String, String> {
    if response.status != status {
        return Err(format!("{what}: expected {status}, got {} {}", response.status, response.text()));
    }
    if let Some(body) = body {
        if response.body != body.as_bytes() {
            return Err(format!("{what}: body differs\nexpected {body}\nactual   {}", response.text()));
        }
    }
    Ok(what)
}

/// Runs `steps` random writes from `seed` against a model of its own.
pub fn random_writes(seed: u64, steps: usize) -> Result<Catalog, String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut model = Catalog::default();
    for i in 0..steps {
        step(&mut rng, &mut model, i)?;
    }
    Ok(model)
}
