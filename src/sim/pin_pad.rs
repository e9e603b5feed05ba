//! A test terminal's secure part (issue 21): DUKPT PIN entry (a BDK the
//! test knows, a KSN per terminal, ISO 9564 format 0 PIN blocks under the
//! transaction's PIN key, the KSN in a configured field) and a MAC with a
//! clear terminal MAC key (ISO 9797-1 algorithm 3). What a real PIN pad
//! does in hardware; here in software, for the load generator, the demo
//! and the end-to-end tests only (the switch never does PIN cryptography:
//! it asks an HSM).

use bytes::Bytes;

use crate::hsm::soft::cvv;
use crate::hsm::soft::dukpt::{self, KeyUsage, Ksn};
use crate::hsm::soft::dukpt_terminal::Terminal;
use crate::hsm::soft::mac::{self, Padding};
use crate::hsm::soft::pin_block::{self, Pin, PinBlockFormat};
use crate::hsm::soft::{CryptoError, TdesKey};
use crate::message::mac_field::{mac_field, with_placeholder, write_mac};
use crate::message::spec::Class;
use crate::message::{Message, Spec};

/// The KSN's first five bytes (the key set identifier) when none is given:
/// the X9.24 examples' `FFFF987654`.
pub const KEY_SET_ID_DEFAULT: [u8; 5] = [0xFF, 0xFF, 0x98, 0x76, 0x54];
/// Device ids have 19 bits in the KSN (the counter takes the last 21).
const DEVICE_IDS: u32 = 1 << 19;

/// What every terminal of a run shares: the test's keys and PIN.
#[derive(Clone)]
pub struct PinPadPlan {
    /// The clear BDK (a test key: the switch's configuration holds it
    /// only under the HSM's LMK).
    pub bdk: Option<TdesKey>,
    pub key_set_id: [u8; 5],
    /// The PIN every terminal enters.
    pub pin: String,
    /// The field the KSN travels in: raw bytes if the dialect's field is
    /// binary, else 20 hex characters.
    pub ksn_field: u16,
    /// The clear terminal MAC key, when requests carry a MAC.
    pub mac_key: Option<TdesKey>,
    /// A clear CVK pair and the field: card-not-present requests carry the
    /// card's CVV2 there, as a cardholder keys it in.
    pub cvv2: Option<(TdesKey, u16)>,
}

impl std::fmt::Debug for PinPadPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinPadPlan")
            .field("dukpt", &self.bdk.is_some())
            .field("ksn_field", &self.ksn_field)
            .field("mac", &self.mac_key.is_some())
            .field("cvv2_field", &self.cvv2.as_ref().map(|(_, f)| f))
            .finish_non_exhaustive()
    }
}

/// One terminal's PIN pad: its DUKPT registers and which device it is.
#[derive(Debug)]
pub struct PinPad {
    dukpt: Option<Terminal>,
    /// The next device id, when this one's keys run out.
    device: u32,
    device_step: u32,
}

impl PinPad {
    /// Terminal `index` of `count`: device ids `index`, `index + count`, ...
    /// Its first keys are loaded with the first PIN.
    pub fn new(index: u32, count: u32) -> PinPad {
        PinPad {
            dukpt: None,
            device: index % DEVICE_IDS,
            device_step: count.clamp(1, DEVICE_IDS),
        }
    }

    fn load(&mut self, plan: &PinPadPlan) -> Result<(), CryptoError> {
        let Some(bdk) = &plan.bdk else {
            return Ok(());
        };
        let ksn = initial_ksn(plan.key_set_id, self.device);
        self.dukpt = Some(Terminal::load(&dukpt::ipek(bdk, &ksn)?, &ksn)?);
        self.device = (self.device + self.device_step) % DEVICE_IDS;
        Ok(())
    }

