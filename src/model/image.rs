//! Image records: plain types and their validation. (Filled in by the model/API issue.)
