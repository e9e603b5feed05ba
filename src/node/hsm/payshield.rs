//! The payShield implementation of [`Hsm`]: each operation builds its
//! host command, sends it through the pool and reads the typed answer.

use std::sync::Arc;
use std::time::Duration;

use super::errors::{HsmError, ProtocolError};
use super::operations::*;
use super::pool::Pool;
use crate::hsm::command::request::{
    ArqcCommand, CvvCommand, DukptTranslate, GenerateKey, ImportKey, KeyCheck, MacCommand,
    PinTranslate,
};
use crate::hsm::command::{Request, Response, ResponseBody, Sensitive, upper_hex};

/// The longest PIN the translations accept (ISO 9564: 4 to 12 digits).
const PIN_LEN_MAX: u8 = 12;

/// A payShield reached through a [`Pool`].
#[derive(Clone)]
pub struct PayShield {
    pool: Arc<Pool>,
}

impl PayShield {
    pub fn new(pool: Arc<Pool>) -> PayShield {
        PayShield { pool }
    }

    /// The pool, for its state (connections up).
    pub fn pool(&self) -> &Arc<Pool> {
        &self.pool
    }

    /// NC with its own wait (the start-up check).
    pub async fn diagnostics_within(&self, limit: Duration) -> Result<Diagnostics, HsmError> {
        diagnostics_of(self.pool.call_within(&Request::Nc, limit).await?)
    }

    /// BU with its own wait (the start-up check of configured keys).
    pub async fn key_check_within(
        &self,
        k: crate::hsm::command::request::KeyCheck,
        limit: Duration,
    ) -> Result<String, HsmError> {
        match self.pool.call_within(&Request::Bu(k), limit).await?.body {
            ResponseBody::Kcv(kcv) => Ok(kcv),
            _ => Err(body_missing("BU")),
        }
    }

    async fn ask(&self, request: Request) -> Result<Response, HsmError> {
        self.pool.call(&request).await
    }
}

fn body_missing(command: &'static str) -> HsmError {
    HsmError::Protocol(ProtocolError::Body(command))
}

fn pin_translate(t: PinTranslation) -> PinTranslate {
    PinTranslate {
        source_key: t.source_key,
        destination_zpk: t.destination_zpk,
        max_pin_len: PIN_LEN_MAX,
        pin_block: t.pin_block.hex.clone(),
        source_format: t.pin_block.format.code(),
        destination_format: t.destination_format.code(),
        account: t.account.0.clone(),
    }
}

fn translated(r: Response, command: &'static str) -> Result<TranslatedPin, HsmError> {
    match r.body {
        ResponseBody::PinTranslated {
            pin_len,
            pin_block,
            format,
        } => {
            let format = PinFormat::from_code(format).ok_or(body_missing(command))?;
            Ok(TranslatedPin {
                pin_block: PinBlock {
                    hex: pin_block,
                    format,
                },
                pin_len,
            })
        }
        _ => Err(body_missing(command)),
    }
}

/// G0's KSN descriptor for a KSN of 16 to 20 hex digits: 16 digits are
/// `605` (6 key set id digits, 5 device id digits, the 5-digit counter)
/// and 20 `A05` (the X9.24 layout), as public examples show.
fn ksn_descriptor(ksn: &str) -> Option<String> {
    let set_digits = ksn.len().checked_sub(10)?;
    (6..=10)
        .contains(&set_digits)
        .then(|| format!("{set_digits:X}05"))
}

fn mac_command(m: MacInput, mac: Option<[u8; 8]>) -> MacCommand {
    MacCommand {
        mode: 0,
        input_format: 0,
        algorithm: match m.algorithm {
            MacAlgorithm::Iso9797Alg1 => 1,
            MacAlgorithm::Iso9797Alg3 => 3,
        },
        padding: match m.padding {
            MacPadding::Method1 => 1,
            MacPadding::Method2 => 2,
        },
        key_type: match m.key_type {
            MacKeyType::Tak => "003".into(),
            MacKeyType::Zak => "008".into(),
        },
        key: m.key,
        iv: None,
        message: m.message,
        mac: mac.map(|m| upper_hex(&m)),
    }
}

fn cvv_command(c: CvvInput, cvv: Option<Sensitive<String>>) -> CvvCommand {
    CvvCommand {
        service_code: c.kind.service_code().to_string(),
        cvk: c.cvk,
        cvv,
        pan: c.pan,
        expiry: c.expiry,
    }
}

fn new_key(r: Response, command: &'static str) -> Result<NewKey, HsmError> {
    match r.body {
        ResponseBody::GeneratedKey { lmk, zmk, kcv } => Ok(NewKey { lmk, zmk, kcv }),
        ResponseBody::ImportedKey { lmk, kcv } => Ok(NewKey {
            lmk,
            zmk: None,
            kcv,
        }),
        _ => Err(body_missing(command)),
    }
}

