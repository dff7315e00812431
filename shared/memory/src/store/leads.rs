//! The in-memory store: the [`Leads`] role.

use leadflow_core::ports::Leads;

use super::*;

impl Leads for MemoryStore {
    fn claim_idempotency_key(
        &self,
        key: &str,
        lead_id: LeadId,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> impl Future<Output = Result<IdempotencyClaim, StoreError>> + Send {
        let key = key.to_string();
        self.with(move |s| match s.idempotency.get(&key) {
            // Bound through `expires_at` itself, as the port and the real stores have it.
            Some((id, exp)) if *exp >= now => IdempotencyClaim::Seen(*id),
            _ => {
                s.idempotency.insert(key, (lead_id, expires_at));
                IdempotencyClaim::Claimed
            }
        })
    }

    fn create_lead(
        &self,
        lead: &Lead,
        trail: &[Activity],
    ) -> impl Future<Output = Result<CreateOutcome, StoreError>> + Send {
        self.with(|s| {
            if s.leads.contains_key(&lead.id) || s.aliases.contains_key(&lead.id) {
                return CreateOutcome::AlreadyExists;
            }
            if lead.is_valid() {
                let key = email_key(&lead.contact.email);
                if let Some(existing) = s.email_keys.get(&key) {
                    return CreateOutcome::EmailTaken(*existing);
                }
                s.email_keys.insert(key, lead.id);
            }
            s.leads.insert(lead.id, lead.clone());
            s.write_trail(trail);
            CreateOutcome::Created
        })
    }

    fn update_lead(
        &self,
        lead: &Lead,
        expected: u64,
        trail: &[Activity],
    ) -> impl Future<Output = Result<WriteOutcome, StoreError>> + Send {
        self.with(|s| match s.leads.get_mut(&lead.id) {
            Some(stored) if stored.version == expected => {
                *stored = lead.clone();
                stored.version = expected + 1;
                s.write_trail(trail);
                WriteOutcome::Written
            }
            _ => WriteOutcome::VersionConflict,
        })
    }

    fn record_alias(&self, alias: LeadId, into: LeadId) -> impl Future<Output = Result<bool, StoreError>> + Send {
        self.with(|s| {
            if let std::collections::hash_map::Entry::Vacant(slot) = s.aliases.entry(alias) {
                slot.insert(into);
                true
            } else {
                false
            }
        })
    }

    fn resolve_lead(&self, id: LeadId) -> impl Future<Output = Result<Option<LeadId>, StoreError>> + Send {
        self.with(|s| if s.leads.contains_key(&id) { Some(id) } else { s.aliases.get(&id).copied() })
    }

    fn get_lead(&self, id: LeadId) -> impl Future<Output = Result<Option<Lead>, StoreError>> + Send {
        self.with(|s| s.leads.get(&id).cloned())
    }

    fn find_by_email_key(&self, key: &str) -> impl Future<Output = Result<Option<LeadId>, StoreError>> + Send {
        self.with(|s| s.email_keys.get(key).copied())
    }

    fn erase_lead(
        &self,
        tombstone: &Lead,
        email_key: Option<&str>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.with(|s| {
            // One version past the stored one, even if a write came in since the tombstone was
            // made; a lead that is not there is not created, a tombstone is not written again.
            if let Some(stored) = s.leads.get_mut(&tombstone.id)
                && !is_erased(stored)
            {
                let version = stored.version.saturating_add(1);
                *stored = tombstone.clone();
                stored.version = version;
            }
            if let Some(key) = email_key
                && s.email_keys.get(key) == Some(&tombstone.id)
            {
                s.email_keys.remove(key);
            }
            s.activities.retain(|(lead, _), _| *lead != tombstone.id);
        })
    }
}
