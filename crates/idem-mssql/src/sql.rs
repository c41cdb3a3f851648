//! The SQL text of every statement. Values are always parameters (`@P1`...);
//! the validated table name is the only thing spliced in.

use std::time::Duration;

use idem_core::{MAX_STORE_KEY_LEN, StoreKey};

use crate::table::TableName;

/// The byte that ends every stored key. SQL Server compares `VARBINARY`
/// values as if right-padded with `0x00`, so `a` and `a\0` would be one key;
/// a final byte that is never `0x00` keeps them apart. `0xFF` never occurs in
/// UTF-8, so the encoding is also unambiguous.
pub(crate) const KEY_END: u8 = 0xFF;

/// The `[Key]` column's size: the longest store key and its end byte, well
/// under SQL Server's 900-byte limit for an index key.
pub(crate) const KEY_COLUMN_BYTES: usize = MAX_STORE_KEY_LEN + 1;

const _: () = assert!(KEY_COLUMN_BYTES <= 900);

/// Rows deleted per statement by a purge, so a large purge does not escalate
/// to a table lock.
pub(crate) const PURGE_BATCH: i32 = 1000;

/// A key as it is stored: its UTF-8 bytes and [`KEY_END`]. Binary, so keys
/// that differ only in case or in trailing spaces stay distinct.
pub(crate) fn key_bytes(key: &StoreKey) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(key.as_str().len() + 1);
    bytes.extend_from_slice(key.as_str().as_bytes());
    bytes.push(KEY_END);
    bytes
}

/// A TTL as whole seconds and the remaining milliseconds, for `DATEADD`
/// (whose amount is an `INT`). Rounded up to the millisecond, at least 1 ms,
/// at most `i32::MAX` seconds (68 years).
pub(crate) fn ttl_parts(ttl: Duration) -> (i32, i32) {
    let millis = ttl.as_nanos().div_ceil(1_000_000).max(1);
    let secs = millis / 1000;
    if secs >= i32::MAX as u128 {
        return (i32::MAX, 0);
    }
    (secs as i32, (millis % 1000) as i32)
}

/// `SYSUTCDATETIME()` plus the TTL given as parameters `@P{secs}` (seconds)
/// and `@P{millis}` (milliseconds).
fn expiry(secs: u8, millis: u8) -> String {
    format!("DATEADD(MILLISECOND, @P{millis}, DATEADD(SECOND, @P{secs}, SYSUTCDATETIME()))")
}

/// The lock wait as `SET LOCK_TIMEOUT`'s milliseconds: rounded up, at most
/// `i32::MAX` (24 days); zero is "do not wait at all".
pub(crate) fn lock_timeout_millis(wait: Duration) -> i32 {
    let millis = wait.as_nanos().div_ceil(1_000_000);
    i32::try_from(millis).unwrap_or(i32::MAX)
}

/// Opens the transactional mode's transaction: `XACT_ABORT` off (an error
/// caught in the claim leaves the transaction usable, whatever an earlier
/// run left set on the session), read committed (row locks, no key-range
/// locks), lock waits bounded by `lock_wait`. A batch of its own,
/// not a parameterized call: SQL Server restores a `SET` made inside
/// `sp_executesql` when it returns, and a transaction begun there must end
/// there.
pub(crate) fn begin_transaction(lock_wait: Duration) -> String {
    format!(
        "SET XACT_ABORT OFF;\n\
         SET TRANSACTION ISOLATION LEVEL READ COMMITTED;\n\
         SET LOCK_TIMEOUT {};\n\
         BEGIN TRANSACTION;",
        lock_timeout_millis(lock_wait)
    )
}

/// Commits the transaction and gives the session back its default lock
/// wait (none: `-1`), so the pool holds no connection with a bound left on.
pub(crate) const COMMIT_TRANSACTION: &str = "COMMIT TRANSACTION;\nSET LOCK_TIMEOUT -1;";

/// Rolls the transaction back, if the server has not already (`XACT_ABORT`
/// or a deadlock ends it on its own), and resets the lock wait.
pub(crate) const ROLLBACK_TRANSACTION: &str =
    "IF @@TRANCOUNT > 0 ROLLBACK TRANSACTION;\nSET LOCK_TIMEOUT -1;";

