//! `response_format`'s JSON Schema: checked against the subset the answer's grammar can
//! enforce, bounded, and written in a canonical form for the worker.
//!
//! The runtime worker turns the canonical schema into a GBNF grammar with llama.cpp's own
//! converter (`json_schema_to_grammar`) — C++ that recurses over the schema, so nothing
//! reaches it unchecked. The subset is OpenAI's strict mode, as far as the converter follows
//! it exactly:
//!
//! - `type` (one name, or a list: `["string", "null"]`), `enum` and `const` of scalars,
//!   `anyOf`, `$ref` to `#` or `#/$defs/<name>` (`#/definitions/<name>`), `$defs` at the
//!   root; `title`, `description`, `default`, `examples`, `$comment`, `$schema`,
//!   `deprecated`, `readOnly`, `writeOnly` are annotations and ignored;
//! - objects: `properties`, `required`, `additionalProperties` (`true` or `false`; absent
//!   with `properties` is read as `false`: the answer then holds no other key, which the
//!   schema allows);
//! - arrays: `items` (one schema), `minItems`, `maxItems`;
//! - strings: `pattern` (anchored `^…$`, a regular-expression subset, rewritten for the
//!   converter), `format` (`date`, `time`, `date-time`, `uuid`), `minLength`, `maxLength`;
//! - integers: `minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum`; numbers,
//!   booleans, null.
//!
//! Anything else (`oneOf`, `allOf`, `not`, `patternProperties`, bounds on `number`,
//! `multipleOf`, other formats…) is refused with a message naming the keyword and where it
//! is, and so are contradictions (an empty `enum`, `minItems` above `maxItems`, a
//! `required` property that is not in `properties`, no integer between the bounds…). What
//! the converter would silently loosen is refused too: a pattern it cannot translate, or
//! one that would let a quote, a backslash or a control character into a JSON string.
//!
//! Bounds keep the conversion and the grammar small whatever the client sends: the schema's
//! size, nesting depth, properties, enum values, `anyOf` branches, definitions and
//! repetition counts (each converted repetition becomes grammar rules). A cycle of `$ref`
//! that consumes nothing (`a` → `b` → `a` through `$ref` and `anyOf` only) would be a
//! left-recursive grammar: refused. Recursion through an object or an array is allowed.

use crate::Error;
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use std::collections::HashMap;
use std::fmt;

/// Largest schema, serialized.
pub const MAX_SCHEMA_BYTES: usize = 64 * 1024;
/// Deepest nesting of schemas (`properties`, `items`, `anyOf`, type lists), per definition.
pub const MAX_DEPTH: usize = 16;
/// Most properties of one object, and of the whole schema.
pub const MAX_PROPERTIES: usize = 256;
pub const MAX_TOTAL_PROPERTIES: usize = 1024;
/// Most values of one `enum`, and of all `enum`s and `const`s together.
pub const MAX_ENUM_VALUES: usize = 500;
pub const MAX_TOTAL_ENUM_VALUES: usize = 2000;
/// Most branches of one `anyOf` (or types of one type list).
pub const MAX_ANY_OF: usize = 32;
/// Most definitions under `$defs` and `definitions`.
pub const MAX_DEFS: usize = 64;
/// Largest `minItems`, `maxItems`, `minLength`, `maxLength` or pattern repetition, and the
/// sum of all of them.
pub const MAX_REPEAT: u64 = 1000;
pub const MAX_TOTAL_REPEAT: u64 = 10_000;
/// Longest property or definition name, in bytes.
pub const MAX_NAME_BYTES: usize = 256;
/// Longest `pattern`, in bytes, and its deepest nesting of groups.
pub const MAX_PATTERN_BYTES: usize = 1000;
const MAX_PATTERN_DEPTH: usize = 16;
/// Largest integer bound (2^53: exact in every JSON parser).
pub const MAX_INT_BOUND: i64 = 1 << 53;

/// The canonical schema of `response_format: {"type": "json_object"}`: any JSON object.
pub const ANY_OBJECT: &str = r#"{"type":"object"}"#;

