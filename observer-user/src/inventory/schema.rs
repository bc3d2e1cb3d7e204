//! JSON body schemas, inferred from samples and merged: what an endpoint's bodies look like.
//!
//! Each JSON request or response body an endpoint carries is folded into one [`BodySchema`]:
//! the types seen at every position (several types means a union; `null` alongside others means
//! nullable), whether each object property was present in every object seen there (required) or
//! not (optional), string formats that held for every value (`date-time`, `date`, `email`,
//! `uuid`, `uri`), and array item schemas. The result renders as JSON Schema 2020-12, which is
//! what OpenAPI 3.1 uses.
//!
//! Bounded: positions deeper than [`MAX_DEPTH`] are not described, an object with more than
//! [`MAX_PROPERTIES`] distinct keys, or with any key that is data (an email, an id, a date), is
//! taken for a map (its keys are not field names, and are not kept), and one schema never holds
//! more than [`MAX_SCHEMA_NODES`] positions.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::sensitive::scan::is_data_name;

/// Nesting levels described; deeper values are accepted as anything. Real payloads rarely nest
/// past five or six; the bound stops hostile bodies from costing time and memory.
pub const MAX_DEPTH: usize = 10;

/// Distinct keys of one object position before it is taken for a map keyed by data (ids,
/// names, dates): its values are then merged into one `additionalProperties` schema.
pub const MAX_PROPERTIES: usize = 64;

/// Positions one schema may describe in all. A few hundred covers large real payloads; past
/// this, new properties are not added (the schema is marked truncated).
pub const MAX_SCHEMA_NODES: usize = 1024;

/// Array elements merged per array: the first few describe a homogeneous array, and merging
/// every element of a ten-thousand-element page would cost time for nothing.
pub const MAX_ARRAY_ITEMS_SAMPLED: usize = 16;

/// Bodies in a row that taught the schema nothing (no new field, no new type) before it is
/// taken as settled and only sampled.
pub const SETTLED_AFTER: u32 = 8;

/// Once settled, one body in this many is merged; any sample that teaches something new puts
/// the schema back to merging every body. Parsing is most of the cost of an API call to the
/// inventory, a settled schema changes rarely, and a field that appears in a share of the
/// bodies still shows up within a few dozen calls.
pub const SAMPLE_INTERVAL: u64 = 16;

/// New field paths reported from one sample, at most (for change events).
const MAX_NEW_FIELDS_REPORTED: usize = 8;

const NULL: u8 = 1;
const BOOLEAN: u8 = 2;
const INTEGER: u8 = 4;
const NUMBER: u8 = 8;
const STRING: u8 = 16;
const ARRAY: u8 = 32;
const OBJECT: u8 = 64;

/// A string format every value at a position had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StringFormat {
    DateTime,
    Date,
    Email,
    Uuid,
    Uri,
}

impl StringFormat {
    pub fn name(self) -> &'static str {
        match self {
            StringFormat::DateTime => "date-time",
            StringFormat::Date => "date",
            StringFormat::Email => "email",
            StringFormat::Uuid => "uuid",
            StringFormat::Uri => "uri",
        }
    }

    /// The format of one string value, if it has one.
    pub fn of(value: &str) -> Option<StringFormat> {
        let bytes = value.as_bytes();
        if crate::sensitive::validate::is_uuid(bytes) {
            return Some(StringFormat::Uuid);
        }
        if is_date(bytes) {
            if bytes.len() == 10 {
                return Some(StringFormat::Date);
            }
            if is_date_time_rest(&bytes[10..]) {
                return Some(StringFormat::DateTime);
            }
            return None;
        }
        if (value.starts_with("http://") || value.starts_with("https://"))
            && value.len() > 8
            && !value.contains(char::is_whitespace)
        {
            return Some(StringFormat::Uri);
        }
        if let Some((local, domain)) = value.split_once('@') {
            if !local.is_empty()
                && !local.contains(char::is_whitespace)
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains(['@', ' '])
            {
                return Some(StringFormat::Email);
            }
        }
        None
    }
}

fn is_date(bytes: &[u8]) -> bool {
    bytes.len() >= 10
        && bytes[..10].iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            _ => b.is_ascii_digit(),
        })
}

