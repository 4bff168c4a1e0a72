//! The fast path of decoding: one forward scan of a simple JSON object into
//! the same [`Wire`] the reference decoder builds, without serde.
//!
//! "Simple" means: valid UTF-8; keys without escapes; known fields holding
//! null, a string without escapes or control characters, or an integer
//! without sign, fraction or exponent that fits in 64 bits; unknown fields
//! holding strings (escapes allowed, no surrogate escapes), numbers without
//! exponent, `true`/`false`/`null`, and arrays and objects of those nested
//! at most 64 deep; no known field twice. On anything else the scan returns
//! `None` and the reference decoder decides, so every error and every
//! corner of JSON keeps exactly one definition; a property test checks that
//! the two paths agree on what this one accepts.

use std::borrow::Cow;

use super::{Loose, Wire};

/// Deepest nesting of an unknown field's value this path skips.
const MAX_DEPTH: u32 = 64;

/// The fields of a simple payload, or `None` to let the reference decide.
pub(super) fn wire(payload: &[u8]) -> Option<Wire<'_>> {
    let text = std::str::from_utf8(payload).ok()?;
    let mut s = Scanner { text, at: 0 };
    let mut wire = Wire::default();
    let mut seen = 0u16;
    s.ws();
    s.eat(b'{')?;
    s.ws();
    if s.peek()? == b'}' {
        s.at += 1;
    } else {
        loop {
            let key = s.plain_string()?;
            s.ws();
            s.eat(b':')?;
            s.ws();
            match field(&mut wire, key) {
                Some((bit, slot)) => {
                    if seen & bit != 0 {
                        return None;
                    }
                    seen |= bit;
                    *slot = s.known_value()?;
                }
                None => s.skip_value()?,
            }
            s.ws();
            match s.next()? {
                b',' => s.ws(),
                b'}' => break,
                _ => return None,
            }
        }
    }
    s.ws();
    (s.at == payload.len()).then_some(wire)
}

/// The slot of a known field, with its bit in the "seen" mask.
fn field<'w, 'a>(w: &'w mut Wire<'a>, key: &str) -> Option<(u16, &'w mut Option<Loose<'a>>)> {
    let slot = match key {
        "page_id" => (1, &mut w.page_id),
        "post_id" => (1 << 1, &mut w.post_id),
        "published_at" => (1 << 2, &mut w.published_at),
        "observed_at" => (1 << 3, &mut w.observed_at),
        "platform" => (1 << 4, &mut w.platform),
        "page_name" => (1 << 5, &mut w.page_name),
        "kind" => (1 << 6, &mut w.kind),
        "reactions" => (1 << 7, &mut w.reactions),
        "comments" => (1 << 8, &mut w.comments),
        "shares" => (1 << 9, &mut w.shares),
        "views" => (1 << 10, &mut w.views),
        "followers" => (1 << 11, &mut w.followers),
        "event_id" => (1 << 12, &mut w.event_id),
        _ => return None,
    };
    Some(slot)
}

