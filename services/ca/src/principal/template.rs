//! The subset of Go `text/template` that Fulcio `ci-provider` templates use, evaluated the way
//! Fulcio evaluates them (fulcio `pkg/identity/ciprovider/principal.go`
//! `applyTemplateOrReplace`, templates from `config/identity/config.yaml`).
//!
//! * A value without `{{` is a bare claim name: the claim's value, else the default, else an error.
//! * Otherwise a template: literal text, `{{ expr }}`, `{{if expr}} … {{else if expr}} … {{else}} …
//!   {{end}}`, `{{/* comments */}}` and the `{{-`/`-}}` trim markers. Expressions: `.`, `.name`,
//!   `.a.b` (nested claim objects), `"strings"`, `` `raw strings` ``, `true`, `false`,
//!   parentheses and the functions `eq`, `ne`, `not`, `and`, `or`, `index`.
//! * The data is the token claims over `default-template-values` (claims win). Claims are turned
//!   into strings as Fulcio does (`mapValuesToString`): numbers without exponent, `true`/`false`,
//!   `<nil>`, arrays and objects as Go's `%v` prints them.
//! * `.name` of a missing key is an error (`missingkey=error`); `index . "k"` of a missing key is
//!   the empty string, as in Go.
//!
//! Anything else (`range`, `with`, variables, `|` pipelines, number literals, other functions) is
//! refused when the configuration is loaded.

mod eval;

pub(crate) use eval::{Data, go_v};

/// Why a template could not be parsed or rendered; one sentence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TemplateError(String);

fn err<T>(msg: impl Into<String>) -> Result<T, TemplateError> {
    Err(TemplateError(msg.into()))
}

/// A parsed `extension-templates` or `subject-alternative-name-template` value.
#[derive(Debug, Clone)]
pub struct Template {
    source: String,
    body: Body,
}

#[derive(Debug, Clone)]
enum Body {
    Blank,
    Claim,
    Nodes(Vec<Node>),
}

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Output(Expr),
    If {
        cond: Expr,
        then: Vec<Node>,
        otherwise: Vec<Node>,
    },
}

#[derive(Debug, Clone)]
enum Expr {
    Dot,
    Field(Vec<String>),
    Str(String),
    Bool(bool),
    Call(Func, Vec<Expr>),
}

#[derive(Debug, Clone, Copy)]
enum Func {
    Eq,
    Ne,
    Not,
    And,
    Or,
    Index,
}

impl Func {
    fn from_name(name: &str) -> Option<Func> {
        Some(match name {
            "eq" => Func::Eq,
            "ne" => Func::Ne,
            "not" => Func::Not,
            "and" => Func::And,
            "or" => Func::Or,
            "index" => Func::Index,
            _ => return None,
        })
    }

    fn arity_ok(self, n: usize) -> bool {
        match self {
            Func::Eq => n >= 2,
            Func::Ne => n == 2,
            Func::Not => n == 1,
            Func::And | Func::Or | Func::Index => n >= 1,
        }
    }
}

impl Template {
    /// Parses a template or bare claim name; errors name the unsupported or malformed part.
    pub fn parse(source: &str) -> Result<Template, TemplateError> {
        let body = if source.trim().is_empty() {
            Body::Blank
        } else if !source.contains("{{") {
            Body::Claim
        } else {
            Body::Nodes(parse_items(lex(source)?)?)
        };
        Ok(Template {
            source: source.to_owned(),
            body,
        })
    }

    /// The text as written in the configuration.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whitespace only: Fulcio skips such extension templates.
    pub fn is_blank(&self) -> bool {
        matches!(self.body, Body::Blank)
    }

