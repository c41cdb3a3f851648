//! The macro that stamps one test per case for a backend.

/// Stamps one `#[tokio::test]` per conformance case.
///
/// `$setup` is an `async fn() -> Option<Subject>`: it builds the store under
/// test (a fresh one per test, since each test has its own runtime), or
/// returns [`crate::skip`]'s `None` when its server is missing. With
/// `unreachable: $down`, a store of the same kind that cannot reach its
/// server, the suite also checks that an outage is an error, never "absent".
/// With `purge: $purge`, a setup whose subject has a purger
/// ([`crate::Subject::with_purger`]), it checks the optional purge ability.
/// The tests are the cases of [`crate::cases::ALL`], [`crate::cases::UNREACHABLE`]
/// and [`crate::cases::PURGE`], by the same names: this macro makes those lists.
///
/// The test crate must depend on `tokio`.
///
/// # Examples
/// ```ignore
/// async fn memory() -> Option<idem_conformance::Subject> {
///     Some(idem_conformance::Subject::new("memory", Arc::new(MemoryStore::new())))
/// }
/// idem_conformance::conformance_tests!(memory);
/// ```
#[macro_export]
macro_rules! conformance_tests {
    ($setup:path $(, unreachable: $down:path)? $(, purge: $purge:path)?) => {
        $crate::conformance_tests!(@cases (@stamp $setup));
        $($crate::conformance_tests!(@unreachable (@stamp $down));)?
        $($crate::conformance_tests!(@purge (@stamp $purge));)?
    };
    // One test per case, on the subject `$setup` builds.
    (@stamp $setup:path; $($case:ident)*) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                if let Some(subject) = $setup().await {
                    $crate::cases::$case(&subject).await;
                }
            }
        )*
    };
    // The cases as values: `cases::ALL` and the other lists.
    (@list; $($case:ident)*) => {
        &[$($crate::cases::Case::new(
            stringify!($case),
            |subject| ::std::boxed::Box::pin($crate::cases::$case(subject)),
        )),*]
    };
    // The case names, in three groups by the subject they need, each handed
    // to the arm that `$head` names (`@stamp` or `@list`). A case is named
    // here and nowhere else.
    (@unreachable ($($head:tt)*)) => {
        $crate::conformance_tests! { $($head)*; unreachable_store_is_an_error }
    };
    (@purge ($($head:tt)*)) => {
        $crate::conformance_tests! { $($head)*; purge_deletes_expired_records_and_keeps_live_ones }
    };
    (@cases ($($head:tt)*)) => {
        $crate::conformance_tests! { $($head)*;
            find_returns_none_for_absent_key
            store_then_find_returns_the_value
            store_overwrites_the_value
            remove_deletes_and_reports_it
            exists_follows_the_record
            stored_record_expires_after_its_ttl
            huge_ttls_are_accepted
            store_over_a_claim_clears_its_lease
            claim_on_absent_key_acquires
            claim_on_live_record_returns_it_and_writes_nothing
            claim_tokens_are_fresh
            complete_with_token_writes_the_final_record
            complete_with_wrong_token_is_lease_lost
            complete_after_remove_is_lease_lost
            complete_twice_is_lease_lost
            release_with_token_frees_the_key
            extend_with_token_keeps_the_claim_past_its_lease
            extend_with_wrong_token_is_lease_lost
            extend_after_expiry_is_lease_lost
            extend_after_complete_or_remove_is_lease_lost
            extend_can_shorten_the_lease
            lost_lease_rejects_a_late_extend
            release_with_wrong_token_keeps_the_record
            release_leaves_completed_records_alone
            expired_claim_can_be_claimed_again
            lost_lease_rejects_the_first_worker
            completed_record_expires_after_retention
            expired_record_is_invisible_to_every_operation
            engine_executes_then_replays
            engine_reports_in_flight_while_running
            engine_reports_mismatch_for_another_fingerprint
            engine_release_lets_a_retry_run_again
            engine_releases_the_key_when_the_handler_panics
            engine_keeps_a_not_retained_marker
            engine_surfaces_store_errors
            engine_renews_the_lease_of_a_slow_handler
            engine_signals_a_lost_lease_and_keeps_nothing
            call_executes_then_replays_the_same_value
            call_with_another_input_is_a_mismatch
            racing_calls_run_the_handler_once
            call_error_releases_the_key
            call_error_kept_by_the_policy_is_replayed
            call_on_a_record_it_cannot_read_is_a_decode_error
            racing_claims_have_exactly_one_winner
            racing_requests_run_the_handler_once
            many_keys_in_parallel
            values_are_binary_safe
            keys_with_punctuation_work
            key_of_255_characters_works
            empty_and_over_long_keys_are_rejected
            scopes_with_the_same_key_are_independent
        }
    };
}