/// `T10:00:00`, then optional fraction, then `Z` or `+01:00` (RFC 3339 requires the offset;
/// many APIs leave it out, and they mean a date-time all the same).
fn is_date_time_rest(rest: &[u8]) -> bool {
    if rest.len() < 9 || !(rest[0] == b'T' || rest[0] == b't' || rest[0] == b' ') {
        return false;
    }
    let time = &rest[1..9];
    if !time.iter().enumerate().all(|(i, b)| match i {
        2 | 5 => *b == b':',
        _ => b.is_ascii_digit(),
    }) {
        return false;
    }
    let mut tail = &rest[9..];
    if let Some(fraction) = tail.strip_prefix(b".") {
        let digits = fraction.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 {
            return false;
        }
        tail = &fraction[digits..];
    }
    matches!(tail, [] | [b'Z' | b'z'])
        || (tail.len() == 6
            && (tail[0] == b'+' || tail[0] == b'-')
            && tail[3] == b':'
            && [1, 2, 4, 5].iter().all(|&i| tail[i].is_ascii_digit()))
}

/// What the strings at one position had in common.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FormatState {
    #[default]
    Unseen,
    All(StringFormat),
    /// Strings without one common format.
    Mixed,
}

impl FormatState {
    fn add(&mut self, format: Option<StringFormat>) {
        *self = match (*self, format) {
            (FormatState::Unseen, Some(f)) => FormatState::All(f),
            (FormatState::All(a), Some(b)) if a == b => FormatState::All(a),
            _ => FormatState::Mixed,
        };
    }

    fn merge(&mut self, other: FormatState) {
        *self = match (*self, other) {
            (a, FormatState::Unseen) => a,
            (FormatState::Unseen, b) => b,
            (FormatState::All(a), FormatState::All(b)) if a == b => FormatState::All(a),
            _ => FormatState::Mixed,
        };
    }

    pub fn format(self) -> Option<StringFormat> {
        match self {
            FormatState::All(f) => Some(f),
            _ => None,
        }
    }
}

/// One position of a schema.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Schema {
    /// JSON types seen here (a bit set).
    #[serde(rename = "t")]
    types: u8,
    #[serde(rename = "f", default, skip_serializing_if = "is_unseen")]
    format: FormatState,
    /// Times an object was seen here (a property seen fewer times is optional).
    #[serde(rename = "o", default, skip_serializing_if = "is_zero")]
    objects: u64,
    #[serde(rename = "p", default, skip_serializing_if = "BTreeMap::is_empty")]
    properties: BTreeMap<String, Property>,
    /// The values of an object whose keys are data (too many distinct keys).
    #[serde(rename = "a", default, skip_serializing_if = "Option::is_none")]
    additional: Option<Box<Schema>>,
    #[serde(rename = "i", default, skip_serializing_if = "Option::is_none")]
    items: Option<Box<Schema>>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn is_unseen(f: &FormatState) -> bool {
    *f == FormatState::Unseen
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Property {
    #[serde(rename = "n")]
    pub seen: u64,
    #[serde(rename = "s")]
    pub schema: Schema,
}

/// The schema of one body position, and the budget it was built within.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BodySchema {
    pub root: Schema,
    /// Bodies merged in.
    pub samples: u64,
    /// Positions described.
    pub nodes: usize,
    /// Some properties were left out by [`MAX_SCHEMA_NODES`] or [`MAX_DEPTH`].
    #[serde(default)]
    pub truncated: bool,
    /// Bodies offered, merged or not.
    #[serde(default)]
    pub offered: u64,
    /// Samples in a row that changed nothing.
    #[serde(default)]
    pub unchanged: u32,
}

impl BodySchema {
    /// Whether the next body should be parsed and merged: every one until the schema settles
    /// ([`SETTLED_AFTER`]), then one in [`SAMPLE_INTERVAL`].
    pub fn wants_sample(&mut self) -> bool {
        self.offered += 1;
        self.unchanged < SETTLED_AFTER || self.offered.is_multiple_of(SAMPLE_INTERVAL)
    }

    /// Fold one body in. Returns the field paths (`$.user.email`) seen for the first time,
    /// when this is not the first sample (the first one defines the schema, it adds nothing).
    pub fn add(&mut self, value: &Value) -> Vec<String> {
        let mut ctx = AddContext {
            nodes: &mut self.nodes,
            truncated: &mut self.truncated,
            new_fields: Vec::new(),
            report: self.samples > 0,
            changed: false,
        };
        self.root.add(value, 0, &mut String::from("$"), &mut ctx);
        self.samples += 1;
        self.unchanged = if ctx.changed {
            0
        } else {
            self.unchanged.saturating_add(1)
        };
        ctx.new_fields
    }

