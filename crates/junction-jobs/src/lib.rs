//! Junction's workers: apalis jobs whose payloads carry ids only. A handler loads state, calls a
//! connector, and records the outcome with its audit entry in one transaction.
//!
//! The foundation has no outbound work yet; delivery jobs (and the reconciler that re-enqueues
//! any delivery without a live job) arrive with case delivery. The crate exists now so that the
//! dependency rules in `docs/ARCHITECTURE.md` are checked from the first commit.
