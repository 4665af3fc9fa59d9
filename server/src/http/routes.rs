//! The route table. A path parses into a `Route` (which resource, and its
//! id); the table below says which `Endpoint` each (resource, method) is.
//! Dispatch, the `Allow` header of a 405 and the metrics slot all derive
//! from it: adding an endpoint is a row here and an arm in `dispatch`.

use atelier_schema::tokens::Scope;
use hyper::Method;

use crate::error::ApiError;
use crate::numbers::parse_positive;

/// The paths the service answers, without their ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Products,
    Product,
    ProductStyles,
    ProductRelated,
    Style,
    StyleSkus,
    Sku,
    SkuMovements,
    Healthz,
    Readyz,
    Metrics,
    Browse,
    OpenApi,
}

impl Resource {
    /// Every resource, in the order of its metrics slot.
    pub const ALL: [Resource; 13] = [
        Resource::Products,
        Resource::Product,
        Resource::ProductStyles,
        Resource::ProductRelated,
        Resource::Style,
        Resource::StyleSkus,
        Resource::Sku,
        Resource::SkuMovements,
        Resource::Healthz,
        Resource::Readyz,
        Resource::Metrics,
        Resource::Browse,
        Resource::OpenApi,
    ];

    /// The path pattern: a label for metrics and logs, never with an id.
    pub const fn label(self) -> &'static str {
        match self {
            Resource::Products => "/products",
            Resource::Product => "/products/:id",
            Resource::ProductStyles => "/products/:id/styles",
            Resource::ProductRelated => "/products/:id/related",
            Resource::Style => "/styles/:id",
            Resource::StyleSkus => "/styles/:id/skus",
            Resource::Sku => "/skus/:id",
            Resource::SkuMovements => "/skus/:id/movements",
            Resource::Healthz => "/healthz",
            Resource::Readyz => "/readyz",
            Resource::Metrics => "/metrics",
            Resource::Browse => "/browse",
            Resource::OpenApi => "/openapi.json",
        }
    }

    /// Whether its GET answers a catalog document (the read model), whose
    /// ETag a client may hold.
    pub const fn is_document(self) -> bool {
        matches!(self, Resource::Products | Resource::Product | Resource::ProductStyles | Resource::ProductRelated)
    }

    /// Whether it is one of the operational endpoints, the only ones the
    /// operations listener serves.
    pub const fn is_operational(self) -> bool {
        matches!(self, Resource::Healthz | Resource::Readyz | Resource::Metrics)
    }

    /// This resource's metrics slot.
    pub fn slot(self) -> usize {
        self as usize
    }

    /// The methods this resource answers, as the Allow header lists them.
    pub fn allow(self) -> String {
        let mut allowed: Vec<&str> = Vec::new();
        for verb in Verb::ALL {
            if ENDPOINTS.iter().any(|(r, v, _)| *r == self && *v == verb) {
                allowed.push(verb.name());
                if verb == Verb::Get {
                    allowed.push("HEAD");
                }
            }
        }
        allowed.join(", ")
    }
}

/// The labels of the metrics slots, in slot order.
pub const ROUTE_LABELS: &[&str] = &{
    let mut labels = [""; Resource::ALL.len()];
    let mut i = 0;
    while i < labels.len() {
        labels[i] = Resource::ALL[i].label();
        i += 1;
    }
    labels
};

/// Methods, as the table knows them. HEAD is GET without the body (hyper
/// leaves the body out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Verb {
    /// In the order the Allow header lists them.
    const ALL: [Verb; 5] = [Verb::Get, Verb::Post, Verb::Put, Verb::Patch, Verb::Delete];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::Post => "POST",
            Verb::Put => "PUT",
            Verb::Patch => "PATCH",
            Verb::Delete => "DELETE",
        }
    }

    fn of(method: &Method) -> Option<Verb> {
        Some(match *method {
            Method::GET | Method::HEAD => Verb::Get,
            Method::POST => Verb::Post,
            Method::PUT => Verb::Put,
            Method::PATCH => Verb::Patch,
            Method::DELETE => Verb::Delete,
            _ => return None,
        })
    }
}

