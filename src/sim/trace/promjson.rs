//! The JSON trace format: what Prometheus' HTTP API returns for a query, so a trace can be
//! exported from the Prometheus that watched a real release.
//!
//! Accepted documents:
//! - the full API response, `{"status":"success","data":{"resultType":"matrix","result":[...]}}`
//!   from `/api/v1/query_range` or from `/api/v1/query` with a range selector, or just its
//!   `data` object;
//! - a bare result array, `[{"metric":{...},"values":[[1714564800,"1"],...]}, ...]`, which
//!   is what `promtool query range -o json` prints (an instant query's `"value"` pairs are
//!   accepted too).
//!
//! Each series needs `__name__` among its `metric` labels. Timestamps are Unix seconds
//! (JSON numbers), values strings (`"0.25"`, `"NaN"`, `"+Inf"`).
//!
//! Which query to export: an instant query of a range selector returns the samples as
//! scraped, e.g. `curl -G .../api/v1/query --data-urlencode 'query={service="backend"}[7d]'
//! --data-urlencode time=...`; that is what the simulator wants for raw series. A range
//! query (`query_range`) instead resamples every series at its `step` with the 5m
//! lookback: counter values are real, but a series that vanished lingers for up to 5m and
//! staleness markers are lost (JSON cannot carry them; use CSV's `stale`).
//! Native histograms are not supported.

use super::builder::{
    Builder, TOO_LARGE_HINT, Trace, TraceError, is_label_name, is_metric_name, parse_value,
};
use super::time::parse_unix_seconds;
use crate::limits::MAX_TRACE_SAMPLES;

/// A parsed JSON value with the byte offset where it starts.
#[derive(Debug)]
struct Node {
    at: usize,
    v: Json,
}

#[derive(Debug)]
enum Json {
    Null,
    Bool,
    /// The number's text, kept exact.
    Num(String),
    Str(String),
    Arr(Vec<Node>),
    Obj(Vec<(String, Node)>),
    /// A `[time, "value"]` pair whose time and value both read correctly, kept small: a
    /// trace is mostly these.
    Sample {
        t: i64,
        v: f64,
    },
}

impl Json {
    fn kind(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool => "a boolean",
            Json::Num(_) => "a number",
            Json::Str(_) => "a string",
            Json::Arr(_) | Json::Sample { .. } => "an array",
            Json::Obj(_) => "an object",
        }
    }
}

impl Node {
    fn get(&self, key: &str) -> Option<&Node> {
        match &self.v {
            Json::Obj(m) => m.iter().find(|(k, _)| k == key).map(|(_, n)| n),
            _ => None,
        }
    }
}

/// What to do with a file that is not one whole JSON document.
const WHOLE_JSON_HINT: &str = "give the whole output of `promtool query range -o json` or of `/api/v1/query_range`, as written (a file cut short or edited by hand stops here)";

struct Parser<'a> {
    s: &'a [u8],
    text: &'a str,
    i: usize,
    depth: usize,
    /// Values parsed so far, capped at [`MAX_TRACE_SAMPLES`]: a document of `[]`s would
    /// otherwise make a tree many times the size of its text.
    nodes: usize,
}

type PResult<T> = Result<T, (usize, String)>;