    /// Adds the PIN block (DE52) and the KSN to `request`, with the next
    /// DUKPT key; a device whose keys ran out is replaced by the next.
    pub fn enter_pin(
        &mut self,
        plan: &PinPadPlan,
        spec: &Spec,
        request: &mut Message,
    ) -> Result<(), String> {
        if self.dukpt.as_ref().is_none_or(|t| t.ksn().counter() == 0) {
            self.load(plan).map_err(|e| format!("DUKPT: {e}"))?;
        }
        let Some(terminal) = self.dukpt.as_mut() else {
            return Ok(());
        };
        let pan = request
            .value(2)
            .and_then(|p| std::str::from_utf8(p).ok())
            .ok_or("a PIN request needs its PAN")?
            .to_string();
        let (ksn, key) = terminal
            .key(KeyUsage::Pin)
            .map_err(|e| format!("DUKPT: {e}"))?;
        let pin = Pin::new(&plan.pin).map_err(|e| format!("PIN: {e}"))?;
        let mut block = pin_block::make(PinBlockFormat::Iso0, &pin, &pan, &[0; 8])
            .map_err(|e| format!("PIN block: {e}"))?;
        key.encrypt_ecb(block.expose_mut())
            .map_err(|e| format!("PIN block: {e}"))?;
        terminal.advance().or_else(|e| match e {
            // The last key: the next request loads the next device.
            CryptoError::Exhausted => Ok(()),
            other => Err(format!("DUKPT: {other}")),
        })?;
        let ksn_value = ksn_value(spec, plan.ksn_field, &ksn);
        request
            .set(52, Bytes::copy_from_slice(block.expose()))
            .and_then(|()| request.set(plan.ksn_field, ksn_value))
            .map_err(|e| format!("PIN fields: {e}"))
    }

    /// Adds the card's CVV2 (service code 000 over DE2 and DE14) in the
    /// plan's field, when the plan has a CVK.
    pub fn enter_cvv2(plan: &PinPadPlan, request: &mut Message) -> Result<(), String> {
        let Some((cvk, field)) = &plan.cvv2 else {
            return Ok(());
        };
        let text = |n: u16| request.value(n).and_then(|v| std::str::from_utf8(v).ok());
        let (Some(pan), Some(expiry)) = (text(2), text(14)) else {
            return Err("a CVV2 needs the PAN and expiry (DE2, DE14)".into());
        };
        let cvv2 = cvv::cvv(cvk, pan, expiry, "000").map_err(|e| format!("CVV2: {e}"))?;
        request
            .set(*field, Bytes::copy_from_slice(cvv2.expose()))
            .map_err(|e| format!("CVV2 field: {e}"))
    }

    /// `request` built with its MAC (DE64, or DE128 with a secondary
    /// bitmap) when the plan has a MAC key; plainly built otherwise.
    pub fn build_signed(
        plan: &PinPadPlan,
        spec: &Spec,
        request: &mut Message,
    ) -> Result<Bytes, String> {
        match &plan.mac_key {
            Some(key) => build_with_mac(spec, key, request),
            None => spec.build(request).map_err(|e| format!("build: {e}")),
        }
    }
}

/// `message` built with the retail MAC (ISO 9797-1 algorithm 3, padding
/// 1) of `key` over the bytes before its MAC field.
pub fn build_with_mac(spec: &Spec, key: &TdesKey, message: &mut Message) -> Result<Bytes, String> {
    let field = mac_field(message);
    let (mut frame, covered) = with_placeholder(spec, message)
        .ok_or_else(|| format!("{} cannot be built with a MAC in DE{field}", message.mti()))?;
    let mac =
        mac::alg3(key, &frame[..covered], Padding::Method1).map_err(|e| format!("MAC: {e}"))?;
    write_mac(spec, &mut frame, field, &mac);
    Ok(Bytes::from(frame))
}

/// Whether `message`, as received, carries a retail MAC of `key` that
/// verifies over the bytes before it.
pub fn mac_verifies(spec: &Spec, key: &TdesKey, message: &Message) -> bool {
    let field = mac_field(message);
    let frame = message.frame_as_received();
    let covered = frame.and_then(|f| crate::message::mac_field::covered(spec, f, field));
    let sent = frame.and_then(|f| crate::message::mac_field::read_mac(spec, f, field));
    match (covered, sent) {
        (Some(data), Some(sent)) => {
            mac::alg3(key, data, Padding::Method1).is_ok_and(|m| mac::verify(&m, &sent))
        }
        _ => false,
    }
}

/// The KSN of device `device` at counter 0: key set id, then the device
/// id in the 19 bits above the counter.
fn initial_ksn(key_set_id: [u8; 5], device: u32) -> Ksn {
    let mut k = [0u8; 10];
    k[..5].copy_from_slice(&key_set_id);
    // Bytes 5..10 hold 40 bits: 19 of device id, then 21 of counter.
    let low = u64::from(device % DEVICE_IDS) << 21;
    k[5..].copy_from_slice(&low.to_be_bytes()[3..]);
    Ksn(k)
}

