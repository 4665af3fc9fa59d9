//! The tables of the two models and the kinds of read document.

/// The normalized write model, on the primary only, in load order.
pub const WRITE_MODEL_TABLES: [&str; 7] =
    ["product", "feature", "style", "photo", "sku", "stock_movement", "related_product"];

/// The paging counts of GET /products (sql/read_views.sql).
pub const PAGING_TABLES: [&str; 2] = ["product_page_block", "product_page_superblock"];

/// The heartbeat the tools bump on the primary to see replicas catch up.
pub const HEARTBEAT_TABLE: &str = "replication_heartbeat";

/// The read model: every table the publication streams to the replicas:
/// the documents of each kind, the paging counts and the heartbeat.
pub const READ_MODEL_TABLES: [&str; 7] = [
    "product_card",
    "product_detail",
    "product_styles",
    "product_related",
    PAGING_TABLES[0],
    PAGING_TABLES[1],
    HEARTBEAT_TABLE,
];

/// A kind of stored read document. Each kind has a table of stored
/// documents (`product_<kind>`) and the view that shapes it from the write
/// model (`product_<kind>_source`), which the triggers, the bulk build and
/// the consistency check all use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocumentKind {
    /// One element of GET /products.
    Card,
    /// GET /products/:id.
    Detail,
    /// GET /products/:id/styles.
    Styles,
    /// GET /products/:id/related.
    Related,
}

impl DocumentKind {
    pub const ALL: [DocumentKind; 4] =
        [DocumentKind::Card, DocumentKind::Detail, DocumentKind::Styles, DocumentKind::Related];

    /// The kind's name in SQL (`build_docs('card', …)`) and in reports.
    pub fn name(self) -> &'static str {
        match self {
            DocumentKind::Card => "card",
            DocumentKind::Detail => "detail",
            DocumentKind::Styles => "styles",
            DocumentKind::Related => "related",
        }
    }

    /// The table of stored documents.
    pub fn table(self) -> &'static str {
        match self {
            DocumentKind::Card => "product_card",
            DocumentKind::Detail => "product_detail",
            DocumentKind::Styles => "product_styles",
            DocumentKind::Related => "product_related",
        }
    }

    /// The view that shapes the documents from the write model.
    pub fn source_view(self) -> &'static str {
        match self {
            DocumentKind::Card => "product_card_source",
            DocumentKind::Detail => "product_detail_source",
            DocumentKind::Styles => "product_styles_source",
            DocumentKind::Related => "product_related_source",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_tables_are_in_the_read_model() {
        for kind in DocumentKind::ALL {
            assert!(READ_MODEL_TABLES.contains(&kind.table()));
            assert_eq!(kind.table(), format!("product_{}", kind.name()));
            assert_eq!(kind.source_view(), format!("{}_source", kind.table()));
        }
    }
}
