//! What every lead store must do, written once: each check takes a fresh store and asserts a
//! behaviour the handlers rely on. The SQLite, DynamoDB and in-memory test suites run all of them
//! through [`store_conformance!`], so the three stores cannot drift apart unnoticed.

pub mod funnel_facts;
pub mod open_leads;
pub mod recent_leads;
pub mod suppressions;
pub mod trail;

/// Declares one `#[tokio::test]` per conformance check. `$open` is an async fn answering
/// `(guard, store)`: the guard (a temporary folder, a table) lives as long as the test.
#[macro_export]
macro_rules! store_conformance {
    ($open:path) => {
        $crate::store_conformance!(@checks $open;
            trail::activity_ids_are_unique_per_lead_and_the_first_is_kept,
            trail::a_created_lead_has_its_trail_and_a_refused_create_writes_none,
            trail::many_trails_are_read_in_the_order_asked_each_oldest_first,
            trail::an_update_writes_its_trail_only_when_it_is_written,
            trail::an_assignment_writes_its_trail_only_when_it_is_made,
            trail::a_finished_effect_has_its_trail_and_a_second_finish_replaces_it,
            trail::an_enrollment_writes_its_trail_only_when_created,
            trail::an_enrollment_update_writes_its_trail_only_when_written,
            trail::a_suppression_writes_its_trail_whether_or_not_the_address_was_new,
            funnel_facts::the_funnel_facts_are_those_of_every_lead_as_stored_erased_ones_too,
            funnel_facts::the_funnel_facts_hold_the_range_to_the_instant,
            open_leads::a_reps_open_leads_are_listed_newest_first_page_by_page,
            open_leads::an_open_lead_cursor_survives_its_lead_closing_and_a_forged_one_is_refused,
            recent_leads::leads_are_listed_newest_first_page_by_page_without_erased_ones,
            recent_leads::a_page_of_leads_starts_at_any_date_or_lead,
            suppressions::the_suppression_list_is_newest_first_page_by_page,
            suppressions::a_suppression_cursor_the_store_did_not_hand_out_is_refused,
        );
    };
    // Test names are the checks' names alone: they must be unique across modules.
    (@checks $open:path; $($module:ident :: $check:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $check() {
                let (_guard, store) = $open().await;
                $crate::$module::$check(&store).await;
            }
        )+
    };
}
