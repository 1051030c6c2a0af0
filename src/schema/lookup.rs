//! The schema read as data, to explain a violation: the node that describes a value of the
//! document, the node that owns a failing keyword, and what those nodes say (`x-expected`,
//! descriptions, known keys). Only local `$ref`s (`#/...`) occur in the schemas.

use crate::pointer;
use serde_json::Value;

/// `node`, or the node its `$ref` points to.
pub(super) fn deref<'a>(root: &'a Value, node: &'a Value) -> Option<&'a Value> {
    match node.get("$ref").and_then(Value::as_str) {
        Some(r) => root.pointer(r.strip_prefix('#')?),
        None => Some(node),
    }
}

/// The schema node describing the instance at `pointer`, found by walking the document path
/// through `properties`, `items` and `additionalProperties` (and local `$ref`s).
pub(super) fn node_for<'a>(root: &'a Value, pointer: &str) -> Option<&'a Value> {
    let mut node = deref(root, root)?;
    for token in pointer.split('/').skip(1) {
        let key = pointer::unescape(token);
        let next = node
            .get("properties")
            .and_then(|p| p.get(&key))
            .or_else(|| node.get("items"))
            .or_else(|| node.get("additionalProperties").filter(|a| a.is_object()))?;
        node = deref(root, next)?;
    }
    Some(node)
}

/// The schema object that owns the failing keyword: the keyword location minus its last
/// segment, followed through local `$ref`s.
pub(super) fn owner_of<'a>(root: &'a Value, keyword_path: &str) -> Option<&'a Value> {
    let owner_path = &keyword_path[..keyword_path.rfind('/')?];
    let mut node = root;
    for token in owner_path.split('/').skip(1) {
        let seg = pointer::unescape(token);
        node = match node {
            Value::Object(m) => m.get(&seg)?,
            Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
        if seg == "$ref" {
            node = root.pointer(node.as_str()?.strip_prefix('#')?)?;
        }
    }
    Some(node)
}

/// The `x-expected` text of `node` (through its `$ref`): the expected form in words.
pub(super) fn expected(node: Option<&Value>, root: &Value) -> Option<String> {
    deref(root, node?)?
        .get("x-expected")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// The keys the schema knows for the mapping at `pointer`.
pub(super) fn known_keys(root: &Value, pointer: &str) -> Vec<String> {
    node_for(root, pointer)
        .and_then(|n| n.get("properties"))
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// The description of property `key` of the mapping at `pointer`, as written beside it in
/// `properties` (the referenced definition's own description is more generic).
pub(super) fn property_description(root: &Value, pointer: &str, key: &str) -> Option<String> {
    node_for(root, pointer)?
        .get("properties")?
        .get(key)?
        .get("description")
        .and_then(Value::as_str)
        .map(str::to_string)
}
