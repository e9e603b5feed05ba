//! Testers' tools: capture files (pcap, pcapng, hex logs, cardswitch's JSON
//! lines) read into frames, capture writing from the link layer's tap
//! (masked by default), and replay with a field-by-field diff.

#[cfg(feature = "runtime")]
pub mod diff;
pub mod hexlog;
pub mod jsonl;
#[cfg(feature = "runtime")]
pub mod mask;
pub mod pcap_read;
#[cfg(feature = "runtime")]
pub mod pcap_write;
#[cfg(feature = "runtime")]
pub mod read;
pub mod record;
#[cfg(feature = "runtime")]
pub mod replay;
#[cfg(feature = "runtime")]
pub mod sink;
pub mod tcp;
