//! Delimited text: CSV as RFC 4180 writes it, and TSV. Exports of users, orders and accounts
//! are served this way; each cell is read under its column's name, as a form field is under
//! its own, so a column named `password`, `ssn` or `session_id` vouches for its cells as a
//! JSON key would. The first row names the columns, and its cells are read as well (an export
//! without a header row starts with data).
//!
//! Tolerant like the other readers: a quote left open runs to the text's end, a row longer
//! than the header reads its extra cells without a name, and a capture cut mid-row gives the
//! cells before the cut.

use std::ops::Range;

use super::fields::{contains_ignore_case, Field, Part};

/// Columns named; cells past this many in a row are read without a name. Exports have tens of
/// columns: the bound keeps a hostile header row from costing memory for every byte it holds.
const MAX_NAMED_COLUMNS: usize = 256;

/// The separator of a delimited content type (`text/csv`, `application/csv`,
/// `text/tab-separated-values`), or `None` for other types. A CSV whose first line holds
/// semicolons and no commas uses semicolons, as spreadsheets in locales with a decimal comma
/// write it.
pub fn separator(content_type: &str, text: &str) -> Option<u8> {
    if contains_ignore_case(content_type, "tab-separated-values") {
        return Some(b'\t');
    }
    if !contains_ignore_case(content_type, "csv") {
        return None;
    }
    let first_line = text.as_bytes().split(|&b| b == b'\n').next().unwrap_or(b"");
    let semicolons = !first_line.contains(&b',') && first_line.contains(&b';');
    Some(if semicolons { b';' } else { b',' })
}

