//! The wire format of docs/events.md: one JSON object per Kafka message, decoded
//! borrowed, straight from the message bytes.
//!
//! Decoding never fails on a *type* inside serde: every field is read as a
//! [`Loose`] value and checked afterwards, so each invalid case maps to one
//! bounded, static reason ([`Invalid`]) that the shell uses as a log field, a
//! metric label value and a dead-letter header. Strings are borrowed from the
//! payload; only a string containing JSON escapes is copied. serde_json's
//! recursion limit (128) stays on, so deep nesting is rejected, not followed.

use std::borrow::Cow;
use std::fmt;

use crate::window::{MAX_MILLIS, Millis, in_range, parse_rfc3339};

/// Largest count an event may carry, exclusive: integers are in `[0, 2^53)`.
pub const COUNT_LIMIT: u64 = 1 << 53;

/// Why an event is invalid: a short, static, human-readable reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invalid(pub &'static str);

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// How the counts of an event relate to the post (docs/events.md#semantics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tracking {
    /// Cumulative counts as of `observed_at`.
    Snapshot,
    /// Increments, de-duplicated by `event_id`.
    Delta,
}

/// The four counters an event carries. Interactions exclude views.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub reactions: u64,
    pub comments: u64,
    pub shares: u64,
    pub views: u64,
}

impl Counts {
    pub fn interactions(&self) -> u64 {
        self.reactions + self.comments + self.shares
    }
}

/// A valid event. Strings borrow from the payload unless they held escapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event<'a> {
    pub platform: Cow<'a, str>,
    pub page_id: Cow<'a, str>,
    pub post_id: Cow<'a, str>,
    pub page_name: Option<Cow<'a, str>>,
    pub published_at: Millis,
    pub observed_at: Millis,
    pub kind: Tracking,
    pub counts: Counts,
    pub followers: Option<u64>,
    pub event_id: Option<Cow<'a, str>>,
}

/// What decoding needs besides the bytes.
#[derive(Debug, Clone, Copy)]
pub struct DecodeContext {
    /// The Kafka message timestamp, the default for `observed_at`.
    pub message_time: Option<Millis>,
    /// Wall-clock now; `observed_at` may not lie more than `max_skew` ahead.
    pub now: Millis,
    pub max_skew: Millis,
    /// Payloads larger than this are refused before parsing.
    pub max_payload_bytes: usize,
}

/// Decodes one message value. See the module docs for the error model.
pub fn decode<'a>(payload: &'a [u8], cx: &DecodeContext) -> Result<Event<'a>, Invalid> {
    if payload.is_empty() {
        return Err(Invalid("empty payload"));
    }
    if payload.len() > cx.max_payload_bytes {
        return Err(Invalid("payload too large"));
    }
    match scan::wire(payload) {
        Some(wire) => wire.validate(cx),
        None => reference::decode(payload, cx),
    }
}

/// Every field of docs/events.md#fields, read loosely. Unknown fields are ignored.
#[derive(Default, serde::Deserialize)]
pub(super) struct Wire<'a> {
    #[serde(borrow, default)]
    page_id: Option<Loose<'a>>,
    #[serde(borrow, default)]
    post_id: Option<Loose<'a>>,
    #[serde(borrow, default)]
    published_at: Option<Loose<'a>>,
    #[serde(borrow, default)]
    observed_at: Option<Loose<'a>>,
    #[serde(borrow, default)]
    platform: Option<Loose<'a>>,
    #[serde(borrow, default)]
    page_name: Option<Loose<'a>>,
    #[serde(borrow, default)]
    kind: Option<Loose<'a>>,
    #[serde(borrow, default)]
    reactions: Option<Loose<'a>>,
    #[serde(borrow, default)]
    comments: Option<Loose<'a>>,
    #[serde(borrow, default)]
    shares: Option<Loose<'a>>,
    #[serde(borrow, default)]
    views: Option<Loose<'a>>,
    #[serde(borrow, default)]
    followers: Option<Loose<'a>>,
    #[serde(borrow, default)]
    event_id: Option<Loose<'a>>,
}

