//! The table name, checked before it is put into SQL.

use idem_core::{Error, Result};

/// The table used when none is configured.
pub const DEFAULT_TABLE: &str = "idem_records";

/// The longest table name accepted, leaving room for the index name built
/// from it within PostgreSQL's and MySQL's 63/64-character identifier limits.
pub const MAX_TABLE_LEN: usize = 48;

/// Checks that `name` is an identifier that needs no quoting in any of the
/// three databases: ASCII letters, digits and underscores, not starting with
/// a digit, at most [`MAX_TABLE_LEN`] characters. The name is put into SQL
/// text (tables cannot be bind parameters), so this check is what keeps it
/// safe.
pub(crate) fn validate_table(name: &str) -> Result<()> {
    let starts_ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let all_ok = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !starts_ok || !all_ok || name.len() > MAX_TABLE_LEN {
        return Err(Error::config(format!(
            "invalid table name {name:?}: use 1 to {MAX_TABLE_LEN} ASCII letters, digits or \
             underscores, not starting with a digit"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::validate_table;

    #[test]
    fn accepts_plain_identifiers() {
        for name in ["idem_records", "_t", "T1", &"a".repeat(48)] {
            assert!(validate_table(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn rejects_anything_that_would_need_quoting() {
        for name in [
            "",
            "1abc",
            "a-b",
            "a b",
            "a;drop table x",
            "a\"b",
            "a`b",
            "é",
            "schema.table",
            &"a".repeat(49),
        ] {
            let err = validate_table(name).unwrap_err();
            assert!(matches!(err, idem_core::Error::Config { .. }), "{name}");
        }
    }
}
