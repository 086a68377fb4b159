//! The INI dialect of systemd unit files and GLib key files: `[Section]` headers, `Key=Value`
//! lines, `#`/`;` comments, and (systemd only) lines continued by a trailing backslash.

/// One assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Assignment {
    pub section: String,
    pub key: String,
    pub value: String,
}

/// All assignments in file order, or the first line that is not valid, as "line N: ...".
pub(crate) fn parse(text: &str, continuation: bool) -> Result<Vec<Assignment>, String> {
    let mut out = Vec::new();
    let mut section: Option<String> = None;
    let mut lines = text.lines().enumerate();
    while let Some((i, raw)) = lines.next() {
        let mut line = raw.trim().to_owned();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if continuation {
            while line.ends_with('\\') {
                line.pop();
                line.push(' ');
                match lines.next() {
                    Some((_, next)) => {
                        let next = next.trim();
                        if !(next.starts_with('#') || next.starts_with(';')) {
                            line.push_str(next);
                        }
                    }
                    None => break,
                }
            }
        }
        let n = i + 1;
        if let Some(rest) = line.strip_prefix('[') {
            let Some(name) = rest.strip_suffix(']') else {
                return Err(format!("line {n}: unterminated section header"));
            };
            section = Some(name.trim().to_owned());
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!(
                "line {n}: expected Key=Value, found {:?}",
                clip(&line)
            ));
        };
        let Some(section) = &section else {
            return Err(format!("line {n}: assignment before any [Section]"));
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(format!("line {n}: empty key"));
        }
        out.push(Assignment {
            section: section.clone(),
            key: key.to_owned(),
            value: value.trim().to_owned(),
        });
    }
    Ok(out)
}

/// At most 40 characters of `s`, for error messages.
pub(crate) fn clip(s: &str) -> String {
    let mut out: String = s.chars().take(40).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

/// systemd's boolean: `Some(true)` for 1/yes/y/true/t/on, `Some(false)` for
/// 0/no/n/false/f/off, `None` otherwise.
pub(crate) fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "yes" | "y" | "true" | "t" | "on" => Some(true),
        "0" | "no" | "n" | "false" | "f" | "off" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_keys_comments_and_continuations() {
        let text =
            "# c\n[Match]\nName = eth0 \\\n  eth1\n; c\n[Network]\nAddress=10.0.0.5/24\nDHCP=\n";
        let a = parse(text, true).expect("parses");
        assert_eq!(a.len(), 3);
        assert_eq!(
            (a[0].section.as_str(), a[0].key.as_str()),
            ("Match", "Name")
        );
        assert_eq!(a[0].value, "eth0  eth1");
        assert_eq!(a[1].value, "10.0.0.5/24");
        assert_eq!((a[2].key.as_str(), a[2].value.as_str()), ("DHCP", ""));
        // Without continuations a trailing backslash is part of the value.
        assert_eq!(
            parse("[a]\nk=v\\\n", false).expect("parses")[0].value,
            "v\\"
        );
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(
            parse("[Match]\nName=eth0\nthis is not ini\n", true),
            Err("line 3: expected Key=Value, found \"this is not ini\"".into())
        );
        assert!(
            parse("Name=eth0\n", true)
                .expect_err("no section")
                .contains("line 1")
        );
        assert!(
            parse("[Match\n", true)
                .expect_err("header")
                .contains("unterminated")
        );
        assert!(
            parse("[M]\n=x\n", true)
                .expect_err("key")
                .contains("empty key")
        );
    }

    #[test]
    fn booleans() {
        assert_eq!(parse_bool("Yes"), Some(true));
        assert_eq!(parse_bool("off"), Some(false));
        assert_eq!(parse_bool("maybe"), None);
    }
}
