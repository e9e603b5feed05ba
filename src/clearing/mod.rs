//! Acquirer processing after authorization: the merchant and terminal
//! registry, capture derived from the journal, terminal batch close (0500),
//! the business-day cut-off into Mastercard IPM clearing files, and merchant
//! settlement. Sits above the switch and the journal: it reads the journal's
//! database and implements `switch::hooks`, never the reverse.

#[cfg(feature = "runtime")]
pub mod arn;
#[cfg(feature = "runtime")]
pub mod batch;
pub mod blocking;
#[cfg(feature = "runtime")]
pub mod capture;
#[cfg(feature = "runtime")]
pub mod cutoff;
pub mod ipm_reader;
pub mod ipm_writer;
#[cfg(feature = "runtime")]
pub mod registry;
#[cfg(feature = "runtime")]
pub mod schema;
#[cfg(feature = "runtime")]
pub mod seed;
#[cfg(feature = "runtime")]
pub mod settlement;
