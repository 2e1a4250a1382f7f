//! sea-orm entities, one per table. They never leave this crate: repositories return domain types.

pub mod agency;
pub mod agreement;
pub mod api_key;
pub mod attachment;
pub mod audit_head;
pub mod audit_log;
pub mod case;
pub mod case_event;
pub mod case_share;
pub mod case_type;
pub mod case_update;
pub mod connector;
pub mod delivery;
pub mod external_ref;
pub mod held_update;
pub mod jurisdiction;
pub mod pause;
pub mod process;
pub mod schedule;
pub mod token_revocation;
