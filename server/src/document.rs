//! A stored read document, taken from PostgreSQL as raw bytes.

use bytes::Bytes;
use postgres_types::{FromSql, Type};

/// The bytes of a `text` or `json` column exactly as PostgreSQL sent them:
/// no UTF-8 check, no JSON parse, no re-serialisation. They become the HTTP
/// body as they are.
pub struct Document(pub Bytes);

impl<'a> FromSql<'a> for Document {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Document(Bytes::copy_from_slice(raw)))
    }

    fn accepts(ty: &Type) -> bool {
        matches!(*ty, Type::TEXT | Type::VARCHAR | Type::JSON)
    }
}
