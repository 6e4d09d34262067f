//! Combining the cloud-config Quantix renders with a VM's `user_data` override. Owns: the
//! merge rules, recognising user-data formats by their first line, and MIME multipart.
//! May use: `serde_json`, `base64`, `sha2` only (pure).
//!
//! The merge, wherever it happens: mappings merge key by key, lists are appended (the spec's
//! entries first, so its `runcmd` runs before the override's), any other value is the
//! override's. So an override can add packages, commands or files and change a scalar.
//!
//! | override | result |
//! | --- | --- |
//! | empty | the rendered `#cloud-config` alone |
//! | `#cloud-config` whose body is a JSON object | merged here: one `#cloud-config` document |
//! | `#cloud-config` in YAML | multipart; the guest merges (below) |
//! | another format the guest knows (`#!`, `#include`, `#cloud-boothook`, `#ps1`, …) or a MIME document | multipart: rendered part, then the override |
//! | anything else | refused, rather than silently ignored by the guest |
//!
//! Parsing YAML here would need a YAML crate; instead a YAML override goes to the guest as its
//! own part. cloud-init merges cloud-config parts in order with each later part's
//! `Merge-Type` header, and it has no "recurse, and the later scalar wins" mode; so the
//! override goes first and the rendered part second with
//! `dict(no_replace,recurse_list)+list(prepend)+str()`: its scalars do not replace the
//! override's, its lists go before the override's — the rule above. cloudbase-init does not
//! merge parts: it runs each part's modules in order, so there the rendered part goes first
//! and the override's commands and time zone come after (a `merge_how` key in an override is
//! not honoured by the JSON merge).
//!
//! Parts are base64 encoded: Python's `email` package (both guests use it) mangles non-ASCII
//! text in 8-bit parts.

use base64::Engine;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::{cloud_config, SeedError};

/// Which first-boot program reads the user-data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reader {
    CloudInit,
    CloudbaseInit,
}

/// The header of the rendered part when it is merged into a YAML override by cloud-init.
pub(crate) const MERGE_TYPE: &str = "dict(no_replace,recurse_list)+list(prepend)+str()";

/// One MIME part: its content type, file name and body (`Raw` is a whole MIME entity).
#[derive(Debug)]
enum Part<'a> {
    Text {
        content_type: &'static str,
        filename: &'static str,
        merge_type: Option<&'static str>,
        body: &'a str,
    },
    Raw(&'a str),
}

#[derive(Debug, PartialEq, Eq)]
enum Kind {
    CloudConfig,
    Typed(&'static str),
    Mime,
}

/// The final user-data: `base` (rendered; may be empty for cloudbase-init) with `extra`.
pub(crate) fn combine(
    base: Map<String, Value>,
    extra: Option<&str>,
    reader: Reader,
    vm: &str,
) -> Result<String, SeedError> {
    let bad = |problem: String| SeedError::UserData {
        vm: vm.to_string(),
        problem,
    };
    let extra = match extra {
        Some(e) if !e.trim().is_empty() => e,
        _ => return render_base(&base, reader),
    };
    let kind = classify(extra, reader).ok_or_else(|| {
        bad(format!(
            "must start with one of {} (or be a MIME multipart document); its first line is not one of these",
            known_headers(reader)
        ))
    })?;
    let rendered = if base.is_empty() && reader == Reader::CloudbaseInit {
        None
    } else {
        Some(cloud_config(&base)?)
    };
    match kind {
        Kind::CloudConfig => {
            let body = strip_first_line(extra);
            if body.trim().is_empty() {
                return render_base(&base, reader);
            }
            // JSON is YAML with the same meaning, so a body that parses as JSON is what the
            // guest would read; anything else is YAML for the guest to parse.
            match serde_json::from_str::<Value>(body) {
                Ok(Value::Object(over)) => {
                    let mut merged = base;
                    merge_maps(&mut merged, over);
                    return render_base(&merged, reader);
                }
                Ok(_) => return Err(bad("is #cloud-config but not a mapping".into())),
                Err(_) => {}
            }
            let over = Part::Text {
                content_type: "text/cloud-config",
                filename: "override.cfg",
                merge_type: None,
                body: extra,
            };
            let Some(rendered) = rendered.as_deref() else {
                return Ok(extra.to_string());
            };
            Ok(match reader {
                Reader::CloudInit => multipart(&[over, rendered_part(rendered, Some(MERGE_TYPE))]),
                Reader::CloudbaseInit => multipart(&[rendered_part(rendered, None), over]),
            })
        }
        Kind::Typed(content_type) => {
            let over = Part::Text {
                content_type,
                // No extension: cloudbase-init then picks the interpreter from the header.
                filename: "override",
                merge_type: None,
                body: extra,
            };
            Ok(match rendered.as_deref() {
                Some(r) => multipart(&[rendered_part(r, None), over]),
                None => multipart(&[over]),
            })
        }
        Kind::Mime => Ok(match rendered.as_deref() {
            Some(r) => multipart(&[rendered_part(r, None), Part::Raw(extra)]),
            None => extra.to_string(),
        }),
    }
}

fn render_base(base: &Map<String, Value>, reader: Reader) -> Result<String, SeedError> {
    if base.is_empty() && reader == Reader::CloudbaseInit {
        // cloudbase-init logs an error for an empty cloud-config; no user-data is fine.
        return Ok(String::new());
    }
    cloud_config(base)
}

fn rendered_part<'a>(body: &'a str, merge_type: Option<&'static str>) -> Part<'a> {
    Part::Text {
        content_type: "text/cloud-config",
        filename: "quantix.cfg",
        merge_type,
        body,
    }
}

/// Mappings merge key by key, lists append, anything else is replaced by `over`.
pub(crate) fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(a), Value::Object(b)) => merge_maps(a, b),
        (Value::Array(a), Value::Array(b)) => a.extend(b),
        (slot, v) => *slot = v,
    }
}

