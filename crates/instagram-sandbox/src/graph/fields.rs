//! The `fields` parameter: `id, username, media{caption,children{media_url}}`,
//! `media.limit(5){id}` and `media.fields(id,caption).limit(2)`.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldSel {
    pub name: String,
    /// `{…}` or `.fields(…)`: the fields of the expanded edge or object.
    pub sub: Option<Vec<FieldSel>>,
    /// Other modifiers such as `.limit(5)`.
    pub args: Vec<(String, String)>,
}

impl FieldSel {
    pub fn arg(&self, name: &str) -> Option<&str> {
        self.args
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The inverse of `parse_fields`, for the `fields` of paging URLs.
pub fn fields_to_string(fields: &[FieldSel]) -> String {
    fields
        .iter()
        .map(|f| {
            let mut s = f.name.clone();
            for (k, v) in &f.args {
                s.push_str(&format!(".{k}({v})"));
            }
            if let Some(sub) = &f.sub {
                s.push('{');
                s.push_str(&fields_to_string(sub));
                s.push('}');
            }
            s
        })
        .collect::<Vec<_>>()
        .join(",")
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    text: &'a str,
}

pub fn parse_fields(text: &str) -> Result<Vec<FieldSel>, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        pos: 0,
        text,
    };
    let list = p.list()?;
    p.ws();
    if p.pos < p.s.len() {
        return Err(p.error("end of string"));
    }
    Ok(list)
}

impl Parser<'_> {
    fn error(&self, expected: &str) -> String {
        let found = self
            .text
            .get(self.pos..)
            .and_then(|r| r.chars().next())
            .map_or_else(|| "end of string".to_owned(), |c| format!("\"{c}\""));
        format!(
            "(#100) Syntax error \"Expected {expected} instead of {found}.\" at character {}: {}",
            self.pos, self.text
        )
    }

    fn ws(&mut self) {
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn ident(&mut self) -> Result<String, String> {
        self.ws();
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
        {
            self.pos += 1;
        }
        if start == self.pos {
            return Err(self.error("a field name"));
        }
        Ok(self.text[start..self.pos].to_owned())
    }

    fn list(&mut self) -> Result<Vec<FieldSel>, String> {
        let mut out = Vec::new();
        loop {
            self.ws();
            // Empty items (`id,,name` or a trailing comma) are tolerated, as Graph does.
            if matches!(self.peek(), Some(b',')) {
                self.pos += 1;
                continue;
            }
            if self.peek().is_none() || matches!(self.peek(), Some(b'}' | b')')) {
                return Ok(out);
            }
            out.push(self.item()?);
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                _ => return Ok(out),
            }
        }
    }

    fn item(&mut self) -> Result<FieldSel, String> {
        let name = self.ident()?;
        let mut sel = FieldSel {
            name,
            sub: None,
            args: Vec::new(),
        };
        loop {
            self.ws();
            match self.peek() {
                Some(b'.') => {
                    self.pos += 1;
                    let modifier = self.ident()?;
                    self.ws();
                    if self.peek() != Some(b'(') {
                        return Err(self.error("\"(\""));
                    }
                    self.pos += 1;
                    if modifier == "fields" {
                        sel.sub = Some(self.list()?);
                    } else {
                        let start = self.pos;
                        while self.peek().is_some_and(|c| c != b')') {
                            self.pos += 1;
                        }
                        sel.args
                            .push((modifier, self.text[start..self.pos].trim().to_owned()));
                    }
                    self.ws();
                    if self.peek() != Some(b')') {
                        return Err(self.error("\")\""));
                    }
                    self.pos += 1;
                }
                Some(b'{') => {
                    self.pos += 1;
                    sel.sub = Some(self.list()?);
                    self.ws();
                    if self.peek() != Some(b'}') {
                        return Err(self.error("\"}\""));
                    }
                    self.pos += 1;
                }
                _ => return Ok(sel),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[FieldSel]) -> Vec<&str> {
        v.iter().map(|f| f.name.as_str()).collect()
    }

    #[test]
    fn parses_real_client_forms() {
        let f =
            parse_fields(" id , username,media.limit(2){id, caption},children.fields(media_url)")
                .unwrap_or_default();
        assert_eq!(names(&f), vec!["id", "username", "media", "children"]);
        assert_eq!(f[2].arg("limit"), Some("2"));
        assert_eq!(
            names(f[2].sub.as_deref().unwrap_or_default()),
            vec!["id", "caption"]
        );
        assert_eq!(
            names(f[3].sub.as_deref().unwrap_or_default()),
            vec!["media_url"]
        );
        let nested = parse_fields("media{children{id,media_url}}").unwrap_or_default();
        let media_sub = nested[0].sub.clone().unwrap_or_default();
        assert_eq!(media_sub[0].name, "children");
        assert!(parse_fields("id,media{caption").is_err());
        assert!(parse_fields("id}").is_err());
        assert_eq!(
            names(&parse_fields("id,,name,").unwrap_or_default()),
            vec!["id", "name"]
        );
    }
}