/// Every cell of `text`, split at `separator`, under its column's name.
pub fn fields(text: &str, separator: u8, visit: &mut impl FnMut(&Field<'_>)) {
    let bytes = text.as_bytes();
    let mut names: Vec<Range<usize>> = Vec::new();
    let mut in_header = true;
    let mut column = 0;
    let mut at = 0;
    while at < bytes.len() {
        let cell = cell_at(bytes, at, separator);
        at = cell.next;
        let value = trimmed(bytes, cell.value);
        if column == 0 && cell.ends_row && value.is_empty() {
            // A blank line: no row, and no header either.
            continue;
        }
        let name = if in_header {
            if names.len() < MAX_NAMED_COLUMNS {
                names.push(value.clone());
            }
            None
        } else {
            names.get(column).map(|range| &text[range.clone()])
        };
        if let Some(cell_text) = text.get(value.clone()).filter(|t| !t.is_empty()) {
            visit(&Field {
                part: Part::Column,
                name,
                json: None,
                key: name,
                parent_key: None,
                text: cell_text,
                raw: value,
                decoded: false,
                escaped: None,
                bare: false,
            });
        }
        column += 1;
        if cell.ends_row {
            in_header = false;
            column = 0;
        }
    }
}

/// One cell: where its value lies, where the next cell starts, and whether a row ends with it.
struct Cell {
    value: Range<usize>,
    next: usize,
    ends_row: bool,
}

fn cell_at(bytes: &[u8], start: usize, separator: u8) -> Cell {
    let mut end_of_value = None;
    let mut scan_from = start;
    if bytes.get(start) == Some(&b'"') {
        // Quoted: to the quote that is not doubled. The value keeps its doubled quotes: its
        // offsets stay the source's, and a quote changes no detector's reading.
        let mut i = start + 1;
        loop {
            match memchr::memchr(b'"', &bytes[i..]) {
                Some(offset) if bytes.get(i + offset + 1) == Some(&b'"') => i += offset + 2,
                Some(offset) => {
                    end_of_value = Some(i + offset);
                    scan_from = i + offset + 1;
                    break;
                }
                None => {
                    return Cell {
                        value: start + 1..bytes.len(),
                        next: bytes.len(),
                        ends_row: true,
                    };
                }
            }
        }
    }
    let (end, ends_row, next) = match memchr::memchr2(separator, b'\n', &bytes[scan_from..]) {
        Some(offset) => {
            let end = scan_from + offset;
            (end, bytes[end] == b'\n', end + 1)
        }
        None => (bytes.len(), true, bytes.len()),
    };
    let value = match end_of_value {
        Some(quote) => start + 1..quote,
        None => start..end,
    };
    Cell {
        value,
        next,
        ends_row,
    }
}

/// `range` without the spaces, tabs and carriage return around its text.
fn trimmed(bytes: &[u8], range: Range<usize>) -> Range<usize> {
    let is_space = |b: &u8| matches!(b, b' ' | b'\t' | b'\r');
    let text = &bytes[range.clone()];
    let lead = text.iter().take_while(|b| is_space(b)).count();
    let trail = text[lead..]
        .iter()
        .rev()
        .take_while(|b| is_space(b))
        .count();
    range.start + lead..range.end - trail
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells(text: &str, separator: u8) -> Vec<(Option<String>, String)> {
        let mut out = Vec::new();
        fields(text, separator, &mut |field| {
            assert_eq!(&text[field.raw.clone()], field.text);
            out.push((field.name.map(str::to_string), field.text.to_string()));
        });
        out
    }

    fn named(name: &str, value: &str) -> (Option<String>, String) {
        (Some(name.to_string()), value.to_string())
    }

    fn unnamed(value: &str) -> (Option<String>, String) {
        (None, value.to_string())
    }

    #[test]
    fn cells_are_read_under_their_columns_names() {
        let text =
            "id,email,password\r\n1,ann@example.com,Hunter2x\r\n\r\n2, bob@example.com ,\r\n";
        assert_eq!(
            cells(text, b','),
            [
                unnamed("id"),
                unnamed("email"),
                unnamed("password"),
                named("id", "1"),
                named("email", "ann@example.com"),
                named("password", "Hunter2x"),
                named("id", "2"),
                named("email", "bob@example.com"),
            ]
        );
    }

    #[test]
    fn quoted_cells_hold_separators_quotes_and_lines() {
        let text = "name,note\n\"Lee, Ann\",\"said \"\"hi\"\"\nthen left\"\n\"open,to the end";
        assert_eq!(
            cells(text, b','),
            [
                unnamed("name"),
                unnamed("note"),
                named("name", "Lee, Ann"),
                named("note", "said \"\"hi\"\"\nthen left"),
                named("name", "open,to the end"),
            ]
        );
    }

    #[test]
    fn a_row_longer_than_its_header_reads_the_rest_unnamed() {
        assert_eq!(
            cells("a\tb\n1\t2\t3", b'\t'),
            [
                unnamed("a"),
                unnamed("b"),
                named("a", "1"),
                named("b", "2"),
                unnamed("3"),
            ]
        );
    }

    #[test]
    fn the_separator_comes_from_the_type_and_the_first_line() {
        assert_eq!(separator("text/csv; charset=utf-8", "a,b\n"), Some(b','));
        assert_eq!(separator("application/csv", "a;b\n1,5;2"), Some(b';'));
        assert_eq!(separator("text/tab-separated-values", "a\tb"), Some(b'\t'));
        assert_eq!(separator("text/plain", "a,b"), None);
    }

    #[test]
    fn degenerate_texts_are_read_through() {
        // (named cells, unnamed cells) of `text`.
        let counts = |text: &str| {
            let (mut named, mut unnamed) = (0, 0);
            fields(text, b',', &mut |field| match field.name {
                Some(_) => named += 1,
                None => unnamed += 1,
            });
            (named, unnamed)
        };
        // Quotes doubled over and over: one quoted cell, closed by the last quote.
        assert_eq!(counts(&"\"\"".repeat(50_000)), (0, 1));
        // Separators alone: empty cells, none read.
        assert_eq!(counts(&",".repeat(100_000)), (0, 0));
        // A header of many columns names only the first ones.
        let wide = format!("{}\n{}", "a,".repeat(50_000), "1,".repeat(50_000));
        assert_eq!(
            counts(&wide),
            (MAX_NAMED_COLUMNS, 50_000 + 50_000 - MAX_NAMED_COLUMNS)
        );
    }
}
