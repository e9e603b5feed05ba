//! The simulated issuer's side of the zone (issue 21): with a clear test
//! ZPK it reads each request's PIN block and declines 55 when it does not
//! hold the PIN expected; with a clear test MAC key it declines 63 when a
//! request's MAC does not verify, and signs its answers. What an issuer's
//! own HSM does; here in software, for tests and benches only.

use bytes::Bytes;

use super::pin_pad::{build_with_mac, mac_verifies};
use crate::hsm::soft::pin_block::{self, Pin, PinBlockFormat};
use crate::hsm::soft::{Secret, TdesKey};
use crate::message::{Message, Spec};

/// The issuer's test keys and the PIN its cards have.
#[derive(Clone, Default)]
pub struct IssuerKeys {
    pub zpk: Option<TdesKey>,
    /// The PIN blocks' ISO format (0, 1 or 3).
    pub format: Option<PinBlockFormat>,
    pub pin: String,
    pub mac_key: Option<TdesKey>,
}

impl std::fmt::Debug for IssuerKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuerKeys")
            .field("zpk", &self.zpk.is_some())
            .field("mac", &self.mac_key.is_some())
            .finish_non_exhaustive()
    }
}

impl IssuerKeys {
    /// The decline a request earns by its MAC (63) or PIN (55), if any.
    pub fn decline(&self, spec: &Spec, request: &Message) -> Option<&'static str> {
        if let Some(key) = &self.mac_key
            && !mac_verifies(spec, key, request)
        {
            return Some("63");
        }
        let (Some(zpk), Some(block)) = (&self.zpk, request.value(52)) else {
            return None;
        };
        let pan = request.value(2).and_then(|p| std::str::from_utf8(p).ok())?;
        let pin_ok = <[u8; 8]>::try_from(block).ok().is_some_and(|b| {
            let mut clear = Secret::new(b);
            let format = self.format.unwrap_or(PinBlockFormat::Iso0);
            zpk.decrypt_ecb(clear.expose_mut()).is_ok()
                && pin_block::read(format, &clear, pan)
                    .ok()
                    .zip(Pin::new(&self.pin).ok())
                    .is_some_and(|(got, want)| got.ct_eq(&want))
        });
        (!pin_ok).then_some("55")
    }

    /// `response` built, signed when the issuer has a MAC key.
    pub fn build(&self, spec: &Spec, response: &mut Message) -> Result<Bytes, String> {
        match &self.mac_key {
            Some(key) => build_with_mac(spec, key, response),
            None => spec.build(response).map_err(|e| e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Mti;

    const KEY: &str = "0123456789ABCDEFFEDCBA9876543210";

    fn request(spec: &Spec, pin: &str, mac_key: Option<&TdesKey>) -> Message {
        let zpk = TdesKey::from_hex(KEY).unwrap();
        let pan = "4012345678909";
        let mut block =
            pin_block::make(PinBlockFormat::Iso0, &Pin::new(pin).unwrap(), pan, &[0; 8]).unwrap();
        zpk.encrypt_ecb(block.expose_mut()).unwrap();
        let mut m = Message::new(Mti::from_digits(*b"0200").unwrap());
        m.set(2, pan).unwrap();
        m.set(4, "000000001000").unwrap();
        m.set(52, Bytes::copy_from_slice(block.expose())).unwrap();
        let frame = match mac_key {
            Some(k) => build_with_mac(spec, k, &mut m).unwrap(),
            None => spec.build(&m).unwrap(),
        };
        spec.parse(&frame).unwrap()
    }

    #[test]
    fn the_pin_and_the_mac_decide() {
        let spec = Spec::resolve("iso87-ascii").unwrap();
        let key = TdesKey::from_hex(KEY).unwrap();
        let keys = IssuerKeys {
            zpk: Some(key.clone()),
            format: None,
            pin: "1234".into(),
            mac_key: Some(key.clone()),
        };
        assert_eq!(
            keys.decline(&spec, &request(&spec, "1234", Some(&key))),
            None
        );
        assert_eq!(
            keys.decline(&spec, &request(&spec, "4321", Some(&key))),
            Some("55")
        );
        let other = TdesKey::from_hex("89ABCDEF0123456776543210FEDCBA98").unwrap();
        assert_eq!(
            keys.decline(&spec, &request(&spec, "1234", Some(&other))),
            Some("63")
        );
        assert_eq!(
            keys.decline(&spec, &request(&spec, "1234", None)),
            Some("63")
        );
        let no_keys = IssuerKeys::default();
        assert_eq!(no_keys.decline(&spec, &request(&spec, "4321", None)), None);
    }
}
