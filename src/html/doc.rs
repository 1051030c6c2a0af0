//! Reading the JSON document a report is drawn from: a place in it ([`At`]) knows its
//! JSON pointer, so that every number a table shows can say where in the document it
//! comes from (`data-path`), and a test can hold the page to the document.

use serde_json::Value;

/// A place in the document: its value (None when absent) and its JSON pointer.
#[derive(Clone)]
pub(crate) struct At<'a> {
    v: Option<&'a Value>,
    path: String,
}

impl<'a> At<'a> {
    pub(crate) fn root(v: &'a Value) -> At<'a> {
        At {
            v: Some(v),
            path: String::new(),
        }
    }

    /// The value here, if any.
    pub(crate) fn value(&self) -> Option<&'a Value> {
        self.v
    }

    /// The member `key` of an object.
    pub(crate) fn get(&self, key: &str) -> At<'a> {
        At {
            v: self.v.and_then(|v| v.get(key)),
            path: format!(
                "{}/{}",
                self.path,
                key.replace('~', "~0").replace('/', "~1")
            ),
        }
    }

    /// Element `i` of an array.
    pub(crate) fn idx(&self, i: usize) -> At<'a> {
        At {
            v: self.v.and_then(|v| v.get(i)),
            path: format!("{}/{i}", self.path),
        }
    }

    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    /// A number (None for null, absent, or not a number).
    pub(crate) fn f64(&self) -> Option<f64> {
        self.v.and_then(Value::as_f64)
    }

    /// The text of a string, or "".
    pub(crate) fn str(&self) -> &'a str {
        self.v.and_then(Value::as_str).unwrap_or("")
    }

    pub(crate) fn bool(&self) -> bool {
        self.v.and_then(Value::as_bool).unwrap_or(false)
    }

    /// Whether it is present and not null.
    pub(crate) fn exists(&self) -> bool {
        self.v.is_some_and(|v| !v.is_null())
    }

    /// The value as the document prints it (for `data-value`).
    pub(crate) fn raw(&self) -> String {
        self.v.map_or_else(|| "null".into(), Value::to_string)
    }

    /// An array's elements.
    pub(crate) fn items(&self) -> Vec<At<'a>> {
        let n = self.v.and_then(Value::as_array).map_or(0, Vec::len);
        (0..n).map(|i| self.idx(i)).collect()
    }

    /// An object's members, in the document's order.
    pub(crate) fn entries(&self) -> Vec<(&'a str, At<'a>)> {
        self.v
            .and_then(Value::as_object)
            .map(|o| o.keys().map(|k| (k.as_str(), self.get(k))).collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::At;

    #[test]
    fn pointers_escape_slash_and_tilde() {
        let v = serde_json::json!({"a/b~c": [1, {"x": 2.5}]});
        let at = At::root(&v).get("a/b~c").idx(1).get("x");
        assert_eq!(at.path(), "/a~1b~0c/1/x");
        assert_eq!(at.f64(), Some(2.5));
        assert_eq!(v.pointer(at.path()), Some(&serde_json::json!(2.5)));
        assert!(!At::root(&v).get("none").exists());
    }
}