    /// Fold in another schema of the same position (two endpoints merged into one).
    pub fn merge(&mut self, other: &BodySchema) {
        self.root.merge(&other.root);
        self.samples += other.samples;
        self.offered += other.offered;
        self.unchanged = self.unchanged.min(other.unchanged);
        self.nodes = self.root.count_nodes();
        self.truncated |= other.truncated;
    }

    pub fn to_json_schema(&self) -> Value {
        self.root.to_json_schema()
    }
}

struct AddContext<'a> {
    nodes: &'a mut usize,
    truncated: &'a mut bool,
    new_fields: Vec<String>,
    report: bool,
    /// This sample added a property or a type somewhere.
    changed: bool,
}

impl Schema {
    fn add(&mut self, value: &Value, depth: usize, path: &mut String, ctx: &mut AddContext<'_>) {
        let types = self.types;
        self.add_value(value, depth, path, ctx);
        ctx.changed |= self.types != types;
    }

    fn add_value(
        &mut self,
        value: &Value,
        depth: usize,
        path: &mut String,
        ctx: &mut AddContext<'_>,
    ) {
        match value {
            Value::Null => self.types |= NULL,
            Value::Bool(_) => self.types |= BOOLEAN,
            Value::Number(n) => {
                self.types |= if n.is_f64() { NUMBER } else { INTEGER };
            }
            Value::String(s) => {
                self.types |= STRING;
                self.format.add(StringFormat::of(s));
            }
            Value::Array(items) => {
                self.types |= ARRAY;
                if depth >= MAX_DEPTH {
                    *ctx.truncated = true;
                    return;
                }
                let schema = self.items.get_or_insert_with(|| {
                    *ctx.nodes += 1;
                    Box::default()
                });
                let len = path.len();
                path.push_str("[]");
                for item in items.iter().take(MAX_ARRAY_ITEMS_SAMPLED) {
                    schema.add(item, depth + 1, path, ctx);
                }
                path.truncate(len);
            }
            Value::Object(map) => {
                self.types |= OBJECT;
                self.objects += 1;
                if depth >= MAX_DEPTH {
                    *ctx.truncated = true;
                    return;
                }
                self.add_object(map, depth, path, ctx);
            }
        }
    }

    fn add_object(
        &mut self,
        map: &Map<String, Value>,
        depth: usize,
        path: &mut String,
        ctx: &mut AddContext<'_>,
    ) {
        if self.additional.is_none() {
            let new_keys = map
                .keys()
                .filter(|k| !self.properties.contains_key(*k))
                .collect::<Vec<_>>();
            // A key that is data (an email, an id, a date) names no field: the object is a map,
            // and its keys, which may be personal, are neither kept nor exported.
            if self.properties.len() + new_keys.len() > MAX_PROPERTIES
                || new_keys.iter().any(|key| is_data_name(key))
            {
                // Keys are data: fold every property into one value schema.
                let mut values = Schema::default();
                for property in std::mem::take(&mut self.properties).into_values() {
                    values.merge(&property.schema);
                }
                *ctx.nodes = ctx.nodes.saturating_sub(self.count_nodes_below());
                self.additional = Some(Box::new(values));
            }
        }
        if let Some(values) = &mut self.additional {
            let len = path.len();
            path.push_str(".*");
            for value in map.values() {
                values.add(value, depth + 1, path, ctx);
            }
            path.truncate(len);
            return;
        }
        for (key, value) in map {
            let len = path.len();
            path.push('.');
            path.push_str(key);
            match self.properties.get_mut(key) {
                Some(property) => {
                    property.seen += 1;
                    property.schema.add(value, depth + 1, path, ctx);
                }
                None if *ctx.nodes >= MAX_SCHEMA_NODES => *ctx.truncated = true,
                None => {
                    *ctx.nodes += 1;
                    ctx.changed = true;
                    if ctx.report && ctx.new_fields.len() < MAX_NEW_FIELDS_REPORTED {
                        ctx.new_fields.push(path.clone());
                    }
                    let mut property = Property {
                        seen: 1,
                        schema: Schema::default(),
                    };
                    property.schema.add(value, depth + 1, path, ctx);
                    self.properties.insert(key.clone(), property);
                }
            }
            path.truncate(len);
        }
    }

