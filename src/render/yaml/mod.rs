//! Block-style YAML text for the typed structures the renderers build (compose overrides,
//! Prometheus rules and their unit tests, the Alertmanager config): a serde serializer
//! that writes the text directly, fields in declaration order and maps in their own order.
//!
//! - Strings are plain only when every YAML 1.1 and 1.2 reader takes them back as the same
//!   string, else double-quoted with escapes (`strings`).
//! - Numbers, booleans and null are written as JSON writes them (valid YAML); a float that
//!   is not finite is null, as in JSON.
//! - Empty mappings and sequences are `{}` and `[]`; sequences under a key are indented.
//! - Enums are written as serde_json would: a unit variant as its name, other variants as a
//!   one-entry mapping from the name.
//!
//! Why not `yaml_serde` (0.10.7, the maintained serializer the crate reads YAML with),
//! measured by serialising these same structures with it:
//! - It is not YAML 1.1-safe. It quotes by YAML 1.2's core schema, so it writes `yes`,
//!   `on`, `off`, `y`, `n`, `1_0`, `60_000`, `1:10` and `2001-12-14` plain, which YAML 1.1
//!   readers (docker-compose 1.29's PyYAML) take for booleans, integers and dates. Five
//!   valid plans using such values (phases `on` and `yes`, release `1_0`, smarthost `1:10`,
//!   auth_username `off`) rendered with it gave 101 plain scalars that PyYAML reads as
//!   something else than the string, all in rules, promtool tests and Alertmanager files
//!   (the compose files held none: `plan validate` refuses such service names and images,
//!   and labels are `key=value` items); rendered with this writer, none.
//! - It is slower: `plan render plans/lawsker.yaml` (release build, whole process,
//!   hyperfine, 20 interleaved rounds of 40 runs each) took 7.62 ms (median) against
//!   6.06 ms with this writer, +26%; CPU time (median of the rounds' means) 7.25 ms against
//!   5.87 ms, +24%.
//! - Its bytes differ in every YAML file (sequences not indented under their key, fewer
//!   quotes): 5% smaller for compose, 8% for rules and Alertmanager, 11% for promtool
//!   tests. promtool and amtool accept both.

mod strings;

use serde::Serialize;
use serde::ser::{self, Impossible};
use std::fmt::{self, Write};
pub(crate) use strings::plain;
use strings::write_str;

/// Why a value could not be written (a map key that is not a string or a number, bytes).
#[derive(Debug)]
pub(crate) struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl ser::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error(msg.to_string())
    }
}

/// The YAML text of `value`, ending in a newline.
pub(crate) fn to_string<T: Serialize + ?Sized>(value: &T) -> Result<String, Error> {
    let mut out = String::with_capacity(4096);
    value.serialize(Writer {
        out: &mut out,
        at: Place::Top,
    })?;
    Ok(out)
}

fn indent(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

/// Where a value is written: what precedes it decides how a mapping or sequence opens and
/// where its lines start.
#[derive(Clone, Copy)]
enum Place {
    /// The document itself.
    Top,
    /// After `key:` in a mapping whose lines start at the given column.
    Value(usize),
    /// After `- ` in a sequence whose dashes are at the given column.
    Item(usize),
}

impl Place {
    /// The column of a collection's lines here.
    fn column(self) -> usize {
        match self {
            Place::Top => 0,
            Place::Value(at) | Place::Item(at) => at + 2,
        }
    }
}

/// Writes one value at its place.
struct Writer<'o> {
    out: &'o mut String,
    at: Place,
}

impl<'o> Writer<'o> {
    /// A scalar, with the space after `key:` and the end of its line.
    fn scalar(self, text: impl FnOnce(&mut String)) -> Result<(), Error> {
        if let Place::Value(_) = self.at {
            self.out.push(' ');
        }
        text(self.out);
        self.out.push('\n');
        Ok(())
    }

