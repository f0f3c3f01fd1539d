//! JSON encoders that reproduce Python's `json.dumps` byte for byte.
//!
//! The Python SDK serialises request bodies with `json.dumps(params, separators=(",", ":"))` and
//! a JSON-object message with plain `json.dumps(message)`; both use `ensure_ascii=True`. A server
//! (or a signature, or a byte-level test) that compares bodies must see exactly those bytes, so
//! the encoding is a `serde_json` [`Formatter`] rather than a
//! post-processing of serde's output.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::ser::{Formatter, Serializer};

/// Which of Python's two `json.dumps` layouts to produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PyStyle {
    /// `separators=(",", ":")`: the layout of every request body the SDK sends.
    Compact,
    /// Python's default separators `", "` and `": "`: the layout of a JSON-object message that the
    /// SDK first turns into a string.
    Default,
}

/// A [`Formatter`] writing `ensure_ascii` JSON with the separators of a [`PyStyle`], and floats
/// the way Python's `repr(float)` prints them.
#[derive(Debug, Clone, Copy)]
pub struct PyFormatter {
    style: PyStyle,
}

impl PyFormatter {
    /// A formatter for the given layout.
    pub fn new(style: PyStyle) -> Self {
        PyFormatter { style }
    }

    fn item_separator(&self) -> &'static [u8] {
        match self.style {
            PyStyle::Compact => b",",
            PyStyle::Default => b", ",
        }
    }

    fn key_separator(&self) -> &'static [u8] {
        match self.style {
            PyStyle::Compact => b":",
            PyStyle::Default => b": ",
        }
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn write_u_escape<W: ?Sized + Write>(writer: &mut W, unit: u16) -> io::Result<()> {
    let buf = [
        b'\\',
        b'u',
        HEX[(unit >> 12) as usize & 0xf],
        HEX[(unit >> 8) as usize & 0xf],
        HEX[(unit >> 4) as usize & 0xf],
        HEX[unit as usize & 0xf],
    ];
    writer.write_all(&buf)
}

/// Python's `float.__repr__`: shortest round-trip digits, scientific notation when the decimal
/// exponent is below -4 or at least 16, with a signed two-digit exponent (`1e-05`, `1e+16`).
fn python_float_repr(value: f64) -> String {
    if !value.is_finite() {
        // Python would write NaN/Infinity (invalid JSON); serde_json cannot hold them anyway.
        return "null".to_owned();
    }
    if value == 0.0 {
        return if value.is_sign_negative() {
            "-0.0"
        } else {
            "0.0"
        }
        .to_owned();
    }
    // `{:e}` prints the shortest round-trip digits, e.g. "1.2345e-7".
    let sci = format!("{value:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    if !(-4..16).contains(&exp) {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", exp.abs()));
    } else if exp < 0 {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.push_str(&digits);
    } else {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            out.push_str(&digits);
            for _ in digits.len()..int_len {
                out.push('0');
            }
            out.push_str(".0");
        } else {
            out.push_str(&digits[..int_len]);
            out.push('.');
            out.push_str(&digits[int_len..]);
        }
    }
    out
}

impl Formatter for PyFormatter {
    fn write_f64<W: ?Sized + Write>(&mut self, writer: &mut W, value: f64) -> io::Result<()> {
        writer.write_all(python_float_repr(value).as_bytes())
    }

    fn write_f32<W: ?Sized + Write>(&mut self, writer: &mut W, value: f32) -> io::Result<()> {
        // Python has no f32; widen through the shortest decimal so 0.1f32 prints as 0.1.
        let widened: f64 = value.to_string().parse().unwrap_or(f64::from(value));
        self.write_f64(writer, widened)
    }

    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        // Python's ensure_ascii escapes everything outside ' '..='~' (DEL included); serde_json has
        // already escaped the control characters and quotes before calling this.
        let mut start = 0;
        for (i, ch) in fragment.char_indices() {
            if (ch as u32) < 0x7f {
                continue;
            }
            writer.write_all(&fragment.as_bytes()[start..i])?;
            let mut units = [0u16; 2];
            for unit in ch.encode_utf16(&mut units) {
                write_u_escape(writer, *unit)?;
            }
            start = i + ch.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }

