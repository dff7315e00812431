//! What every lead store must do, written once: each check takes a fresh store and asserts a
//! behaviour the handlers rely on. The SQLite, DynamoDB and in-memory test suites run all of them
//! through [`store_conformance!`], so the three stores cannot drift apart unnoticed.

pub mod trail;

/// Declares one `#[tokio::test]` per conformance check. `$open` is an async fn answering
/// `(guard, store)`: the guard (a temporary folder, a table) lives as long as the test.
#[macro_export]
macro_rules! store_conformance {
    ($open:path) => {
        $crate::store_conformance!(@checks $open;
            activity_ids_are_unique_per_lead_and_the_first_is_kept,
            a_created_lead_has_its_trail_and_a_refused_create_writes_none,
            an_update_writes_its_trail_only_when_it_is_written,
            an_assignment_writes_its_trail_only_when_it_is_made,
            a_finished_effect_has_its_trail_and_a_second_finish_replaces_it,
            an_enrollment_writes_its_trail_only_when_created,
            an_enrollment_update_writes_its_trail_only_when_written,
            a_suppression_writes_its_trail_whether_or_not_the_address_was_new,
        );
    };
    (@checks $open:path; $($check:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $check() {
                let (_guard, store) = $open().await;
                $crate::trail::$check(&store).await;
            }
        )+
    };
}
