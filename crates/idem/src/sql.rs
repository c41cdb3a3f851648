//! The SQL stores as their own types, built from a [`StoreConfig`]: for what
//! only a SQL store has, such as its transactional mode or its pool.

#![cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]

use idem_core::Result;

use crate::StoreConfig;
use crate::connect::set;

/// Stamps `StoreConfig::$method`, connecting the SQL store `$store` with
/// the config's settings, behind cargo feature `$feature`.
macro_rules! connect_sql {
    ($feature:literal, $method:ident, $on:ident, $store:ident, $config:ident, $pool:ident, $url:literal) => {
        #[cfg(feature = $feature)]
        impl StoreConfig {
            #[doc = concat!(
                "Connects to the store this config names as an [`idem_sql::", stringify!($store),
                "`]: for what only a SQL store has, such as its transactional mode ",
                "(`transactional()`) or its pool. The memory tier setting does not apply.\n\n",
                "# Errors\n[`idem_core::Error::Config`] when the URL is not one for this ",
                "store; the store's error when it cannot connect.\n\n",
                "# Examples\n```no_run\n",
                "# async fn f() -> idem::Result<()> {\n",
                "let store = idem::StoreConfig::from_url(\"", $url, "\").", stringify!($method),
                "().await?;\nlet engine = store.transactional();\n# let _ = engine; Ok(()) }\n```"
            )]
            pub async fn $method(&self) -> Result<idem_sql::$store> {
                use idem_sql::$config as C;
                let c = C::from_url(self.store_url.trim())?;
                let c = set(c, self.max_connections, C::with_max_connections);
                let c = set(c, self.connect_timeout, C::with_connect_timeout);
                let c = set(c, self.operation_timeout, C::with_operation_timeout);
                let c = set(c, self.table.clone(), |c, t: String| c.with_table(t));
                let c = set(c, self.migrations, C::with_migrations);
                idem_sql::$store::connect(c).await
            }

            #[doc = concat!(
                "The [`idem_sql::", stringify!($store), "`] on the application's own pool ",
                "(see `", stringify!($store), "::from_pool`), with this config's table, ",
                "migrations and timeouts; the config's URL names the same database, and its ",
                "pool size does not apply.\n\n",
                "# Errors\n[`idem_core::Error::Config`] when the URL is not one for this ",
                "store; the store's error when no connection is had in time."
            )]
            pub async fn $on(
                &self,
                pool: idem_sql::sqlx::$pool,
            ) -> Result<idem_sql::$store> {
                use idem_sql::$config as C;
                let c = C::from_url(self.store_url.trim())?;
                let c = set(c, self.connect_timeout, C::with_connect_timeout);
                let c = set(c, self.operation_timeout, C::with_operation_timeout);
                let c = set(c, self.table.clone(), |c, t: String| c.with_table(t));
                let c = set(c, self.migrations, C::with_migrations);
                idem_sql::$store::from_pool(pool, c).await
            }
        }
    };
}

connect_sql!(
    "sqlite",
    connect_sqlite,
    sqlite_on_pool,
    SqliteStore,
    SqliteConfig,
    SqlitePool,
    "sqlite://app.db"
);
connect_sql!(
    "postgres",
    connect_postgres,
    postgres_on_pool,
    PostgresStore,
    PostgresConfig,
    PgPool,
    "postgres://app@127.0.0.1/app"
);
connect_sql!(
    "mysql",
    connect_mysql,
    mysql_on_pool,
    MySqlStore,
    MySqlConfig,
    MySqlPool,
    "mysql://app@127.0.0.1/app"
);