impl<'a> Parser<'a> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn value(&mut self) -> PResult<Node> {
        self.ws();
        let at = self.i;
        self.nodes += 1;
        if self.nodes > MAX_TRACE_SAMPLES {
            return Err((
                at,
                format!(
                    "the trace holds more than {MAX_TRACE_SAMPLES} values, the limit for a replay"
                ),
            ));
        }
        if let Some(v) = self.sample() {
            return Ok(Node { at, v });
        }
        let v = match self.s.get(self.i) {
            None => return Err((at, "unexpected end of the JSON document".into())),
            Some(b'{') => {
                self.enter()?;
                self.i += 1;
                let mut m = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b'}') {
                    self.i += 1;
                } else {
                    loop {
                        self.ws();
                        if self.s.get(self.i) != Some(&b'"') {
                            return Err((self.i, "expected a string key".into()));
                        }
                        let k = self.string()?;
                        self.ws();
                        if self.s.get(self.i) != Some(&b':') {
                            return Err((self.i, "expected `:` after the key".into()));
                        }
                        self.i += 1;
                        let v = self.value()?;
                        m.push((k, v));
                        self.ws();
                        match self.s.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b'}') => {
                                self.i += 1;
                                break;
                            }
                            _ => return Err((self.i, "expected `,` or `}`".into())),
                        }
                    }
                }
                self.depth -= 1;
                Json::Obj(m)
            }
            Some(b'[') => {
                self.enter()?;
                self.i += 1;
                let mut a = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b']') {
                    self.i += 1;
                } else {
                    loop {
                        a.push(self.value()?);
                        self.ws();
                        match self.s.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b']') => {
                                self.i += 1;
                                break;
                            }
                            _ => return Err((self.i, "expected `,` or `]`".into())),
                        }
                    }
                }
                self.depth -= 1;
                Json::Arr(a)
            }
            Some(b'"') => Json::Str(self.string()?),
            Some(b't') => self.word("true", Json::Bool)?,
            Some(b'f') => self.word("false", Json::Bool)?,
            Some(b'n') => self.word("null", Json::Null)?,
            Some(c) if *c == b'-' || c.is_ascii_digit() => {
                let st = self.i;
                while self.i < self.s.len()
                    && matches!(
                        self.s[self.i],
                        b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'
                    )
                {
                    self.i += 1;
                }
                let t = &self.text[st..self.i];
                if t.parse::<f64>().is_err() {
                    return Err((st, format!("`{t}` is not a JSON number")));
                }
                Json::Num(t.to_string())
            }
            Some(_) => return Err((at, "expected a JSON value".into())),
        };
        Ok(Node { at, v })
    }

    /// `[1714564800,"0.25"]` read in one go, when it is exactly that (a number of seconds,
    /// a string without escapes, both valid); otherwise nothing is consumed and the
    /// general parser takes it, and reports what is wrong.
    fn sample(&mut self) -> Option<Json> {
        let start = self.i;
        let v = self.try_sample();
        if v.is_none() {
            self.i = start;
        }
        v
    }

    fn try_sample(&mut self) -> Option<Json> {
        let expect = |p: &mut Self, c: u8| -> Option<()> {
            p.ws();
            (p.s.get(p.i) == Some(&c)).then(|| p.i += 1)
        };
        expect(self, b'[')?;
        self.ws();
        let st = self.i;
        while self.i < self.s.len() && matches!(self.s[self.i], b'0'..=b'9' | b'-' | b'.') {
            self.i += 1;
        }
        let t = parse_unix_seconds(self.text.get(st..self.i)?).ok()?;
        expect(self, b',')?;
        expect(self, b'"')?;
        let vs = self.i;
        let len = self.s[vs..].iter().position(|&c| c == b'"' || c == b'\\')?;
        self.i += len;
        expect(self, b'"')?;
        let v = parse_value(&self.text[vs..vs + len], false).ok()?;
        expect(self, b']')?;
        Some(Json::Sample { t, v })
    }

    fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > 64 {
            return Err((self.i, "JSON nested too deeply".into()));
        }
        Ok(())
    }

    fn word(&mut self, w: &str, v: Json) -> PResult<Json> {
        if self.s[self.i..].starts_with(w.as_bytes()) {
            self.i += w.len();
            Ok(v)
        } else {
            Err((self.i, "expected a JSON value".into()))
        }
    }

    fn string(&mut self) -> PResult<String> {
        let st = self.i;
        self.i += 1;
        let mut out = String::new();
        loop {
            let rest = &self.text[self.i..];
            let Some(k) = rest.find(['"', '\\']) else {
                return Err((st, "unterminated string".into()));
            };
            out.push_str(&rest[..k]);
            self.i += k;
            if self.s[self.i] == b'"' {
                self.i += 1;
                return Ok(out);
            }
            let e = self.s.get(self.i + 1).copied();
            self.i += 2;
            match e {
                Some(b'"') => out.push('"'),
                Some(b'\\') => out.push('\\'),
                Some(b'/') => out.push('/'),
                Some(b'n') => out.push('\n'),
                Some(b't') => out.push('\t'),
                Some(b'r') => out.push('\r'),
                Some(b'b') => out.push('\u{8}'),
                Some(b'f') => out.push('\u{c}'),
                Some(b'u') => {
                    let hex = |p: &mut Self| -> PResult<u32> {
                        let h = p
                            .text
                            .get(p.i..p.i + 4)
                            .ok_or((p.i, "bad \\u escape".to_string()))?;
                        let v = u32::from_str_radix(h, 16)
                            .map_err(|_| (p.i, "bad \\u escape".to_string()))?;
                        p.i += 4;
                        Ok(v)
                    };
                    let mut c = hex(self)?;
                    if (0xD800..0xDC00).contains(&c) && self.text[self.i..].starts_with("\\u") {
                        self.i += 2;
                        let lo = hex(self)?;
                        c = 0x10000 + ((c - 0xD800) << 10) + (lo.wrapping_sub(0xDC00) & 0x3FF);
                    }
                    out.push(char::from_u32(c).unwrap_or('\u{fffd}'));
                }
                _ => return Err((self.i - 2, "bad escape in a string".into())),
            }
        }
    }
}