    fn collection(self, kind: Kind) -> Collection<'o> {
        Collection {
            out: self.out,
            at: self.at,
            kind,
            entries: 0,
        }
    }

    /// A variant with content: a one-entry mapping from its name.
    fn variant<T: Serialize + ?Sized>(self, name: &str, value: &T) -> Result<(), Error> {
        let mut map = self.collection(Kind::Map);
        map.key_str(name);
        map.value(value)
    }

    /// Opens a variant's one-entry mapping, whose value is a collection of `kind`.
    fn variant_open(self, name: &str, kind: Kind) -> Collection<'o> {
        let mut map = self.collection(Kind::Map);
        map.key_str(name);
        let column = map.column();
        Collection {
            out: map.out,
            at: Place::Value(column),
            kind,
            entries: 0,
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Map,
    Seq,
}

/// A mapping or sequence being written: its opening is written with its first entry, so
/// an empty one becomes `{}` or `[]` whatever length serde announced.
struct Collection<'o> {
    out: &'o mut String,
    at: Place,
    kind: Kind,
    entries: usize,
}

impl Collection<'_> {
    fn column(&self) -> usize {
        self.at.column()
    }

    /// Starts an entry: the collection's opening before the first, the indent after.
    fn start(&mut self) {
        if self.entries == 0 {
            if let Place::Value(_) = self.at {
                self.out.push('\n');
                indent(self.out, self.column());
            }
        } else {
            indent(self.out, self.column());
        }
        self.entries += 1;
    }

    fn key_str(&mut self, key: &str) {
        self.start();
        write_str(self.out, key);
        self.out.push(':');
    }

    fn value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let at = match self.kind {
            Kind::Map => Place::Value(self.column()),
            Kind::Seq => Place::Item(self.column()),
        };
        value.serialize(Writer { out: self.out, at })
    }

    fn item<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.start();
        self.out.push_str("- ");
        self.value(value)
    }

    /// Ends the collection: an empty one is written inline.
    fn finish(self) {
        if self.entries == 0 {
            let empty = if self.kind == Kind::Map { "{}" } else { "[]" };
            if let Place::Value(_) = self.at {
                self.out.push(' ');
            }
            self.out.push_str(empty);
            self.out.push('\n');
        }
    }
}

/// Writes a float as JSON does (shortest round-trip form, `.0` on whole numbers); not
/// finite: null.
fn write_f64(out: &mut String, v: f64) {
    match serde_json::Number::from_f64(v) {
        Some(n) => {
            let _ = write!(out, "{n}");
        }
        None => out.push_str("null"),
    }
}

impl<'o> ser::Serializer for Writer<'o> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Collection<'o>;
    type SerializeTuple = Collection<'o>;
    type SerializeTupleStruct = Collection<'o>;
    type SerializeTupleVariant = Collection<'o>;
    type SerializeMap = Collection<'o>;
    type SerializeStruct = Collection<'o>;
    type SerializeStructVariant = Collection<'o>;

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.scalar(|o| o.push_str(if v { "true" } else { "false" }))
    }
    fn serialize_i8(self, v: i8) -> Result<(), Error> {
        self.serialize_i64(v.into())
    }
    fn serialize_i16(self, v: i16) -> Result<(), Error> {
        self.serialize_i64(v.into())
    }
    fn serialize_i32(self, v: i32) -> Result<(), Error> {
        self.serialize_i64(v.into())
    }
    fn serialize_i64(self, v: i64) -> Result<(), Error> {
        self.scalar(|o| {
            let _ = write!(o, "{v}");
        })
    }
    fn serialize_u8(self, v: u8) -> Result<(), Error> {
        self.serialize_u64(v.into())
    }
    fn serialize_u16(self, v: u16) -> Result<(), Error> {
        self.serialize_u64(v.into())
    }
    fn serialize_u32(self, v: u32) -> Result<(), Error> {
        self.serialize_u64(v.into())
    }
    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        self.scalar(|o| {
            let _ = write!(o, "{v}");
        })
    }
    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        self.serialize_f64(v.into())
    }
    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        self.scalar(|o| write_f64(o, v))
    }
    fn serialize_char(self, v: char) -> Result<(), Error> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<(), Error> {
        self.scalar(|o| write_str(o, v))
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<(), Error> {
        Err(Error("bytes have no YAML form here".into()))
    }
    fn serialize_none(self) -> Result<(), Error> {
        self.serialize_unit()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Error> {
        self.scalar(|o| o.push_str("null"))
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Error> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.variant(variant, value)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Collection<'o>, Error> {
        Ok(self.collection(Kind::Seq))
    }
    fn serialize_tuple(self, _: usize) -> Result<Collection<'o>, Error> {
        Ok(self.collection(Kind::Seq))
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Collection<'o>, Error> {
        Ok(self.collection(Kind::Seq))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Collection<'o>, Error> {
        Ok(self.variant_open(variant, Kind::Seq))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Collection<'o>, Error> {
        Ok(self.collection(Kind::Map))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Collection<'o>, Error> {
        Ok(self.collection(Kind::Map))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Collection<'o>, Error> {
        Ok(self.variant_open(variant, Kind::Map))
    }
}

