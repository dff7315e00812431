//! The rows of both lead exports' CSV (the admin API's `/admin/leads/export` and the console's
//! `export.csv`): RFC 4180 as the `csv` crate writes it, CRLF line ends, a cell quoted only when
//! it must be, and every text cell a person typed defused against formula injection.

use std::borrow::Cow;

/// A cell of an exported row.
#[derive(Debug, Clone)]
pub enum Cell<'a> {
    /// Of our own making (ids, times, enums, numbers): written as it is, because a negative
    /// score must stay a number.
    Own(Cow<'a, str>),
    /// Text a lead or a user typed: one a spreadsheet would run as a formula (`=`, `+`, `-`, `@`,
    /// tab or CR first) gets a leading `'`, which makes the spreadsheet read it as text.
    Text(&'a str),
}

impl<'a> Cell<'a> {
    pub fn own(value: impl Into<Cow<'a, str>>) -> Self {
        Cell::Own(value.into())
    }

    /// A text cell; nothing is an empty cell.
    pub fn text(value: Option<&'a str>) -> Self {
        Cell::Text(value.unwrap_or(""))
    }

    fn written(&self) -> Cow<'_, str> {
        match self {
            Cell::Own(v) => Cow::Borrowed(v),
            Cell::Text(v) if v.starts_with(['=', '+', '-', '@', '\t', '\r']) => Cow::Owned(format!("'{v}")),
            Cell::Text(v) => Cow::Borrowed(v),
        }
    }
}

/// One row, ending in CRLF. Rows of one file may differ in length: a file cut short ends with a
/// row of one cell that says so.
///
/// The writer writes into memory, so it fails only if the `csv` crate itself does; a caller
/// still hears of it rather than getting a half row.
pub fn record<'a>(cells: impl IntoIterator<Item = Cell<'a>>) -> csv::Result<String> {
    let mut bytes = Vec::new();
    {
        let mut writer = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .quote_style(csv::QuoteStyle::Necessary)
            .flexible(true)
            // One row at a time: the default 8 KiB buffer would be allocated for each.
            .buffer_capacity(1024)
            .from_writer(&mut bytes);
        for cell in cells {
            writer.write_field(cell.written().as_bytes())?;
        }
        writer.write_record(None::<&[u8]>)?;
        writer.flush()?;
    }
    String::from_utf8(bytes).map_err(|e| csv::Error::from(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(value: &str) -> String {
        let line = record([Cell::Text(value)]).unwrap_or_default();
        line.strip_suffix("\r\n").unwrap_or(&line).to_string()
    }

    #[test]
    fn formulas_are_neutralized_and_cells_quoted() {
        assert_eq!(text("=cmd()"), "'=cmd()");
        assert_eq!(text("+1"), "'+1");
        assert_eq!(text("-1"), "'-1");
        assert_eq!(text("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(text("\tx"), "'\tx");
        assert_eq!(text("\rx"), "\"'\rx\"");
        assert_eq!(text("Acme, Inc."), "\"Acme, Inc.\"");
        assert_eq!(text("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(text("=1,2"), "\"'=1,2\"");
        assert_eq!(text("plain"), "plain");
    }

    #[test]
    fn own_cells_stay_as_they_are_and_empty_cells_stay_empty() {
        let line = record([Cell::own("-3"), Cell::text(None), Cell::own(String::from("a,b")), Cell::text(Some(""))]);
        assert_eq!(line.ok().as_deref(), Some("-3,,\"a,b\",\r\n"));
    }
}