    /// Renders over the token claims and the provider's default values.
    pub(crate) fn render(&self, data: &Data<'_>) -> Result<String, TemplateError> {
        match &self.body {
            Body::Blank => Ok(String::new()),
            Body::Claim => match data.top(&self.source) {
                Some(v) => Ok(v),
                None => err(format!(
                    "claim {} is missing and has no default value",
                    self.source
                )),
            },
            Body::Nodes(nodes) => {
                let mut out = String::new();
                eval::exec(nodes, data, &mut out)?;
                Ok(out)
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Lexing

enum Item {
    Text(String),
    Action(Vec<Tok>),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LParen,
    RParen,
    Str(String),
    Dot,
    Field(Vec<String>),
    Ident(String),
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn push_text(items: &mut Vec<Item>, text: &str, trim_start: bool, trim_end: bool) {
    let mut t = text;
    if trim_start {
        t = t.trim_start_matches([' ', '\t', '\r', '\n']);
    }
    if trim_end {
        t = t.trim_end_matches([' ', '\t', '\r', '\n']);
    }
    if !t.is_empty() {
        items.push(Item::Text(t.to_owned()));
    }
}

fn lex(src: &str) -> Result<Vec<Item>, TemplateError> {
    let mut items = Vec::new();
    let mut rest = src;
    let mut trim_next = false;
    while let Some(open) = rest.find("{{") {
        let mut inner = &rest[open + 2..];
        let trim_left = inner.len() >= 2 && inner.starts_with('-') && is_space(inner.as_bytes()[1]);
        if trim_left {
            inner = &inner[2..];
        }
        push_text(&mut items, &rest[..open], trim_next, trim_left);
        let (body, after, trim_right) = if let Some(comment) = inner.strip_prefix("/*") {
            let Some(end) = comment.find("*/") else {
                return err("unclosed comment");
            };
            let after = &comment[end + 2..];
            match close_at_start(after) {
                Some((len, trim)) => (None, &after[len..], trim),
                None => return err("comment ends before closing delimiter"),
            }
        } else {
            let (end, len, trim) = find_close(inner)?;
            (Some(&inner[..end]), &inner[end + len..], trim)
        };
        if let Some(body) = body {
            items.push(Item::Action(tokens(body)?));
        }
        trim_next = trim_right;
        rest = after;
    }
    push_text(&mut items, rest, trim_next, false);
    Ok(items)
}

/// `}}` or ` -}}` at the start of `s`: (length, trims).
fn close_at_start(s: &str) -> Option<(usize, bool)> {
    let b = s.as_bytes();
    if s.starts_with("}}") {
        Some((2, false))
    } else if b.len() >= 4 && is_space(b[0]) && s[1..].starts_with("-}}") {
        Some((4, true))
    } else {
        None
    }
}

/// Finds the closing delimiter of an action, skipping string literals: (start, length, trims).
fn find_close(s: &str) -> Result<(usize, usize, bool), TemplateError> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'`' => {
                i += 1;
                while i < b.len() && b[i] != b'`' {
                    i += 1;
                }
            }
            _ => {
                if let Some((len, trim)) = close_at_start(&s[i..]) {
                    return Ok((i, len, trim));
                }
            }
        }
        i += 1;
    }
    err("unclosed action: {{ without }}")
}

fn ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn tokens(body: &str) -> Result<Vec<Tok>, TemplateError> {
    let chars: Vec<char> = body.chars().collect();
    let take_ident = |i: &mut usize| {
        let start = *i;
        while *i < chars.len() && ident_char(chars[*i]) {
            *i += 1;
        }
        chars[start..*i].iter().collect::<String>()
    };
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' | '\r' | '\n' => i += 1,
            '(' | ')' => {
                toks.push(if c == '(' { Tok::LParen } else { Tok::RParen });
                i += 1;
            }
            '"' => {
                let (s, next) = interpreted_string(&chars, i + 1)?;
                toks.push(Tok::Str(s));
                i = next;
            }
            '`' => {
                let Some(len) = chars[i + 1..].iter().position(|&c| c == '`') else {
                    return err("unterminated raw string");
                };
                toks.push(Tok::Str(chars[i + 1..i + 1 + len].iter().collect()));
                i += len + 2;
            }
            '.' if chars.get(i + 1).is_some_and(|c| c.is_ascii_digit()) => {
                return err("number literals are not supported");
            }
            '.' if chars.get(i + 1).is_some_and(|&c| ident_char(c)) => {
                let mut path = Vec::new();
                while chars.get(i) == Some(&'.') && chars.get(i + 1).is_some_and(|&c| ident_char(c))
                {
                    i += 1;
                    path.push(take_ident(&mut i));
                }
                toks.push(Tok::Field(path));
            }
            '.' => {
                toks.push(Tok::Dot);
                i += 1;
            }
            c if c.is_alphabetic() || c == '_' => toks.push(Tok::Ident(take_ident(&mut i))),
            '$' => return err("template variables ($) are not supported"),
            '|' => return err("pipelines with | are not supported"),
            ':' | '=' => return err("variable declarations are not supported"),
            c if c.is_ascii_digit() || c == '-' || c == '+' || c == '\'' => {
                return err("number and character literals are not supported");
            }
            c => return err(format!("unexpected character {c:?} in action")),
        }
    }
    Ok(toks)
}

