//! `check`: one round trip through every primitive, with throwaway keys.

use std::fmt;
use std::time::{Duration, Instant};

use bytes::Bytes;
use idem::{
    Claim, Fingerprint, IdempotencyKey, LeaseToken, Outcome, Record, RecordState, Scope, StoreKey,
    StoredResponse,
};
use serde::Serialize;

use crate::{CliError, Result, Target};

/// The scope the throwaway keys are made in.
pub const CHECK_SCOPE: &str = "idem-check";
/// How long the throwaway records live, should a step fail before the
/// cleanup: they expire by themselves soon after.
const THROWAWAY_TTL: Duration = Duration::from_secs(60);

/// What `check` did: each step and how long it took.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// The backend.
    pub backend: &'static str,
    /// The store URL, password hidden.
    pub store_url: String,
    /// The steps, in order.
    pub steps: Vec<Step>,
}

/// One step of the round trip.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// Its name.
    pub step: &'static str,
    /// What it did.
    pub detail: String,
    /// How long the store took, in milliseconds.
    pub ms: f64,
}

impl CheckReport {
    /// The time of every step together, in milliseconds.
    pub fn total_ms(&self) -> f64 {
        self.steps.iter().map(|s| s.ms).sum()
    }
}

/// Runs claim → complete → replay → release on throwaway keys (scope
/// [`CHECK_SCOPE`], a fresh random key each), then removes what is left, and
/// times each step.
///
/// The steps: **claim** a fresh key (must be acquired); **complete** it with
/// a small response (must be accepted); **replay**: claim it again with the
/// same fingerprint (must meet the completed record and replay its
/// response); **claim** a second fresh key and **release** it (must be
/// released, and be gone); **remove** the first key (must have existed).
///
/// # Errors
/// [`CliError::CheckFailed`] naming the step that answered wrongly; the
/// store's error, which says what failed, when a step could not run.
pub async fn check(target: &Target) -> Result<CheckReport> {
    let lease = target.config().lease;
    let store = target.store();
    let first = throwaway(target)?;
    let second = throwaway(target)?;
    let fingerprint = Fingerprint::of_request("POST", "/idem-check", b"check");
    let pending = Record::in_progress(fingerprint, lease).encode();
    let response = StoredResponse {
        status: 200,
        headers: vec![("content-type".into(), Bytes::from_static(b"text/plain"))],
        body: Bytes::from_static(b"idem check"),
    };
    let mut steps = Vec::new();

    let (claim, ms) = timed("claim", store.claim(&first, pending.clone(), lease)).await?;
    let token = acquired("claim", claim)?;
    steps.push(step("claim", format!("acquired {first}"), ms));

    let done = Record::new(
        fingerprint,
        RecordState::Completed(response.clone()),
        THROWAWAY_TTL,
    );
    let encoded = done.encode();
    let ((), ms) = timed(
        "complete",
        store.complete(&first, &token, encoded, THROWAWAY_TTL),
    )
    .await?;
    steps.push(step("complete", "stored a 200 response".into(), ms));

    let (again, ms) = timed("replay", store.claim(&first, pending.clone(), lease)).await?;
    let Claim::Existing(bytes) = again else {
        return Err(failed(
            "replay",
            "a second claim of a completed key was granted",
        ));
    };
    let outcome = Outcome::<()>::of_record(&bytes, fingerprint, Duration::from_secs(1));
    match outcome.map_err(|source| CliError::AtStep {
        step: "replay",
        source,
    })? {
        Outcome::Replayed(replayed) if replayed == response => {}
        other => {
            return Err(failed(
                "replay",
                format!("expected the stored response, got {other:?}"),
            ));
        }
    }
    steps.push(step(
        "replay",
        "the retry met the stored response".into(),
        ms,
    ));

    let (claim, ms) = timed("claim", store.claim(&second, pending, lease)).await?;
    let token = acquired("claim", claim)?;
    steps.push(step("claim", format!("acquired {second}"), ms));

    let (released, ms) = timed("release", store.release(&second, &token)).await?;
    if !released {
        return Err(failed(
            "release",
            "the store did not release the claim it granted",
        ));
    }
    let (still_there, _) = timed("release", store.exists(&second)).await?;
    if still_there {
        return Err(failed("release", "the released key still has a record"));
    }
    steps.push(step("release", "released, and the key is free".into(), ms));

    let (removed, ms) = timed("remove", store.remove(&first)).await?;
    if !removed {
        return Err(failed("remove", "the completed record was already gone"));
    }
    steps.push(step("remove", format!("cleaned up {first}"), ms));

    Ok(CheckReport {
        backend: target.backend_name(),
        store_url: target.shown_url(),
        steps,
    })
}

/// A fresh key in [`CHECK_SCOPE`].
fn throwaway(target: &Target) -> Result<StoreKey> {
    let scope = Scope::new(CHECK_SCOPE).map_err(idem::Error::from)?;
    let key = IdempotencyKey::new(uuid::Uuid::new_v4().to_string()).map_err(idem::Error::from)?;
    Ok(target.space().key(&scope, &key))
}

fn acquired(step: &'static str, claim: Claim) -> Result<LeaseToken> {
    match claim {
        Claim::Acquired(token) => Ok(token),
        Claim::Existing(_) => Err(failed(step, "a fresh random key already had a record")),
    }
}

fn failed(step: &'static str, reason: impl fmt::Display) -> CliError {
    CliError::CheckFailed {
        step,
        reason: reason.to_string(),
    }
}

fn step(name: &'static str, detail: String, ms: f64) -> Step {
    Step {
        step: name,
        detail,
        ms,
    }
}

/// Runs store operation `work` for `step`: what it returned and how long
/// it took, in milliseconds; its error, named after the step.
async fn timed<T>(
    step: &'static str,
    work: impl Future<Output = idem::Result<T>>,
) -> Result<(T, f64)> {
    let started = Instant::now();
    let out = work.await;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    out.map(|out| (out, ms))
        .map_err(|source| CliError::AtStep { step, source })
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "store  {} ({})", self.store_url, self.backend)?;
        for s in &self.steps {
            writeln!(f, "{:<9}{:>9.2} ms  {}", s.step, s.ms, s.detail)?;
        }
        write!(
            f,
            "ok: the store works with these settings ({:.2} ms in all)",
            self.total_ms()
        )
    }
}