/// Everything the service does, one value per (resource, method).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    ListProducts,
    CreateProduct,
    GetProduct,
    ReplaceProduct,
    PatchProduct,
    DeleteProduct,
    GetStyles,
    CreateStyle,
    GetRelated,
    PutRelated,
    ReplaceStyle,
    DeleteStyle,
    CreateSku,
    DeleteSku,
    RecordMovement,
    Healthz,
    Readyz,
    Metrics,
    Browse,
    OpenApi,
}

impl Endpoint {
    /// The scope a token needs for this endpoint: the writes name theirs;
    /// the catalog's reads need `read` only when the operator makes them
    /// private; the operational endpoints, the catalog page and the
    /// contract never need one.
    pub fn scope(self) -> Option<Scope> {
        match self {
            Endpoint::ListProducts | Endpoint::GetProduct | Endpoint::GetStyles | Endpoint::GetRelated => {
                Some(Scope::Read)
            }
            Endpoint::CreateProduct
            | Endpoint::ReplaceProduct
            | Endpoint::PatchProduct
            | Endpoint::DeleteProduct
            | Endpoint::CreateStyle
            | Endpoint::ReplaceStyle
            | Endpoint::DeleteStyle
            | Endpoint::PutRelated
            | Endpoint::CreateSku
            | Endpoint::DeleteSku => Some(Scope::CatalogWrite),
            Endpoint::RecordMovement => Some(Scope::StockWrite),
            Endpoint::Healthz | Endpoint::Readyz | Endpoint::Metrics | Endpoint::Browse | Endpoint::OpenApi => None,
        }
    }
}

/// The table.
pub(crate) const ENDPOINTS: [(Resource, Verb, Endpoint); 20] = [
    (Resource::Products, Verb::Get, Endpoint::ListProducts),
    (Resource::Products, Verb::Post, Endpoint::CreateProduct),
    (Resource::Product, Verb::Get, Endpoint::GetProduct),
    (Resource::Product, Verb::Put, Endpoint::ReplaceProduct),
    (Resource::Product, Verb::Patch, Endpoint::PatchProduct),
    (Resource::Product, Verb::Delete, Endpoint::DeleteProduct),
    (Resource::ProductStyles, Verb::Get, Endpoint::GetStyles),
    (Resource::ProductStyles, Verb::Post, Endpoint::CreateStyle),
    (Resource::ProductRelated, Verb::Get, Endpoint::GetRelated),
    (Resource::ProductRelated, Verb::Put, Endpoint::PutRelated),
    (Resource::Style, Verb::Put, Endpoint::ReplaceStyle),
    (Resource::Style, Verb::Delete, Endpoint::DeleteStyle),
    (Resource::StyleSkus, Verb::Post, Endpoint::CreateSku),
    (Resource::Sku, Verb::Delete, Endpoint::DeleteSku),
    (Resource::SkuMovements, Verb::Post, Endpoint::RecordMovement),
    (Resource::Healthz, Verb::Get, Endpoint::Healthz),
    (Resource::Readyz, Verb::Get, Endpoint::Readyz),
    (Resource::Metrics, Verb::Get, Endpoint::Metrics),
    (Resource::Browse, Verb::Get, Endpoint::Browse),
    (Resource::OpenApi, Verb::Get, Endpoint::OpenApi),
];

/// A parsed path: the resource, and its id (0 for resources without one;
/// Err holding the text for an id that is not a positive 64-bit integer,
/// which is 400 once the method is known to be allowed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub resource: Resource,
    id: Result<i64, String>,
}

