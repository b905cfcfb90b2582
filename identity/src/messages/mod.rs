//! The words of the account pages and the mail, by message id, per language: one catalogue per
//! language ([`en`] is shipped and complete; another language is a file with the same ids,
//! listed in [`CATALOGUES`]). A request's language is the first of its `Accept-Language`
//! ranges (by weight) that has a catalogue, else English; a message a catalogue lacks is
//! English's.
//!
//! Messages are plain text with `{name}` placeholders filled by [`Lang::fill`]; the pages
//! escape them like any other text.

pub mod en;

/// One language's messages.
#[derive(Debug)]
pub struct Catalogue {
    /// The BCP 47 tag (`en`, `de`, `pt-BR`).
    pub tag: &'static str,
    /// (message id, text).
    pub messages: &'static [(&'static str, &'static str)],
}

/// Every catalogue the service has; the first is the fallback and must hold every id.
pub static CATALOGUES: &[&Catalogue] = &[&en::EN];

/// The language of a page or a message.
#[derive(Debug, Clone, Copy)]
pub struct Lang(&'static Catalogue);

impl Default for Lang {
    fn default() -> Self {
        Lang(CATALOGUES[0])
    }
}

impl Lang {
    /// The best language for an `Accept-Language` header value (RFC 9110 §12.5.4: ranges by
    /// weight, `q=0` never; a range matches a tag or the tag's primary language).
    pub fn negotiate(accept_language: Option<&str>) -> Self {
        let Some(header) = accept_language else {
            return Self::default();
        };
        let mut ranges: Vec<(&str, u16)> = header
            .split(',')
            .filter_map(|part| {
                let mut pieces = part.split(';');
                let range = pieces.next()?.trim();
                let q = pieces
                    .filter_map(|p| p.trim().strip_prefix("q="))
                    .next()
                    .map_or(Some(1000), parse_q)?;
                (!range.is_empty() && q > 0).then_some((range, q))
            })
            .take(32)
            .collect();
        // Stable: equal weights keep the header's order.
        ranges.sort_by_key(|r| std::cmp::Reverse(r.1));
        for (range, _) in ranges {
            let found = CATALOGUES.iter().find(|c| {
                c.tag.eq_ignore_ascii_case(range)
                    || c.tag
                        .split('-')
                        .next()
                        .is_some_and(|primary| primary.eq_ignore_ascii_case(range))
                    || range
                        .split('-')
                        .next()
                        .is_some_and(|primary| primary.eq_ignore_ascii_case(c.tag))
            });
            if let Some(c) = found {
                return Lang(c);
            }
        }
        Self::default()
    }

    /// The language of a request (its `Accept-Language`).
    pub fn of(headers: &axum::http::HeaderMap) -> Self {
        Self::negotiate(
            headers
                .get(axum::http::header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok()),
        )
    }

    /// The BCP 47 tag (for `<html lang>`).
    pub fn tag(self) -> &'static str {
        self.0.tag
    }

    /// The message `id` in this language (English's when this one lacks it; empty when no
    /// catalogue has it).
    pub fn get(self, id: &str) -> &'static str {
        lookup(self.0, id)
            .or_else(|| lookup(CATALOGUES[0], id))
            .unwrap_or("")
    }

    /// The message `id` with its `{name}` placeholders replaced by `values`.
    pub fn fill(self, id: &str, values: &[(&str, &str)]) -> String {
        let mut text = self.get(id).to_owned();
        for (name, value) in values {
            text = text.replace(&format!("{{{name}}}"), value);
        }
        text
    }
}

fn lookup(c: &Catalogue, id: &str) -> Option<&'static str> {
    c.messages.iter().find(|(k, _)| *k == id).map(|(_, v)| *v)
}

/// A weight `0`, `0.5`, `1.000` in thousandths; `None` when malformed.
fn parse_q(q: &str) -> Option<u16> {
    let (whole, frac) = q.split_once('.').unwrap_or((q, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths: u16 = format!("{frac:0<3}").parse().ok()?;
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fallback_catalogue_has_every_id_once_and_others_only_its_ids() {
        let english = CATALOGUES[0];
        let mut seen = std::collections::BTreeSet::new();
        for (id, text) in english.messages {
            assert!(seen.insert(*id), "{id} twice");
            assert!(!text.is_empty(), "{id} empty");
        }
        for c in CATALOGUES {
            for (id, _) in c.messages {
                assert!(seen.contains(id), "{}: {id} is not in English", c.tag);
            }
        }
    }

    #[test]
    fn accept_language_picks_a_shipped_language_or_english() {
        for header in [
            None,
            Some(""),
            Some("fr-CH, fr;q=0.9"),
            Some("en-GB,en;q=0.8"),
            Some("*"),
            Some("x;q=2, en;q=abc"),
        ] {
            assert_eq!(Lang::negotiate(header).tag(), "en", "{header:?}");
        }
        assert_eq!(parse_q("0.5"), Some(500));
        assert_eq!(parse_q("1"), Some(1000));
        assert_eq!(parse_q("0"), Some(0));
        assert_eq!(parse_q("1.5"), None);
        let lang = Lang::default();
        assert_eq!(
            lang.fill("account.confirmed", &[("date", "2026-12-06")]),
            "confirmed 2026-12-06"
        );
        assert_eq!(lang.get("no.such.id"), "");
    }
}