impl<'a> Wire<'a> {
    pub(super) fn validate(self, cx: &DecodeContext) -> Result<Event<'a>, Invalid> {
        use Field as F;
        let page_id = id(F::PageId, self.page_id, 128)?;
        let post_id = id(F::PostId, self.post_id, 128)?;
        let published_at = timestamp(F::PublishedAt, self.published_at)?.ok_or(F::PublishedAt.missing())?;
        let observed_at = match timestamp(F::ObservedAt, self.observed_at)? {
            Some(t) => t,
            None => cx.message_time.ok_or(F::ObservedAt.missing())?,
        };
        if published_at > observed_at {
            return Err(Invalid("published_at after observed_at"));
        }
        if observed_at > cx.now.saturating_add(cx.max_skew) {
            return Err(Invalid("observed_at too far in the future"));
        }
        Ok(Event {
            platform: platform(self.platform)?,
            page_name: optional_text(F::PageName, self.page_name, 256)?,
            kind: kind(self.kind)?,
            counts: Counts {
                reactions: count(F::Reactions, self.reactions)?.unwrap_or(0),
                comments: count(F::Comments, self.comments)?.unwrap_or(0),
                shares: count(F::Shares, self.shares)?.unwrap_or(0),
                views: count(F::Views, self.views)?.unwrap_or(0),
            },
            followers: count(F::Followers, self.followers)?,
            event_id: match self.event_id {
                None => None,
                Some(v) => Some(id(F::EventId, Some(v), 128)?),
            },
            page_id,
            post_id,
            published_at,
            observed_at,
        })
    }
}

/// A required identifier: a string of 1..=max bytes without control characters.
fn id<'a>(f: Field, v: Option<Loose<'a>>, max: usize) -> Result<Cow<'a, str>, Invalid> {
    let s = match v {
        None => return Err(f.missing()),
        Some(Loose::Str(s)) => s,
        Some(_) => return Err(f.wrong_type()),
    };
    if s.is_empty() || s.len() > max {
        return Err(f.out_of_range());
    }
    if has_control(&s) {
        return Err(f.control_characters());
    }
    Ok(s)
}

/// Whether `s` holds a Unicode control character (`Cc`: U+0000–U+001F,
/// U+007F–U+009F). ASCII text is checked byte by byte without decoding.
fn has_control(s: &str) -> bool {
    if s.is_ascii() {
        return s.bytes().any(|b| b < 0x20 || b == 0x7f);
    }
    s.chars().any(char::is_control)
}

fn optional_text<'a>(f: Field, v: Option<Loose<'a>>, max: usize) -> Result<Option<Cow<'a, str>>, Invalid> {
    match v {
        None => Ok(None),
        Some(Loose::Str(s)) if s.len() > max => Err(f.out_of_range()),
        Some(Loose::Str(s)) => Ok(Some(s)),
        Some(_) => Err(f.wrong_type()),
    }
}

fn platform<'a>(v: Option<Loose<'a>>) -> Result<Cow<'a, str>, Invalid> {
    let f = Field::Platform;
    match v {
        None => Ok(Cow::Borrowed("facebook")),
        Some(Loose::Str(s)) if s.is_empty() || s.len() > 32 => Err(f.out_of_range()),
        Some(Loose::Str(s)) if s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') => Ok(s),
        Some(Loose::Str(_)) => Err(Invalid("platform has characters outside [a-z0-9_]")),
        Some(_) => Err(f.wrong_type()),
    }
}

fn kind(v: Option<Loose<'_>>) -> Result<Tracking, Invalid> {
    match v {
        None => Ok(Tracking::Snapshot),
        Some(Loose::Str(s)) if s == "snapshot" => Ok(Tracking::Snapshot),
        Some(Loose::Str(s)) if s == "delta" => Ok(Tracking::Delta),
        Some(Loose::Str(_)) => Err(Invalid("kind is neither snapshot nor delta")),
        Some(_) => Err(Field::Kind.wrong_type()),
    }
}