/// Reads a Prometheus query result (see the module doc).
pub(crate) fn parse(text: &str) -> Result<Trace, TraceError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut line_starts = vec![0];
    line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
    // Only for errors and series: a column counts characters from the line's start, and
    // an exported document is often one line.
    let pos = |off: usize| {
        let line = line_starts.partition_point(|&s| s <= off);
        let col = text[line_starts[line - 1]..off.min(text.len())]
            .chars()
            .count()
            + 1;
        (line, col)
    };
    let err = |off: usize, msg: String| {
        let (l, c) = pos(off);
        TraceError::new(l, c, msg)
    };
    let mut p = Parser {
        s: text.as_bytes(),
        text,
        i: 0,
        depth: 0,
        nodes: 0,
    };
    let root = p
        .value()
        .map_err(|(o, m)| err(o, m).hint(WHOLE_JSON_HINT))?;
    p.ws();
    if p.i < text.len() {
        return Err(
            err(p.i, "unexpected text after the JSON document".into()).hint(WHOLE_JSON_HINT)
        );
    }
    let result = result_array(&root).map_err(|(o, m, h)| {
        let e = err(o, m);
        match h {
            Some(h) => e.hint(h),
            None => e,
        }
    })?;
    let mut b = Builder::default();
    let mut series_at = Cursor::new(text);
    for s in result {
        let Json::Obj(_) = &s.v else {
            return Err(err(
                s.at,
                format!("expected a series object, found {}", s.v.kind()),
            ));
        };
        let Some(metric) = s.get("metric") else {
            return Err(err(s.at, "a series needs a `metric` object".into()));
        };
        let Json::Obj(pairs) = &metric.v else {
            return Err(err(
                metric.at,
                "`metric` must be an object of labels".into(),
            ));
        };
        let mut name = None;
        let mut labels = Vec::new();
        for (k, v) in pairs {
            let Json::Str(val) = &v.v else {
                return Err(err(v.at, format!("label `{k}` must be a string")));
            };
            if k == "__name__" {
                if !is_metric_name(val) {
                    return Err(err(v.at, format!("`{val}` is not a metric name")));
                }
                name = Some(val.clone());
            } else if !is_label_name(k) {
                return Err(err(v.at, format!("`{k}` is not a label name")));
            } else if labels.iter().any(|(x, _): &(String, String)| x == k) {
                return Err(err(v.at, format!("label `{k}` is given twice")));
            } else {
                labels.push((k.clone(), val.clone()));
            }
        }
        let Some(name) = name else {
            return Err(err(metric.at, "this series has no `__name__`, so no metric can be matched to it".into())
                .hint("export the series themselves, not an expression that drops the name (or name it with label_replace)"));
        };
        if s.get("histogram").is_some() || s.get("histograms").is_some() {
            return Err(err(
                s.at,
                format!("series `{name}` holds native histograms, which are not supported"),
            ));
        }
        let (line, col) = series_at.at(s.at);
        let idx = b
            .series_index(&name, labels, line, col)
            .map_err(|m| err(s.at, m).hint(TOO_LARGE_HINT))?;
        let points: Vec<&Node> = match (s.get("values"), s.get("value")) {
            (Some(vs), _) => match &vs.v {
                Json::Arr(a) => a.iter().collect(),
                _ => {
                    return Err(err(
                        vs.at,
                        "`values` must be an array of [time, \"value\"] pairs".into(),
                    ));
                }
            },
            (None, Some(v)) => vec![v],
            (None, None) => return Err(err(s.at, "a series needs `values` (or `value`)".into())),
        };
        for pt in points {
            if let Json::Sample { t, v } = pt.v {
                b.push_at(idx, t, v, pt.at as u64)
                    .map_err(|m| err(pt.at, m).hint(TOO_LARGE_HINT))?;
                continue;
            }
            let pair = match &pt.v {
                Json::Arr(a) if a.len() == 2 => a,
                _ => return Err(err(pt.at, "expected a [time, \"value\"] pair".into())),
            };
            let t = match &pair[0].v {
                Json::Num(n) => parse_unix_seconds(n).map_err(|m| err(pair[0].at, m))?,
                other => {
                    return Err(err(
                        pair[0].at,
                        format!(
                            "the time must be a number of Unix seconds, found {}",
                            other.kind()
                        ),
                    ));
                }
            };
            let v = match &pair[1].v {
                Json::Str(x) => parse_value(x, false).map_err(|m| err(pair[1].at, m))?,
                other => {
                    return Err(err(
                        pair[1].at,
                        format!(
                            "the value must be a string, as Prometheus writes it, found {}",
                            other.kind()
                        ),
                    )
                    .hint("quote each sample's value (`[1714521600, \"0.5\"]`), as `promtool query range -o json` and `/api/v1/query_range` write it"));
                }
            };
            b.push_at(idx, t, v, pt.at as u64)
                .map_err(|m| err(pt.at, m).hint(TOO_LARGE_HINT))?;
        }
    }
    b.finish(|at| pos(at as usize))
}

