//! The six tables a catalog is loaded into, as COPY and as CSV files in the
//! public Atelier layout. The loader and the CSV writer both read this, so a
//! file the writer makes is a file the loader takes.

/// The tables COPY fills (the ledger is derived from skus in SQL).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    Product,
    Feature,
    Style,
    Photo,
    Sku,
    Related,
}

impl Table {
    /// In the order the CSV files are written.
    pub const ALL: [Table; 6] =
        [Table::Product, Table::Feature, Table::Style, Table::Photo, Table::Sku, Table::Related];

    /// The table's name in SQL.
    pub fn name(self) -> &'static str {
        match self {
            Table::Product => "product",
            Table::Feature => "feature",
            Table::Style => "style",
            Table::Photo => "photo",
            Table::Sku => "sku",
            Table::Related => "related_product",
        }
    }

    /// The CSV file of the public Atelier layout.
    pub fn csv_file(self) -> &'static str {
        match self {
            Table::Product => "product.csv",
            Table::Feature => "features.csv",
            Table::Style => "styles.csv",
            Table::Photo => "photos.csv",
            Table::Sku => "skus.csv",
            Table::Related => "related.csv",
        }
    }

    /// The CSV header line: the public layout's column names. product.csv
    /// carries two more than the public file, created_at and updated_at, so
    /// a CSV load reproduces a direct load exactly.
    pub fn csv_header(self) -> &'static str {
        match self {
            Table::Product => "id,name,slogan,description,category,default_price,created_at,updated_at",
            Table::Feature => "id,product_id,feature,value",
            Table::Style => "id,productId,name,sale_price,original_price,default_style",
            Table::Photo => "id,styleId,url,thumbnail_url",
            Table::Sku => "id,styleId,size,quantity",
            Table::Related => "id,current_product_id,related_product_id",
        }
    }

    /// The target columns, in the order of the CSV columns and of the
    /// loader's binary rows.
    pub fn columns(self) -> &'static str {
        match self {
            Table::Product => "id, name, slogan, description, category, default_price, created_at, updated_at",
            Table::Feature => "id, product_id, feature, value",
            Table::Style => "id, product_id, name, sale_price, original_price, is_default",
            Table::Photo => "id, style_id, url, thumbnail_url",
            Table::Sku => "id, style_id, size, quantity",
            Table::Related => "id, product_id, related_product_id",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_columns_match_copy_columns() {
        for table in Table::ALL {
            assert_eq!(table.csv_header().split(',').count(), table.columns().split(',').count(), "{table:?}");
            assert!(atelier_schema::tables::WRITE_MODEL_TABLES.contains(&table.name()));
        }
    }
}