/// Every statement the store runs, built once for its table.
#[derive(Debug, Clone)]
pub(crate) struct Statements {
    /// `@P1` the quoted table name (for `OBJECT_ID`).
    pub(crate) create: String,
    /// `@P1` key.
    pub(crate) find: String,
    /// `@P1` key.
    pub(crate) exists: String,
    /// `@P1` key, `@P2` value, `@P3` seconds, `@P4` milliseconds.
    pub(crate) store: String,
    /// `@P1` key.
    pub(crate) remove: String,
    /// `@P1` key, `@P2` value, `@P3` seconds, `@P4` milliseconds, `@P5` token.
    pub(crate) claim: String,
    /// The claim of the transactional mode, inside its transaction; `@P1`
    /// key, `@P2` value, `@P3` seconds, `@P4` milliseconds, `@P5` token.
    pub(crate) claim_in_transaction: String,
    /// `complete` in the transactional mode's transaction, which writes
    /// nothing when the transaction is no longer open (the handler's
    /// statements ended it); same parameters.
    pub(crate) complete_in_transaction: String,
    /// `@P1` key, `@P2` seconds, `@P3` milliseconds, `@P4` token.
    pub(crate) extend: String,
    /// `@P1` key, `@P2` value, `@P3` seconds, `@P4` milliseconds, `@P5` token.
    pub(crate) complete: String,
    /// `@P1` key, `@P2` token.
    pub(crate) release: String,
    /// `@P1` batch size.
    pub(crate) purge: String,
}

