//! The notices replicas send on channel `atelier_documents` for every
//! document change they apply (sql/read_notices.sql), parsed.

use atelier_schema::DocumentKind;

/// One applied change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// A document of `kind` for `product` appeared, changed or went away
    /// (`op`); `version` is its new version, or its last one when it went.
    Changed { kind: DocumentKind, product: i64, version: i64, op: Op },
    /// Too many changes in one transaction to list: forget everything.
    Everything,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Inserted,
    Updated,
    /// Gone; the version is the last one it had.
    Deleted,
}

impl Notice {
    /// Parses `<kind> <I|U|D> <product> <version>` or `*`. None for anything
    /// else, which the listener treats as `Everything` (a notice it cannot
    /// read must not leave a stale document behind).
    pub fn parse(payload: &str) -> Option<Notice> {
        if payload == "*" {
            return Some(Notice::Everything);
        }
        let mut parts = payload.split(' ');
        let kind = match parts.next()? {
            "card" => DocumentKind::Card,
            "detail" => DocumentKind::Detail,
            "styles" => DocumentKind::Styles,
            "related" => DocumentKind::Related,
            _ => return None,
        };
        let op = match parts.next()? {
            "I" => Op::Inserted,
            "U" => Op::Updated,
            "D" => Op::Deleted,
            _ => return None,
        };
        let product = parts.next()?.parse().ok()?;
        let version = parts.next()?.parse().ok()?;
        if parts.next().is_some() {
            return None;
        }
        Some(Notice::Changed { kind, product, version, op })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_the_triggers_send() {
        assert_eq!(
            Notice::parse("styles U 12 3456"),
            Some(Notice::Changed { kind: DocumentKind::Styles, product: 12, version: 3456, op: Op::Updated })
        );
        assert_eq!(
            Notice::parse("card D 7 9"),
            Some(Notice::Changed { kind: DocumentKind::Card, product: 7, version: 9, op: Op::Deleted })
        );
        assert_eq!(Notice::parse("*"), Some(Notice::Everything));
        for bad in ["", "card", "card X 1 2", "photo U 1 2", "card U one 2", "card U 1 2 3", "card U 1"] {
            assert_eq!(Notice::parse(bad), None, "{bad:?}");
        }
    }
}
