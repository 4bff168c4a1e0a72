//! One directory record on the wire (docs/directory.md): key
//! `platform/page_id`, value `{"platform", "page_id", "page_name",
//! "groups": {dimension: value | [values]}}`, and why one is refused.
//!
//! The value is read into a loose tree first (strings, lists, objects,
//! anything else), so that each way a record can be wrong has its own
//! reason rather than serde's message; unknown fields are ignored.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use super::DirectoryLimits;

/// Largest record value read; a larger one is refused unread.
pub const MAX_RECORD_BYTES: usize = 64 * 1024;
/// Longest dimension name: `[a-z][a-z0-9_]{0,31}`.
pub const MAX_DIMENSION_BYTES: usize = 32;
/// Longest group value.
pub const MAX_VALUE_BYTES: usize = 64;
const MAX_PAGE_ID_BYTES: usize = 128;
const MAX_PAGE_NAME_BYTES: usize = 256;
const MAX_PLATFORM_BYTES: usize = 32;

/// Why a directory record was refused: the `reason` label of
/// `engagement_directory_records_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refused {
    TooLarge,
    NotJson,
    NotObject,
    BadKey,
    KeyMismatch,
    BadPageId,
    BadPlatform,
    BadPageName,
    BadGroups,
    BadDimension,
    BadValueType,
    BadValue,
    TooManyGroups,
    TooManyValues,
    DirectoryFull,
}

impl Refused {
    pub const ALL: [Refused; 15] = [
        Refused::TooLarge,
        Refused::NotJson,
        Refused::NotObject,
        Refused::BadKey,
        Refused::KeyMismatch,
        Refused::BadPageId,
        Refused::BadPlatform,
        Refused::BadPageName,
        Refused::BadGroups,
        Refused::BadDimension,
        Refused::BadValueType,
        Refused::BadValue,
        Refused::TooManyGroups,
        Refused::TooManyValues,
        Refused::DirectoryFull,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Refused::TooLarge => "too_large",
            Refused::NotJson => "not_json",
            Refused::NotObject => "not_object",
            Refused::BadKey => "bad_key",
            Refused::KeyMismatch => "key_mismatch",
            Refused::BadPageId => "bad_page_id",
            Refused::BadPlatform => "bad_platform",
            Refused::BadPageName => "bad_page_name",
            Refused::BadGroups => "bad_groups",
            Refused::BadDimension => "bad_dimension",
            Refused::BadValueType => "bad_value_type",
            Refused::BadValue => "bad_value",
            Refused::TooManyGroups => "too_many_groups",
            Refused::TooManyValues => "too_many_values",
            Refused::DirectoryFull => "directory_full",
        }
    }

    /// What the log says.
    pub const fn describe(self) -> &'static str {
        match self {
            Refused::TooLarge => "record larger than 64 KiB",
            Refused::NotJson => "value is not JSON",
            Refused::NotObject => "value is not a JSON object",
            Refused::BadKey => "key is not platform/page_id",
            Refused::KeyMismatch => "key does not name the page of the value",
            Refused::BadPageId => "page_id missing, not a string, empty, over 128 bytes or with control characters",
            Refused::BadPlatform => "platform not a string of 1-32 of [a-z0-9_]",
            Refused::BadPageName => "page_name not a string of 1-256 bytes without control characters",
            Refused::BadGroups => "groups is not an object",
            Refused::BadDimension => "dimension name not [a-z][a-z0-9_]{0,31}",
            Refused::BadValueType => "group value neither a string nor an array of strings",
            Refused::BadValue => "group value empty, over 64 bytes or with control characters",
            Refused::TooManyGroups => "more groups than directory.max_groups_per_page",
            Refused::TooManyValues => "more distinct groups than directory.max_values",
            Refused::DirectoryFull => "more pages than directory.max_pages",
        }
    }
}

/// A valid record's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed<'a> {
    pub platform: Cow<'a, str>,
    pub page_id: Cow<'a, str>,
    pub page_name: Option<Cow<'a, str>>,
    /// `dimension:value`, in record order (duplicates allowed).
    pub groups: Vec<String>,
}

