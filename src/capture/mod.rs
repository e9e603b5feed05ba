//! Testers' tools: capture files (pcap, pcapng, hex logs, cardswitch's JSON
//! lines) read into frames, capture writing from the link layer's tap
//! (masked by default), and replay with a field-by-field diff.

pub mod diff;
pub mod hexlog;
pub mod jsonl;
pub mod mask;
pub mod pcap_read;
pub mod pcap_write;
pub mod read;
pub mod record;
pub mod replay;
pub mod sink;
pub mod tcp;
