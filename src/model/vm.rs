//! VM records: plain types and their validation.