impl Route {
    /// Parses a request path. One trailing slash is tolerated, as the
    /// public API's Express routing did. Unknown paths are 404.
    pub fn parse(path: &str) -> Result<Route, ApiError> {
        let path = path.strip_suffix('/').filter(|p| !p.is_empty()).unwrap_or(path);
        let mut parts = path.strip_prefix('/').unwrap_or(path).split('/');
        let (resource, id) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some("products"), None, None, None) => (Resource::Products, None),
            (Some("products"), Some(id), None, None) => (Resource::Product, Some(id)),
            (Some("products"), Some(id), Some("styles"), None) => (Resource::ProductStyles, Some(id)),
            (Some("products"), Some(id), Some("related"), None) => (Resource::ProductRelated, Some(id)),
            (Some("styles"), Some(id), None, None) => (Resource::Style, Some(id)),
            (Some("styles"), Some(id), Some("skus"), None) => (Resource::StyleSkus, Some(id)),
            (Some("skus"), Some(id), None, None) => (Resource::Sku, Some(id)),
            (Some("skus"), Some(id), Some("movements"), None) => (Resource::SkuMovements, Some(id)),
            (Some("healthz"), None, None, None) => (Resource::Healthz, None),
            (Some("readyz"), None, None, None) => (Resource::Readyz, None),
            (Some("metrics"), None, None, None) => (Resource::Metrics, None),
            (Some("browse"), None, None, None) => (Resource::Browse, None),
            (Some("openapi.json"), None, None, None) => (Resource::OpenApi, None),
            _ => return Err(ApiError::NotFound(format!("no route for {path}"))),
        };
        let id = match id {
            Some(text) => parse_positive(text).ok_or_else(|| text.to_string()),
            None => Ok(0),
        };
        Ok(Route { resource, id })
    }

    /// The id in the path: 400 when it is not a positive 64-bit integer.
    pub fn id(&self) -> Result<i64, ApiError> {
        self.id
            .clone()
            .map_err(|text| ApiError::BadRequest(format!("malformed id {text:?}: expected a positive integer")))
    }

    /// The endpoint for `method` on this route, or 405 with its Allow list.
    pub fn endpoint(&self, method: &Method) -> Result<Endpoint, ApiError> {
        let verb = Verb::of(method);
        ENDPOINTS
            .iter()
            .find(|(resource, v, _)| *resource == self.resource && Some(*v) == verb)
            .map(|(_, _, endpoint)| *endpoint)
            .ok_or_else(|| ApiError::MethodNotAllowed { allow: self.resource.allow() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_routes() {
        let route = |resource, id| Route { resource, id: Ok(id) };
        assert_eq!(Route::parse("/products").unwrap(), route(Resource::Products, 0));
        assert_eq!(Route::parse("/products/").unwrap(), route(Resource::Products, 0));
        assert_eq!(Route::parse("/products/7/styles").unwrap(), route(Resource::ProductStyles, 7));
        assert_eq!(Route::parse("/skus/3/movements").unwrap(), route(Resource::SkuMovements, 3));
        assert!(matches!(Route::parse("/products/x").unwrap().id(), Err(ApiError::BadRequest(_))));
        assert!(matches!(Route::parse("/products/1/reviews"), Err(ApiError::NotFound(_))));
        assert!(matches!(Route::parse("/"), Err(ApiError::NotFound(_))));
        assert!(matches!(Route::parse("/products//").unwrap().id(), Err(ApiError::BadRequest(_))));
        // The method is judged before the id: TRACE on a malformed id is 405.
        let bad = Route::parse("/skus/0").unwrap();
        assert!(matches!(bad.endpoint(&Method::TRACE), Err(ApiError::MethodNotAllowed { .. })));
    }

    #[test]
    fn every_resource_has_an_endpoint_and_allow_derives_from_the_table() {
        for resource in Resource::ALL {
            assert!(!resource.allow().is_empty(), "{resource:?}");
            assert_eq!(ROUTE_LABELS[resource.slot()], resource.label());
        }
        assert_eq!(Resource::Product.allow(), "GET, HEAD, PUT, PATCH, DELETE");
        assert_eq!(Resource::Style.allow(), "PUT, DELETE");
        let route = Route { resource: Resource::Sku, id: Ok(1) };
        assert_eq!(route.endpoint(&Method::DELETE).unwrap(), Endpoint::DeleteSku);
        assert!(matches!(route.endpoint(&Method::GET), Err(ApiError::MethodNotAllowed { .. })));
    }

    #[test]
    fn every_write_needs_a_write_scope_and_every_read_at_most_read() {
        for (_, verb, endpoint) in ENDPOINTS {
            match verb {
                Verb::Get => assert!(matches!(endpoint.scope(), None | Some(Scope::Read)), "{endpoint:?}"),
                _ => assert!(
                    matches!(endpoint.scope(), Some(Scope::CatalogWrite | Scope::StockWrite)),
                    "{endpoint:?} must need a write scope"
                ),
            }
        }
        assert_eq!(Endpoint::RecordMovement.scope(), Some(Scope::StockWrite));
        assert_eq!(Endpoint::DeleteProduct.scope(), Some(Scope::CatalogWrite));
    }
}