    fn count_nodes_below(&self) -> usize {
        self.count_nodes().saturating_sub(1)
    }

    fn count_nodes(&self) -> usize {
        1 + self
            .properties
            .values()
            .map(|p| p.schema.count_nodes())
            .sum::<usize>()
            + self.additional.as_ref().map_or(0, |s| s.count_nodes())
            + self.items.as_ref().map_or(0, |s| s.count_nodes())
    }

    fn merge(&mut self, other: &Schema) {
        self.types |= other.types;
        self.format.merge(other.format);
        self.objects += other.objects;
        if self.additional.is_some() || other.additional.is_some() {
            let values = self.additional.get_or_insert_with(Box::default);
            for property in std::mem::take(&mut self.properties).into_values() {
                values.merge(&property.schema);
            }
            for property in other.properties.values() {
                values.merge(&property.schema);
            }
            if let Some(theirs) = &other.additional {
                values.merge(theirs);
            }
        } else {
            for (key, theirs) in &other.properties {
                match self.properties.get_mut(key) {
                    Some(mine) => {
                        mine.seen += theirs.seen;
                        mine.schema.merge(&theirs.schema);
                    }
                    None => {
                        self.properties.insert(key.clone(), theirs.clone());
                    }
                }
            }
        }
        if let Some(theirs) = &other.items {
            self.items.get_or_insert_with(Box::default).merge(theirs);
        }
    }

    /// Whether values here were ever JSON objects.
    pub fn is_object(&self) -> bool {
        self.types & OBJECT != 0
    }

    /// Object properties: name, whether every object here had it, and its schema.
    pub fn properties(&self) -> impl Iterator<Item = (&str, bool, &Schema)> {
        self.properties
            .iter()
            .map(|(name, p)| (name.as_str(), p.seen >= self.objects, &p.schema))
    }

    pub fn items(&self) -> Option<&Schema> {
        self.items.as_deref()
    }

    /// The JSON Schema type names seen here (`integer` and `number` together are `number`).
    pub fn type_names(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        for (bit, name) in [
            (OBJECT, "object"),
            (ARRAY, "array"),
            (STRING, "string"),
            (INTEGER, "integer"),
            (NUMBER, "number"),
            (BOOLEAN, "boolean"),
            (NULL, "null"),
        ] {
            if self.types & bit != 0 {
                if bit == INTEGER && self.types & NUMBER != 0 {
                    continue;
                }
                out.push(name);
            }
        }
        out
    }

    /// JSON Schema 2020-12 (OpenAPI 3.1's dialect).
    pub fn to_json_schema(&self) -> Value {
        let mut out = Map::new();
        let types = self.type_names();
        match types.as_slice() {
            [] => {}
            [one] => {
                out.insert("type".into(), json!(one));
            }
            many => {
                out.insert("type".into(), json!(many));
            }
        }
        if let Some(format) = self.format.format() {
            out.insert("format".into(), json!(format.name()));
        }
        if self.is_object() {
            if !self.properties.is_empty() {
                let mut properties = Map::new();
                let mut required = Vec::new();
                for (name, is_required, schema) in self.properties() {
                    properties.insert(name.to_string(), schema.to_json_schema());
                    if is_required {
                        required.push(json!(name));
                    }
                }
                out.insert("properties".into(), Value::Object(properties));
                if !required.is_empty() {
                    out.insert("required".into(), Value::Array(required));
                }
            }
            if let Some(values) = &self.additional {
                out.insert("additionalProperties".into(), values.to_json_schema());
            }
        }
        if let Some(items) = &self.items {
            out.insert("items".into(), items.to_json_schema());
        }
        Value::Object(out)
    }
}

/// The type of a scalar value seen as text (a query parameter, a header, a path segment), as a
/// JSON Schema type and format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScalarType {
    Integer,
    Number,
    Boolean,
    String,
    Formatted(StringFormat),
}

