//! How verbs print: tables aligned on a terminal and tab-separated otherwise, JSON with
//! `--json`, and progress as a bar on a terminal or as plain lines on stderr.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// Whether stdout is a person (aligned columns with a header) or a program (tab-separated
/// rows, no header, one record a line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Aligned,
    Plain,
}

impl Style {
    pub fn for_stdout() -> Style {
        if std::io::stdout().is_terminal() {
            Style::Aligned
        } else {
            Style::Plain
        }
    }
}

/// Rows of text under named columns.
#[derive(Debug, Clone)]
pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&'static str]) -> Table {
        Table {
            headers: headers.to_vec(),
            rows: Vec::new(),
        }
    }

    pub fn row<I, S>(&mut self, cells: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut cells: Vec<String> = cells.into_iter().map(|c| clean(&c.into())).collect();
        cells.resize(self.headers.len(), String::new());
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn render(&self, style: Style) -> String {
        let mut out = String::new();
        match style {
            Style::Plain => {
                for r in &self.rows {
                    out.push_str(&r.join("\t"));
                    out.push('\n');
                }
            }
            Style::Aligned => {
                let mut widths: Vec<usize> =
                    self.headers.iter().map(|h| h.chars().count()).collect();
                for r in &self.rows {
                    for (w, c) in widths.iter_mut().zip(r) {
                        *w = (*w).max(c.chars().count());
                    }
                }
                let header: Vec<String> = self.headers.iter().map(|h| h.to_uppercase()).collect();
                for r in std::iter::once(&header).chain(&self.rows) {
                    let last = r.len().saturating_sub(1);
                    let mut line = String::new();
                    for (i, (c, w)) in r.iter().zip(&widths).enumerate() {
                        line.push_str(c);
                        if i < last {
                            line.extend(std::iter::repeat_n(' ', w - c.chars().count() + 2));
                        }
                    }
                    out.push_str(line.trim_end());
                    out.push('\n');
                }
            }
        }
        out
    }

    /// Prints to stdout in the style stdout calls for; `empty` is said (on a terminal only)
    /// when there is no row.
    pub fn print(&self, empty: &str) {
        let style = Style::for_stdout();
        if self.is_empty() {
            if style == Style::Aligned {
                println!("{empty}");
            }
            return;
        }
        print!("{}", self.render(style));
    }
}

/// A cell on one line, without control characters: a name chosen by an end user must not
/// move the cursor, recolour the terminal or split a row.
pub fn clean(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c == '\t' || c == '\n' || c == '\r' {
                ' '
            } else {
                c
            }
        })
        .filter(|c| !c.is_control())
        .collect()
}

/// `key: value` lines for one record, aligned on a terminal.
pub fn fields(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (k, v) in pairs {
        out.push_str(&format!("{k:<width$}  {}\n", clean(v)));
    }
    out
}

/// A value as one JSON line on stdout.
pub fn json_line(v: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(v)?);
    Ok(())
}

/// Progress of long work on stderr: an indicatif bar on a terminal, otherwise a line at the
/// start, at most one every two seconds, and one at the end (logs and CI stay readable).
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    what: &'static str,
    total: u64,
    done: u64,
    last_line: Option<Instant>,
}

impl Progress {
    /// `what` names the units, e.g. "accounts". With `--json` too: stdout stays JSON.
    pub fn new(total: u64, what: &'static str) -> Progress {
        Progress::with_bar(total, what, std::io::stderr().is_terminal())
    }

    fn with_bar(total: u64, what: &'static str, bar: bool) -> Progress {
        let bar = if bar {
            let b = indicatif::ProgressBar::new(total);
            if let Ok(style) = indicatif::ProgressStyle::with_template(&format!(
                "{{bar:40}} {{pos}}/{{len}} {what} ({{per_sec}}, eta {{eta}}) {{msg}}"
            )) {
                b.set_style(style);
            }
            Some(b)
        } else {
            None
        };
        Progress {
            bar,
            what,
            total,
            done: 0,
            last_line: None,
        }
    }

    pub fn add_total(&mut self, n: u64) {
        self.total += n;
        if let Some(b) = &self.bar {
            b.inc_length(n);
        }
    }

    pub fn set(&mut self, done: u64) {
        self.done = done;
        match &self.bar {
            Some(b) => b.set_position(done),
            None => {
                if let Some(line) = self.line(false) {
                    eprintln!("{line}");
                }
            }
        }
    }

    pub fn inc(&mut self, n: u64) {
        let done = self.done + n;
        self.set(done);
    }

    /// A line that must not be lost under the bar (a failure, say).
    pub fn note(&self, line: &str) {
        match &self.bar {
            Some(b) => b.println(line),
            None => eprintln!("{line}"),
        }
    }

    pub fn finish(&mut self) {
        match self.bar.take() {
            Some(b) => b.finish_and_clear(),
            None => {
                if let Some(line) = self.line(true) {
                    eprintln!("{line}");
                }
            }
        }
    }

    /// The plain line due now, if one is.
    fn line(&mut self, last: bool) -> Option<String> {
        let now = Instant::now();
        let due = match self.last_line {
            None => true,
            Some(t) => last || now.duration_since(t) >= Duration::from_secs(2),
        };
        if !due {
            return None;
        }
        self.last_line = Some(now);
        Some(format!(
            "progress: {}/{} {}",
            self.done, self.total, self.what
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Table {
        let mut t = Table::new(&["id", "status", "user"]);
        t.row(["acc_1", "active", "shop_one"]);
        t.row(["acc_22", "reauth_required", "x"]);
        t
    }

    #[test]
    fn aligned_tables_pad_columns_under_a_header() {
        let out = table().render(Style::Aligned);
        assert_eq!(
            out,
            "ID      STATUS           USER\n\
             acc_1   active           shop_one\n\
             acc_22  reauth_required  x\n"
        );
    }

    #[test]
    fn plain_tables_are_tab_separated_without_header() {
        assert_eq!(
            table().render(Style::Plain),
            "acc_1\tactive\tshop_one\nacc_22\treauth_required\tx\n"
        );
    }

    #[test]
    fn hostile_cells_cannot_break_rows_or_drive_the_terminal() {
        let mut t = Table::new(&["a", "b"]);
        t.row(["x\ty\nz", "\u{1b}[2Jwiped\u{7}"]);
        let out = t.render(Style::Plain);
        assert_eq!(out, "x y z\t[2Jwiped\n");
        assert!(!out.contains('\u{1b}'));
    }

    #[test]
    fn short_rows_are_filled() {
        let mut t = Table::new(&["a", "b", "c"]);
        t.row(["1"]);
        assert_eq!(t.render(Style::Plain), "1\t\t\n");
    }

    #[test]
    fn fields_align_keys() {
        assert_eq!(
            fields(&[("id", "acc_1".into()), ("status", "active".into())]),
            "id      acc_1\nstatus  active\n"
        );
    }

    #[test]
    fn plain_progress_prints_first_and_last_and_throttles_between() {
        let mut p = Progress::with_bar(10, "accounts", false);
        assert_eq!(p.line(false).as_deref(), Some("progress: 0/10 accounts"));
        p.done = 5;
        assert_eq!(p.line(false), None, "a second line within 2 s");
        p.done = 10;
        assert_eq!(p.line(true).as_deref(), Some("progress: 10/10 accounts"));
    }
}
