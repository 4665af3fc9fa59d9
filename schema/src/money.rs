//! Money as PostgreSQL's binary `numeric`, so that prices travel as exact
//! decimals (no float, no text cast in SQL).

use std::error::Error;

use bytes::{BufMut, BytesMut};
use postgres_types::{to_sql_checked, IsNull, ToSql, Type};

/// An amount in cents, sent as a `numeric` with two decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Money(pub i64);

impl ToSql for Money {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        // numeric's binary form: digit count, weight of the first digit (in
        // powers of 10000), sign, display scale, then base-10000 digits.
        let negative = self.0 < 0;
        let cents = self.0.unsigned_abs();
        let mut integer = cents / 100;
        let fraction = (cents % 100) as i16 * 100;
        let mut digits: Vec<i16> = Vec::new();
        while integer > 0 {
            digits.push((integer % 10_000) as i16);
            integer /= 10_000;
        }
        digits.reverse();
        // A value below 1 starts at the fraction: weight -1.
        let weight = digits.len() as i16 - 1;
        if fraction != 0 {
            digits.push(fraction);
        }
        while digits.last() == Some(&0) {
            digits.pop();
        }
        out.put_i16(digits.len() as i16);
        out.put_i16(if digits.is_empty() { 0 } else { weight });
        out.put_u16(if negative { 0x4000 } else { 0 });
        out.put_i16(2);
        for digit in digits {
            out.put_i16(digit);
        }
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }

    to_sql_checked!();
}