impl ScalarType {
    pub fn of(value: &str) -> ScalarType {
        let bytes = value.as_bytes();
        let digits = bytes.strip_prefix(b"-").unwrap_or(bytes);
        if !digits.is_empty() && digits.len() <= 19 && digits.iter().all(u8::is_ascii_digit) {
            return ScalarType::Integer;
        }
        if value == "true" || value == "false" {
            return ScalarType::Boolean;
        }
        if !digits.is_empty()
            && digits.iter().all(|b| b.is_ascii_digit() || *b == b'.')
            && digits.iter().filter(|b| **b == b'.').count() == 1
            && digits.iter().any(u8::is_ascii_digit)
        {
            return ScalarType::Number;
        }
        match StringFormat::of(value) {
            Some(format) => ScalarType::Formatted(format),
            None => ScalarType::String,
        }
    }

    pub fn merge(self, other: ScalarType) -> ScalarType {
        match (self, other) {
            (a, b) if a == b => a,
            (ScalarType::Integer, ScalarType::Number)
            | (ScalarType::Number, ScalarType::Integer) => ScalarType::Number,
            _ => ScalarType::String,
        }
    }

    pub fn to_json_schema(self) -> Value {
        match self {
            ScalarType::Integer => json!({"type": "integer"}),
            ScalarType::Number => json!({"type": "number"}),
            ScalarType::Boolean => json!({"type": "boolean"}),
            ScalarType::String => json!({"type": "string"}),
            ScalarType::Formatted(format) => json!({"type": "string", "format": format.name()}),
        }
    }