fn merge_maps(base: &mut Map<String, Value>, over: Map<String, Value>) {
    for (k, v) in over {
        match base.get_mut(&k) {
            Some(slot) => merge(slot, v),
            None => {
                base.insert(k, v);
            }
        }
    }
}

/// cloud-init's formats (`INCLUSION_TYPES_MAP`), longest prefixes first.
const CLOUD_INIT: &[(&str, &str)] = &[
    ("#cloud-config-archive", "text/cloud-config-archive"),
    ("#cloud-config-jsonp", "text/cloud-config-jsonp"),
    ("#cloud-boothook", "text/cloud-boothook"),
    ("#include-once", "text/x-include-once-url"),
    ("#include", "text/x-include-url"),
    ("#part-handler", "text/part-handler"),
    ("## template: jinja", "text/jinja2"),
    ("#!", "text/x-shellscript"),
];

/// cloudbase-init's: scripts of every kind are `text/x-shellscript`, told apart by header.
const CLOUDBASE_INIT: &[(&str, &str)] = &[
    ("#cloud-boothook", "text/cloud-boothook"),
    ("#part-handler", "text/part-handler"),
    ("#ps1", "text/x-shellscript"),
    ("rem cmd", "text/x-shellscript"),
    ("#!", "text/x-shellscript"),
];

fn table(reader: Reader) -> &'static [(&'static str, &'static str)] {
    match reader {
        Reader::CloudInit => CLOUD_INIT,
        Reader::CloudbaseInit => CLOUDBASE_INIT,
    }
}

fn known_headers(reader: Reader) -> String {
    let mut all = vec!["#cloud-config"];
    all.extend(table(reader).iter().map(|(h, _)| *h));
    all.join(", ")
}

fn classify(text: &str, reader: Reader) -> Option<Kind> {
    let first = text
        .trim_start_matches('\u{feff}')
        .lines()
        .next()?
        .trim_end();
    let lower = first.to_ascii_lowercase();
    if lower.starts_with("content-type:") || lower.starts_with("mime-version:") {
        return Some(Kind::Mime);
    }
    for (prefix, content_type) in table(reader) {
        if first.starts_with(prefix) {
            return Some(Kind::Typed(content_type));
        }
    }
    // After the table: `#cloud-config-archive` also starts with `#cloud-config`.
    first
        .starts_with("#cloud-config")
        .then_some(Kind::CloudConfig)
}

fn strip_first_line(text: &str) -> &str {
    text.split_once('\n').map_or("", |(_, rest)| rest)
}

fn multipart(parts: &[Part<'_>]) -> String {
    let boundary = boundary(parts);
    let mut out =
        format!("Content-Type: multipart/mixed; boundary=\"{boundary}\"\nMIME-Version: 1.0\n\n");
    for part in parts {
        out.push_str(&format!("--{boundary}\n"));
        match part {
            Part::Text {
                content_type,
                filename,
                merge_type,
                body,
            } => {
                out.push_str(&format!(
                    "Content-Type: {content_type}; charset=\"utf-8\"\nMIME-Version: 1.0\n\
                     Content-Transfer-Encoding: base64\n\
                     Content-Disposition: attachment; filename=\"{filename}\"\n"
                ));
                if let Some(m) = merge_type {
                    out.push_str(&format!("Merge-Type: {m}\n"));
                }
                out.push('\n');
                let encoded = base64::engine::general_purpose::STANDARD.encode(body.as_bytes());
                for line in encoded.as_bytes().chunks(76) {
                    out.push_str(&String::from_utf8_lossy(line));
                    out.push('\n');
                }
            }
            Part::Raw(entity) => {
                out.push_str(entity);
                if !entity.ends_with('\n') {
                    out.push('\n');
                }
            }
        }
    }
    out.push_str(&format!("--{boundary}--\n"));
    out
}

/// A boundary that appears in no part (derived from the contents, so output is repeatable).
fn boundary(parts: &[Part<'_>]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        match p {
            Part::Text { body, .. } | Part::Raw(body) => h.update(body.as_bytes()),
        }
    }
    let digest = hex::encode(h.finalize());
    let bodies: Vec<&str> = parts
        .iter()
        .map(|p| match p {
            Part::Text { body, .. } | Part::Raw(body) => *body,
        })
        .collect();
    pick_boundary(&digest[..16], &bodies)
}

