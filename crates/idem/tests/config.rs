//! Loading the config: file, environment, precedence, errors.

// figment's Jail returns its own large error type.
#![allow(clippy::result_large_err)]

use std::path::Path;
use std::time::Duration;

use figment::Jail;
use idem::{Error, StoreConfig};

fn load(path: Option<&str>) -> idem::Result<StoreConfig> {
    StoreConfig::load(path.map(Path::new))
}

#[test]
fn defaults_without_file_or_environment() {
    Jail::expect_with(|_| {
        let config = load(None).unwrap();
        assert_eq!(config, StoreConfig::default());
        assert_eq!(config.store_url, "memory://");
        assert_eq!(config.lease, Duration::from_secs(10));
        assert_eq!(config.renewal, None);
        assert_eq!(config.completion_bound, Duration::from_secs(10));
        assert_eq!(config.retention, Duration::from_secs(24 * 3600));
        Ok(())
    });
}

#[test]
fn the_environment_wins_over_the_file() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "idem.toml",
            r#"
                store_url = "sqlite://from-file.db"
                lease = "30s"
                retention = "1h"
                key_prefix = "file:"
                tier = true
                tier_ttl = "2s"
                renewal = "1s"
            "#,
        )?;
        jail.set_env("IDEM_STORE_URL", "redis://:s3cret@127.0.0.1:6379");
        jail.set_env("IDEM_LEASE", "45s");
        jail.set_env("IDEM_MAX_CONNECTIONS", "7");
        jail.set_env("IDEM_COMPLETION_BOUND", "3s");
        // Not config: must be ignored, not rejected.
        jail.set_env("IDEM_TEST_REDIS_URL", "redis://elsewhere");
        jail.set_env("IDEM_REQUIRE", "memory");
        let config = load(Some("idem.toml")).unwrap();
        assert_eq!(
            config.store_url, "redis://:s3cret@127.0.0.1:6379",
            "env must win"
        );
        assert_eq!(config.lease, Duration::from_secs(45), "env must win");
        assert_eq!(
            config.retention,
            Duration::from_secs(3600),
            "file value kept"
        );
        assert_eq!(config.key_prefix, "file:");
        assert!(config.tier);
        assert_eq!(config.tier_ttl, Duration::from_secs(2));
        assert_eq!(config.max_connections, Some(7));
        assert_eq!(config.renewal, Some(Duration::from_secs(1)));
        assert_eq!(config.completion_bound, Duration::from_secs(3));
        assert!(
            !format!("{config:?}").contains("s3cret"),
            "Debug shows the password"
        );
        Ok(())
    });
}

#[test]
fn a_bad_value_is_a_config_error_naming_the_key() {
    Jail::expect_with(|jail| {
        jail.set_env("IDEM_LEASE", "soon");
        let err = load(None).unwrap_err();
        assert!(matches!(err, Error::Config { .. }), "{err:?}");
        assert!(err.to_string().to_lowercase().contains("lease"), "{err}");
        Ok(())
    });
}

#[test]
fn a_missing_file_is_a_config_error() {
    Jail::expect_with(|_| {
        let err = load(Some("nope.toml")).unwrap_err();
        assert!(err.to_string().contains("nope.toml"), "{err}");
        Ok(())
    });
}
