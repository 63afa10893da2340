//! How `strata stat` and `strata dump` print keys and values, and how
//! `dump --from/--to` read them back: escaped (printable ASCII as is, `\`
//! as `\\`, every other byte as `\xNN`) or hex (`--hex`). A printed key
//! pasted into `--from` names the same bytes.

use std::fmt::Write as _;

use super::CliResult;

/// `bytes` escaped: printable ASCII as is, `\` as `\\`, else `\xNN`.
pub(crate) fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out
}

/// `bytes` as lowercase hex digits.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// `bytes` in the chosen form.
pub(crate) fn show(bytes: &[u8], as_hex: bool) -> String {
    if as_hex { hex(bytes) } else { escape(bytes) }
}

/// The bytes `text` names: hex digits with `as_hex`, else the text with
/// `\\` and `\xNN` escapes decoded (what [`escape`] prints).
pub(crate) fn parse(text: &str, as_hex: bool) -> CliResult<Vec<u8>> {
    if as_hex {
        return unhex(text)
            .ok_or_else(|| format!("{text:?} is not an even number of hex digits").into());
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b != b'\\' {
            out.push(b);
            i += 1;
            continue;
        }
        match bytes.get(i + 1) {
            Some(b'\\') => {
                out.push(b'\\');
                i += 2;
            }
            Some(b'x') => {
                let digits = text.get(i + 2..i + 4).and_then(unhex);
                let Some([byte]) = digits.as_deref() else {
                    return Err(format!("{text:?}: \\x must be followed by two hex digits").into());
                };
                out.push(*byte);
                i += 4;
            }
            _ => return Err(format!("{text:?}: a \\ must start \\\\ or \\xNN").into()),
        }
    }
    Ok(out)
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    let digits = text.as_bytes();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    digits
        .chunks(2)
        .map(|pair| {
            let s = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(s, 16).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_and_hex_forms_read_back_as_the_same_bytes() {
        let all: Vec<u8> = (0..=255).collect();
        for bytes in [&b""[..], b"key\\0", b"a b\n\xff", &all] {
            assert_eq!(parse(&escape(bytes), false).unwrap(), bytes);
            assert_eq!(parse(&hex(bytes), true).unwrap(), bytes);
        }
        assert_eq!(escape(b"a\\\x00~\x7f"), "a\\\\\\x00~\\x7f");
        assert!(parse("\\q", false).is_err());
        assert!(parse("\\x4", false).is_err());
        assert!(parse("abc", true).is_err());
    }
}