fn count(f: Field, v: Option<Loose<'_>>) -> Result<Option<u64>, Invalid> {
    match v {
        None => Ok(None),
        Some(Loose::UInt(n)) if n < COUNT_LIMIT => Ok(Some(n)),
        Some(Loose::UInt(_) | Loose::NegInt) => Err(f.out_of_range()),
        Some(Loose::Float(x)) if is_huge_or_negative_integer(x) => Err(f.out_of_range()),
        Some(_) => Err(f.wrong_type()),
    }
}

/// `1e300` and `-5e0` are integers out of range; `1.5` is the wrong type.
fn is_huge_or_negative_integer(x: f64) -> bool {
    x.fract() == 0.0 && (x < 0.0 || x >= COUNT_LIMIT as f64)
}

/// RFC 3339 string or epoch milliseconds; `Ok(None)` when absent.
fn timestamp(f: Field, v: Option<Loose<'_>>) -> Result<Option<Millis>, Invalid> {
    match v {
        None => Ok(None),
        Some(Loose::Str(s)) => match parse_rfc3339(&s) {
            Some(t) if in_range(t) => Ok(Some(t)),
            Some(_) => Err(f.out_of_range()),
            None => Err(f.unparseable()),
        },
        Some(Loose::UInt(n)) if n <= MAX_MILLIS as u64 => Ok(Some(n as Millis)),
        Some(Loose::UInt(_) | Loose::NegInt) => Err(f.out_of_range()),
        Some(Loose::Float(x)) if is_huge_or_negative_integer(x) => Err(f.out_of_range()),
        Some(_) => Err(f.wrong_type()),
    }
}

/// The fields named in reasons. Each reason is a `concat!`ed literal, so it
/// is `'static` and costs nothing to produce.
#[derive(Clone, Copy)]
enum Field {
    PageId,
    PostId,
    PublishedAt,
    ObservedAt,
    Platform,
    PageName,
    Kind,
    Reactions,
    Comments,
    Shares,
    Views,
    Followers,
    EventId,
}

macro_rules! reasons {
    ($($variant:ident => $name:literal),* $(,)?) => {
        /// The names of the fields the decoder reads, in checking order.
        pub const FIELD_NAMES: &[&str] = &[$($name),*];

        impl Field {
            fn missing(self) -> Invalid {
                Invalid(match self { $(Field::$variant => concat!("missing ", $name)),* })
            }
            fn wrong_type(self) -> Invalid {
                Invalid(match self { $(Field::$variant => concat!($name, " has the wrong type")),* })
            }
            fn out_of_range(self) -> Invalid {
                Invalid(match self { $(Field::$variant => concat!($name, " out of range")),* })
            }
            fn unparseable(self) -> Invalid {
                Invalid(match self { $(Field::$variant => concat!($name, " is not a timestamp")),* })
            }
            fn control_characters(self) -> Invalid {
                Invalid(match self { $(Field::$variant => concat!($name, " has control characters")),* })
            }
        }
    };
}

reasons! {
    PageId => "page_id", PostId => "post_id", PublishedAt => "published_at",
    ObservedAt => "observed_at", Platform => "platform", PageName => "page_name",
    Kind => "kind", Reactions => "reactions", Comments => "comments", Shares => "shares",
    Views => "views", Followers => "followers", EventId => "event_id",
}

/// Any JSON value, reduced to what validation needs. Arrays and objects are
/// skipped (still depth-limited by serde_json) rather than refused by serde,
/// so that the field gets a precise reason.
pub(super) enum Loose<'a> {
    Str(Cow<'a, str>),
    UInt(u64),
    NegInt,
    /// A number serde_json could not hold in an integer (fraction, exponent,
    /// or beyond 64 bits).
    Float(f64),
    Other,
}

mod reference;
mod scan;

#[cfg(test)]
mod tests;
