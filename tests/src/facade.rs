//! Stores built the way users build them: through `idem::StoreConfig`.

use std::time::Duration;

use idem::StoreConfig;
use idem_conformance::Subject;

/// A subject over the store `url` names, built by the facade, with the memory
/// tier in front when `tier` is set and in `table` for SQL backends.
///
/// # Panics
/// When the store cannot be built: the server was found, so this is a failure.
pub async fn through_facade(
    name: &'static str,
    url: &str,
    table: Option<&str>,
    tier: bool,
) -> Subject {
    let mut config = StoreConfig::from_url(url);
    config.tier = tier;
    config.table = table.map(str::to_owned);
    config.max_connections = Some(16);
    config.connect_timeout = Some(Duration::from_secs(5));
    let store = config
        .connect()
        .await
        .unwrap_or_else(|e| panic!("{name}: the facade could not build the store: {e}"));
    Subject::new(name, store)
}

/// A table for this test process: `idem_t_<unix seconds>_<random>`, the form
/// the SQL test targets' clean-up recognises and drops once it is stale.
pub fn process_table() -> &'static str {
    static TABLE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos();
        format!("idem_t_{secs}_c{}x{nanos:x}", std::process::id())
    });
    TABLE.as_str()
}
