//! Values and keys: binary safety, punctuation, limits, scopes.

use std::time::Duration;

use idem_core::{IdempotencyKey, KeyError, KeySpace, MAX_KEY_LEN, Scope};

use crate::Subject;
use crate::subject::{fresh_space, random_key};

const HOUR: Duration = Duration::from_secs(3600);

/// Empty values, every byte value, and a 1 MiB value come back unchanged,
/// through both `store` and `complete`.
pub async fn values_are_binary_safe(s: &Subject) {
    let every_byte: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
    let mib: Vec<u8> = (0..1 << 20)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for value in [Vec::new(), every_byte, mib, vec![0u8; 17]] {
        let len = value.len();
        let key = s.fresh_key();
        s.put(&key, &value, HOUR).await;
        let what = format!("value of {len} bytes in store/find");
        s.assert_value(&key, &value, &what).await;

        let key = s.fresh_key();
        let token = s.claim_acquired(&key, &value, HOUR, "fresh key").await;
        let what = format!("value of {len} bytes in claim");
        s.assert_value(&key, &value, &what).await;
        s.complete(&key, &token, &value, HOUR).await;
        let what = format!("value of {len} bytes in complete");
        s.assert_value(&key, &value, &what).await;
    }
}

/// Keys with quotes, percent, wildcards, colons, braces, backslashes and
/// spaces are stored under exactly themselves.
pub async fn keys_with_punctuation_work(s: &Subject) {
    let space = fresh_space();
    let raw = [
        "'",
        "\"",
        "%",
        "*",
        ":",
        "{",
        "}",
        "\\",
        " ",
        r#"a'b"c%d*e:f{g}h\i j"#,
        "%_",
        "' OR '1'='1",
    ];
    let keys: Vec<_> = raw
        .iter()
        .map(|k| space.key(&Scope::global(), &IdempotencyKey::new(*k).unwrap()))
        .collect();
    for (i, key) in keys.iter().enumerate() {
        s.put(key, format!("v{i}"), HOUR).await;
    }
    for (i, key) in keys.iter().enumerate() {
        let what = format!("key {:?} read the wrong value", raw[i]);
        s.assert_value(key, format!("v{i}"), &what).await;
    }
    // A wildcard must not match anything but itself.
    assert!(s.store().remove(&keys[3]).await.unwrap());
    assert!(
        s.store().exists(&keys[9]).await.unwrap(),
        "removing '*' removed another key"
    );
}

/// A key of exactly 255 characters works, in the longest scope and prefix.
pub async fn key_of_255_characters_works(s: &Subject) {
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let client_key = format!("{}{suffix}", "k".repeat(MAX_KEY_LEN - suffix.len()));
    let key = IdempotencyKey::new(client_key).unwrap();
    let space = KeySpace::new(format!("{}:", "p".repeat(idem_core::MAX_PREFIX_LEN - 1))).unwrap();
    let scope = Scope::new("s".repeat(idem_core::MAX_SCOPE_LEN)).unwrap();
    let store_key = space.key(&scope, &key);
    s.put(&store_key, b"long", HOUR).await;
    s.assert_value(&store_key, b"long", "the longest key").await;
    let other = space.key(&scope, &random_key());
    s.assert_absent(&other, "another key in the longest scope")
        .await;
}

/// The empty key and a key of 256 characters never reach the store.
pub async fn empty_and_over_long_keys_are_rejected(_: &Subject) {
    assert_eq!(IdempotencyKey::new(""), Err(KeyError::Empty));
    assert!(matches!(
        IdempotencyKey::new("k".repeat(MAX_KEY_LEN + 1)),
        Err(KeyError::TooLong { .. })
    ));
    assert!(matches!(
        IdempotencyKey::new("new\nline"),
        Err(KeyError::InvalidCharacter { .. })
    ));
}

/// Two scopes that pick the same key never see each other's record.
pub async fn scopes_with_the_same_key_are_independent(s: &Subject) {
    let space = fresh_space();
    let key = random_key();
    let alice = space.key(&Scope::new("alice").unwrap(), &key);
    let bob = space.key(&Scope::new("bob").unwrap(), &key);
    s.put(&alice, b"alice's", HOUR).await;
    s.assert_absent(&bob, "bob saw alice's record").await;
    s.claim_acquired(&bob, b"bob's", HOUR, "bob's claim").await;
    s.assert_value(&alice, b"alice's", "after bob's claim")
        .await;
}