/// The KSN as field `field` of `spec` carries it.
fn ksn_value(spec: &Spec, field: u16, ksn: &Ksn) -> Bytes {
    match spec.field(field).map(|f| f.class) {
        Some(Class::B) => Bytes::copy_from_slice(&ksn.0),
        _ => Bytes::from(ksn.to_hex()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hsm::soft::dukpt::host_key;
    use crate::message::Mti;
    use crate::message::mac_field::{covered, read_mac};

    const BDK: &str = "0123456789ABCDEFFEDCBA9876543210";

    fn plan(mac: bool) -> PinPadPlan {
        PinPadPlan {
            bdk: Some(TdesKey::from_hex(BDK).unwrap()),
            key_set_id: KEY_SET_ID_DEFAULT,
            pin: "1234".into(),
            ksn_field: 53,
            mac_key: mac.then(|| TdesKey::from_hex("0123456789ABCDEFFEDCBA9876543210").unwrap()),
            cvv2: None,
        }
    }

    fn request() -> Message {
        let mut m = Message::new(Mti::from_digits(*b"1200").unwrap());
        m.set(2, "4012345678909").unwrap();
        m.set(3, "000000").unwrap();
        m.set(11, "000001").unwrap();
        m
    }

    /// The host side, from the BDK and the KSN sent, reads the PIN back;
    /// each request uses the next counter; device ids differ.
    #[test]
    fn the_host_reads_the_pin_from_each_request() {
        let spec = Spec::resolve("iso93-ascii").unwrap();
        let plan = plan(false);
        let bdk = plan.bdk.clone().unwrap();
        let mut pad = PinPad::new(3, 8);
        for counter in 1..=5u32 {
            let mut m = request();
            pad.enter_pin(&plan, &spec, &mut m).unwrap();
            let ksn = Ksn::from_bytes(m.value(53).unwrap()).unwrap();
            assert_eq!(ksn.counter(), counter);
            assert_eq!(
                ksn,
                initial_ksn(KEY_SET_ID_DEFAULT, 3).with_counter(counter)
            );
            let key = host_key(&bdk, &ksn, KeyUsage::Pin).unwrap();
            let mut block = crate::hsm::soft::Secret::new(m.value(52).unwrap().try_into().unwrap());
            key.decrypt_ecb(block.expose_mut()).unwrap();
            let pin = pin_block::read(PinBlockFormat::Iso0, &block, "4012345678909").unwrap();
            assert!(pin.ct_eq(&Pin::new("1234").unwrap()));
        }
        assert_ne!(
            initial_ksn(KEY_SET_ID_DEFAULT, 3),
            initial_ksn(KEY_SET_ID_DEFAULT, 11)
        );
    }

    /// The CVV2 entered is the card's (service code 000); without the
    /// expiry there is none to make.
    #[test]
    fn the_cvv2_is_the_cards() {
        let cvk = TdesKey::from_hex("0123456789ABCDEFFEDCBA9876543210").unwrap();
        let plan = PinPadPlan {
            cvv2: Some((cvk.clone(), 48)),
            ..plan(false)
        };
        let mut m = request();
        assert!(PinPad::enter_cvv2(&plan, &mut m).is_err());
        m.set(14, "2812").unwrap();
        PinPad::enter_cvv2(&plan, &mut m).unwrap();
        let sent = m.value(48).unwrap();
        let card = cvv::cvv(&cvk, "4012345678909", "2812", "000").unwrap();
        assert_eq!(sent, card.expose());
        let stripe = cvv::cvv(&cvk, "4012345678909", "2812", "101").unwrap();
        assert_ne!(sent, stripe.expose(), "not the stripe's CVV");
    }

    /// The MAC verifies over the bytes before it with the same key, and a
    /// changed byte does not.
    #[test]
    fn the_mac_covers_the_frame_before_it() {
        let spec = Spec::resolve("iso87-ascii").unwrap();
        let plan = plan(true);
        let mut m = request();
        m.set_mti(Mti::from_digits(*b"0200").unwrap());
        let frame = PinPad::build_signed(&plan, &spec, &mut m).unwrap();
        let key = plan.mac_key.as_ref().unwrap();
        let data = covered(&spec, &frame, 64).unwrap();
        let sent = read_mac(&spec, &frame, 64).unwrap();
        assert_eq!(mac::alg3(key, data, Padding::Method1).unwrap(), sent);
        let mut changed = data.to_vec();
        changed[5] ^= 1;
        assert_ne!(mac::alg3(key, &changed, Padding::Method1).unwrap(), sent);
        assert_eq!(spec.parse(&frame).unwrap().value(64), Some(&sent[..]));
    }
}
