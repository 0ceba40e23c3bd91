//! A small, bounded XML tree: what the SOAP decoder reads a request into.
//!
//! Names are local names (prefixes dropped): vim25 has one namespace for its
//! body elements, and the envelope's is checked by name only, as vSphere's
//! own clients never mix them up. `xsi:type` is kept as written (with its
//! prefix) in [`Element::xsi_type`]. A DOCTYPE is refused, so no entity of
//! the sender's is ever expanded; depth and element count are bounded.

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

/// The deepest nesting a request may have (a PropertyFilterSpec is ~6 deep).
pub const MAX_DEPTH: usize = 32;
/// The most elements one request may hold.
pub const MAX_ELEMENTS: usize = 20_000;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    /// Attributes by local name, except `xsi:type`, which is in `xsi_type`.
    pub attrs: Vec<(String, String)>,
    pub xsi_type: Option<String>,
    pub children: Vec<Element>,
    /// The element's text, concatenated (whitespace kept).
    pub text: String,
}

impl Element {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The local part of `xsi:type` (`xsd:string` → `string`).
    pub fn xsi_type_local(&self) -> Option<&str> {
        self.xsi_type
            .as_deref()
            .map(|t| t.rsplit_once(':').map_or(t, |(_, local)| local))
    }
}

/// Why a document is not a request we can read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmlError(pub String);

impl std::fmt::Display for XmlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn local(name: &[u8]) -> String {
    let name = match name.iter().position(|b| *b == b':') {
        Some(i) => &name[i + 1..],
        None => name,
    };
    String::from_utf8_lossy(name).into_owned()
}

fn element(start: &BytesStart<'_>) -> Result<Element, XmlError> {
    let mut e = Element {
        name: local(start.name().as_ref()),
        ..Element::default()
    };
    for attr in start.attributes() {
        let attr = attr.map_err(|err| XmlError(format!("bad attribute: {err}")))?;
        let key = attr.key.as_ref();
        if key.starts_with(b"xmlns") {
            continue;
        }
        let value = attr
            .unescape_value()
            .map_err(|err| XmlError(format!("bad attribute value: {err}")))?
            .into_owned();
        let name = local(key);
        if name == "type" && key.contains(&b':') {
            e.xsi_type = Some(value);
        } else {
            e.attrs.push((name, value));
        }
    }
    Ok(e)
}

/// Parses a whole document into its root element.
pub fn parse(bytes: &[u8]) -> Result<Element, XmlError> {
    let mut reader = Reader::from_reader(bytes);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut count = 0usize;
    let mut buf = Vec::new();
    loop {
        let event = reader.read_event_into(&mut buf).map_err(|e| {
            XmlError(format!(
                "malformed XML at byte {}: {e}",
                reader.buffer_position()
            ))
        })?;
        match event {
            Event::Start(start) | Event::Empty(start) if root.is_some() => {
                let _ = start;
                return Err(XmlError("content after the root element".into()));
            }
            Event::Start(start) => {
                count += 1;
                if stack.len() >= MAX_DEPTH || count > MAX_ELEMENTS {
                    return Err(XmlError(format!(
                        "the request is nested deeper than {MAX_DEPTH} or has more than {MAX_ELEMENTS} elements"
                    )));
                }
                stack.push(element(&start)?);
            }
            Event::Empty(start) => {
                count += 1;
                if count > MAX_ELEMENTS {
                    return Err(XmlError(format!(
                        "the request has more than {MAX_ELEMENTS} elements"
                    )));
                }
                let e = element(&start)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(e),
                    None => root = Some(e),
                }
            }
            Event::End(_) => {
                let Some(done) = stack.pop() else {
                    return Err(XmlError("an end tag without a start".into()));
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None => root = Some(done),
                }
            }
            Event::Text(text) => {
                let text = text
                    .unescape()
                    .map_err(|e| XmlError(format!("bad text: {e}")))?;
                match stack.last_mut() {
                    Some(e) => e.text.push_str(&text),
                    None if text.trim().is_empty() => {}
                    None => return Err(XmlError("text outside the root element".into())),
                }
            }
            Event::CData(data) => {
                let data = String::from_utf8(data.into_inner().into_owned())
                    .map_err(|_| XmlError("CDATA is not UTF-8".into()))?;
                match stack.last_mut() {
                    Some(e) => e.text.push_str(&data),
                    None => return Err(XmlError("CDATA outside the root element".into())),
                }
            }
            Event::DocType(_) => return Err(XmlError("a DOCTYPE is not allowed".into())),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
        buf.clear();
    }
    if !stack.is_empty() {
        return Err(XmlError("the document ends inside an element".into()));
    }
    root.ok_or_else(|| XmlError("no root element".into()))
}

/// Escapes text for element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 cannot carry these at all; vSphere would not send them.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {
                out.push_str(&format!("&#x{:X};", 0xFFFD))
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_names_attributes_and_text() {
        let root = parse(
            br#"<?xml version="1.0"?><a:Root xmlns:a="x" xmlns:xsi="y"><b t="1">hi &amp; bye</b><c xsi:type="xsd:string"/></a:Root>"#,
        )
        .unwrap();
        assert_eq!(root.name, "Root");
        assert_eq!(root.child("b").unwrap().attr("t"), Some("1"));
        assert_eq!(root.child("b").unwrap().text, "hi & bye");
        assert_eq!(root.child("c").unwrap().xsi_type_local(), Some("string"));
    }

    #[test]
    fn refuses_what_is_not_one_bounded_document() {
        let deep = format!(
            "{}{}",
            "<a>".repeat(MAX_DEPTH + 1),
            "</a>".repeat(MAX_DEPTH + 1)
        );
        for bad in [
            "",
            "<a>",
            "<a></b>",
            "<a/><b/>",
            "text",
            "<!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>",
            "<a>&unknown;</a>",
            "<a b='1' b='2'/>",
            deep.as_str(),
        ] {
            assert!(parse(bad.as_bytes()).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("a<b>&\"'\u{1}"),
            "a&lt;b&gt;&amp;&quot;&apos;&#xFFFD;"
        );
    }
}