    /// A short name for reports (`integer`, `string(uuid)`).
    pub fn describe(self) -> String {
        match self {
            ScalarType::Formatted(format) => format!("string({})", format.name()),
            ScalarType::Integer => "integer".into(),
            ScalarType::Number => "number".into(),
            ScalarType::Boolean => "boolean".into(),
            ScalarType::String => "string".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn infer(samples: &[Value]) -> Value {
        let mut schema = BodySchema::default();
        for sample in samples {
            schema.add(sample);
        }
        schema.to_json_schema()
    }

    #[test]
    fn required_optional_nullable_and_formats() {
        let schema = infer(&[
            json!({"id": 1, "email": "a@example.com", "created": "2024-05-01T10:00:00Z",
                   "nick": null, "tags": ["a", "b"], "score": 1}),
            json!({"id": 2, "email": "b@example.org", "created": "2024-05-02T11:00:00.5+02:00",
                   "nick": "bee", "tags": [], "score": 2.5, "home": "https://b.example.org"}),
        ]);
        assert_eq!(
            schema,
            json!({
                "type": "object",
                "properties": {
                    "created": {"type": "string", "format": "date-time"},
                    "email": {"type": "string", "format": "email"},
                    "home": {"type": "string", "format": "uri"},
                    "id": {"type": "integer"},
                    "nick": {"type": ["string", "null"]},
                    "score": {"type": "number"},
                    "tags": {"type": "array", "items": {"type": "string"}},
                },
                "required": ["created", "email", "id", "nick", "score", "tags"],
            })
        );
    }

    #[test]
    fn arrays_of_objects_merge_their_items() {
        let schema = infer(&[json!([
            {"id": "6f0e7b8e-2d0a-4c53-9b8e-6a1c3f0e2d11", "day": "2024-01-02"},
            {"id": "7f0e7b8e-2d0a-4c53-9b8e-6a1c3f0e2d11"},
        ])]);
        assert_eq!(
            schema,
            json!({"type": "array", "items": {
                "type": "object",
                "properties": {
                    "day": {"type": "string", "format": "date"},
                    "id": {"type": "string", "format": "uuid"},
                },
                "required": ["id"],
            }})
        );
    }

    #[test]
    fn mixed_formats_and_types_widen() {
        let schema = infer(&[
            json!({"v": "2024-01-02"}),
            json!({"v": "hello"}),
            json!({"v": 3}),
        ]);
        assert_eq!(
            schema["properties"]["v"],
            json!({"type": ["string", "integer"]})
        );
    }

    #[test]
    fn new_fields_are_reported_after_the_first_sample() {
        let mut schema = BodySchema::default();
        assert!(schema.add(&json!({"a": 1})).is_empty());
        assert_eq!(
            schema.add(&json!({"a": 1, "b": {"c": [{"d": true}]}})),
            vec!["$.b", "$.b.c", "$.b.c[].d"]
        );
        assert!(schema.add(&json!({"a": 2})).is_empty());
    }

    #[test]
    fn objects_keyed_by_data_become_maps() {
        let mut map = Map::new();
        for i in 0..MAX_PROPERTIES + 1 {
            map.insert(format!("user{i}"), json!({"n": i}));
        }
        let schema = infer(&[json!({"by_user": map})]);
        assert_eq!(
            schema["properties"]["by_user"],
            json!({"type": "object", "additionalProperties": {
                "type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}})
        );
    }

    #[test]
    fn a_key_that_is_data_makes_a_map_at_once() {
        let mut schema = BodySchema::default();
        let new_fields = schema.add(&json!({
            "scores": {"ann@example.com": 3, "bob@example.org": 4},
            "by_day": {"2024-05-01": {"n": 1}},
            "line1": "x",
        }));
        let rendered = serde_json::to_string(&schema.to_json_schema()).expect("json");
        for data in ["ann@", "bob@", "2024-05-01"] {
            assert!(!rendered.contains(data), "{data} kept: {rendered}");
            assert!(
                !new_fields.iter().any(|f| f.contains(data)),
                "{new_fields:?}"
            );
        }
        let schema = schema.to_json_schema();
        assert_eq!(
            schema["properties"]["scores"],
            json!({"type": "object", "additionalProperties": {"type": "integer"}})
        );
        assert_eq!(
            schema["properties"]["by_day"]["additionalProperties"]["properties"]["n"],
            json!({"type": "integer"})
        );
        assert_eq!(schema["properties"]["line1"], json!({"type": "string"}));
    }

    #[test]
    fn size_and_depth_are_bounded() {
        let mut deep = json!(1);
        for _ in 0..100 {
            deep = json!({ "x": deep });
        }
        let mut schema = BodySchema::default();
        schema.add(&deep);
        assert!(schema.truncated);
        let mut schema = BodySchema::default();
        for i in 0..200 {
            let mut map = Map::new();
            for j in 0..40 {
                map.insert(format!("f{j}"), json!({"k": i}));
            }
            let mut outer = Map::new();
            outer.insert(format!("g{i}"), Value::Object(map));
            schema.add(&json!([Value::Object(outer)]));
        }
        assert!(schema.nodes <= MAX_SCHEMA_NODES, "{}", schema.nodes);
    }

    #[test]
    fn merging_two_schemas_keeps_optional_fields_optional() {
        let mut a = BodySchema::default();
        a.add(&json!({"x": 1, "y": 1}));
        let mut b = BodySchema::default();
        b.add(&json!({"x": 2}));
        a.merge(&b);
        assert_eq!(a.to_json_schema()["required"], json!(["x"]));
    }

    #[test]
    fn settled_schemas_are_sampled_until_something_changes() {
        let mut schema = BodySchema::default();
        let mut merged = 0;
        for i in 0..200u64 {
            if schema.wants_sample() {
                merged += 1;
                let body = if i == 150 {
                    json!({"a": 1, "b": 2})
                } else {
                    json!({"a": i})
                };
                schema.add(&body);
            }
        }
        // Settled after the first few, sampled, then the new field made it learn again.
        assert!(merged < 40, "{merged} bodies merged");
        let mut schema = BodySchema::default();
        for _ in 0..=SETTLED_AFTER {
            assert!(schema.wants_sample());
            schema.add(&json!({"a": 1}));
        }
        assert!(
            (0..SAMPLE_INTERVAL)
                .filter(|_| schema.wants_sample())
                .count()
                == 1
        );
        schema.add(&json!({"a": 1, "new": true}));
        assert!(schema.wants_sample());
    }

    #[test]
    fn scalar_types() {
        assert_eq!(ScalarType::of("42"), ScalarType::Integer);
        assert_eq!(ScalarType::of("-4.5"), ScalarType::Number);
        assert_eq!(ScalarType::of("true"), ScalarType::Boolean);
        assert_eq!(
            ScalarType::of("2024-01-01"),
            ScalarType::Formatted(StringFormat::Date)
        );
        assert_eq!(ScalarType::of("1.2.3"), ScalarType::String);
        assert_eq!(
            ScalarType::Integer.merge(ScalarType::Number),
            ScalarType::Number
        );
        assert_eq!(
            ScalarType::Integer.merge(ScalarType::String),
            ScalarType::String
        );
    }
}
