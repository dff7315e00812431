//! What every lead store must do, written once: each check takes a fresh store and asserts a
//! behaviour the handlers rely on. The SQLite, DynamoDB and in-memory test suites run all of them
//! through [`store_conformance!`], so the three stores cannot drift apart unnoticed.

pub mod assignments;
pub mod documents;
pub mod effects;
pub mod enrollments;
pub mod funnel_facts;
pub mod leads;
pub mod listings;
pub mod open_leads;
pub mod recent_leads;
pub mod support;
pub mod suppressions;
pub mod trail;

/// Declares one `#[tokio::test]` per conformance check. `$open` is an async fn answering
/// `(guard, store)`: the guard (a temporary folder, a table) lives as long as the test.
#[macro_export]
macro_rules! store_conformance {
    ($open:path) => {
        $crate::store_conformance!(@checks $open;
            leads::a_redelivered_create_is_already_exists_and_a_second_lead_with_the_email_is_email_taken,
            leads::invalid_leads_are_kept_without_claiming_their_email,
            leads::updates_are_conditional_on_the_version_read,
            leads::idempotency_keys_bind_until_they_expire,
            leads::aliases_resolve_to_the_lead_merged_into,
            leads::erasure_replaces_the_lead_and_deletes_its_key_and_activities,
            leads::erasure_wins_over_a_write_that_came_in_since_the_tombstone_was_made,
            leads::an_erased_lead_is_not_erased_again,
            trail::activity_ids_are_unique_per_lead_and_the_first_is_kept,
            trail::a_created_lead_has_its_trail_and_a_refused_create_writes_none,
            trail::many_trails_are_read_in_the_order_asked_each_oldest_first,
            trail::an_update_writes_its_trail_only_when_it_is_written,
            trail::an_assignment_writes_its_trail_only_when_it_is_made,
            trail::a_finished_effect_has_its_trail_and_a_second_finish_replaces_it,
            trail::an_enrollment_writes_its_trail_only_when_created,
            trail::an_enrollment_update_writes_its_trail_only_when_written,
            trail::a_suppression_writes_its_trail_whether_or_not_the_address_was_new,
            trail::a_lead_and_its_trail_read_together_as_they_read_apart,
            assignments::an_assignment_moves_lead_cursor_and_load_together_or_not_at_all,
            assignments::rep_loads_follow_assignments_status_changes_and_redeliveries,
            assignments::due_slas_are_the_owned_new_valid_leads_past_due_oldest_first,
            effects::effects_are_claimed_once_busy_while_leased_taken_over_after_and_remembered_when_done,
            effects::an_assignment_takes_its_claim_with_it_or_neither_happens,
            enrollments::enrollments_are_created_once_and_updated_conditionally,
            enrollments::due_enrollments_are_the_active_due_ones_oldest_due_first,
            enrollments::campaign_enrollments_pages_cover_every_enrollment_of_the_campaign_once,
            enrollments::a_campaign_enrollments_cursor_the_store_did_not_hand_out_is_refused,
            documents::documents_are_written_only_as_the_next_version,
            documents::of_writers_racing_for_a_version_exactly_one_wins,
            documents::latest_documents_are_the_newest_version_of_each_name_with_the_prefix,
            listings::lead_pages_cover_every_lead_exactly_once,
            listings::a_lead_listing_cursor_the_store_did_not_hand_out_is_refused,
            funnel_facts::the_funnel_facts_are_those_of_every_lead_as_stored_erased_ones_too,
            funnel_facts::the_funnel_facts_hold_the_range_to_the_instant,
            open_leads::a_reps_open_leads_are_listed_newest_first_page_by_page,
            open_leads::an_open_lead_cursor_survives_its_lead_closing_and_a_forged_one_is_refused,
            recent_leads::leads_are_listed_newest_first_page_by_page_without_erased_ones,
            recent_leads::a_page_of_leads_starts_at_any_date_or_lead,
            suppressions::an_address_is_suppressed_once_and_keeps_its_first_entry,
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