impl Statements {
    pub(crate) fn new(table: &TableName) -> Self {
        let t = table.quoted();
        let live = "[ExpiresAt] > SYSUTCDATETIME()";
        let exp = expiry(3, 4);
        let complete = format!(
            "UPDATE {t} SET [Value] = @P2, [ExpiresAt] = {exp}, [LeaseToken] = NULL\n\
             WHERE [Key] = @P1 AND [LeaseToken] = @P5 AND {live};"
        );
        Self {
            create: format!(
                "IF OBJECT_ID(@P1, N'U') IS NULL\n\
                 BEGIN\n\
                 \x20   CREATE TABLE {t} (\n\
                 \x20       [Key] VARBINARY({KEY_COLUMN_BYTES}) NOT NULL,\n\
                 \x20       [Value] VARBINARY(MAX) NOT NULL,\n\
                 \x20       [ExpiresAt] DATETIME2 NOT NULL,\n\
                 \x20       [LeaseToken] UNIQUEIDENTIFIER NULL,\n\
                 \x20       CONSTRAINT {pk} PRIMARY KEY CLUSTERED ([Key])\n\
                 \x20   );\n\
                 \x20   CREATE INDEX {ix} ON {t} ([ExpiresAt]);\n\
                 END;",
                pk = table.primary_key(),
                ix = table.expiry_index(),
            ),
            find: format!("SELECT [Value] FROM {t} WHERE [Key] = @P1 AND {live};"),
            exists: format!(
                "SELECT CAST(1 AS INT) AS [Live] FROM {t} WHERE [Key] = @P1 AND {live};"
            ),
            store: format!(
                "MERGE {t} WITH (HOLDLOCK) AS [Target]\n\
                 USING (SELECT @P1 AS [Key]) AS [Source] ON [Target].[Key] = [Source].[Key]\n\
                 WHEN MATCHED THEN\n\
                 \x20   UPDATE SET [Value] = @P2, [ExpiresAt] = {exp}, [LeaseToken] = NULL\n\
                 WHEN NOT MATCHED THEN\n\
                 \x20   INSERT ([Key], [Value], [ExpiresAt], [LeaseToken]) VALUES (@P1, @P2, {exp}, NULL);"
            ),
            remove: format!("DELETE FROM {t} WHERE [Key] = @P1 AND {live};"),
            // One MERGE decides: it writes only when the key is absent or
            // expired, and HOLDLOCK (serializable) makes the check and the
            // write one step, so of two racing sessions exactly one writes.
            // When it wrote nothing, the row it found live is still locked by
            // this transaction, so the SELECT reads that same record.
            claim: format!(
                "SET NOCOUNT ON;\n\
                 SET XACT_ABORT ON;\n\
                 BEGIN TRANSACTION;\n\
                 MERGE {t} WITH (HOLDLOCK) AS [Target]\n\
                 USING (SELECT @P1 AS [Key]) AS [Source] ON [Target].[Key] = [Source].[Key]\n\
                 WHEN MATCHED AND [Target].[ExpiresAt] <= SYSUTCDATETIME() THEN\n\
                 \x20   UPDATE SET [Value] = @P2, [ExpiresAt] = {exp}, [LeaseToken] = @P5\n\
                 WHEN NOT MATCHED THEN\n\
                 \x20   INSERT ([Key], [Value], [ExpiresAt], [LeaseToken]) VALUES (@P1, @P2, {exp}, @P5)\n\
                 OUTPUT inserted.[LeaseToken] AS [Acquired], CAST(NULL AS VARBINARY(MAX)) AS [Value];\n\
                 IF @@ROWCOUNT = 0\n\
                 \x20   SELECT CAST(NULL AS UNIQUEIDENTIFIER) AS [Acquired], [Value] FROM {t} WHERE [Key] = @P1;\n\
                 COMMIT TRANSACTION;"
            ),
            // The claim held to the end of a transaction that runs a
            // handler. The MERGE above cannot be: its key-range locks
            // (HOLDLOCK) on an absent key cover the gap up to the next key,
            // so held until the commit they would stall every other new key
            // in that gap. Here the INSERT takes a lock on its own key only;
            // a racing INSERT of the same key waits on that lock (up to
            // LOCK_TIMEOUT), then fails with a duplicate key (2627/2601)
            // when the first committed, or inserts when it rolled back. On a
            // duplicate, an expired row is taken over; a live one is read
            // with a lock held for the read alone (READCOMMITTEDLOCK: the
            // latest committed record, under read committed snapshot too).
            // No XACT_ABORT and no inner transaction: the CATCH goes on in
            // the caller's transaction, and every other error is rethrown.
            claim_in_transaction: format!(
                "SET NOCOUNT ON;\n\
                 DECLARE @Acquired UNIQUEIDENTIFIER = @P5;\n\
                 BEGIN TRY\n\
                 \x20   INSERT INTO {t} ([Key], [Value], [ExpiresAt], [LeaseToken]) VALUES (@P1, @P2, {exp}, @P5);\n\
                 END TRY\n\
                 BEGIN CATCH\n\
                 \x20   IF ERROR_NUMBER() NOT IN (2601, 2627) THROW;\n\
                 \x20   UPDATE {t} WITH (ROWLOCK) SET [Value] = @P2, [ExpiresAt] = {exp}, [LeaseToken] = @P5\n\
                 \x20   WHERE [Key] = @P1 AND [ExpiresAt] <= SYSUTCDATETIME();\n\
                 \x20   IF @@ROWCOUNT = 0 SET @Acquired = NULL;\n\
                 END CATCH;\n\
                 IF @Acquired IS NULL\n\
                 \x20   SELECT CAST(NULL AS UNIQUEIDENTIFIER) AS [Acquired], [Value] FROM {t} WITH (READCOMMITTEDLOCK) WHERE [Key] = @P1;\n\
                 ELSE\n\
                 \x20   SELECT @Acquired AS [Acquired], CAST(NULL AS VARBINARY(MAX)) AS [Value];"
            ),
            extend: format!(
                "UPDATE {t} SET [ExpiresAt] = {renewed}\n\
                 WHERE [Key] = @P1 AND [LeaseToken] = @P4 AND {live};",
                renewed = expiry(2, 3),
            ),
            complete_in_transaction: format!("IF @@TRANCOUNT > 0\n{complete}"),
            complete,
            release: format!(
                "DELETE FROM {t} WHERE [Key] = @P1 AND [LeaseToken] = @P2 AND {live};"
            ),
            purge: format!("DELETE TOP (@P1) FROM {t} WHERE [ExpiresAt] <= SYSUTCDATETIME();"),
        }
    }