/// The sequence-like collections: every element is an item.
macro_rules! items {
    ($($trait:ident :: $method:ident),*) => {$(
        impl ser::$trait for Collection<'_> {
            type Ok = ();
            type Error = Error;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
                self.item(value)
            }
            fn end(self) -> Result<(), Error> {
                self.finish();
                Ok(())
            }
        }
    )*};
}

items!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

impl ser::SerializeMap for Collection<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        let mut k = String::new();
        key.serialize(KeyWriter(&mut k))?;
        self.key_str(&k);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.value(value)
    }
    fn end(self) -> Result<(), Error> {
        self.finish();
        Ok(())
    }
}

/// The struct-like collections: every field is a `key: value` entry.
macro_rules! fields {
    ($($trait:ident),*) => {$(
        impl ser::$trait for Collection<'_> {
            type Ok = ();
            type Error = Error;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), Error> {
                self.key_str(key);
                self.value(value)
            }
            fn end(self) -> Result<(), Error> {
                self.finish();
                Ok(())
            }
        }
    )*};
}

fields!(SerializeStruct, SerializeStructVariant);

/// A mapping key: a string, or a number or boolean written as its text (as JSON keys are).
struct KeyWriter<'k>(&'k mut String);

impl KeyWriter<'_> {
    fn text(self, v: impl fmt::Display) -> Result<(), Error> {
        let _ = write!(self.0, "{v}");
        Ok(())
    }
}

fn key_error() -> Error {
    Error("a mapping key must be a string or a number".into())
}