/// Reads and checks a record value.
pub fn parse<'a>(value: &'a [u8], limits: &DirectoryLimits) -> Result<Parsed<'a>, Refused> {
    if value.len() > MAX_RECORD_BYTES {
        return Err(Refused::TooLarge);
    }
    let Loose::Map(fields) = serde_json::from_slice::<Loose<'a>>(value).map_err(|_| Refused::NotJson)? else {
        return Err(Refused::NotObject);
    };
    // Duplicate keys: the last one counts, as in most JSON readers.
    let field = |name: &str| fields.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v);
    let page_id = match field("page_id") {
        Some(Loose::Str(s)) if text_ok(s, MAX_PAGE_ID_BYTES) => s.clone(),
        _ => return Err(Refused::BadPageId),
    };
    let platform = match field("platform") {
        None | Some(Loose::Null) => Cow::Borrowed("facebook"),
        Some(Loose::Str(s)) if platform_ok(s) => s.clone(),
        Some(_) => return Err(Refused::BadPlatform),
    };
    let page_name = match field("page_name") {
        None | Some(Loose::Null) => None,
        Some(Loose::Str(s)) if text_ok(s, MAX_PAGE_NAME_BYTES) => Some(s.clone()),
        Some(_) => return Err(Refused::BadPageName),
    };
    let groups = match field("groups") {
        None | Some(Loose::Null) => Vec::new(),
        Some(Loose::Map(g)) => groups(g, limits)?,
        Some(_) => return Err(Refused::BadGroups),
    };
    Ok(Parsed { platform, page_id, page_name, groups })
}

fn groups(fields: &[(Cow<'_, str>, Loose<'_>)], limits: &DirectoryLimits) -> Result<Vec<String>, Refused> {
    let mut out = Vec::new();
    for (dim, value) in fields {
        if !dimension_ok(dim) {
            return Err(Refused::BadDimension);
        }
        let values: Vec<&str> = match value {
            Loose::Str(s) => vec![s],
            Loose::List(items) => {
                items.iter().map(|i| i.as_deref().ok_or(Refused::BadValueType)).collect::<Result<_, _>>()?
            }
            _ => return Err(Refused::BadValueType),
        };
        for v in values {
            if !text_ok(v, MAX_VALUE_BYTES) {
                return Err(Refused::BadValue);
            }
            if out.len() >= limits.max_groups_per_page {
                return Err(Refused::TooManyGroups);
            }
            out.push(format!("{dim}:{v}"));
        }
    }
    Ok(out)
}

/// Parses a `dimension:value` group as a query or the config names it.
pub fn parse_group(s: &str) -> Option<(&str, &str)> {
    let (dim, value) = s.split_once(':')?;
    (dimension_ok(dim) && text_ok(value, MAX_VALUE_BYTES)).then_some((dim, value))
}

/// Splits a key `platform/page_id` (the platform has no `/`).
pub(super) fn split_key(key: &[u8]) -> Result<(&str, &str), Refused> {
    let key = std::str::from_utf8(key).map_err(|_| Refused::BadKey)?;
    let (platform, id) = key.split_once('/').ok_or(Refused::BadKey)?;
    if !platform_ok(platform) || !text_ok(id, MAX_PAGE_ID_BYTES) {
        return Err(Refused::BadKey);
    }
    Ok((platform, id))
}

fn dimension_ok(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_DIMENSION_BYTES
        && b[0].is_ascii_lowercase()
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
}

fn platform_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_PLATFORM_BYTES
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// 1..=max bytes without control characters.
fn text_ok(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && !s.chars().any(char::is_control)
}

/// A JSON value as far as a record needs it.
#[derive(Debug)]
enum Loose<'a> {
    Str(Cow<'a, str>),
    /// Items of an array: `None` for one that is not a string.
    List(Vec<Option<Cow<'a, str>>>),
    Map(Vec<(Cow<'a, str>, Loose<'a>)>),
    Null,
    Other,
}

impl<'de> Deserialize<'de> for Loose<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LooseVisitor)
    }
}

struct LooseVisitor;

impl<'de> Visitor<'de> for LooseVisitor {
    type Value = Loose<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Loose::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Loose::Str(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Loose::Str(Cow::Owned(v)))
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Loose::Null)
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Loose::Null)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Loose::Other)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Loose::Other)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Loose::Other)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Loose::Other)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Item<'de>>()? {
            items.push(item.0);
        }
        Ok(Loose::List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = Vec::new();
        while let Some((k, v)) = map.next_entry::<Key<'de>, Loose<'de>>()? {
            fields.push((k.0, v));
        }
        Ok(Loose::Map(fields))
    }
}

/// An array item: a string, or `None` for anything else (read and dropped).
struct Item<'a>(Option<Cow<'a, str>>);

impl<'de> Deserialize<'de> for Item<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Loose::deserialize(d)? {
            Loose::Str(s) => Ok(Item(Some(s))),
            _ => Ok(Item(None)),
        }
    }
}

/// An object key, borrowed from the input when it has no escapes (serde's
/// own `Cow<str>` always copies).
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match d.deserialize_str(LooseVisitor)? {
            Loose::Str(s) => Ok(Key(s)),
            _ => Err(serde::de::Error::custom("an object key is a string")),
        }
    }
}