impl Hsm for PayShield {
    fn translate_pin_tpk(&self, t: PinTranslation) -> HsmFuture<'_, TranslatedPin> {
        Box::pin(async move { translated(self.ask(Request::Ca(pin_translate(t))).await?, "CA") })
    }

    fn translate_pin_zpk(&self, t: PinTranslation) -> HsmFuture<'_, TranslatedPin> {
        Box::pin(async move { translated(self.ask(Request::Cc(pin_translate(t))).await?, "CC") })
    }

    fn translate_pin_dukpt(&self, t: DukptTranslation) -> HsmFuture<'_, TranslatedPin> {
        Box::pin(async move {
            let descriptor = ksn_descriptor(&t.ksn).ok_or(HsmError::Protocol(
                ProtocolError::Request(crate::hsm::command::CodecError::Encode {
                    field: "KSN",
                    why: "not 16 to 20 hex digits",
                }),
            ))?;
            let request = Request::G0(DukptTranslate {
                bdk: t.bdk,
                zpk: t.zpk,
                ksn_descriptor: descriptor,
                ksn: t.ksn.to_ascii_uppercase(),
                pin_block: t.pin_block.hex.clone(),
                source_format: t.pin_block.format.code(),
                destination_format: t.destination_format.code(),
                account: t.account.0.clone(),
            });
            translated(self.ask(request).await?, "G0")
        })
    }

    fn generate_mac(&self, m: MacInput) -> HsmFuture<'_, [u8; 8]> {
        Box::pin(async move {
            match self.ask(Request::M6(mac_command(m, None))).await?.body {
                ResponseBody::Mac(hex) => {
                    let mut mac = [0u8; 8];
                    hex::decode_to_slice(&hex, &mut mac).map_err(|_| body_missing("M6"))?;
                    Ok(mac)
                }
                _ => Err(body_missing("M6")),
            }
        })
    }

    fn verify_mac(&self, m: MacInput, mac: [u8; 8]) -> HsmFuture<'_, ()> {
        Box::pin(async move {
            self.ask(Request::M8(mac_command(m, Some(mac)))).await?;
            Ok(())
        })
    }

    fn verify_arqc(&self, a: ArqcInput, arc: Option<[u8; 2]>) -> HsmFuture<'_, Option<[u8; 8]>> {
        Box::pin(async move {
            let request = Request::Kq(ArqcCommand {
                mode: if arc.is_some() { 1 } else { 0 },
                scheme: match a.scheme {
                    EmvScheme::Visa => 0,
                    EmvScheme::Mastercard => 1,
                },
                mk_ac: a.mk_ac,
                pan_psn: a.pan_psn,
                atc: a.atc,
                un: a.un,
                data: Some(a.data),
                arqc: a.arqc,
                arc,
            });
            match (self.ask(request).await?.body, arc) {
                (ResponseBody::Arpc(arpc), Some(_)) => Ok(Some(arpc)),
                (ResponseBody::Empty, None) => Ok(None),
                _ => Err(body_missing("KQ")),
            }
        })
    }

    fn generate_cvv(&self, c: CvvInput) -> HsmFuture<'_, Sensitive<String>> {
        Box::pin(async move {
            match self.ask(Request::Cw(cvv_command(c, None))).await?.body {
                ResponseBody::Cvv(cvv) => Ok(cvv),
                _ => Err(body_missing("CW")),
            }
        })
    }

    fn verify_cvv(&self, c: CvvInput, cvv: Sensitive<String>) -> HsmFuture<'_, ()> {
        Box::pin(async move {
            self.ask(Request::Cy(cvv_command(c, Some(cvv)))).await?;
            Ok(())
        })
    }

    fn generate_key(&self, g: GenerateKey) -> HsmFuture<'_, NewKey> {
        Box::pin(async move { new_key(self.ask(Request::A0(g)).await?, "A0") })
    }

    fn import_key(&self, i: ImportKey) -> HsmFuture<'_, NewKey> {
        Box::pin(async move { new_key(self.ask(Request::A6(i)).await?, "A6") })
    }

    fn key_check_value(&self, k: KeyCheck) -> HsmFuture<'_, String> {
        Box::pin(async move {
            match self.ask(Request::Bu(k)).await?.body {
                ResponseBody::Kcv(kcv) => Ok(kcv),
                _ => Err(body_missing("BU")),
            }
        })
    }

    fn diagnostics(&self) -> HsmFuture<'_, Diagnostics> {
        Box::pin(async move { diagnostics_of(self.ask(Request::Nc).await?) })
    }
}

fn diagnostics_of(r: Response) -> Result<Diagnostics, HsmError> {
    match r.body {
        ResponseBody::Diagnostics {
            lmk_check,
            firmware,
        } => Ok(Diagnostics {
            lmk_check,
            firmware,
        }),
        _ => Err(body_missing("NC")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ksn_descriptors_match_the_codecs_lengths() {
        use crate::hsm::command::request::ksn_hex_len;
        assert_eq!(
            ksn_descriptor("FFFF9876543210E00001").as_deref(),
            Some("A05")
        );
        assert_eq!(ksn_descriptor("9876543210E00001").as_deref(), Some("605"));
        for n in 16..=20 {
            let d = ksn_descriptor(&"F".repeat(n)).expect("descriptor");
            assert_eq!(ksn_hex_len(&d), Some(n));
        }
        assert_eq!(ksn_descriptor(&"F".repeat(15)), None);
        assert_eq!(ksn_descriptor(&"F".repeat(21)), None);
    }

    #[test]
    fn accounts_are_the_12_digits_before_the_check_digit() {
        let a = Account::from_pan("4012345678909").expect("13 digits");
        assert_eq!(a.0.as_str(), "401234567890");
        let a = Account::from_pan("4761739001010119").expect("16 digits");
        assert_eq!(a.0.as_str(), "173900101011");
        assert!(Account::from_pan("401234567890").is_none());
        assert!(Account::from_pan("40123456789X9").is_none());
        assert!(Account::from_pan("4012345678909é").is_none());
    }
}
