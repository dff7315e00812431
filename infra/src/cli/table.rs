//! Text laid out for a terminal: aligned columns, cells cut to a readable width, and text from
//! leads made safe to print.
//!
//! Widths are display widths (UAX #11), not bytes or chars: "Zoë" takes three columns, "東京"
//! four, a combining accent none.

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// Where a column's cells sit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    /// Numbers, so that their digits line up.
    Right,
}

#[derive(Debug, Clone)]
struct Column {
    title: String,
    align: Align,
    /// Most display columns a cell takes; longer ones are cut with "…".
    max: Option<usize>,
}

/// A table with a header line, columns two spaces apart.
#[derive(Debug, Clone, Default)]
pub struct Table {
    columns: Vec<Column>,
    rows: Vec<Vec<String>>,
    headless: bool,
}

/// Columns apart.
const GAP: &str = "  ";

impl Table {
    pub fn new() -> Self {
        Self::default()
    }

    /// A left-aligned column of free text, cut at `max` display columns.
    pub fn text(mut self, title: &str, max: usize) -> Self {
        self.columns.push(Column { title: title.to_string(), align: Align::Left, max: Some(max) });
        self
    }

    /// A left-aligned column that is never cut (ids people copy, times).
    pub fn whole(mut self, title: &str) -> Self {
        self.columns.push(Column { title: title.to_string(), align: Align::Left, max: None });
        self
    }

    /// A right-aligned column of numbers.
    pub fn number(mut self, title: &str) -> Self {
        self.columns.push(Column { title: title.to_string(), align: Align::Right, max: None });
        self
    }

    /// No header line: rows whose meaning the text around says.
    pub fn without_header(mut self) -> Self {
        self.headless = true;
        self
    }

    /// Adds a row; missing cells are blank, extra ones dropped.
    pub fn row(&mut self, cells: Vec<String>) {
        let mut cells: Vec<String> = cells.into_iter().take(self.columns.len()).collect();
        cells.resize(self.columns.len(), String::new());
        let cut_cells = cells.iter().zip(&self.columns).map(|(c, col)| {
            let c = clean(c);
            match col.max {
                Some(max) => cut(&c, max),
                None => c,
            }
        });
        self.rows.push(cut_cells.collect());
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The header line and one line per row, each ending in a newline; no trailing blanks.
    pub fn render(&self) -> String {
        let title = |col: &Column| if self.headless { 0 } else { width(&col.title) };
        let widths: Vec<usize> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, col)| self.rows.iter().map(|r| width(&r[i])).chain([title(col)]).max().unwrap_or(0))
            .collect();
        let mut out = String::new();
        if !self.headless {
            let header: Vec<&str> = self.columns.iter().map(|c| c.title.as_str()).collect();
            self.line(&mut out, &header, &widths);
        }
        for row in &self.rows {
            let cells: Vec<&str> = row.iter().map(String::as_str).collect();
            self.line(&mut out, &cells, &widths);
        }
        out
    }

    fn line(&self, out: &mut String, cells: &[&str], widths: &[usize]) {
        let mut line = String::new();
        for (i, ((cell, col), w)) in cells.iter().zip(&self.columns).zip(widths).enumerate() {
            if i > 0 {
                line.push_str(GAP);
            }
            let pad = " ".repeat(w.saturating_sub(width(cell)));
            match col.align {
                Align::Left => {
                    line.push_str(cell);
                    line.push_str(&pad);
                }
                Align::Right => {
                    line.push_str(&pad);
                    line.push_str(cell);
                }
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

/// Label–value lines, the values lined up after the widest label.
#[derive(Debug, Clone, Default)]
pub struct Fields {
    lines: Vec<(String, String)>,
}

impl Fields {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a line; a blank value leaves it out.
    pub fn add(&mut self, label: &str, value: impl Into<String>) {
        let value = clean(&value.into());
        if !value.trim().is_empty() {
            self.lines.push((label.to_string(), value));
        }
    }

    pub fn render(&self) -> String {
        let w = self.lines.iter().map(|(l, _)| width(l)).max().unwrap_or(0);
        let mut out = String::new();
        for (label, value) in &self.lines {
            out.push_str(label);
            out.push_str(&" ".repeat(w - width(label) + 2));
            out.push_str(value);
            out.push('\n');
        }
        out
    }
}

/// The display width of `s`.
pub fn width(s: &str) -> usize {
    UnicodeWidthStr::width(s)
}

/// `s` in at most `max` display columns: cut with "…" when longer.
pub fn cut(s: &str, max: usize) -> String {
    if width(s) <= max {
        return s.to_string();
    }
    let room = max.saturating_sub(1);
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > room {
            break;
        }
        used += w;
        out.push(c);
    }
    out.push('…');
    out
}

/// `s` on one line with nothing a terminal would obey: text from web forms could otherwise move
/// the cursor, recolour or retitle the terminal (escape sequences) or break a table's line.
pub fn clean(s: &str) -> String {
    s.chars().map(|c| if c.is_control() || is_bidi_control(c) { ' ' } else { c }).collect()
}

/// Like [`clean`], keeping line breaks (an email's text body).
pub fn clean_lines(s: &str) -> String {
    s.replace("\r\n", "\n").lines().map(clean).collect::<Vec<_>>().join("\n")
}

/// Bidirectional overrides and isolates, which reorder what follows them on the line.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up_by_display_width() {
        let mut t = Table::new().whole("ID").text("NAME", 20).number("OPEN");
        t.row(vec!["zoe".into(), "Zoë Martin".into(), "3".into()]);
        t.row(vec!["ken".into(), "東京 Ken".into(), "12".into()]);
        t.row(vec!["al".into(), "Al".into(), "0".into()]);
        let text = t.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "ID   NAME        OPEN");
        assert_eq!(lines[1], "zoe  Zoë Martin     3");
        assert_eq!(lines[2], "ken  東京 Ken      12");
        assert_eq!(lines[3], "al   Al             0");
        let ends: Vec<usize> = lines.iter().map(|l| width(l)).collect();
        assert!(ends.iter().all(|w| *w == ends[0]), "{text}");
    }

    #[test]
    fn long_cells_are_cut_and_nothing_trails() {
        let mut t = Table::new().text("NAME", 8).text("NOTE", 30);
        t.row(vec!["Bartholomew Featherstonehaugh".into(), String::new()]);
        t.row(vec!["東京東京東京".into(), "x".into()]);
        let text = t.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], "Barthol…");
        assert_eq!(width(lines[1]), 8);
        // Three wide characters and the ellipsis fit in eight columns; a fourth would not.
        assert_eq!(lines[2], "東京東…   x");
        assert_eq!(cut("abc", 3), "abc");
        assert_eq!(cut("abcd", 3), "ab…");
    }

    #[test]
    fn text_from_forms_cannot_drive_the_terminal() {
        assert_eq!(clean("Ada\x1b[31m\nRed\u{202E}gnp.exe"), "Ada [31m Red gnp.exe");
        assert_eq!(clean_lines("one\r\ntwo\x07\nthree"), "one\ntwo \nthree");
        let mut t = Table::new().text("NAME", 40);
        t.row(vec!["a\tb\nc".into()]);
        assert_eq!(t.render().lines().nth(1), Some("a b c"));
    }

    #[test]
    fn fields_line_up_and_leave_blanks_out() {
        let mut f = Fields::new();
        f.add("Email", "ada@example.com");
        f.add("Phone", "");
        f.add("Lifecycle", "mql");
        assert_eq!(f.render(), "Email      ada@example.com\nLifecycle  mql\n");
    }
}
