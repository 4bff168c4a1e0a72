//! The reference decoder: serde_json into [`Wire`], every field read as a
//! [`Loose`] value. It defines the exact outcome of every payload; the fast
//! scanner ([`super::scan`]) handles the common simple case and hands
//! anything else here, and a property test checks that the two agree.
//! serde_json's recursion limit stays on; values skipped as unknown are
//! skipped iteratively by serde_json.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::{DecodeContext, Event, Invalid, Loose, Wire};

/// Decodes with serde_json; the caller has checked emptiness and size.
pub(super) fn decode<'a>(payload: &'a [u8], cx: &DecodeContext) -> Result<Event<'a>, Invalid> {
    // serde would read a JSON array positionally into the struct: refuse it first.
    if payload.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(match serde_json::from_slice::<IgnoredAny>(payload) {
            Ok(_) => Invalid("not a JSON object"),
            Err(e) => classify(payload, &e),
        });
    }
    let wire: Wire<'a> = serde_json::from_slice(payload).map_err(|e| classify(payload, &e))?;
    wire.validate(cx)
}

/// Maps a serde_json failure to a static reason. Type errors cannot happen
/// inside [`Wire`], so a data error is a repeated field.
fn classify(payload: &[u8], err: &serde_json::Error) -> Invalid {
    match err.classify() {
        serde_json::error::Category::Data => Invalid("duplicate field"),
        _ if std::str::from_utf8(payload).is_err() => Invalid("invalid UTF-8"),
        _ => Invalid("malformed JSON"),
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Loose<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LooseVisitor)
    }
}

struct LooseVisitor;

impl<'de> Visitor<'de> for LooseVisitor {
    type Value = Loose<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Loose<'de>, E> {
        Ok(Loose::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Loose<'de>, E> {
        Ok(Loose::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Loose<'de>, E> {
        Ok(Loose::UInt(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Loose<'de>, E> {
        Ok(u64::try_from(v).map_or(Loose::NegInt, Loose::UInt))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Loose<'de>, E> {
        Ok(Loose::Float(v))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Loose<'de>, E> {
        Ok(Loose::Other)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Loose<'de>, E> {
        Ok(Loose::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Loose<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Loose::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Loose<'de>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Loose::Other)
    }
}