    fn begin_array_value<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(self.item_separator())
        }
    }

    fn begin_object_key<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(self.item_separator())
        }
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        writer.write_all(self.key_separator())
    }
}

/// Serialise `value` exactly as Python's `json.dumps` would with the given layout
/// (`ensure_ascii=True`, `/` not escaped, key order as given).
pub fn to_python_json<T: Serialize + ?Sized>(
    value: &T,
    style: PyStyle,
) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::with_capacity(128);
    let mut ser = Serializer::with_formatter(&mut out, PyFormatter::new(style));
    value.serialize(&mut ser)?;
    Ok(out)
}

/// [`to_python_json`] as a `String` (the output is always ASCII).
pub fn to_python_string<T: Serialize + ?Sized>(
    value: &T,
    style: PyStyle,
) -> Result<String, serde_json::Error> {
    let bytes = to_python_json(value, style)?;
    // ensure_ascii output is pure ASCII, so this cannot fail; map defensively instead of panicking.
    String::from_utf8(bytes).map_err(|e| serde::ser::Error::custom(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn compact(v: &serde_json::Value) -> String {
        to_python_string(v, PyStyle::Compact).unwrap()
    }

    fn default(v: &serde_json::Value) -> String {
        to_python_string(v, PyStyle::Default).unwrap()
    }

    #[test]
    fn non_ascii_is_escaped_with_lower_case_hex() {
        assert_eq!(
            r#"{"name":"\u6d4b\u8bd5 conv"}"#,
            compact(&json!({"name": "测试 conv"}))
        );
        assert_eq!(r#""caf\u00e9""#, compact(&json!("café")));
    }

    #[test]
    fn astral_characters_become_surrogate_pairs() {
        assert_eq!(r#""\ud83d\ude00!""#, compact(&json!("😀!")));
        assert_eq!(r#""\ud834\udd1e""#, default(&json!("𝄞")));
    }

    #[test]
    fn slash_is_not_escaped_and_controls_are() {
        assert_eq!(
            r#""a/b\n\t\"\\\u0001\u007f""#,
            compact(&json!("a/b\n\t\"\\\u{1}\u{7f}"))
        );
    }

    #[test]
    fn default_style_uses_python_separators_in_nested_dicts() {
        let v = json!({"_lctype": -1, "_lctext": "你好", "attrs": {"a": [1, 2, {"b": null}], "c": true}});
        assert_eq!(
            r#"{"_lctype": -1, "_lctext": "\u4f60\u597d", "attrs": {"a": [1, 2, {"b": null}], "c": true}}"#,
            default(&v)
        );
        assert_eq!(
            r#"{"_lctype":-1,"_lctext":"\u4f60\u597d","attrs":{"a":[1,2,{"b":null}],"c":true}}"#,
            compact(&v)
        );
    }

    #[test]
    fn empty_containers_have_no_separators() {
        assert_eq!("{}", default(&json!({})));
        assert_eq!("[]", default(&json!([])));
        assert_eq!(r#"{"a": {}, "b": []}"#, default(&json!({"a": {}, "b": []})));
    }

    #[test]
    fn key_order_is_insertion_order() {
        let mut map = serde_json::Map::new();
        map.insert("z".into(), json!(1));
        map.insert("a".into(), json!(2));
        assert_eq!(r#"{"z":1,"a":2}"#, compact(&serde_json::Value::Object(map)));
    }

    #[test]
    fn floats_print_like_python_repr() {
        let cases = [
            (1.0, "1.0"),
            (0.5, "0.5"),
            (-2.25, "-2.25"),
            (0.1, "0.1"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (1e15, "1000000000000000.0"),
            (123456789.125, "123456789.125"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.25e-7, "1.25e-07"),
            (1e100, "1e+100"),
            (0.0, "0.0"),
            (1700000000500.0, "1700000000500.0"),
        ];
        for (value, expected) in cases {
            assert_eq!(
                expected,
                compact(&json!(value)),
                "when the float was {value:?}"
            );
        }
    }
}
