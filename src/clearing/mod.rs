//! Acquirer processing after authorization: the merchant and terminal
//! registry, capture derived from the journal, terminal batch close (0500),
//! the business-day cut-off into Mastercard IPM clearing files, and merchant
//! settlement. Sits above the switch and the journal: it reads the journal's
//! database and implements `switch::hooks`, never the reverse.

pub mod arn;
pub mod batch;
pub mod blocking;
pub mod capture;
pub mod cutoff;
pub mod ipm_reader;
pub mod ipm_writer;
pub mod registry;
pub mod schema;
pub mod seed;
pub mod settlement;