fn pick_boundary(tag: &str, bodies: &[&str]) -> String {
    let mut n = 0u32;
    loop {
        let b = format!("==quantix-{tag}-{n}==");
        if !bodies.iter().any(|body| body.contains(&b)) {
            return b;
        }
        n += 1;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    /// The parts of a document `multipart` wrote: (headers, decoded body).
    pub(crate) fn parts(doc: &str) -> Vec<(String, String)> {
        let boundary = doc
            .lines()
            .next()
            .and_then(|l| l.split("boundary=\"").nth(1))
            .and_then(|b| b.split('"').next())
            .expect("multipart header with a boundary");
        let sep = format!("--{boundary}");
        let mut out = Vec::new();
        for chunk in doc.split(&sep).skip(1) {
            if chunk.starts_with("--") {
                break;
            }
            let chunk = chunk.trim_start_matches('\n');
            let (headers, body) = chunk.split_once("\n\n").expect("part headers");
            let body = if headers.contains("Content-Transfer-Encoding: base64") {
                let b64: String = body.split_whitespace().collect();
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .expect("base64 body");
                String::from_utf8(bytes).expect("utf-8 body")
            } else {
                body.to_string()
            };
            out.push((headers.to_string(), body));
        }
        out
    }

    #[test]
    fn merge_rules() {
        let mut base = json!({"a": 1, "list": [1], "map": {"x": 1, "keep": true}, "s": "old"});
        merge(
            &mut base,
            json!({"a": 2, "list": [2, 3], "map": {"x": 9, "new": 1}, "s": "new", "add": []}),
        );
        assert_eq!(
            base,
            json!({"a": 2, "list": [1, 2, 3], "map": {"x": 9, "keep": true, "new": 1}, "s": "new", "add": []})
        );
    }

    #[test]
    fn classify_table() {
        use Reader::*;
        let cases: Vec<(&str, Reader, Option<Kind>)> = vec![
            ("#cloud-config\na: 1", CloudInit, Some(Kind::CloudConfig)),
            (
                "\u{feff}#cloud-config\r\na: 1",
                CloudInit,
                Some(Kind::CloudConfig),
            ),
            (
                "#cloud-config-archive\n- x",
                CloudInit,
                Some(Kind::Typed("text/cloud-config-archive")),
            ),
            (
                "#!/bin/sh\necho",
                CloudInit,
                Some(Kind::Typed("text/x-shellscript")),
            ),
            (
                "#include\nhttp://x",
                CloudInit,
                Some(Kind::Typed("text/x-include-url")),
            ),
            (
                "#include-once\nhttp://x",
                CloudInit,
                Some(Kind::Typed("text/x-include-once-url")),
            ),
            (
                "Content-Type: multipart/mixed; boundary=x",
                CloudInit,
                Some(Kind::Mime),
            ),
            ("MIME-Version: 1.0", CloudbaseInit, Some(Kind::Mime)),
            (
                "#ps1_sysnative\nWrite-Host",
                CloudbaseInit,
                Some(Kind::Typed("text/x-shellscript")),
            ),
            (
                "rem cmd\necho",
                CloudbaseInit,
                Some(Kind::Typed("text/x-shellscript")),
            ),
            ("#ps1\nWrite-Host", CloudInit, None),
            ("#include\nhttp://x", CloudbaseInit, None),
            ("packages: [git]", CloudInit, None),
        ];
        for (text, reader, want) in cases {
            assert_eq!(classify(text, reader), want, "{text:?} for {reader:?}");
        }
    }

    #[test]
    fn boundary_avoids_contents() {
        assert_eq!(pick_boundary("t", &["plain"]), "==quantix-t-0==");
        let clash = ["x ==quantix-t-0== y", "--==quantix-t-1==--"];
        assert_eq!(pick_boundary("t", &clash), "==quantix-t-2==");
    }
}