/// The first byte of `s` that ends or interrupts a string: a quote, a
/// backslash or a control character. Eight bytes at a time: strings are
/// most of an event's bytes.
fn string_end(s: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut at = 0;
    while let Some(word) = s.get(at..at + 8) {
        let v = u64::from_le_bytes(word.try_into().expect("8 bytes"));
        // High bit set in a byte that is zero after the xor (the quote or the
        // backslash) or below 0x20; a borrow can only mark bytes after a
        // true match, so the first mark is exact.
        let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
        let hit = zero(v ^ (ONES * u64::from(b'"')))
            | zero(v ^ (ONES * u64::from(b'\\')))
            | (v.wrapping_sub(ONES * 0x20) & !v & HIGH);
        if hit != 0 {
            return Some(at + (hit.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    s[at..].iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20).map(|i| at + i)
}

const POW10: [u64; 9] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000];

/// How many of the 8 bytes of `word` (first byte lowest) are ASCII digits
/// before the first that is not.
fn leading_digits(word: u64) -> usize {
    const LOW: u64 = 0x0f0f_0f0f_0f0f_0f0f;
    let high = !LOW;
    // A byte c is a digit when c & 0xf0 == 0x30 and (c + 6) & 0xf0 == 0x30; a
    // carry out of a non-digit byte only affects bytes after it.
    let zeros = 0x3030_3030_3030_3030;
    let not_digit = ((word & high) ^ zeros) | ((word.wrapping_add(0x0606_0606_0606_0606) & high) ^ zeros);
    (not_digit.trailing_zeros() / 8) as usize
}

/// The value of the first `k` (1..=8) digits of `word`: the classic
/// eight-digits-at-once arithmetic, leading positions filled with zeros.
fn eight_digits(word: u64, k: usize) -> u64 {
    let v = word.wrapping_sub(0x3030_3030_3030_3030) << ((8 - k) * 8);
    let v = (v.wrapping_mul(10) + (v >> 8)) & 0x00ff_00ff_00ff_00ff;
    let v = (v.wrapping_mul(100) + (v >> 16)) & 0x0000_ffff_0000_ffff;
    (v.wrapping_mul(10_000) + (v >> 32)) & 0xffff_ffff
}

struct Scanner<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Scanner<'a> {
    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes().get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.at += 1;
        Some(b)
    }

    fn eat(&mut self, want: u8) -> Option<()> {
        (self.next()? == want).then_some(())
    }

    fn ws(&mut self) {
        let b = self.bytes();
        let mut i = self.at;
        while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
            i += 1;
        }
        self.at = i;
    }

    /// A string without escapes or control characters, borrowed.
    fn plain_string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.at;
        let rest = &self.bytes()[start..];
        let len = string_end(rest)?;
        if rest[len] != b'"' {
            return None;
        }
        self.at = start + len + 1;
        // The quote is ASCII, so both ends are on character boundaries.
        Some(&self.text[start..start + len])
    }

    /// The value of a known field: null (absent), a plain string or a plain
    /// unsigned integer; anything else is the reference decoder's to judge.
    fn known_value(&mut self) -> Option<Option<Loose<'a>>> {
        match self.peek()? {
            b'"' => Some(Some(Loose::Str(Cow::Borrowed(self.plain_string()?)))),
            b'0'..=b'9' => Some(Some(Loose::UInt(self.unsigned()?))),
            b'n' => self.literal("null").map(|()| None),
            _ => None,
        }
    }

    /// Digits that serde_json would read as a u64: no leading zero, no
    /// fraction or exponent after them, no overflow.
    /// At most 19 digits, which cannot overflow; a longer number is over
    /// 2^53 anyway and its exact reason is the reference decoder's to give.
    fn unsigned(&mut self) -> Option<u64> {
        let b = self.bytes();
        let start = self.at;
        let mut i = start;
        let mut n = 0u64;
        // Eight digits at a time while eight bytes remain, then one by one.
        while i - start < 16 {
            let Some(word) = b.get(i..i + 8) else { break };
            let word = u64::from_le_bytes(word.try_into().expect("8 bytes"));
            let k = leading_digits(word);
            if k == 0 {
                break;
            }
            n = n * POW10[k] + eight_digits(word, k);
            i += k;
            if k < 8 {
                break;
            }
        }
        while i < b.len() && i - start < 19 && b[i].is_ascii_digit() {
            n = n * 10 + u64::from(b[i] - b'0');
            i += 1;
        }
        let leading_zero = b[start] == b'0' && i - start > 1;
        if i == start || leading_zero || matches!(b.get(i), Some(b'0'..=b'9' | b'.' | b'e' | b'E')) {
            return None;
        }
        self.at = i;
        Some(n)
    }

    fn literal(&mut self, word: &str) -> Option<()> {
        let end = self.at + word.len();
        (self.bytes().get(self.at..end)? == word.as_bytes()).then(|| self.at = end)
    }

    /// Skips any value of the simple grammar (see the module docs), arrays
    /// and objects iteratively with a bit stack (1 = object).
    fn skip_value(&mut self) -> Option<()> {
        let mut stack = 0u64;
        let mut depth = 0u32;
        loop {
            match self.peek()? {
                open @ (b'[' | b'{') => {
                    if depth == MAX_DEPTH {
                        return None;
                    }
                    self.at += 1;
                    stack = stack << 1 | u64::from(open == b'{');
                    depth += 1;
                    self.ws();
                    let close = if open == b'{' { b'}' } else { b']' };
                    if self.peek()? == close {
                        self.at += 1;
                        stack >>= 1;
                        depth -= 1;
                    } else {
                        if open == b'{' {
                            self.member_key()?;
                        }
                        continue;
                    }
                }
                _ => self.skip_scalar()?,
            }
            // After a complete value: close containers or move to the next element.
            loop {
                if depth == 0 {
                    return Some(());
                }
                self.ws();
                let in_object = stack & 1 == 1;
                match (self.next()?, in_object) {
                    (b',', true) => {
                        self.ws();
                        self.member_key()?;
                        break;
                    }
                    (b',', false) => {
                        self.ws();
                        break;
                    }
                    (b'}', true) | (b']', false) => {
                        stack >>= 1;
                        depth -= 1;
                    }
                    _ => return None,
                }
            }
        }
    }

    /// `"key" :` inside a skipped object.
    fn member_key(&mut self) -> Option<()> {
        self.skip_string()?;
        self.ws();
        self.eat(b':')?;
        self.ws();
        Some(())
    }

    fn skip_scalar(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.skip_string(),
            b'-' | b'0'..=b'9' => self.skip_number(),
            b't' => self.literal("true"),
            b'f' => self.literal("false"),
            b'n' => self.literal("null"),
            _ => None,
        }
    }

    /// A string with valid escapes (surrogate escapes excepted).
    fn skip_string(&mut self) -> Option<()> {
        self.eat(b'"')?;
        loop {
            match self.next()? {
                b'"' => return Some(()),
                b'\\' => match self.next()? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                    b'u' => {
                        let hex = self.text.get(self.at..self.at + 4)?;
                        let code = u16::from_str_radix(hex, 16).ok()?;
                        if hex.starts_with('+') || (0xd800..=0xdfff).contains(&code) {
                            return None;
                        }
                        self.at += 4;
                    }
                    _ => return None,
                },
                0..=0x1f => return None,
                _ => {}
            }
        }
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)?` — an exponent is left to the
    /// reference decoder.
    fn skip_number(&mut self) -> Option<()> {
        if self.peek()? == b'-' {
            self.at += 1;
        }
        let digits = |s: &mut Self| {
            let start = s.at;
            while matches!(s.peek(), Some(b'0'..=b'9')) {
                s.at += 1;
            }
            s.at - start
        };
        let start = self.at;
        let n = digits(self);
        if n == 0 || (n > 1 && self.bytes()[start] == b'0') {
            return None;
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            if digits(self) == 0 {
                return None;
            }
        }
        (!matches!(self.peek(), Some(b'e' | b'E'))).then_some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_ends_are_found_eight_bytes_at_a_time() {
        let reference = |s: &[u8]| s.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20);
        let mut cases: Vec<Vec<u8>> =
            vec![b"abc\"".to_vec(), b"0123456789abcdef\"x".to_vec(), b"nothing here".to_vec()];
        for stop in [b'"', b'\\', 0x00, 0x1f, 0x0a] {
            for at in 0..20 {
                let mut v: Vec<u8> = (0..24).map(|i| [b'a', 0x7f, 0xc3, 0xa9, b' ', 0x21, 0x5b][i % 7]).collect();
                v[at] = stop;
                cases.push(v);
            }
        }
        for c in cases {
            assert_eq!(string_end(&c), reference(&c), "{c:?}");
        }
    }

    #[test]
    fn digits_are_read_eight_at_a_time_exactly() {
        for n in
            [0u64, 7, 42, 12_345_678, 123_456_789, 1_752_487_200_000, 9_007_199_254_740_991, 1_000_000_000_000_000_000]
        {
            for tail in [",", "}", " ,\"x\":1}", ""] {
                let text = format!("{n}{tail}");
                let mut s = Scanner { text: &text, at: 0 };
                assert_eq!(s.unsigned(), Some(n), "{text}");
                assert_eq!(s.at, n.to_string().len(), "{text}");
            }
        }
        for (text, n) in [("7,\"a\"", 7), ("12/", 12), ("3:", 3), ("99 ", 99), ("5\u{7f}", 5)] {
            assert_eq!(Scanner { text, at: 0 }.unsigned(), Some(n), "{text}");
        }
        for bad in ["012", "1.5", "1e3", "12345678901234567890", "123456789012.0"] {
            assert_eq!(Scanner { text: bad, at: 0 }.unsigned(), None, "{bad}");
        }
    }
}
