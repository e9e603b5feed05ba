//! The configuration file as written, for serde. Values whose line an
//! error may name are `Spanned`.

use serde::Deserialize;
use toml::Spanned;

pub(super) type Text = Spanned<String>;
pub(super) type TextList = Spanned<Vec<Spanned<String>>>;
/// Signed, as TOML integers are: a negative value is refused with its
/// key's range like any other value out of range.
pub(super) type Number = Option<Spanned<i64>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ConfigFile {
    pub(super) switch: Spanned<SwitchFile>,
    #[serde(default)]
    pub(super) acquirer: Vec<Spanned<AcquirerFile>>,
    #[serde(default)]
    pub(super) issuer: Vec<Spanned<IssuerFile>>,
    #[serde(default)]
    pub(super) route: Vec<Spanned<RouteFile>>,
    pub(super) default_route: Option<Spanned<DefaultRouteFile>>,
    pub(super) journal: Option<Spanned<JournalFile>>,
    pub(super) hsm: Option<Spanned<super::hsm::HsmFile>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct JournalFile {
    pub(super) path: Text,
    pub(super) key_file: Option<Text>,
    pub(super) group_records_max: Number,
    pub(super) durability: Option<Text>,
    pub(super) log_dir: Option<Text>,
    pub(super) log_segment_mib: Number,
    pub(super) log_queue_records: Number,
    pub(super) log_keep_fed_segments: Number,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SwitchFile {
    pub(super) institution_id: Text,
    pub(super) metrics: Option<Text>,
    pub(super) saf: Option<SafFile>,
    pub(super) duplicate_window_s: Number,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SafFile {
    pub(super) queue_max: Number,
    pub(super) retry_min_ms: Number,
    pub(super) retry_max_ms: Number,
    pub(super) expiry_s: Number,
    pub(super) max_attempts: Number,
    pub(super) response_wait_ms: Number,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AcquirerFile {
    pub(super) name: Text,
    pub(super) listen: Text,
    pub(super) spec: Text,
    /// Read as a table: `frame_bytes_max` is taken out and checked like
    /// every number, the rest is a `Framing`.
    pub(super) framing: Spanned<toml::Table>,
    pub(super) tls: Option<AcquirerTlsFile>,
    pub(super) allowed_institutions: Option<TextList>,
    pub(super) connections_max: Number,
    pub(super) in_flight_max: Number,
    pub(super) idle_timeout_s: Number,
    pub(super) handshake_timeout_ms: Number,
    pub(super) first_frame_timeout_ms: Number,
    pub(super) connections_per_peer_max: Number,
    pub(super) listen_backlog: Number,
    pub(super) security: Option<super::security::AcquirerSecurityFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AcquirerTlsFile {
    pub(super) cert: Text,
    pub(super) key: Text,
    pub(super) client_ca: Option<Text>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct IssuerFile {
    pub(super) name: Text,
    pub(super) addresses: TextList,
    pub(super) spec: Text,
    /// Read as a table: `frame_bytes_max` is taken out and checked like
    /// every number, the rest is a `Framing`.
    pub(super) framing: Spanned<toml::Table>,
    pub(super) tls: Option<Spanned<IssuerTlsFile>>,
    pub(super) connections: Number,
    pub(super) timeout_ms: Number,
    pub(super) echo_interval_s: Number,
    #[serde(default)]
    pub(super) sign_on: bool,
    pub(super) in_flight_max: Number,
    pub(super) stand_in: Option<Spanned<StandInFile>>,
    pub(super) handshake_timeout_ms: Number,
    pub(super) security: Option<Spanned<super::security::IssuerSecurityFile>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct IssuerTlsFile {
    pub(super) ca: Text,
    pub(super) server_name: Option<Text>,
    pub(super) cert: Option<Text>,
    pub(super) key: Option<Text>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RouteFile {
    pub(super) bins: Option<TextList>,
    pub(super) bin_range: Option<Spanned<BinRangeFile>>,
    pub(super) issuer: Text,
    pub(super) mti: Option<TextList>,
    pub(super) processing_code: Option<TextList>,
    pub(super) currency: Option<TextList>,
    pub(super) timeout_ms: Number,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BinRangeFile {
    pub(super) from: Text,
    pub(super) to: Text,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DefaultRouteFile {
    pub(super) issuer: Option<Text>,
    pub(super) decline: Option<Spanned<bool>>,
}

/// `stand_in`: the limits of `StandInRules`, each with its line.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StandInFile {
    pub(super) per_transaction_max: Spanned<i64>,
    pub(super) per_card_daily_count: Spanned<i64>,
    pub(super) per_card_daily_amount: Spanned<i64>,
}