fn interpreted_string(chars: &[char], mut i: usize) -> Result<(String, usize), TemplateError> {
    let mut s = String::new();
    loop {
        let Some(&c) = chars.get(i) else {
            return err("unterminated quoted string");
        };
        i += 1;
        match c {
            '"' => return Ok((s, i)),
            '\\' => {
                let Some(&e) = chars.get(i) else {
                    return err("unterminated quoted string");
                };
                i += 1;
                let hex_len = match e {
                    'x' => 2,
                    'u' => 4,
                    'U' => 8,
                    _ => 0,
                };
                if hex_len > 0 {
                    let hex: String = chars
                        .get(i..i + hex_len)
                        .unwrap_or_default()
                        .iter()
                        .collect();
                    let ch = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32);
                    let Some(ch) = ch.filter(|_| hex.len() == hex_len) else {
                        return err(format!("invalid escape \\{e}{hex} in quoted string"));
                    };
                    s.push(ch);
                    i += hex_len;
                    continue;
                }
                s.push(match e {
                    '\\' => '\\',
                    '"' => '"',
                    '\'' => '\'',
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    _ => return err(format!("unsupported escape \\{e} in quoted string")),
                });
            }
            c => s.push(c),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing

enum Stop {
    Eof,
    End,
    Else,
    ElseIf(Expr),
}

fn parse_items(items: Vec<Item>) -> Result<Vec<Node>, TemplateError> {
    let mut iter = items.into_iter();
    match parse_list(&mut iter)? {
        (nodes, Stop::Eof) => Ok(nodes),
        (_, Stop::End) => err("unexpected {{end}}"),
        (_, Stop::Else | Stop::ElseIf(_)) => err("unexpected {{else}}"),
    }
}

fn parse_list(iter: &mut impl Iterator<Item = Item>) -> Result<(Vec<Node>, Stop), TemplateError> {
    let mut nodes = Vec::new();
    while let Some(item) = iter.next() {
        let toks = match item {
            Item::Text(t) => {
                nodes.push(Node::Text(t));
                continue;
            }
            Item::Action(toks) => toks,
        };
        let keyword = match toks.first() {
            Some(Tok::Ident(k)) => k.as_str(),
            _ => "",
        };
        match keyword {
            "if" => {
                let cond = parse_expr(&toks[1..])?;
                nodes.push(parse_if(cond, iter)?);
            }
            "else" => {
                return match toks.get(1) {
                    None => Ok((nodes, Stop::Else)),
                    Some(Tok::Ident(k)) if k == "if" => {
                        Ok((nodes, Stop::ElseIf(parse_expr(&toks[2..])?)))
                    }
                    Some(_) => err("{{else}} may only be followed by if"),
                };
            }
            "end" if toks.len() == 1 => return Ok((nodes, Stop::End)),
            "end" => return err("{{end}} takes no arguments"),
            "range" | "with" | "define" | "template" | "block" | "break" | "continue" => {
                return err(format!("{{{{{keyword}}}}} is not supported"));
            }
            _ => nodes.push(Node::Output(parse_expr(&toks)?)),
        }
    }
    Ok((nodes, Stop::Eof))
}

fn parse_if(cond: Expr, iter: &mut impl Iterator<Item = Item>) -> Result<Node, TemplateError> {
    let (then, stop) = parse_list(iter)?;
    let otherwise = match stop {
        Stop::End => Vec::new(),
        Stop::Else => match parse_list(iter)? {
            (nodes, Stop::End) => nodes,
            _ => return err("{{if}} … {{else}} is not closed by {{end}}"),
        },
        Stop::ElseIf(c) => vec![parse_if(c, iter)?],
        Stop::Eof => return err("{{if}} is not closed by {{end}}"),
    };
    Ok(Node::If {
        cond,
        then,
        otherwise,
    })
}

fn parse_expr(toks: &[Tok]) -> Result<Expr, TemplateError> {
    let mut p = 0;
    let e = parse_command(toks, &mut p)?;
    match toks.get(p) {
        None => Ok(e),
        Some(Tok::RParen) => err("unexpected )"),
        Some(_) => err("a value cannot take arguments"),
    }
}

fn parse_command(toks: &[Tok], p: &mut usize) -> Result<Expr, TemplateError> {
    if let Some(Tok::Ident(name)) = toks.get(*p)
        && let Some(f) = Func::from_name(name)
    {
        *p += 1;
        let mut args = Vec::new();
        while toks.get(*p).is_some_and(|t| *t != Tok::RParen) {
            args.push(parse_operand(toks, p)?);
        }
        if !f.arity_ok(args.len()) {
            return err(format!("wrong number of arguments for {name}"));
        }
        return Ok(Expr::Call(f, args));
    }
    let e = parse_operand(toks, p)?;
    match toks.get(*p) {
        None | Some(Tok::RParen) => Ok(e),
        Some(_) => err("a value cannot take arguments"),
    }
}

fn parse_operand(toks: &[Tok], p: &mut usize) -> Result<Expr, TemplateError> {
    let Some(tok) = toks.get(*p) else {
        return err("missing value in action");
    };
    *p += 1;
    Ok(match tok {
        Tok::Dot => Expr::Dot,
        Tok::Field(path) => Expr::Field(path.clone()),
        Tok::Str(s) => Expr::Str(s.clone()),
        Tok::Ident(b) if b == "true" || b == "false" => Expr::Bool(b == "true"),
        Tok::Ident(f) if Func::from_name(f).is_some() => {
            return err(format!(
                "{f} must be in parentheses when used as an argument"
            ));
        }
        Tok::Ident(f) => return err(format!("function {f} is not supported")),
        Tok::RParen => return err("unexpected )"),
        Tok::LParen => {
            let e = parse_command(toks, p)?;
            if toks.get(*p) != Some(&Tok::RParen) {
                return err("unclosed (");
            }
            *p += 1;
            e
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsupported_or_malformed_syntax_is_refused() {
        for (src, msg) in [
            ("{{ .a ", "unclosed action: {{ without }}"),
            ("{{ range .a }}{{ end }}", "{{range}} is not supported"),
            ("{{ $x := 1 }}", "template variables ($) are not supported"),
            ("{{ .a | printf }}", "pipelines with | are not supported"),
            ("{{ printf \"%s\" .a }}", "function printf is not supported"),
            (
                "{{ eq .a 1 }}",
                "number and character literals are not supported",
            ),
            ("{{ if .a }}x", "{{if}} is not closed by {{end}}"),
            ("x{{ end }}", "unexpected {{end}}"),
            ("x{{ else }}", "unexpected {{else}}"),
            ("{{ eq .a }}", "wrong number of arguments for eq"),
            ("{{ .a .b }}", "a value cannot take arguments"),
            ("{{ (index . \"a\" }}", "unclosed ("),
            (
                "{{ eq index . \"a\" }}",
                "index must be in parentheses when used as an argument",
            ),
            ("{{/* x }}", "unclosed comment"),
        ] {
            assert_eq!(
                Template::parse(src).err(),
                Some(TemplateError(msg.into())),
                "{src}"
            );
        }
    }
}
