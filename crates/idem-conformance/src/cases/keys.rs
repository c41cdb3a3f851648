//! Values and keys: binary safety, punctuation, limits, scopes.

use std::time::Duration;

use bytes::Bytes;
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
        let key = s.fresh_key();
        s.store()
            .store(&key, Bytes::from(value.clone()), HOUR)
            .await
            .unwrap();
        let back = s
            .store()
            .find(&key)
            .await
            .unwrap()
            .expect("stored value is missing");
        assert!(
            back == value,
            "value of {} bytes changed in store/find",
            value.len()
        );

        let key = s.fresh_key();
        let idem_core::Claim::Acquired(token) = s
            .store()
            .claim(&key, Bytes::from(value.clone()), HOUR)
            .await
            .unwrap()
        else {
            panic!("fresh key was taken")
        };
        let pending = s
            .store()
            .find(&key)
            .await
            .unwrap()
            .expect("claim value missing");
        assert!(
            pending == value,
            "value of {} bytes changed in claim",
            value.len()
        );
        s.store()
            .complete(&key, &token, Bytes::from(value.clone()), HOUR)
            .await
            .unwrap();
        let back = s
            .store()
            .find(&key)
            .await
            .unwrap()
            .expect("completed value is missing");
        assert!(
            back == value,
            "value of {} bytes changed in complete",
            value.len()
        );
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
        s.store()
            .store(key, Bytes::from(format!("v{i}")), HOUR)
            .await
            .unwrap();
    }
    for (i, key) in keys.iter().enumerate() {
        let got = s.store().find(key).await.unwrap();
        assert_eq!(
            got,
            Some(Bytes::from(format!("v{i}"))),
            "key {:?} read the wrong value",
            raw[i]
        );
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
    s.store()
        .store(&store_key, Bytes::from_static(b"long"), HOUR)
        .await
        .unwrap();
    assert_eq!(
        s.store().find(&store_key).await.unwrap().as_deref(),
        Some(&b"long"[..])
    );
    let other = space.key(&scope, &random_key());
    assert_eq!(s.store().find(&other).await.unwrap(), None);
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
    s.store()
        .store(&alice, Bytes::from_static(b"alice's"), HOUR)
        .await
        .unwrap();
    assert_eq!(
        s.store().find(&bob).await.unwrap(),
        None,
        "bob saw alice's record"
    );
    assert!(matches!(
        s.store()
            .claim(&bob, Bytes::from_static(b"bob's"), HOUR)
            .await
            .unwrap(),
        idem_core::Claim::Acquired(_)
    ));
    assert_eq!(
        s.store().find(&alice).await.unwrap().as_deref(),
        Some(&b"alice's"[..])
    );
}