    /// Every statement with its name and its number of parameters.
    #[cfg(test)]
    pub(crate) fn all(&self) -> [(&'static str, &str, u8); 12] {
        [
            ("create", &self.create, 1),
            ("find", &self.find, 1),
            ("exists", &self.exists, 1),
            ("store", &self.store, 4),
            ("remove", &self.remove, 1),
            ("claim", &self.claim, 5),
            ("claim_in_transaction", &self.claim_in_transaction, 5),
            ("extend", &self.extend, 4),
            ("complete", &self.complete, 5),
            ("complete_in_transaction", &self.complete_in_transaction, 5),
            ("release", &self.release, 2),
            ("purge", &self.purge, 1),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_statement_uses_exactly_its_parameters_and_only_the_table_name() {
        let table = TableName::parse("app.Idem_Keys").unwrap();
        let statements = Statements::new(&table);
        for (name, sql, params) in statements.all() {
            for n in 1..=params {
                assert!(
                    sql.contains(&format!("@P{n}")),
                    "{name} lacks @P{n}:\n{sql}"
                );
            }
            assert!(
                !sql.contains(&format!("@P{}", params + 1)),
                "{name} uses more than {params} parameters:\n{sql}"
            );
            // No literal values: no string or binary literals.
            let without_names = sql.replace("N'U'", "");
            assert!(
                !without_names.contains('\''),
                "{name} has a string literal:\n{sql}"
            );
            assert!(!sql.contains("0x"), "{name} has a binary literal:\n{sql}");
            assert!(sql.contains("[app].[Idem_Keys]"), "{name}:\n{sql}");
        }
    }

    #[test]
    fn values_never_reach_the_sql_text() {
        // Statements are built from the table alone: build them, then check
        // that nothing a caller passes could be in them.
        let key = StoreKey::parse("k'); DROP TABLE x; --").unwrap();
        let token = idem_core::LeaseToken::generate();
        let statements = Statements::new(&TableName::default());
        for (name, sql, _) in statements.all() {
            assert!(!sql.contains(key.as_str()), "{name}");
            assert!(!sql.contains("DROP"), "{name}");
            assert!(!sql.contains(&token.to_string()), "{name}");
        }
    }

    #[test]
    fn claim_is_one_serializable_merge_that_takes_only_absent_or_expired_keys() {
        let claim = Statements::new(&TableName::default()).claim;
        assert_eq!(claim.matches("MERGE ").count(), 1);
        assert!(claim.contains("WITH (HOLDLOCK)"));
        assert!(claim.contains("WHEN MATCHED AND [Target].[ExpiresAt] <= SYSUTCDATETIME() THEN"));
        assert!(claim.contains("WHEN NOT MATCHED THEN"));
        assert!(claim.contains("OUTPUT inserted.[LeaseToken]"));
        assert!(claim.contains("SET XACT_ABORT ON"));
        // The record is read inside the MERGE's transaction, before COMMIT.
        assert!(claim.find("SELECT CAST(NULL").unwrap() < claim.find("COMMIT").unwrap());
    }

    #[test]
    fn fenced_writes_compare_the_token_in_the_writing_statement() {
        let s = Statements::new(&TableName::default());
        for sql in [&s.extend, &s.complete, &s.release] {
            assert_eq!(sql.matches(';').count(), 1, "one statement:\n{sql}");
            assert!(sql.contains("[LeaseToken] = @P"), "{sql}");
            assert!(sql.contains("[ExpiresAt] > SYSUTCDATETIME()"), "{sql}");
        }
        for sql in [&s.find, &s.exists, &s.remove] {
            assert!(sql.contains("[ExpiresAt] > SYSUTCDATETIME()"), "{sql}");
        }
        // extend renews the expiry alone: bytes and token stay as they are.
        assert!(
            s.extend.contains("SET [ExpiresAt] = DATEADD("),
            "{}",
            s.extend
        );
        assert!(!s.extend.contains("[Value] ="), "{}", s.extend);
        assert!(!s.extend.contains("[LeaseToken] = NULL"), "{}", s.extend);
        assert!(s.store.contains("MERGE [IdempotencyStore] WITH (HOLDLOCK)"));
        assert!(s.store.contains("[LeaseToken] = NULL"));
    }

    #[test]
    fn the_claim_in_a_transaction_locks_its_key_alone_and_stays_in_the_callers_transaction() {
        let s = Statements::new(&TableName::default());
        let claim = &s.claim_in_transaction;
        // Neither a transaction of its own (it would have to end inside
        // sp_executesql) nor XACT_ABORT (the CATCH goes on in the caller's
        // transaction), nor serializable range locks held to the commit.
        for absent in [
            "TRANSACTION",
            "XACT_ABORT",
            "HOLDLOCK",
            "SERIALIZABLE",
            "MERGE",
        ] {
            assert!(!claim.contains(absent), "{absent}:\n{claim}");
        }
        assert_eq!(claim.matches("INSERT INTO [IdempotencyStore]").count(), 1);
        // Only a duplicate key is handled; everything else (1222, 1205) is
        // rethrown to the caller.
        assert!(claim.contains("IF ERROR_NUMBER() NOT IN (2601, 2627) THROW;"));
        assert!(claim.find("BEGIN TRY").unwrap() < claim.find("INSERT").unwrap());
        assert!(claim.find("INSERT").unwrap() < claim.find("BEGIN CATCH").unwrap());
        // A duplicate is taken over only when expired, with the same expiry
        // and token as the insert.
        assert!(claim.contains("WHERE [Key] = @P1 AND [ExpiresAt] <= SYSUTCDATETIME()"));
        assert_eq!(claim.matches(&expiry(3, 4)).count(), 2);
        // A live record is read under a lock held for the read alone, so
        // replaying duplicates do not queue behind each other.
        assert!(claim.contains("WITH (READCOMMITTEDLOCK) WHERE [Key] = @P1"));
        assert!(!claim.contains("UPDLOCK"));
        // It answers as the store's claim does: (Acquired, Value).
        assert!(
            claim.contains(
                "SELECT @Acquired AS [Acquired], CAST(NULL AS VARBINARY(MAX)) AS [Value]"
            )
        );
        assert!(claim.contains("SELECT CAST(NULL AS UNIQUEIDENTIFIER) AS [Acquired], [Value]"));
    }

    #[test]
    fn the_completion_in_a_transaction_writes_only_while_it_is_open() {
        let s = Statements::new(&TableName::default());
        let complete = &s.complete_in_transaction;
        assert!(
            complete.starts_with("IF @@TRANCOUNT > 0\nUPDATE "),
            "{complete}"
        );
        assert!(complete.ends_with(&s.complete), "{complete}");
    }

    #[test]
    fn the_transaction_batches_bound_the_lock_wait_and_reset_it() {
        let begin = begin_transaction(Duration::from_millis(300));
        assert!(begin.contains("SET LOCK_TIMEOUT 300;"), "{begin}");
        assert!(begin.contains("READ COMMITTED"), "{begin}");
        assert!(begin.starts_with("SET XACT_ABORT OFF;"), "{begin}");
        assert!(begin.ends_with("BEGIN TRANSACTION;"), "{begin}");
        assert!(!begin.contains("@P"), "a batch has no parameters: {begin}");
        assert!(COMMIT_TRANSACTION.starts_with("COMMIT TRANSACTION;"));
        assert!(ROLLBACK_TRANSACTION.starts_with("IF @@TRANCOUNT > 0 ROLLBACK TRANSACTION;"));
        for end in [COMMIT_TRANSACTION, ROLLBACK_TRANSACTION] {
            assert!(end.ends_with("SET LOCK_TIMEOUT -1;"), "{end}");
        }
        assert_eq!(lock_timeout_millis(Duration::ZERO), 0);
        assert_eq!(lock_timeout_millis(Duration::from_micros(1500)), 2);
        assert_eq!(lock_timeout_millis(Duration::from_secs(2)), 2000);
        assert_eq!(lock_timeout_millis(Duration::MAX), i32::MAX);
        assert!(
            begin_transaction(Duration::MAX).contains(&format!("SET LOCK_TIMEOUT {};", i32::MAX))
        );
    }

    #[test]
    fn stored_keys_stay_distinct_under_sql_server_comparison() {
        // SQL Server ignores trailing 0x00 when comparing VARBINARY; model
        // that and check the encoding keeps every pair apart.
        fn sql_equal(a: &[u8], b: &[u8]) -> bool {
            let trim = |x: &[u8]| x.iter().rposition(|&c| c != 0).map_or(0, |i| i + 1);
            a[..trim(a)] == b[..trim(b)]
        }
        let keys = ["a", "A", "a ", "a\0", "a\0\0", "\0", "a\u{1}", "ab", "a b"];
        for x in keys {
            for y in keys {
                let (kx, ky) = (StoreKey::parse(x).unwrap(), StoreKey::parse(y).unwrap());
                assert_eq!(
                    sql_equal(&key_bytes(&kx), &key_bytes(&ky)),
                    x == y,
                    "{x:?} vs {y:?}"
                );
            }
        }
        let longest = StoreKey::parse("k".repeat(MAX_STORE_KEY_LEN)).unwrap();
        assert_eq!(key_bytes(&longest).len(), KEY_COLUMN_BYTES);
    }

    #[test]
    fn ttl_parts_round_up_and_clamp() {
        assert_eq!(ttl_parts(Duration::ZERO), (0, 1));
        assert_eq!(ttl_parts(Duration::from_nanos(1)), (0, 1));
        assert_eq!(ttl_parts(Duration::from_micros(1500)), (0, 2));
        assert_eq!(ttl_parts(Duration::from_millis(300)), (0, 300));
        assert_eq!(ttl_parts(Duration::from_millis(86_400_001)), (86_400, 1));
        assert_eq!(ttl_parts(Duration::MAX), (i32::MAX, 0));
        assert_eq!(
            ttl_parts(Duration::from_secs(u64::from(u32::MAX))),
            (i32::MAX, 0)
        );
    }
}