impl ser::Serializer for KeyWriter<'_> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Impossible<(), Error>;
    type SerializeTuple = Impossible<(), Error>;
    type SerializeTupleStruct = Impossible<(), Error>;
    type SerializeTupleVariant = Impossible<(), Error>;
    type SerializeMap = Impossible<(), Error>;
    type SerializeStruct = Impossible<(), Error>;
    type SerializeStructVariant = Impossible<(), Error>;

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.text(v)
    }
    fn serialize_i8(self, v: i8) -> Result<(), Error> {
        self.text(v)
    }
    fn serialize_i16(self, v: i16) -> Result<(), Error> {
        self.text(v)
    }
    fn serialize_i32(self, v: i32) -> Result<(), Error> {
        self.text(v)
    }
    fn serialize_i64(self, v: i64) -> Result<(), Error> {
        self.text(v)
    }
    fn serialize_u8(self, v: u8) -> Result<(), Error> {
        self.text(v)
    }
    fn serialize_u16(self, v: u16) -> Result<(), Error> {
        self.text(v)
    }
    fn serialize_u32(self, v: u32) -> Result<(), Error> {
        self.text(v)
    }
    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        self.text(v)
    }
    fn serialize_f32(self, _: f32) -> Result<(), Error> {
        Err(key_error())
    }
    fn serialize_f64(self, _: f64) -> Result<(), Error> {
        Err(key_error())
    }
    fn serialize_char(self, v: char) -> Result<(), Error> {
        self.text(v)
    }
    fn serialize_str(self, v: &str) -> Result<(), Error> {
        self.0.push_str(v);
        Ok(())
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<(), Error> {
        Err(key_error())
    }
    fn serialize_none(self) -> Result<(), Error> {
        Err(key_error())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<(), Error> {
        Err(key_error())
    }
    fn serialize_unit(self) -> Result<(), Error> {
        Err(key_error())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Error> {
        Err(key_error())
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Error> {
        Err(key_error())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Error> {
        Err(key_error())
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Error> {
        Err(key_error())
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, Error> {
        Err(key_error())
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Err(key_error())
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Error> {
        Err(key_error())
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, Error> {
        Err(key_error())
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(key_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn round_trip(v: &Value) {
        let text = to_string(v).unwrap();
        let back: Value =
            yaml_serde::from_str(&text).unwrap_or_else(|e| panic!("{e}: not YAML:\n{text}"));
        assert_eq!(&back, v, "YAML was:\n{text}");
    }

    #[test]
    fn layout() {
        let v = serde_json::json!({
            "groups": [{"name": "a", "rules": [{"record": "x:y", "expr": "sum(rate(z[5m]))"}]}],
            "empty": {}, "none": [], "num": 3, "f": 0.1, "t": true, "nil": null,
            "nested": [[1, 2], []],
        });
        assert_eq!(
            to_string(&v).unwrap(),
            "groups:\n  - name: a\n    rules:\n      - record: \"x:y\"\n        expr: \"sum(rate(z[5m]))\"\n\
             empty: {}\nnone: []\nnum: 3\nf: 0.1\nt: true\nnil: null\nnested:\n  - - 1\n    - 2\n  - []\n"
        );
        round_trip(&v);
    }

    /// Every shape serde can produce reads back as the value serde_json makes of it.
    #[test]
    fn every_serde_shape_reads_back_as_json_would() {
        #[derive(Serialize)]
        enum E {
            Unit,
            Newtype(u8),
            Tuple(i32, String),
            Struct { a: Vec<u8>, b: Option<bool> },
            EmptyStruct {},
        }
        #[derive(Serialize)]
        struct Unit;
        #[derive(Serialize)]
        struct Wrap(f64);
        #[derive(Serialize)]
        struct All {
            unit: E,
            newtype: E,
            tuple: E,
            strukt: E,
            empty_struct: E,
            variants: Vec<E>,
            none: Option<u8>,
            unit_struct: Unit,
            wrap: Wrap,
            nan: f64,
            whole: f64,
            tiny: f64,
            negative: i64,
            ch: char,
            pair: (u8, &'static str),
            int_keys: std::collections::BTreeMap<u32, Vec<()>>,
            empty_nested: Vec<Vec<u8>>,
        }
        let all = All {
            unit: E::Unit,
            newtype: E::Newtype(7),
            tuple: E::Tuple(-1, "x y".into()),
            strukt: E::Struct { a: vec![], b: None },
            empty_struct: E::EmptyStruct {},
            variants: vec![E::Unit, E::Newtype(1), E::Tuple(2, "".into())],
            none: None,
            unit_struct: Unit,
            wrap: Wrap(2.5),
            nan: f64::NAN,
            whole: 3.0,
            tiny: 1e-7,
            negative: -40,
            ch: ':',
            pair: (1, "no"),
            int_keys: [(1, vec![]), (20, vec![(), ()])].into(),
            empty_nested: vec![vec![], vec![1]],
        };
        let text = to_string(&all).unwrap();
        let back: Value = yaml_serde::from_str(&text).unwrap();
        assert_eq!(
            back,
            serde_json::to_value(&all).unwrap(),
            "YAML was:\n{text}"
        );
        assert!(
            text.contains("whole: 3.0\n") && text.contains("tiny: 1e-7\n"),
            "{text}"
        );
        // A key that is neither a string nor a number is an error, not a panic.
        let bad: std::collections::BTreeMap<Vec<u8>, u8> = [(vec![1], 1)].into();
        assert!(to_string(&bad).is_err());
    }
}