/// Line and column of byte offsets given in increasing order, each found from the last.
struct Cursor<'a> {
    text: &'a str,
    off: usize,
    line: usize,
    col: usize,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str) -> Cursor<'a> {
        Cursor {
            text,
            off: 0,
            line: 1,
            col: 1,
        }
    }

    fn at(&mut self, off: usize) -> (usize, usize) {
        let off = off.min(self.text.len());
        if off < self.off {
            *self = Cursor::new(self.text);
        }
        for c in self.text[self.off..off].chars() {
            if c == '\n' {
                self.line += 1;
                self.col = 1;
            } else {
                self.col += 1;
            }
        }
        self.off = off;
        (self.line, self.col)
    }
}

type Located = (usize, String, Option<String>);

/// The array of series inside whichever accepted document shape `root` is.
fn result_array(root: &Node) -> Result<&[Node], Located> {
    if let Json::Arr(a) = &root.v {
        return Ok(a);
    }
    let data = match root.get("status") {
        Some(Node {
            v: Json::Str(st),
            at,
        }) if st != "success" => {
            let why = match root.get("error") {
                Some(Node {
                    v: Json::Str(e), ..
                }) => e.clone(),
                _ => "no error message".into(),
            };
            return Err((
                *at,
                format!("the query failed (status `{st}`): {why}"),
                None,
            ));
        }
        Some(_) => root.get("data").ok_or((
            root.at,
            "a response needs a `data` object".to_string(),
            None,
        ))?,
        None => root,
    };
    match data.get("resultType") {
        Some(Node {
            v: Json::Str(t), ..
        }) if t == "matrix" || t == "vector" => {}
        Some(n) => {
            return Err((
                n.at,
                "the result must be a matrix (range query, or instant query of a range selector) or a vector".into(),
                None,
            ));
        }
        None => {
            return Err((
                data.at,
                "expected a Prometheus query response: {\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[...]}} or a result array".into(),
                Some("see `plan simulate --help` for the trace formats".into()),
            ));
        }
    }
    match data.get("result") {
        Some(Node {
            v: Json::Arr(a), ..
        }) => Ok(a),
        Some(n) => Err((n.at, "`result` must be an array of series".into(), None)),
        None => Err((data.at, "the response has no `result`".into(), None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_query_range_response() {
        let text = r#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"__name__":"up","job":"a"},"values":[[1714564800,"1"],[1714564815.5,"NaN"]]},
            {"metric":{"__name__":"up","job":""},"values":[[1714564800,"+Inf"]]}
        ]}}"#;
        let t = parse(text).unwrap();
        assert_eq!(t.series.len(), 2);
        assert!(t.series[0].labels.is_empty());
        assert_eq!(t.series[0].samples[0].v, f64::INFINITY);
        assert_eq!(
            t.series[1].labels,
            vec![("job".to_string(), "a".to_string())]
        );
        assert_eq!(t.series[1].samples[1].t, 1_714_564_815_500);
        assert!(t.series[1].samples[1].v.is_nan());
    }

    #[test]
    fn reads_a_bare_result_array() {
        let t = parse(r#"[{"metric":{"__name__":"x"},"values":[[0,"1"],[60,"2"]]}]"#).unwrap();
        assert_eq!(t.series[0].samples.len(), 2);
        let t = parse(r#"[{"metric":{"__name__":"x"},"value":[60,"2"]}]"#).unwrap();
        assert_eq!(t.series[0].samples[0].t, 60_000);
    }

    #[test]
    fn errors_point_into_the_document() {
        let e = parse("{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[\n {\"metric\":{\"__name__\":\"x\"},\"values\":[[0,\"one\"]]}]}}").unwrap_err();
        assert_eq!((e.line, e.column), (2, 42));
        let e = parse("[{\"metric\":{\"job\":\"a\"},\"values\":[]}]").unwrap_err();
        assert_eq!((e.line, e.column), (1, 12));
        let e = parse("{\"status\":\"error\",\"error\":\"bad query\"}").unwrap_err();
        assert!(e.message.contains("bad query"));
        let e = parse("[{\"metric\":{\"__name__\":\"x\"},\"values\":[[0,1]]}]").unwrap_err();
        assert!(e.message.contains("string"));
        assert!(
            e.hint
                .as_deref()
                .is_some_and(|h| h.contains("quote each sample's value"))
        );
        // A document cut short says what to give instead.
        let e = parse("[1,").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(
            e.hint
                .as_deref()
                .is_some_and(|h| h.contains("the whole output"))
        );
        let e = parse("[{\"metric\":{\"__name__\":\"x\"},\"values\":[[0,\"1\"],[0,\"2\"]]}]")
            .unwrap_err();
        assert!(e.message.contains("second sample"), "{}", e.message);
    }
}
