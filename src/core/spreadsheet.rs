//! CSV cells that spreadsheets read as data, never as formulas (CSV injection, OWASP).
//!
//! Excel, LibreOffice and WPS evaluate a cell that starts with `=`, `+`, `-` or `@` (and some a
//! leading tab or carriage return) as a formula, so a registry holder `=HYPERLINK(...)` would
//! run when staff open an export. Every CSV writer passes its cells through [`cell`], which
//! prefixes such a cell with `'` (shown as text, not evaluated). Numbers such as `-3.5` stay
//! numbers. Imports take cells as they come: nothing is unescaped silently.
//!
//! Pure: no IO.

use std::borrow::Cow;

/// The cell as a spreadsheet should see it: `'` before anything it would evaluate.
pub fn cell(text: &str) -> Cow<'_, str> {
    let dangerous = match text.chars().next() {
        Some('=' | '@' | '\t' | '\r') => true,
        Some('+' | '-') => text.trim().parse::<f64>().is_err(),
        _ => false,
    };
    if dangerous {
        Cow::Owned(format!("'{text}"))
    } else {
        Cow::Borrowed(text)
    }
}

/// Every cell of a record through [`cell`].
pub fn record<I, S>(cells: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    cells
        .into_iter()
        .map(|c| cell(c.as_ref()).into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_become_text_and_data_stays_as_it_is() {
        for (given, shown) in [
            (
                "=HYPERLINK(\"http://x\",\"y\")",
                "'=HYPERLINK(\"http://x\",\"y\")",
            ),
            ("@SUM(1+1)", "'@SUM(1+1)"),
            ("+1+2", "'+1+2"),
            ("-cmd|' /C calc'!A0", "'-cmd|' /C calc'!A0"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("-3.5", "-3.5"),
            ("+42", "+42"),
            ("张三", "张三"),
            ("", ""),
            ("a=b", "a=b"),
            ("10.0.0.1", "10.0.0.1"),
        ] {
            assert_eq!(cell(given), shown, "{given:?}");
        }
        assert_eq!(
            record(["=1", "ok"]),
            vec!["'=1".to_owned(), "ok".to_owned()]
        );
    }
}
