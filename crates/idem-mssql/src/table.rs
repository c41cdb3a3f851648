//! The table name: validated once, then the only text ever spliced into SQL.

use std::fmt;

use idem_core::{Error, Result};

/// The table used when none is configured.
pub const DEFAULT_TABLE: &str = "IdempotencyStore";

/// The longest name accepted for the table and for its schema, in characters.
/// SQL Server allows 128; the constraint and index names derived from the
/// table name must fit too.
pub const MAX_NAME_LEN: usize = 100;

/// A validated table name, optionally with a schema: `IdempotencyStore` or
/// `app.IdempotencyStore`.
///
/// Each part starts with an ASCII letter or `_` and holds only ASCII letters,
/// digits and `_`, at most [`MAX_NAME_LEN`] characters. Nothing else can reach
/// the SQL text, so bracket-quoting the parts is enough to make them safe.
///
/// # Examples
/// ```
/// use idem_mssql::TableName;
/// let name = TableName::parse("app.Idempotency_2")?;
/// assert_eq!(name.quoted(), "[app].[Idempotency_2]");
/// assert!(TableName::parse("x]; DROP TABLE y; --").is_err());
/// # Ok::<(), idem_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TableName {
    schema: Option<String>,
    table: String,
}

impl TableName {
    /// Validates `name` (`table` or `schema.table`).
    pub fn parse(name: &str) -> Result<Self> {
        let (schema, table) = match name.split_once('.') {
            Some((schema, table)) => (Some(schema), table),
            None => (None, name),
        };
        if let Some(schema) = schema {
            check_part(schema, "schema")?;
        }
        check_part(table, "table")?;
        Ok(Self {
            schema: schema.map(str::to_owned),
            table: table.to_owned(),
        })
    }

    /// The name as SQL text: `[schema].[table]` or `[table]`.
    pub fn quoted(&self) -> String {
        match &self.schema {
            Some(schema) => format!("[{schema}].[{}]", self.table),
            None => format!("[{}]", self.table),
        }
    }

    /// The bare table name, without its schema.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The schema, when one was given.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// The primary key constraint's name, quoted (constraint names are unique
    /// per schema, so it carries the table's name).
    pub(crate) fn primary_key(&self) -> String {
        format!("[PK_{}]", self.table)
    }

    /// The expiry index's name, quoted.
    pub(crate) fn expiry_index(&self) -> String {
        format!("[IX_{}_ExpiresAt]", self.table)
    }
}

impl Default for TableName {
    fn default() -> Self {
        Self {
            schema: None,
            table: DEFAULT_TABLE.to_owned(),
        }
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.schema {
            Some(schema) => write!(f, "{schema}.{}", self.table),
            None => f.write_str(&self.table),
        }
    }
}

fn check_part(part: &str, what: &str) -> Result<()> {
    let mut chars = part.chars();
    let Some(first) = chars.next() else {
        return Err(Error::config(format!("the {what} name is empty")));
    };
    if part.len() > MAX_NAME_LEN {
        return Err(Error::config(format!(
            "the {what} name is {} characters long; at most {MAX_NAME_LEN} are allowed",
            part.len()
        )));
    }
    if !(first.is_ascii_alphabetic() || first == '_') {
        return Err(Error::config(format!(
            "the {what} name must start with an ASCII letter or `_`"
        )));
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(Error::config(format!(
            "the {what} name may hold only ASCII letters, digits and `_`"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_and_schema_qualified_names() {
        assert_eq!(TableName::parse("T").unwrap().quoted(), "[T]");
        assert_eq!(TableName::parse("_t_1").unwrap().quoted(), "[_t_1]");
        let name = TableName::parse("dbo.IdempotencyStore").unwrap();
        assert_eq!(name.quoted(), "[dbo].[IdempotencyStore]");
        assert_eq!(name.schema(), Some("dbo"));
        assert_eq!(name.table(), "IdempotencyStore");
        assert_eq!(name.to_string(), "dbo.IdempotencyStore");
        assert_eq!(name.primary_key(), "[PK_IdempotencyStore]");
        assert_eq!(name.expiry_index(), "[IX_IdempotencyStore_ExpiresAt]");
        assert_eq!(TableName::default().quoted(), "[IdempotencyStore]");
        let longest = "a".repeat(MAX_NAME_LEN);
        assert!(TableName::parse(&longest).is_ok());
    }

    #[test]
    fn rejects_everything_else_with_a_config_error() {
        for bad in [
            "",
            ".",
            "a.",
            ".a",
            "a.b.c",
            "1abc",
            "a b",
            "a-b",
            "a]",
            "[a]",
            "a;DROP TABLE b",
            "a'--",
            "ä",
            "a\u{0}",
            &"a".repeat(MAX_NAME_LEN + 1),
        ] {
            let err = TableName::parse(bad).expect_err(bad);
            assert!(matches!(err, Error::Config { .. }), "{bad:?}: {err:?}");
        }
    }
}