/// A JSON value that keeps the order of object keys (a schema's property order is the
/// order the answer follows) and repeated keys (refused when checked).
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Json;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E>(self) -> Result<Json, E> {
                Ok(Json::Null)
            }
            fn visit_none<E>(self) -> Result<Json, E> {
                Ok(Json::Null)
            }
            fn visit_bool<E>(self, b: bool) -> Result<Json, E> {
                Ok(Json::Bool(b))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Json, E> {
                Ok(Json::Number(n.into()))
            }
            fn visit_u64<E>(self, n: u64) -> Result<Json, E> {
                Ok(Json::Number(n.into()))
            }
            fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<Json, E> {
                serde_json::Number::from_f64(n)
                    .map(Json::Number)
                    .ok_or_else(|| E::custom("a number that is not finite"))
            }
            fn visit_str<E>(self, s: &str) -> Result<Json, E> {
                Ok(Json::String(s.to_string()))
            }
            fn visit_string<E>(self, s: String) -> Result<Json, E> {
                Ok(Json::String(s))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = seq.next_element()? {
                    out.push(v);
                }
                Ok(Json::Array(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Json>()? {
                    out.push((k, v));
                }
                Ok(Json::Object(out))
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for Json {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Json::Null => s.serialize_unit(),
            Json::Bool(b) => s.serialize_bool(*b),
            Json::Number(n) => n.serialize(s),
            Json::String(x) => s.serialize_str(x),
            Json::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for i in items {
                    seq.serialize_element(i)?;
                }
                seq.end()
            }
            Json::Object(entries) => {
                let mut map = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

impl Json {
    fn kind(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Number(_) => "a number",
            Json::String(_) => "a string",
            Json::Array(_) => "an array",
            Json::Object(_) => "an object",
        }
    }

    fn obj(entries: Vec<(&str, Json)>) -> Json {
        Json::Object(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    fn str(s: &str) -> Json {
        Json::String(s.into())
    }

    fn text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

const PARAM: &str = "response_format";

fn invalid(path: &str, what: impl fmt::Display) -> Error {
    Error::invalid(
        PARAM,
        format!("`response_format.json_schema.schema` at `{path}`: {what}."),
    )
}

fn unsupported(path: &str, what: impl fmt::Display) -> Error {
    Error::unsupported(
        PARAM,
        format!("`response_format.json_schema.schema` at `{path}`: {what}."),
    )
}

/// Keywords that only describe and are dropped from the canonical schema.
const ANNOTATIONS: &[&str] = &[
    "title",
    "description",
    "default",
    "examples",
    "$comment",
    "$schema",
    "deprecated",
    "readOnly",
    "writeOnly",
];

const TYPES: &[&str] = &[
    "object", "array", "string", "integer", "number", "boolean", "null",
];

/// The type a keyword constrains (`None`: not a type's keyword).
fn keyword_type(k: &str) -> Option<&'static str> {
    Some(match k {
        "properties" | "required" | "additionalProperties" => "object",
        "items" | "minItems" | "maxItems" => "array",
        "pattern" | "format" | "minLength" | "maxLength" => "string",
        "minimum" | "maximum" | "exclusiveMinimum" | "exclusiveMaximum" => "integer",
        _ => return None,
    })
}

/// Why a keyword is refused, when there is more to say than its name.
fn hint(k: &str) -> &'static str {
    match k {
        "oneOf" => " (use `anyOf`)",
        "allOf" => " (write the combined schema)",
        "prefixItems" => " (tuples are not supported)",
        "patternProperties" | "propertyNames" | "unevaluatedProperties" => {
            " (list the keys in `properties`)"
        }
        "multipleOf" => " (the grammar cannot count)",
        _ => "",
    }
}

/// The canonical schema of `response_format.json_schema.schema` (serialized), or why it
/// is refused.
pub fn canonical(schema: &Json) -> Result<String, Error> {
    let size = schema.text().len();
    if size > MAX_SCHEMA_BYTES {
        return Err(invalid(
            "#",
            format_args!(
                "the schema is {size} bytes long; at most {MAX_SCHEMA_BYTES} are accepted"
            ),
        ));
    }
    let Json::Object(root) = schema else {
        return Err(invalid(
            "#",
            format_args!("a schema must be an object, not {}", schema.kind()),
        ));
    };
    let mut c = Checker::default();
    for (key, prefix) in [("$defs", "#/$defs/"), ("definitions", "#/definitions/")] {
        let defs = root.iter().filter(|(k, _)| k == key).collect::<Vec<_>>();
        let Some((_, defs)) = defs.first() else {
            continue;
        };
        let Json::Object(defs) = defs else {
            return Err(invalid(
                &format!("#/{key}"),
                format_args!("`{key}` must be an object"),
            ));
        };
        for (name, def) in defs {
            if c.defs.len() >= MAX_DEFS {
                return Err(invalid(
                    &format!("#/{key}"),
                    format_args!("at most {MAX_DEFS} definitions are accepted"),
                ));
            }
            if name.len() > MAX_NAME_BYTES {
                return Err(invalid(
                    &format!("#/{key}"),
                    format_args!("a definition name is longer than {MAX_NAME_BYTES} bytes"),
                ));
            }
            let pointer = format!("{prefix}{}", name.replace('~', "~0").replace('/', "~1"));
            if c.index.insert(pointer.clone(), c.defs.len()).is_some() {
                return Err(invalid(
                    &format!("#/{key}"),
                    format_args!("the definition `{name}` is given twice"),
                ));
            }
            c.defs.push((pointer, def));
        }
    }
    let root_id = c.defs.len();
    c.current = root_id;
    let root_canon = c.node(schema, "#", 1, false, true)?;
    let mut canon_defs = Vec::with_capacity(c.defs.len());
    let defs = c.defs.clone();
    for (id, (pointer, def)) in defs.iter().enumerate() {
        c.current = id;
        canon_defs.push(c.node(def, pointer, 1, false, false)?);
    }
    c.check_cycles()?;
    // Only what the root reaches goes to the worker.
    let mut reached = vec![false; root_id + 1];
    let mut todo = vec![root_id];
    reached[root_id] = true;
    while let Some(n) = todo.pop() {
        for e in c.edges.iter().filter(|e| e.from == n) {
            if !reached[e.to] {
                reached[e.to] = true;
                todo.push(e.to);
            }
        }
    }
    let mut out_defs: Vec<(String, Json)> = canon_defs
        .into_iter()
        .enumerate()
        .filter(|(i, _)| reached[*i])
        .map(|(i, d)| (def_name(i), d))
        .collect();
    let self_ref = c.edges.iter().any(|e| e.to == root_id);
    let doc = if self_ref {
        out_defs.insert(0, ("root".into(), root_canon));
        Json::obj(vec![
            ("$ref", Json::str("#/$defs/root")),
            ("$defs", Json::Object(out_defs)),
        ])
    } else if out_defs.is_empty() {
        root_canon
    } else {
        let Json::Object(mut entries) = root_canon else {
            return Err(invalid("#", "the schema must be an object"));
        };
        entries.push(("$defs".into(), Json::Object(out_defs)));
        Json::Object(entries)
    };
    Ok(doc.text())
}

fn def_name(i: usize) -> String {
    format!("d{i}")
}

/// A `$ref` from a definition (or the root) to another: `guarded` when an object or an array
/// opens before it (the grammar consumes a character before recursing).
#[derive(Debug, Clone, Copy)]
struct Edge {
    from: usize,
    to: usize,
    guarded: bool,
}

#[derive(Default)]
struct Checker<'a> {
    /// Definitions by index: their JSON pointer and schema. The root is index `defs.len()`.
    defs: Vec<(String, &'a Json)>,
    index: HashMap<String, usize>,
    /// The definition being checked.
    current: usize,
    edges: Vec<Edge>,
    properties: usize,
    enum_values: usize,
    repeats: u64,
}

impl<'a> Checker<'a> {
    fn pointer(&self, id: usize) -> &str {
        self.defs.get(id).map_or("#", |(p, _)| p.as_str())
    }

    /// Fails on a cycle of unguarded references (a left-recursive grammar).
    fn check_cycles(&self) -> Result<(), Error> {
        let n = self.defs.len() + 1;
        let mut next: Vec<Vec<usize>> = vec![Vec::new(); n];
        for e in self.edges.iter().filter(|e| !e.guarded) {
            next[e.from].push(e.to);
        }
        // 0: unvisited, 1: on the path, 2: done.
        let mut state = vec![0u8; n];
        for start in 0..n {
            if state[start] != 0 {
                continue;
            }
            let mut path = vec![(start, 0usize)];
            state[start] = 1;
            while let Some(&mut (node, ref mut i)) = path.last_mut() {
                if let Some(&to) = next[node].get(*i) {
                    *i += 1;
                    match state[to] {
                        0 => {
                            state[to] = 1;
                            path.push((to, 0));
                        }
                        1 => {
                            let from = path.iter().position(|(p, _)| *p == to).unwrap_or(0);
                            let mut names: Vec<&str> =
                                path[from..].iter().map(|(p, _)| self.pointer(*p)).collect();
                            names.push(self.pointer(to));
                            return Err(invalid(
                                self.pointer(to),
                                format_args!(
                                    "`$ref` cycle with no object or array in between ({}): the \
                                     answer could never start",
                                    names.join(" → ")
                                ),
                            ));
                        }
                        _ => {}
                    }
                } else {
                    state[node] = 2;
                    path.pop();
                }
            }
        }
        Ok(())
    }

    fn repeat(&mut self, path: &str, key: &str, n: u64) -> Result<(), Error> {
        if n > MAX_REPEAT {
            return Err(invalid(
                path,
                format_args!("`{key}` is {n}; at most {MAX_REPEAT} is accepted"),
            ));
        }
        self.repeats += n;
        if self.repeats > MAX_TOTAL_REPEAT {
            return Err(invalid(
                path,
                format_args!(
                    "the repetition counts (minItems, maxItems, minLength, maxLength, pattern \
                     quantifiers) add up to more than {MAX_TOTAL_REPEAT}"
                ),
            ));
        }
        Ok(())
    }

    fn count_values(&mut self, path: &str, n: usize) -> Result<(), Error> {
        self.enum_values += n;
        if self.enum_values > MAX_TOTAL_ENUM_VALUES {
            return Err(invalid(
                path,
                format_args!(
                    "the schema holds more than {MAX_TOTAL_ENUM_VALUES} `enum` and `const` \
                     values"
                ),
            ));
        }
        Ok(())
    }

    /// The canonical form of the schema `v` at `path`, `depth` levels down its definition.
    fn node(
        &mut self,
        v: &'a Json,
        path: &str,
        depth: usize,
        guarded: bool,
        root: bool,
    ) -> Result<Json, Error> {
        if depth > MAX_DEPTH {
            return Err(invalid(
                path,
                format_args!("the schema nests deeper than {MAX_DEPTH} levels"),
            ));
        }
        let Json::Object(entries) = v else {
            return Err(invalid(
                path,
                format_args!("a schema must be an object, not {}", v.kind()),
            ));
        };
        let mut keys: HashMap<&str, &'a Json> = HashMap::new();
        for (k, val) in entries {
            if keys.insert(k.as_str(), val).is_some() {
                return Err(invalid(path, format_args!("the key `{k}` is given twice")));
            }
        }
        let mut constraints = Vec::new();
        for (k, _) in entries {
            let k = k.as_str();
            if ANNOTATIONS.contains(&k) {
                continue;
            }
            if k == "$defs" || k == "definitions" {
                if root {
                    continue;
                }
                return Err(unsupported(
                    path,
                    format_args!("`{k}` is only supported at the root of the schema"),
                ));
            }
            let known = matches!(k, "type" | "enum" | "const" | "anyOf" | "$ref")
                || keyword_type(k).is_some();
            if !known {
                return Err(unsupported(
                    path,
                    format_args!("the keyword `{k}` is not supported{}", hint(k)),
                ));
            }
            constraints.push(k);
        }
        for alone in ["$ref", "anyOf"] {
            if keys.contains_key(alone) {
                if let Some(other) = constraints.iter().find(|k| **k != alone) {
                    return Err(unsupported(
                        path,
                        format_args!("`{alone}` cannot be combined with `{other}`"),
                    ));
                }
            }
        }
        if let Some(r) = keys.get("$ref") {
            return self.reference(r, path, guarded);
        }
        if let Some(alts) = keys.get("anyOf") {
            let Json::Array(alts) = alts else {
                return Err(invalid(path, "`anyOf` must be an array of schemas"));
            };
            if alts.is_empty() {
                return Err(invalid(
                    path,
                    "`anyOf` must not be empty (nothing could match)",
                ));
            }
            if alts.len() > MAX_ANY_OF {
                return Err(invalid(
                    path,
                    format_args!("`anyOf` has more than {MAX_ANY_OF} branches"),
                ));
            }
            let mut out = Vec::with_capacity(alts.len());
            for (i, a) in alts.iter().enumerate() {
                out.push(self.node(a, &format!("{path}/anyOf/{i}"), depth + 1, guarded, false)?);
            }
            return Ok(Json::obj(vec![("anyOf", Json::Array(out))]));
        }
        let types = match keys.get("type") {
            None => None,
            Some(Json::String(t)) => Some(vec![t.as_str()]),
            Some(Json::Array(ts)) => {
                let mut out = Vec::with_capacity(ts.len());
                for t in ts {
                    let Json::String(t) = t else {
                        return Err(invalid(
                            path,
                            "`type` must be a string or an array of strings",
                        ));
                    };
                    if out.contains(&t.as_str()) {
                        return Err(invalid(
                            path,
                            format_args!("the type `{t}` is listed twice"),
                        ));
                    }
                    out.push(t.as_str());
                }
                if out.is_empty() {
                    return Err(invalid(path, "`type` must not be an empty list"));
                }
                if out.len() > MAX_ANY_OF {
                    return Err(invalid(
                        path,
                        format_args!("`type` lists more than {MAX_ANY_OF} types"),
                    ));
                }
                Some(out)
            }
            Some(_) => {
                return Err(invalid(
                    path,
                    "`type` must be a string or an array of strings",
                ));
            }
        };
        if let Some(types) = &types {
            if let Some(t) = types.iter().find(|t| !TYPES.contains(t)) {
                return Err(invalid(
                    path,
                    format_args!(
                        "unknown type `{t}` (object, array, string, integer, number, boolean \
                         or null)"
                    ),
                ));
            }
        }
        let values_key = ["enum", "const"].into_iter().find(|k| keys.contains_key(k));
        if let Some(vk) = values_key {
            if let Some(other) = constraints.iter().find(|k| **k != vk && **k != "type") {
                return Err(unsupported(
                    path,
                    format_args!("`{vk}` cannot be combined with `{other}`"),
                ));
            }
            return self.values(&keys, vk, types.as_deref(), path);
        }
        let Some(types) = types else {
            return Err(invalid(
                path,
                "a schema needs `type` (or `enum`, `const`, `anyOf`, `$ref`)",
            ));
        };
        for k in &constraints {
            if let Some(t) = keyword_type(k) {
                let applies = types.contains(&t) || (t == "integer" && types.contains(&"number"));
                if !applies {
                    return Err(invalid(
                        path,
                        format_args!(
                            "`{k}` applies to {t} values, and the type is {}",
                            types.join(" or ")
                        ),
                    ));
                }
            }
        }
        let mut alts = Vec::with_capacity(types.len());
        for t in &types {
            alts.push(self.typed(t, &keys, path, depth)?);
        }
        if alts.len() == 1 {
            Ok(alts.remove(0))
        } else {
            Ok(Json::obj(vec![("anyOf", Json::Array(alts))]))
        }
    }

    fn reference(&mut self, r: &Json, path: &str, guarded: bool) -> Result<Json, Error> {
        let Json::String(r) = r else {
            return Err(invalid(path, "`$ref` must be a string"));
        };
        let (to, target) = if r == "#" {
            (self.defs.len(), "#/$defs/root".to_string())
        } else if let Some(&i) = self.index.get(r.as_str()) {
            (i, format!("#/$defs/{}", def_name(i)))
        } else if r.starts_with("#/$defs/") || r.starts_with("#/definitions/") {
            return Err(invalid(
                path,
                format_args!("`$ref` `{r}` names no definition"),
            ));
        } else {
            return Err(unsupported(
                path,
                format_args!("`$ref` `{r}` is not supported: only `#` and `#/$defs/<name>` are"),
            ));
        };
        self.edges.push(Edge {
            from: self.current,
            to,
            guarded,
        });
        Ok(Json::obj(vec![("$ref", Json::String(target))]))
    }

    /// `enum` or `const`: scalars, each of the given type when there is one.
    fn values(
        &mut self,
        keys: &HashMap<&str, &'a Json>,
        key: &str,
        types: Option<&[&str]>,
        path: &str,
    ) -> Result<Json, Error> {
        if keys.contains_key("enum") && keys.contains_key("const") {
            return Err(unsupported(path, "`enum` cannot be combined with `const`"));
        }
        let values: Vec<&Json> = match (key, keys.get(key)) {
            ("enum", Some(Json::Array(vs))) => vs.iter().collect(),
            ("enum", _) => return Err(invalid(path, "`enum` must be an array")),
            (_, Some(v)) => vec![*v],
            (_, None) => Vec::new(),
        };
        if values.is_empty() {
            return Err(invalid(
                path,
                "`enum` must not be empty (nothing could match)",
            ));
        }
        if values.len() > MAX_ENUM_VALUES {
            return Err(invalid(
                path,
                format_args!(
                    "`enum` has {} values; at most {MAX_ENUM_VALUES} are accepted",
                    values.len()
                ),
            ));
        }
        self.count_values(path, values.len())?;
        for v in &values {
            let ty = match v {
                Json::Null => "null",
                Json::Bool(_) => "boolean",
                Json::String(_) => "string",
                Json::Number(n) if is_integer(n) => "integer",
                Json::Number(_) => "number",
                Json::Array(_) | Json::Object(_) => {
                    return Err(unsupported(
                        path,
                        format_args!(
                            "`{key}` values must be strings, numbers, booleans or null, not {}",
                            v.kind()
                        ),
                    ))
                }
            };
            if let Some(types) = types {
                let ok = types.contains(&ty) || (ty == "integer" && types.contains(&"number"));
                if !ok {
                    return Err(invalid(
                        path,
                        format_args!(
                            "the `{key}` value {} is not of type {}",
                            v.text(),
                            types.join(" or ")
                        ),
                    ));
                }
            }
        }
        Ok(if key == "const" {
            Json::obj(vec![("const", values[0].clone())])
        } else {
            Json::obj(vec![(
                "enum",
                Json::Array(values.into_iter().cloned().collect()),
            )])
        })
    }

    /// The canonical schema of one type `t` of a node, from its keywords.
    fn typed(
        &mut self,
        t: &str,
        keys: &HashMap<&str, &'a Json>,
        path: &str,
        depth: usize,
    ) -> Result<Json, Error> {
        let ty = ("type", Json::str(t));
        match t {
            "object" => self.object(keys, path, depth),
            "array" => {
                let mut out = vec![ty];
                match keys.get("items") {
                    None => {}
                    Some(Json::Array(_)) => {
                        return Err(unsupported(
                            path,
                            "`items` as an array (a tuple) is not supported",
                        ))
                    }
                    Some(items) => out.push((
                        "items",
                        self.node(items, &format!("{path}/items"), depth + 1, true, false)?,
                    )),
                }
                self.counts(keys, path, "minItems", "maxItems", &mut out)?;
                Ok(Json::obj(out))
            }
            "string" => {
                let mut out = vec![ty];
                let groups = [
                    keys.contains_key("pattern"),
                    keys.contains_key("format"),
                    keys.contains_key("minLength") || keys.contains_key("maxLength"),
                ];
                if groups.iter().filter(|g| **g).count() > 1 {
                    return Err(unsupported(
                        path,
                        "`pattern`, `format` and `minLength`/`maxLength` cannot be combined",
                    ));
                }
                if let Some(p) = keys.get("pattern") {
                    let Json::String(p) = p else {
                        return Err(invalid(path, "`pattern` must be a string"));
                    };
                    let p = self.pattern(p, path)?;
                    out.push(("pattern", Json::String(p)));
                }
                if let Some(f) = keys.get("format") {
                    match f {
                        Json::String(f)
                            if ["date", "time", "date-time", "uuid"].contains(&f.as_str()) =>
                        {
                            out.push(("format", Json::str(f)));
                        }
                        Json::String(f) => {
                            return Err(unsupported(
                                path,
                                format_args!(
                                "the format `{f}` is not supported (date, time, date-time, uuid)"
                            ),
                            ))
                        }
                        _ => return Err(invalid(path, "`format` must be a string")),
                    }
                }
                self.counts(keys, path, "minLength", "maxLength", &mut out)?;
                Ok(Json::obj(out))
            }
            "integer" => self.integer(keys, path),
            "number" => {
                // The converter has no bounds for numbers.
                if let Some(k) = ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"]
                    .into_iter()
                    .find(|k| keys.contains_key(k))
                {
                    return Err(unsupported(
                        path,
                        format_args!("`{k}` is supported on integers only, not on numbers"),
                    ));
                }
                Ok(Json::obj(vec![ty]))
            }
            _ => Ok(Json::obj(vec![ty])),
        }
    }

    fn object(
        &mut self,
        keys: &HashMap<&str, &'a Json>,
        path: &str,
        depth: usize,
    ) -> Result<Json, Error> {
        let additional = match keys.get("additionalProperties") {
            None => None,
            Some(Json::Bool(b)) => Some(*b),
            Some(_) => {
                return Err(unsupported(
                    path,
                    "`additionalProperties` must be true or false (a schema is not supported)",
                ))
            }
        };
        let mut props = Vec::new();
        match keys.get("properties") {
            None => {}
            Some(Json::Object(entries)) => {
                if entries.len() > MAX_PROPERTIES {
                    return Err(invalid(
                        path,
                        format_args!(
                            "an object has {} properties; at most {MAX_PROPERTIES} are accepted",
                            entries.len()
                        ),
                    ));
                }
                self.properties += entries.len();
                if self.properties > MAX_TOTAL_PROPERTIES {
                    return Err(invalid(
                        path,
                        format_args!("the schema has more than {MAX_TOTAL_PROPERTIES} properties"),
                    ));
                }
                for (name, p) in entries {
                    if name.len() > MAX_NAME_BYTES {
                        return Err(invalid(
                            path,
                            format_args!("a property name is longer than {MAX_NAME_BYTES} bytes"),
                        ));
                    }
                    if props.iter().any(|(n, _)| n == name) {
                        return Err(invalid(
                            path,
                            format_args!("the property `{name}` is given twice"),
                        ));
                    }
                    let sub = format!(
                        "{path}/properties/{}",
                        name.replace('~', "~0").replace('/', "~1")
                    );
                    props.push((name.clone(), self.node(p, &sub, depth + 1, true, false)?));
                }
            }
            Some(_) => return Err(invalid(path, "`properties` must be an object")),
        }
        let mut required: Vec<String> = Vec::new();
        match keys.get("required") {
            None => {}
            Some(Json::Array(names)) => {
                for n in names {
                    let Json::String(n) = n else {
                        return Err(invalid(path, "`required` must be an array of strings"));
                    };
                    if required.contains(n) {
                        return Err(invalid(path, format_args!("`required` names `{n}` twice")));
                    }
                    if !props.iter().any(|(p, _)| p == n) {
                        return Err(invalid(
                            path,
                            format_args!("`required` names `{n}`, which is not in `properties`"),
                        ));
                    }
                    required.push(n.clone());
                }
            }
            Some(_) => return Err(invalid(path, "`required` must be an array of strings")),
        }
        let mut out = vec![("type", Json::str("object"))];
        if props.is_empty() && additional != Some(false) {
            // Any object.
            return Ok(Json::obj(out));
        }
        out.push(("properties", Json::Object(props)));
        if !required.is_empty() {
            out.push((
                "required",
                Json::Array(required.into_iter().map(Json::String).collect()),
            ));
        }
        out.push(("additionalProperties", Json::Bool(additional == Some(true))));
        Ok(Json::obj(out))
    }

    /// `minItems`/`maxItems` or `minLength`/`maxLength`.
    fn counts(
        &mut self,
        keys: &HashMap<&str, &'a Json>,
        path: &str,
        min_key: &'static str,
        max_key: &'static str,
        out: &mut Vec<(&'static str, Json)>,
    ) -> Result<(), Error> {
        let mut get = |key: &'static str| -> Result<Option<u64>, Error> {
            match keys.get(key) {
                None => Ok(None),
                Some(Json::Number(n)) => match count(n) {
                    Some(v) => {
                        self.repeat(path, key, v)?;
                        Ok(Some(v))
                    }
                    None => Err(invalid(
                        path,
                        format_args!("`{key}` must be a non-negative integer"),
                    )),
                },
                Some(_) => Err(invalid(
                    path,
                    format_args!("`{key}` must be a non-negative integer"),
                )),
            }
        };
        let min = get(min_key)?;
        let max = get(max_key)?;
        if let (Some(lo), Some(hi)) = (min, max) {
            if lo > hi {
                return Err(invalid(
                    path,
                    format_args!("`{min_key}` ({lo}) is greater than `{max_key}` ({hi})"),
                ));
            }
        }
        if let Some(lo) = min.filter(|v| *v > 0) {
            out.push((min_key, Json::Number(lo.into())));
        }
        if let Some(hi) = max {
            out.push((max_key, Json::Number(hi.into())));
        }
        Ok(())
    }

    fn integer(&mut self, keys: &HashMap<&str, &'a Json>, path: &str) -> Result<Json, Error> {
        let num = |key: &str| -> Result<Option<f64>, Error> {
            match keys.get(key) {
                None => Ok(None),
                Some(Json::Number(n)) => match n.as_f64() {
                    Some(f) if f.is_finite() => Ok(Some(f)),
                    _ => Err(invalid(path, format_args!("`{key}` must be a number"))),
                },
                Some(_) => Err(invalid(path, format_args!("`{key}` must be a number"))),
            }
        };
        let bound = f64::from(1u32 << 26) * f64::from(1u32 << 27); // 2^53
        let mut lo: Option<f64> = None;
        let mut hi: Option<f64> = None;
        if let Some(m) = num("minimum")? {
            lo = Some(m.ceil());
        }
        if let Some(m) = num("exclusiveMinimum")? {
            let v = m.floor() + 1.0;
            lo = Some(lo.map_or(v, |l| l.max(v)));
        }
        if let Some(m) = num("maximum")? {
            hi = Some(m.floor());
        }
        if let Some(m) = num("exclusiveMaximum")? {
            let v = m.ceil() - 1.0;
            hi = Some(hi.map_or(v, |h| h.min(v)));
        }
        for v in [lo, hi].into_iter().flatten() {
            if v.abs() > bound {
                return Err(invalid(
                    path,
                    format_args!("integer bounds must lie within ±{MAX_INT_BOUND}"),
                ));
            }
        }
        if let (Some(l), Some(h)) = (lo, hi) {
            if l > h {
                return Err(invalid(
                    path,
                    "no integer lies between the minimum and the maximum",
                ));
            }
        }
        let mut out = vec![("type", Json::str("integer"))];
        if let Some(l) = lo {
            out.push(("minimum", Json::Number((l as i64).into())));
        }
        if let Some(h) = hi {
            out.push(("maximum", Json::Number((h as i64).into())));
        }
        Ok(Json::obj(out))
    }

    /// A `pattern` rewritten for llama.cpp's converter (see [`Pattern`]).
    fn pattern(&mut self, p: &str, path: &str) -> Result<String, Error> {
        if p.len() > MAX_PATTERN_BYTES {
            return Err(invalid(
                path,
                format_args!("`pattern` is longer than {MAX_PATTERN_BYTES} bytes"),
            ));
        }
        let Some(body) = p.strip_prefix('^').and_then(|b| b.strip_suffix('$')) else {
            return Err(unsupported(
                path,
                "`pattern` must be anchored: start with `^` and end with `$`",
            ));
        };
        let mut parser = Pattern {
            chars: body.chars().collect(),
            at: 0,
            repeats: Vec::new(),
        };
        let out = parser
            .alternatives(0)
            .map_err(|why| unsupported(path, format_args!("`pattern` {p:?}: {why}")))?;
        if parser.at < parser.chars.len() {
            return Err(unsupported(
                path,
                format_args!("`pattern` {p:?}: unbalanced `)`"),
            ));
        }
        for n in parser.repeats {
            self.repeat(path, "pattern", n)?;
        }
        Ok(format!("^{out}$"))
    }
}

fn is_integer(n: &serde_json::Number) -> bool {
    n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
}

fn count(n: &serde_json::Number) -> Option<u64> {
    n.as_u64().or_else(|| {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 1e15)
            .map(|f| f as u64)
    })
}

/// Characters a JSON string cannot hold as they are (the grammar writes pattern characters
/// unescaped), and the line separators JavaScript's `.` excludes.
fn unsafe_char(c: u32) -> bool {
    c < 0x20 || c == u32::from(b'"') || c == u32::from(b'\\')
}

/// Ranges of code points, sorted and disjoint.
type Ranges = Vec<(u32, u32)>;

fn normalize(mut r: Ranges) -> Ranges {
    r.sort_unstable();
    let mut out: Ranges = Vec::with_capacity(r.len());
    for (lo, hi) in r {
        match out.last_mut() {
            Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
            _ => out.push((lo, hi)),
        }
    }
    out
}

/// `r` without the characters a JSON string cannot hold unescaped.
fn safe_ranges(r: Ranges) -> Ranges {
    let mut out = Vec::new();
    for (lo, hi) in normalize(r) {
        let mut start = lo;
        for c in lo..=hi.min(0x5c) {
            if unsafe_char(c) {
                if start < c {
                    out.push((start, c - 1));
                }
                start = c + 1;
            }
        }
        if start <= hi {
            out.push((start, hi));
        }
    }
    out
}

const DIGITS: &[(u32, u32)] = &[(0x30, 0x39)];
const WORD: &[(u32, u32)] = &[(0x30, 0x39), (0x41, 0x5a), (0x5f, 0x5f), (0x61, 0x7a)];

/// A class written for the converter: ASCII letters and digits as they are, other ASCII
/// characters as `\xHH`, others as `\uHHHH` / `\UHHHHHHHH` (GBNF's escapes).
fn class_char(c: u32) -> String {
    match char::from_u32(c) {
        Some(ch) if ch.is_ascii_alphanumeric() => ch.to_string(),
        _ if c < 0x80 => format!("\\x{c:02X}"),
        _ if c <= 0xffff => format!("\\u{c:04X}"),
        _ => format!("\\U{c:08X}"),
    }
}

fn class_text(ranges: &[(u32, u32)], negated: bool) -> String {
    let mut s = String::from(if negated { "[^" } else { "[" });
    for &(lo, hi) in ranges {
        s.push_str(&class_char(lo));
        if hi > lo {
            s.push('-');
            s.push_str(&class_char(hi));
        }
    }
    s.push(']');
    s
}

/// A regular-expression subset (ECMAScript syntax) parsed and written again in the form
/// llama.cpp's pattern converter reads exactly: literals, `.`, classes (`[a-z]`, `[^,]`,
/// `\d`, `\w`), groups (`(…)`, `(?:…)`), alternatives and the quantifiers `* + ? {n}
/// {n,} {n,m}` (lazy ones read as greedy: same language). Every quantified atom is written
/// as a group, classes are written with GBNF escapes, and the characters a JSON string
/// cannot hold unescaped are taken out of `.` and classes (a literal one is refused).
struct Pattern {
    chars: Vec<char>,
    at: usize,
    /// Repetition counts met, for the schema's budget.
    repeats: Vec<u64>,
}

enum Atom {
    /// Written as it goes in a literal run.
    Literal(String),
    Class(String),
    Group(String),
}

impl Pattern {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn alternatives(&mut self, depth: usize) -> Result<String, String> {
        if depth > MAX_PATTERN_DEPTH {
            return Err(format!(
                "groups nest deeper than {MAX_PATTERN_DEPTH} levels"
            ));
        }
        let mut out = self.sequence(depth)?;
        while self.peek() == Some('|') {
            self.at += 1;
            out.push('|');
            out.push_str(&self.sequence(depth)?);
        }
        Ok(out)
    }

    fn sequence(&mut self, depth: usize) -> Result<String, String> {
        let mut out = String::new();
        while let Some(c) = self.peek() {
            if c == '|' || c == ')' {
                break;
            }
            let atom = self.atom(depth)?;
            let quant = self.quantifier()?;
            match (atom, quant) {
                (Atom::Literal(s) | Atom::Class(s) | Atom::Group(s), None) => out.push_str(&s),
                // The converter would repeat the whole literal run before a quantifier.
                (Atom::Literal(s), Some(q)) => {
                    out.push('(');
                    out.push_str(&s);
                    out.push(')');
                    out.push_str(&q);
                }
                (Atom::Class(s) | Atom::Group(s), Some(q)) => {
                    out.push_str(&s);
                    out.push_str(&q);
                }
            }
        }
        if out.is_empty() {
            return Err("an empty alternative or group is not supported".into());
        }
        Ok(out)
    }

    fn atom(&mut self, depth: usize) -> Result<Atom, String> {
        let Some(c) = self.peek() else {
            return Err("unexpected end".into());
        };
        self.at += 1;
        match c {
            '(' => {
                if self.peek() == Some('?') {
                    if self.chars.get(self.at + 1) == Some(&':') {
                        self.at += 2;
                    } else {
                        return Err(
                            "lookarounds and named groups are not supported (only `(?:…)`)".into(),
                        );
                    }
                }
                let inner = self.alternatives(depth + 1)?;
                if self.peek() != Some(')') {
                    return Err("unbalanced `(`".into());
                }
                self.at += 1;
                Ok(Atom::Group(format!("({inner})")))
            }
            '.' => {
                // JavaScript's `.` excludes line terminators; JSON strings exclude the rest.
                let excluded = normalize(vec![
                    (0, 0x1f),
                    (0x22, 0x22),
                    (0x5c, 0x5c),
                    (0x2028, 0x2029),
                ]);
                Ok(Atom::Class(class_text(&excluded, true)))
            }
            '[' => self.class(),
            '\\' => match self.escape()? {
                Escaped::Char(c) => literal(c),
                Escaped::Class(r) => Ok(Atom::Class(class_text(r, false))),
            },
            '^' | '$' => Err("anchors are only supported at the start and the end".into()),
            '*' | '+' | '?' | '{' => Err(format!("nothing to repeat before `{c}`")),
            ']' | '}' => Err(format!("escape a literal `{c}` as `\\{c}`")),
            c => literal(u32::from(c)),
        }
    }

    fn quantifier(&mut self) -> Result<Option<String>, String> {
        let q = match self.peek() {
            Some(c @ ('*' | '+' | '?')) => {
                self.at += 1;
                c.to_string()
            }
            Some('{') => {
                let start = self.at;
                let close = self.chars[start..]
                    .iter()
                    .position(|c| *c == '}')
                    .ok_or("unterminated `{`")?;
                let inside: String = self.chars[start + 1..start + close].iter().collect();
                self.at = start + close + 1;
                let num = |s: &str| -> Result<u64, String> {
                    if s.is_empty() || s.len() > 6 || !s.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(format!("invalid repetition `{{{inside}}}`"));
                    }
                    s.parse()
                        .map_err(|_| format!("invalid repetition `{{{inside}}}`"))
                };
                let (lo, hi) = match inside.split_once(',') {
                    None => {
                        let n = num(&inside)?;
                        (n, Some(n))
                    }
                    Some((a, "")) => (num(a)?, None),
                    Some((a, b)) => (num(a)?, Some(num(b)?)),
                };
                if let Some(h) = hi {
                    if lo > h {
                        return Err(format!("`{{{inside}}}` repeats at least more than at most"));
                    }
                }
                let most = hi.unwrap_or(lo);
                if most > MAX_REPEAT {
                    return Err(format!("a repetition of {most} is more than {MAX_REPEAT}"));
                }
                self.repeats.push(most);
                match hi {
                    Some(h) if h == lo => format!("{{{lo}}}"),
                    Some(h) => format!("{{{lo},{h}}}"),
                    None => format!("{{{lo},}}"),
                }
            }
            _ => return Ok(None),
        };
        // Lazy and possessive forms match the same strings.
        if self.peek() == Some('?') {
            self.at += 1;
        }
        if matches!(self.peek(), Some('*' | '+' | '?' | '{')) {
            return Err("a quantifier cannot follow another".into());
        }
        Ok(Some(q))
    }

    fn escape(&mut self) -> Result<Escaped, String> {
        let Some(c) = self.peek() else {
            return Err("trailing backslash".into());
        };
        self.at += 1;
        match c {
            'd' => Ok(Escaped::Class(DIGITS)),
            'w' => Ok(Escaped::Class(WORD)),
            'x' | 'u' => {
                let n = if c == 'x' { 2 } else { 4 };
                let hex: String = self.chars.iter().skip(self.at).take(n).collect();
                if hex.len() != n || !hex.chars().all(|h| h.is_ascii_hexdigit()) {
                    return Err(format!("invalid escape `\\{c}{hex}`"));
                }
                self.at += n;
                u32::from_str_radix(&hex, 16)
                    .map(Escaped::Char)
                    .map_err(|_| format!("invalid escape `\\{c}{hex}`"))
            }
            c if c.is_ascii_punctuation() => Ok(Escaped::Char(u32::from(c))),
            c => Err(format!("the escape `\\{c}` is not supported")),
        }
    }

    fn class(&mut self) -> Result<Atom, String> {
        let negated = self.peek() == Some('^');
        if negated {
            self.at += 1;
        }
        let mut ranges: Ranges = Vec::new();
        let mut first = true;
        loop {
            let Some(c) = self.peek() else {
                return Err("unterminated `[`".into());
            };
            if c == ']' && !first {
                self.at += 1;
                break;
            }
            first = false;
            self.at += 1;
            let lo = match c {
                '\\' => match self.escape()? {
                    Escaped::Char(c) => c,
                    Escaped::Class(r) => {
                        ranges.extend_from_slice(r);
                        continue;
                    }
                },
                '[' => return Err("escape a literal `[` in a class as `\\[`".into()),
                c => u32::from(c),
            };
            let dash =
                self.peek() == Some('-') && self.chars.get(self.at + 1).is_some_and(|c| *c != ']');
            if !dash {
                ranges.push((lo, lo));
                continue;
            }
            self.at += 1;
            let Some(h) = self.peek() else {
                return Err("unterminated `[`".into());
            };
            self.at += 1;
            let hi = match h {
                '\\' => match self.escape()? {
                    Escaped::Char(c) => c,
                    Escaped::Class(_) => return Err("a range cannot end with a class".into()),
                },
                c => u32::from(c),
            };
            if hi < lo {
                return Err("a range in a class goes backwards".into());
            }
            ranges.push((lo, hi));
        }
        if negated {
            ranges.extend_from_slice(&[(0, 0x1f), (0x22, 0x22), (0x5c, 0x5c)]);
            let ranges = normalize(ranges);
            if ranges == [(0, 0x10ffff)] {
                return Err("the class matches nothing".into());
            }
            Ok(Atom::Class(class_text(&ranges, true)))
        } else {
            let ranges = safe_ranges(ranges);
            if ranges.is_empty() {
                return Err(
                    "the class holds only quotes, backslashes or control characters".into(),
                );
            }
            Ok(Atom::Class(class_text(&ranges, false)))
        }
    }
}

enum Escaped {
    Char(u32),
    Class(&'static [(u32, u32)]),
}

/// One literal character, written so the converter reads it as that character.
fn literal(c: u32) -> Result<Atom, String> {
    if unsafe_char(c) {
        return Err(
            "quotes, backslashes and control characters are not supported in patterns".into(),
        );
    }
    let Some(ch) = char::from_u32(c) else {
        return Err(format!("invalid character U+{c:04X}"));
    };
    Ok(Atom::Literal(if "|.()[]{}*+?^$".contains(ch) {
        format!("\\{ch}")
    } else if c < 0x20 || c == 0x7f {
        format!("\\x{c:02X}")
    } else {
        ch.to_string()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::{Duration, Instant};

    fn parse(v: serde_json::Value) -> Json {
        serde_json::from_value(v).expect("json")
    }

    fn ok(v: serde_json::Value) -> serde_json::Value {
        let s = canonical(&parse(v)).expect("accepted");
        serde_json::from_str(&s).expect("canonical json")
    }

    fn err(v: serde_json::Value) -> Error {
        match canonical(&parse(v)) {
            Ok(s) => panic!("accepted: {s}"),
            Err(e) => {
                assert_eq!(e.param(), "response_format");
                e
            }
        }
    }

    fn says(v: serde_json::Value, needle: &str) {
        let e = err(v);
        assert!(e.to_string().contains(needle), "{e} lacks {needle:?}");
    }

    #[test]
    fn keeps_property_order_and_drops_annotations() {
        // serde_json's own maps would sort the keys: the schema is read as text.
        let schema = r#"{
            "title": "Ticket", "description": "x", "type": "object",
            "properties": {
                "zeta": {"type": "string", "description": "first"},
                "alpha": {"type": ["integer", "null"], "minimum": 1.5, "exclusiveMaximum": 10},
                "kind": {"type": "string", "enum": ["a", "b"], "title": "Kind"}
            },
            "required": ["zeta", "alpha", "kind"],
            "additionalProperties": false
        }"#;
        let s = canonical(&serde_json::from_str(schema).expect("json")).expect("ok");
        assert!(
            s.find("zeta").expect("zeta") < s.find("alpha").expect("alpha"),
            "{s}"
        );
        assert_eq!(
            s,
            r#"{"type":"object","properties":{"zeta":{"type":"string"},"alpha":{"anyOf":[{"type":"integer","minimum":2,"maximum":9},{"type":"null"}]},"kind":{"enum":["a","b"]}},"required":["zeta","alpha","kind"],"additionalProperties":false}"#
        );
    }

    #[test]
    fn defs_are_renamed_and_unused_ones_dropped() {
        let v = ok(json!({
            "$defs": {"Item": {"type": "object", "properties": {"n": {"type": "integer"}}},
                      "Unused": {"type": "string"},
                      "a_b": {"type": "boolean"}},
            "type": "array", "items": {"$ref": "#/$defs/Item"}, "minItems": 1, "maxItems": 3,
        }));
        assert_eq!(v["items"], json!({"$ref": "#/$defs/d0"}));
        assert_eq!(v["$defs"].as_object().map(|o| o.len()), Some(1));
        assert_eq!(v["minItems"], 1);
        // Recursion through an object (a tree) is fine; so is the root referencing itself.
        let v = ok(json!({
            "type": "object",
            "properties": {"name": {"type": "string"}, "children": {"type": "array", "items": {"$ref": "#"}}},
            "required": ["name", "children"], "additionalProperties": false,
        }));
        assert_eq!(v["$ref"], "#/$defs/root");
        assert_eq!(
            v["$defs"]["root"]["properties"]["children"]["items"]["$ref"],
            "#/$defs/root"
        );
        let v = ok(json!({"definitions": {"x": {"type": "null"}}, "$ref": "#/definitions/x"}));
        assert_eq!(v["$ref"], "#/$defs/d0");
    }

    #[test]
    fn json_object_and_plain_objects() {
        assert_eq!(ok(json!({"type": "object"})), json!({"type": "object"}));
        assert_eq!(
            ok(json!({"type": "object", "additionalProperties": false})),
            json!({"type": "object", "properties": {}, "additionalProperties": false})
        );
        assert_eq!(ANY_OBJECT, r#"{"type":"object"}"#);
    }

    #[test]
    fn unsupported_keywords_are_named() {
        for (schema, needle) in [
            (
                json!({"oneOf": [{"type": "string"}]}),
                "`oneOf` is not supported (use `anyOf`)",
            ),
            (json!({"allOf": []}), "`allOf`"),
            (json!({"not": {"type": "string"}}), "`not`"),
            (
                json!({"type": "object", "patternProperties": {}}),
                "`patternProperties`",
            ),
            (
                json!({"type": "array", "uniqueItems": true}),
                "`uniqueItems`",
            ),
            (json!({"type": "number", "multipleOf": 2}), "`multipleOf`"),
            (
                json!({"type": "number", "minimum": 0}),
                "`minimum` is supported on integers only",
            ),
            (
                json!({"type": "string", "format": "email"}),
                "the format `email` is not supported",
            ),
            (
                json!({"type": "array", "items": [{"type": "string"}]}),
                "tuple",
            ),
            (
                json!({"type": "object", "additionalProperties": {"type": "string"}}),
                "`additionalProperties` must be true or false",
            ),
            (
                json!({"$ref": "http://example.com/s.json"}),
                "only `#` and `#/$defs/<name>`",
            ),
            (json!({"$ref": "#/properties/a"}), "only `#`"),
            (
                json!({"$ref": "#/$defs/a", "type": "string"}),
                "`$ref` cannot be combined with `type`",
            ),
            (
                json!({"anyOf": [{"type": "string"}], "minLength": 1}),
                "`anyOf` cannot be combined",
            ),
            (
                json!({"type": "object", "properties": {"a": {"$defs": {}, "type": "string"}}}),
                "only supported at the root",
            ),
            (json!({"enum": [{"a": 1}]}), "`enum` values must be strings"),
            (
                json!({"type": "string", "enum": ["a"], "maxLength": 2}),
                "`enum` cannot be combined with `maxLength`",
            ),
            (
                json!({"type": "string", "pattern": "^a$", "format": "date"}),
                "cannot be combined",
            ),
            (
                json!({"type": "string", "pattern": "[0-9]+"}),
                "must be anchored",
            ),
            (
                json!({"type": "string", "pattern": "^(?=a)$"}),
                "lookarounds",
            ),
            (
                json!({"type": "string", "pattern": "^\\s+$"}),
                "the escape `\\s` is not supported",
            ),
            (
                json!({"type": "string", "pattern": "^a\"b$"}),
                "quotes, backslashes",
            ),
            (
                json!({"type": "string", "pattern": "^a\\\\b$"}),
                "quotes, backslashes",
            ),
            (
                json!({"type": "string", "pattern": "^[\"\\\\]$"}),
                "only quotes",
            ),
            (
                json!({"type": "string", "pattern": "^a{2000}$"}),
                "more than 1000",
            ),
            (
                json!({"type": "string", "pattern": "^(a|)$"}),
                "empty alternative",
            ),
            (
                json!({"type": "string", "pattern": "^a**$"}),
                "cannot follow another",
            ),
            (json!({"type": "string", "pattern": "^(a$"}), "unbalanced"),
        ] {
            let e = err(schema.clone());
            assert!(e.to_string().contains(needle), "{schema}: {e}");
        }
        let e = err(json!({"oneOf": []}));
        assert_eq!(e.code(), "unsupported_parameter");
        assert_eq!(
            e.to_string(),
            "`response_format.json_schema.schema` at `#`: the keyword `oneOf` is not supported (use `anyOf`)."
        );
    }

    #[test]
    fn malformed_and_contradictory_schemas() {
        for (schema, needle) in [
            (json!(true), "a schema must be an object, not a boolean"),
            (json!({}), "a schema needs `type`"),
            (json!({"type": "text"}), "unknown type `text`"),
            (json!({"type": []}), "must not be an empty list"),
            (json!({"type": ["string", "string"]}), "listed twice"),
            (json!({"enum": []}), "`enum` must not be empty"),
            (json!({"anyOf": []}), "`anyOf` must not be empty"),
            (
                json!({"type": "array", "minItems": 3, "maxItems": 2}),
                "`minItems` (3) is greater than `maxItems` (2)",
            ),
            (
                json!({"type": "string", "minLength": 5, "maxLength": 1}),
                "`minLength` (5) is greater",
            ),
            (
                json!({"type": "array", "minItems": -1}),
                "non-negative integer",
            ),
            (
                json!({"type": "array", "maxItems": 1.5}),
                "non-negative integer",
            ),
            (
                json!({"type": "integer", "minimum": 5, "maximum": 4}),
                "no integer lies between",
            ),
            (
                json!({"type": "integer", "exclusiveMinimum": 1, "exclusiveMaximum": 2}),
                "no integer lies between",
            ),
            (json!({"type": "integer", "minimum": 1e300}), "within ±"),
            (
                json!({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["b"]}),
                "`required` names `b`, which is not in `properties`",
            ),
            (
                json!({"type": "object", "required": ["a"]}),
                "not in `properties`",
            ),
            (
                json!({"type": "string", "minimum": 1}),
                "`minimum` applies to integer values, and the type is string",
            ),
            (
                json!({"type": "integer", "enum": [1, "a"]}),
                "the `enum` value \"a\" is not of type integer",
            ),
            (
                json!({"type": "boolean", "const": 1}),
                "not of type boolean",
            ),
            (json!({"$ref": "#/$defs/missing"}), "names no definition"),
            (json!({"type": "string", "pattern": "^[z-a]$"}), "backwards"),
        ] {
            let e = err(schema.clone());
            assert!(e.to_string().contains(needle), "{schema}: {e}");
        }
        // A repeated key is refused (serde_json's Value would keep the last one).
        let j: Json =
            serde_json::from_str(r#"{"type": "string", "type": "integer"}"#).expect("json");
        let e = canonical(&j).expect_err("refused");
        assert!(e.to_string().contains("`type` is given twice"), "{e}");
    }

    #[test]
    fn unguarded_ref_cycles_are_refused() {
        says(
            json!({"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"anyOf": [{"$ref": "#/$defs/a"}, {"type": "null"}]}},
                   "$ref": "#/$defs/a"}),
            "`$ref` cycle with no object or array in between (#/$defs/a → #/$defs/b → #/$defs/a)",
        );
        says(
            json!({"anyOf": [{"$ref": "#"}, {"type": "string"}]}),
            "`$ref` cycle",
        );
        says(
            json!({"$defs": {"a": {"$ref": "#/$defs/a"}}, "type": "null"}),
            "`$ref` cycle",
        );
        // Through an array it is a grammar like any other.
        ok(
            json!({"$defs": {"a": {"anyOf": [{"type": "array", "items": {"$ref": "#/$defs/a"}}, {"type": "integer"}]}},
                  "$ref": "#/$defs/a"}),
        );
    }

    #[test]
    fn patterns_are_rewritten_for_the_converter() {
        let pat = |p: &str| -> String {
            let v = ok(json!({"type": "string", "pattern": p}));
            v["pattern"].as_str().expect("pattern").to_string()
        };
        assert_eq!(pat("^\\d{5}$"), "^[0-9]{5}$");
        assert_eq!(pat("^[A-Z]{2}-\\d+$"), "^[A-Z]{2}-[0-9]+$");
        assert_eq!(pat("^(?:ab|c)?x\\.y*?$"), "^(ab|c)?x\\.(y)*$");
        assert_eq!(pat("^a\\.{2,3}$"), "^a(\\.){2,3}$");
        assert_eq!(pat("^[^,]+$"), "^[^\\x00-\\x1F\\x22\\x2C\\x5C]+$");
        assert_eq!(pat("^.$"), "^[^\\x00-\\x1F\\x22\\x5C\\u2028-\\u2029]$");
        assert_eq!(pat("^[ -~]$"), "^[\\x20-\\x21\\x23-\\x5B\\x5D-\\x7E]$");
        assert_eq!(pat("^[éà-ç]+$"), "^[\\u00E0-\\u00E7\\u00E9]+$");
        assert_eq!(pat("^\\w{1,3}$"), "^[0-9A-Z\\x5Fa-z]{1,3}$");
        assert_eq!(pat("^Mairie de (Lyon|Paris)$"), "^Mairie de (Lyon|Paris)$");
        assert_eq!(pat("^[-a]$"), "^[\\x2Da]$");
    }

    #[test]
    fn hostile_schemas_are_refused_quickly() {
        let quick = |schema: Json, needle: &str| {
            let t = Instant::now();
            let e = canonical(&schema).expect_err("refused");
            assert!(
                t.elapsed() < Duration::from_secs(1),
                "{needle}: {:?}",
                t.elapsed()
            );
            assert!(e.to_string().contains(needle), "{e}");
        };
        // Depth 1000 (built directly: a request body this deep is already refused by the
        // JSON parser's own recursion limit).
        let mut deep = Json::obj(vec![("type", Json::str("string"))]);
        for _ in 0..1000 {
            deep = Json::obj(vec![("type", Json::str("array")), ("items", deep)]);
        }
        quick(deep, "deeper than 16 levels");
        let mut deep = Json::obj(vec![("type", Json::str("null"))]);
        for _ in 0..1000 {
            deep = Json::obj(vec![("anyOf", Json::Array(vec![deep]))]);
        }
        quick(deep, "deeper than 16 levels");
        // 100 000 enum values: over the size bound before anything else.
        let values: Vec<Json> = (0..100_000)
            .map(|i| Json::String(format!("v{i}")))
            .collect();
        quick(Json::obj(vec![("enum", Json::Array(values))]), "bytes long");
        let values: Vec<Json> = (0..600).map(|i| Json::Number(i.into())).collect();
        quick(
            Json::obj(vec![("enum", Json::Array(values))]),
            "at most 500 are accepted",
        );
        // Many properties, many definitions, a huge repetition total.
        let props: Vec<(String, Json)> = (0..300)
            .map(|i| {
                (
                    format!("p{i}"),
                    Json::obj(vec![("type", Json::str("null"))]),
                )
            })
            .collect();
        quick(
            Json::obj(vec![
                ("type", Json::str("object")),
                ("properties", Json::Object(props)),
            ]),
            "at most 256 are accepted",
        );
        let defs: Vec<(String, Json)> = (0..65)
            .map(|i| {
                (
                    format!("d{i}"),
                    Json::obj(vec![("type", Json::str("null"))]),
                )
            })
            .collect();
        quick(
            Json::obj(vec![
                ("$defs", Json::Object(defs)),
                ("type", Json::str("null")),
            ]),
            "at most 64 definitions",
        );
        let props: Vec<(String, Json)> = (0..20)
            .map(|i| {
                (
                    format!("p{i}"),
                    Json::obj(vec![
                        ("type", Json::str("string")),
                        ("maxLength", Json::Number(1000.into())),
                    ]),
                )
            })
            .collect();
        quick(
            Json::obj(vec![
                ("type", Json::str("object")),
                ("properties", Json::Object(props)),
            ]),
            "add up to more than 10000",
        );
        quick(
            Json::obj(vec![
                ("type", Json::str("array")),
                ("maxItems", Json::Number(u64::MAX.into())),
            ]),
            "at most 1000 is accepted",
        );
        let long = "a".repeat(MAX_PATTERN_BYTES);
        quick(
            Json::obj(vec![
                ("type", Json::str("string")),
                ("pattern", Json::String(format!("^{long}$"))),
            ]),
            "longer than 1000 bytes",
        );
        let nested = format!("^{}a{}$", "(".repeat(40), ")".repeat(40));
        quick(
            Json::obj(vec![
                ("type", Json::str("string")),
                ("pattern", Json::String(nested)),
            ]),
            "groups nest deeper",
        );
    }

    #[test]
    fn pydantic_shapes_are_accepted() {
        // What `openai`'s `parse` sends for a model with an enum, a nested model, a list and
        // an optional field.
        let v = ok(json!({
            "$defs": {
                "Kind": {"enum": ["voirie", "eclairage"], "title": "Kind", "type": "string"},
                "Place": {"properties": {"street": {"title": "Street", "type": "string"}},
                          "required": ["street"], "title": "Place", "type": "object",
                          "additionalProperties": false},
            },
            "properties": {
                "kind": {"$ref": "#/$defs/Kind"},
                "place": {"$ref": "#/$defs/Place"},
                "tags": {"items": {"type": "string"}, "title": "Tags", "type": "array"},
                "note": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": null},
                "when": {"type": "string", "format": "date-time"},
            },
            "required": ["kind", "place", "tags", "note", "when"],
            "title": "Ticket", "type": "object", "additionalProperties": false,
        }));
        assert_eq!(v["$defs"]["d0"], json!({"enum": ["voirie", "eclairage"]}));
        assert_eq!(v["properties"]["note"]["anyOf"][1], json!({"type": "null"}));
    }
}
