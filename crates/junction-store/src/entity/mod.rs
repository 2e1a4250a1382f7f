//! sea-orm entities, one per table. They never leave this crate: repositories return domain types.

pub mod agency;
pub mod audit_head;
pub mod audit_log;
pub mod case;
pub mod case_event;
pub mod case_type;
pub mod connector;
pub mod jurisdiction;
