//! Shared helpers live in the integration binary; this library is intentionally empty.
