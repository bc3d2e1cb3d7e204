//! Importing API specs: Swagger 2.0, OpenAPI 3.0 and 3.1, in YAML or JSON, with `$ref`.
//!
//! The documented side of `observer diff` and of live drift reports (`observer run --spec`).
//! Every format is read into one normalized [`ApiSpec`]: operations (method, full path with the
//! base path, deprecated flag, parameters, request body and responses with their content types
//! and schemas, whether security is required). Schemas stay as the spec wrote them; `$ref`s
//! (local, `#/components/...`, and to other files relative to the spec) are followed on demand
//! with [`ApiSpec::deref`], so recursive schemas cost nothing until they are walked.

use std::{
    collections::{BTreeMap, HashMap},
    fs,
    path::{Path, PathBuf},
};

use serde_json::{Map, Value};
use thiserror::Error;

/// `$ref` hops followed for one value: chains are one or two long; more is a cycle.
const MAX_REF_HOPS: usize = 16;

/// Other files a spec may pull in through `$ref`s.
const MAX_REFERENCED_FILES: usize = 64;

/// Largest spec file read: big public specs (GitHub's, Stripe's) are 10-20 MB.
const MAX_SPEC_BYTES: u64 = 64 * 1024 * 1024;

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

#[derive(Debug, Error)]
pub enum SpecError {
    #[error("cannot read spec {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("spec {path} is larger than {MAX_SPEC_BYTES} bytes")]
    TooLarge { path: String },
    #[error("spec {path} is not valid YAML or JSON: {message}")]
    Parse { path: String, message: String },
    #[error("{path} is not a Swagger 2.0 or OpenAPI 3.x document (no `swagger: \"2.0\"` or `openapi: 3.x` field)")]
    UnknownVersion { path: String },
    #[error("spec {path}: {message}")]
    Invalid { path: String, message: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum SpecVersion {
    #[serde(rename = "swagger-2.0")]
    Swagger2,
    #[serde(rename = "openapi-3.0")]
    OpenApi30,
    #[serde(rename = "openapi-3.1")]
    OpenApi31,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ParamLocation {
    Path,
    Query,
    Header,
    Cookie,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SpecParameter {
    pub name: String,
    pub location: ParamLocation,
    pub required: bool,
}

/// A request or response body as documented.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpecBody {
    /// Media types, lowercased, without parameters.
    pub content_types: Vec<String>,
    /// The JSON schema (of the JSON media type when there are several), unresolved, and the
    /// document its `$ref`s are relative to.
    pub schema: Option<(String, Value)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SpecOperation {
    /// Uppercase.
    pub method: String,
    /// With the base path (`/api/v1/users/{id}`).
    pub path: String,
    /// As written under `paths`, without the base path.
    pub raw_path: String,
    pub operation_id: Option<String>,
    pub deprecated: bool,
    pub parameters: Vec<SpecParameter>,
    pub request_body: Option<SpecBody>,
    /// By status code (`200`, `4XX`, `default`).
    pub responses: BTreeMap<String, SpecBody>,
    /// Every security alternative needs credentials (no empty `{}` alternative).
    pub security_required: bool,
}

/// A spec, normalized.
#[derive(Debug, Clone)]
pub struct ApiSpec {
    pub title: String,
    pub version: SpecVersion,
    pub source: String,
    pub base_path: String,
    pub operations: Vec<SpecOperation>,
    /// Documents by name: the spec itself (its own path) and the files its `$ref`s name.
    documents: HashMap<String, Value>,
}

/// Read YAML or JSON into a JSON value. YAML keys that are numbers (`200:` under `responses`)
/// become strings, as JSON spells them.
pub fn parse_document(text: &str, path: &str) -> Result<Value, SpecError> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') {
        return serde_json::from_str(text).map_err(|e| SpecError::Parse {
            path: path.to_string(),
            message: e.to_string(),
        });
    }
    let yaml: serde_norway::Value = serde_norway::from_str(text).map_err(|e| SpecError::Parse {
        path: path.to_string(),
        message: e.to_string(),
    })?;
    Ok(yaml_to_json(yaml))
}

fn yaml_to_json(value: serde_norway::Value) -> Value {
    use serde_norway::Value as Y;
    match value {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map_or(Value::Null, Value::Number)
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(yaml_to_json).collect()),
        Y::Mapping(map) => {
            let mut out = Map::new();
            for (key, value) in map {
                let key = match key {
                    Y::String(s) => s,
                    Y::Number(n) => n.to_string(),
                    Y::Bool(b) => b.to_string(),
                    other => serde_norway::to_string(&other)
                        .unwrap_or_default()
                        .trim()
                        .to_string(),
                };
                out.insert(key, yaml_to_json(value));
            }
            Value::Object(out)
        }
        Y::Tagged(tagged) => yaml_to_json(tagged.value),
    }
}

fn read_file(path: &Path) -> Result<String, SpecError> {
    let display = path.display().to_string();
    let meta = fs::metadata(path).map_err(|source| SpecError::Read {
        path: display.clone(),
        source,
    })?;
    if meta.len() > MAX_SPEC_BYTES {
        return Err(SpecError::TooLarge { path: display });
    }
    fs::read_to_string(path).map_err(|source| SpecError::Read {
        path: display,
        source,
    })
}

impl ApiSpec {
    /// Load a spec file, and the files its `$ref`s name.
    pub fn load(path: &Path) -> Result<ApiSpec, SpecError> {
        let name = path.display().to_string();
        let root = parse_document(&read_file(path)?, &name)?;
        let mut documents = HashMap::new();
        let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        collect_external(&root, &base_dir, &mut documents)?;
        documents.insert(name.clone(), root);
        ApiSpec::from_documents(name, documents)
    }

    /// A spec from text (tests, specs that come from elsewhere). `$ref`s must be local.
    pub fn parse(text: &str, name: &str) -> Result<ApiSpec, SpecError> {
        let root = parse_document(text, name)?;
        let mut documents = HashMap::new();
        documents.insert(name.to_string(), root);
        ApiSpec::from_documents(name.to_string(), documents)
    }

    fn from_documents(
        name: String,
        documents: HashMap<String, Value>,
    ) -> Result<ApiSpec, SpecError> {
        let root = &documents[&name];
        let version = if root.get("swagger").and_then(Value::as_str) == Some("2.0") {
            SpecVersion::Swagger2
        } else {
            match root.get("openapi").and_then(Value::as_str) {
                Some(v) if v.starts_with("3.0") => SpecVersion::OpenApi30,
                Some(v) if v.starts_with("3.1") => SpecVersion::OpenApi31,
                _ => return Err(SpecError::UnknownVersion { path: name }),
            }
        };
        let mut spec = ApiSpec {
            title: root
                .pointer("/info/title")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            version,
            source: name.clone(),
            base_path: String::new(),
            operations: Vec::new(),
            documents: HashMap::new(),
        };
        spec.base_path = base_path(root, version);
        let operations = read_operations(&spec, root, &name, &documents)?;
        spec.operations = operations;
        spec.documents = documents;
        Ok(spec)
    }

    /// Follow `$ref`s from `value` (in document `doc`) to what they name, with the document
    /// that holds it. A broken or cyclic reference resolves to `null`.
    pub fn deref<'a>(&'a self, doc: &'a str, value: &'a Value) -> (&'a str, &'a Value) {
        deref_in(&self.documents, doc, value)
    }

    /// The schema at `name` under the JSON schema `schema`'s `properties`, with refs followed.
    pub fn documents(&self) -> &HashMap<String, Value> {
        &self.documents
    }
}

const NULL: Value = Value::Null;

fn deref_in<'a>(
    documents: &'a HashMap<String, Value>,
    doc: &'a str,
    value: &'a Value,
) -> (&'a str, &'a Value) {
    let mut doc = doc;
    let mut value = value;
    for _ in 0..MAX_REF_HOPS {
        let Some(reference) = value.get("$ref").and_then(Value::as_str) else {
            return (doc, value);
        };
        let (file, pointer) = reference.split_once('#').unwrap_or((reference, ""));
        let target_doc = if file.is_empty() {
            Some(doc)
        } else {
            documents
                .get_key_value(&*resolve_relative(doc, file))
                .map(|(k, _)| k.as_str())
        };
        let Some(target_doc) = target_doc else {
            return (doc, &NULL);
        };
        let Some(root) = documents.get(target_doc) else {
            return (doc, &NULL);
        };
        let pointer = pointer.replace("~1", "/").replace("~0", "~");
        match root.pointer(&pointer) {
            Some(found) => {
                doc = target_doc;
                value = found;
            }
            None => return (doc, &NULL),
        }
    }
    (doc, &NULL)
}

/// A file a `$ref` names, relative to the document that holds the `$ref`.
fn resolve_relative(doc: &str, file: &str) -> String {
    let base = Path::new(doc).parent().unwrap_or(Path::new(""));
    base.join(file).display().to_string()
}

fn collect_external(
    value: &Value,
    base_dir: &Path,
    documents: &mut HashMap<String, Value>,
) -> Result<(), SpecError> {
    let mut files: Vec<PathBuf> = Vec::new();
    find_file_refs(value, base_dir, &mut files);
    while let Some(file) = files.pop() {
        let name = file.display().to_string();
        if documents.contains_key(&name) {
            continue;
        }
        if documents.len() >= MAX_REFERENCED_FILES {
            return Err(SpecError::Invalid {
                path: name,
                message: format!("more than {MAX_REFERENCED_FILES} referenced files"),
            });
        }
        let doc = parse_document(&read_file(&file)?, &name)?;
        let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
        find_file_refs(&doc, &dir, &mut files);
        documents.insert(name, doc);
    }
    Ok(())
}

fn find_file_refs(value: &Value, base_dir: &Path, out: &mut Vec<PathBuf>) {
    match value {
        Value::Object(map) => {
            if let Some(reference) = map.get("$ref").and_then(Value::as_str) {
                let file = reference.split('#').next().unwrap_or("");
                // Only files beside the spec: never URLs (the agent fetches nothing).
                if !file.is_empty() && !file.contains("://") {
                    out.push(base_dir.join(file));
                }
            }
            for v in map.values() {
                find_file_refs(v, base_dir, out);
            }
        }
        Value::Array(items) => {
            for v in items {
                find_file_refs(v, base_dir, out);
            }
        }
        _ => {}
    }
}

/// The path part of the first server URL (3.x) or `basePath` (2.0), without a trailing `/`.
fn base_path(root: &Value, version: SpecVersion) -> String {
    let raw = match version {
        SpecVersion::Swagger2 => root
            .get("basePath")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        _ => {
            let url = root
                .pointer("/servers/0/url")
                .and_then(Value::as_str)
                .unwrap_or("");
            match url.find("://") {
                Some(i) => url[i + 3..]
                    .find('/')
                    .map_or(String::new(), |j| url[i + 3 + j..].to_string()),
                None => url.to_string(),
            }
        }
    };
    // Server variables (`/{basePath}`) cannot be known: leave them out.
    if raw.contains('{') {
        return String::new();
    }
    raw.trim_end_matches('/').to_string()
}

fn media_type(raw: &str) -> String {
    raw.split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

fn is_json_media(media: &str) -> bool {
    media == "application/json" || media.ends_with("+json") || media == "*/*"
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(media_type)
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a `security` list requires credentials: non-empty, and no `{}` alternative.
fn requires_security(security: Option<&Value>) -> Option<bool> {
    let list = security?.as_array()?;
    Some(
        !list.is_empty()
            && list
                .iter()
                .all(|alt| alt.as_object().is_some_and(|m| !m.is_empty())),
    )
}

fn read_operations(
    spec: &ApiSpec,
    root: &Value,
    name: &str,
    documents: &HashMap<String, Value>,
) -> Result<Vec<SpecOperation>, SpecError> {
    let Some(paths) = root.get("paths").and_then(Value::as_object) else {
        return Ok(Vec::new());
    };
    let global_security = requires_security(root.get("security")).unwrap_or(false);
    let global_consumes = strings(root.get("consumes"));
    let global_produces = strings(root.get("produces"));
    let mut out = Vec::new();
    for (raw_path, item) in paths {
        let (item_doc, item) = deref_in(documents, name, item);
        let Some(item) = item.as_object() else {
            continue;
        };
        let shared_params = item.get("parameters");
        for method in METHODS {
            let Some(op) = item.get(*method) else {
                continue;
            };
            let (op_doc, op) = deref_in(documents, item_doc, op);
            let mut parameters = Vec::new();
            let mut request_body = None;
            let consumes = match strings(op.get("consumes")) {
                c if c.is_empty() => global_consumes.clone(),
                c => c,
            };
            let produces = match strings(op.get("produces")) {
                p if p.is_empty() => global_produces.clone(),
                p => p,
            };
            for list in [shared_params, op.get("parameters")].into_iter().flatten() {
                for param in list.as_array().into_iter().flatten() {
                    let (param_doc, param) = deref_in(documents, op_doc, param);
                    let Some(param_name) = param.get("name").and_then(Value::as_str) else {
                        continue;
                    };
                    let location = match param.get("in").and_then(Value::as_str) {
                        Some("path") => ParamLocation::Path,
                        Some("query") => ParamLocation::Query,
                        Some("header") => ParamLocation::Header,
                        Some("cookie") => ParamLocation::Cookie,
                        Some("body") => {
                            request_body = Some(SpecBody {
                                content_types: if consumes.is_empty() {
                                    vec!["application/json".into()]
                                } else {
                                    consumes.clone()
                                },
                                schema: param
                                    .get("schema")
                                    .map(|s| (param_doc.to_string(), s.clone())),
                            });
                            continue;
                        }
                        Some("formData") => {
                            if request_body.is_none() {
                                request_body = Some(SpecBody {
                                    content_types: if consumes.is_empty() {
                                        vec!["application/x-www-form-urlencoded".into()]
                                    } else {
                                        consumes.clone()
                                    },
                                    schema: None,
                                });
                            }
                            continue;
                        }
                        _ => continue,
                    };
                    let required = param
                        .get("required")
                        .and_then(Value::as_bool)
                        .unwrap_or(location == ParamLocation::Path);
                    // Operation parameters override path-level ones of the same name and place.
                    parameters.retain(|p: &SpecParameter| {
                        !(p.name == param_name && p.location == location)
                    });
                    parameters.push(SpecParameter {
                        name: param_name.to_string(),
                        location,
                        required,
                    });
                }
            }
            if let Some(body) = op.get("requestBody") {
                let (body_doc, body) = deref_in(documents, op_doc, body);
                request_body = Some(read_content(documents, body_doc, body));
            }
            let mut responses = BTreeMap::new();
            for (status, response) in op
                .get("responses")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                let (response_doc, response) = deref_in(documents, op_doc, response);
                let body = match spec.version {
                    SpecVersion::Swagger2 => SpecBody {
                        content_types: if response.get("schema").is_some() {
                            if produces.is_empty() {
                                vec!["application/json".into()]
                            } else {
                                produces.clone()
                            }
                        } else {
                            Vec::new()
                        },
                        schema: response
                            .get("schema")
                            .map(|s| (response_doc.to_string(), s.clone())),
                    },
                    _ => read_content(documents, response_doc, response),
                };
                responses.insert(
                    status.to_ascii_uppercase().replace("DEFAULT", "default"),
                    body,
                );
            }
            let path = format!("{}{}", spec.base_path, raw_path);
            out.push(SpecOperation {
                method: method.to_ascii_uppercase(),
                path: if path.is_empty() { "/".into() } else { path },
                raw_path: raw_path.clone(),
                operation_id: op
                    .get("operationId")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                deprecated: op
                    .get("deprecated")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                parameters,
                request_body,
                responses,
                security_required: requires_security(op.get("security")).unwrap_or(global_security),
            });
        }
    }
    Ok(out)
}

/// An OpenAPI 3 `content` map (of a request body or a response).
fn read_content(documents: &HashMap<String, Value>, doc: &str, holder: &Value) -> SpecBody {
    let mut body = SpecBody::default();
    let Some(content) = holder.get("content").and_then(Value::as_object) else {
        return body;
    };
    for (media, entry) in content {
        let media = media_type(media);
        let (entry_doc, entry) = deref_in(documents, doc, entry);
        if let Some(schema) = entry.get("schema") {
            if body.schema.is_none() || is_json_media(&media) {
                body.schema = Some((entry_doc.to_string(), schema.clone()));
            }
        }
        body.content_types.push(media);
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    const OAS31_YAML: &str = r##"
openapi: 3.1.0
info: {title: Pets, version: "1"}
servers: [{url: "https://pets.example.com/api"}]
security: [{bearer: []}]
paths:
  /pets/{petId}:
    parameters:
      - $ref: "#/components/parameters/PetId"
    get:
      operationId: getPet
      parameters:
        - {name: verbose, in: query}
      responses:
        200:
          description: ok
          content:
            application/json:
              schema: {$ref: "#/components/schemas/Pet"}
        "404": {$ref: "#/components/responses/NotFound"}
    delete:
      deprecated: true
      security: [{}, {bearer: []}]
      responses: {"204": {description: gone}}
components:
  parameters:
    PetId: {name: petId, in: path, required: true, schema: {type: integer}}
  responses:
    NotFound: {description: nope, content: {application/problem+json: {schema: {type: object}}}}
  schemas:
    Pet:
      type: object
      properties:
        id: {type: integer}
        parent: {$ref: "#/components/schemas/Pet"}
"##;

    #[test]
    fn openapi_31_yaml_with_refs() {
        let spec = ApiSpec::parse(OAS31_YAML, "pets.yaml").unwrap();
        assert_eq!(spec.version, SpecVersion::OpenApi31);
        assert_eq!(spec.base_path, "/api");
        assert_eq!(spec.operations.len(), 2);
        let get = &spec.operations[0];
        assert_eq!(
            (get.method.as_str(), get.path.as_str()),
            ("GET", "/api/pets/{petId}")
        );
        assert_eq!(get.parameters.len(), 2);
        assert!(get.parameters[0].required && get.parameters[0].location == ParamLocation::Path);
        assert!(get.security_required);
        assert_eq!(
            get.responses["404"].content_types,
            vec!["application/problem+json"]
        );
        let (doc, schema) = get.responses["200"].schema.as_ref().unwrap();
        let (doc, pet) = spec.deref(doc, schema);
        let (_, parent) = spec.deref(doc, &pet["properties"]["parent"]);
        assert_eq!(parent["properties"]["id"]["type"], "integer");
        let delete = &spec.operations[1];
        assert!(delete.deprecated && !delete.security_required);
    }

    #[test]
    fn openapi_30_json() {
        let text = r##"{"openapi": "3.0.3", "info": {"title": "T", "version": "1"},
          "paths": {"/a": {"post": {
            "requestBody": {"$ref": "#/components/requestBodies/A"},
            "responses": {"201": {"description": "made"}}}}},
          "components": {"requestBodies": {"A": {"content": {"application/json":
            {"schema": {"type": "object", "properties": {"x": {"type": "string"}}}}}}}}}"##;
        let spec = ApiSpec::parse(text, "a.json").unwrap();
        assert_eq!(spec.version, SpecVersion::OpenApi30);
        let op = &spec.operations[0];
        let body = op.request_body.as_ref().unwrap();
        assert_eq!(body.content_types, vec!["application/json"]);
        assert_eq!(
            body.schema.as_ref().unwrap().1["properties"]["x"]["type"],
            "string"
        );
        assert!(op.responses.contains_key("201"));
    }

    #[test]
    fn swagger_20_with_body_parameters_and_definitions() {
        let text = r##"
swagger: "2.0"
info: {title: Old, version: "1"}
basePath: /v1/
produces: [application/json]
securityDefinitions: {key: {type: apiKey, in: header, name: X-API-Key}}
security: [{key: []}]
paths:
  /users:
    post:
      parameters:
        - {in: body, name: user, schema: {$ref: "#/definitions/User"}}
        - {in: header, name: X-Trace, type: string}
      responses:
        201: {description: made, schema: {$ref: "#/definitions/User"}}
definitions:
  User: {type: object, properties: {name: {type: string}}, required: [name]}
"##;
        let spec = ApiSpec::parse(text, "old.yaml").unwrap();
        assert_eq!(spec.version, SpecVersion::Swagger2);
        let op = &spec.operations[0];
        assert_eq!(op.path, "/v1/users");
        assert!(op.security_required);
        assert_eq!(op.parameters.len(), 1);
        let (doc, schema) = op.request_body.as_ref().unwrap().schema.as_ref().unwrap();
        assert_eq!(spec.deref(doc, schema).1["required"][0], "name");
        assert_eq!(op.responses["201"].content_types, vec!["application/json"]);
    }

    #[test]
    fn refs_to_other_files_are_followed() {
        let dir = std::env::temp_dir().join(format!("observer-spec-{}", std::process::id()));
        fs::create_dir_all(dir.join("parts")).unwrap();
        fs::write(
            dir.join("api.yaml"),
            "openapi: 3.0.0\ninfo: {title: X, version: '1'}\npaths:\n  /x:\n    get:\n      responses:\n        '200': {$ref: 'parts/common.yaml#/Ok'}\n",
        )
        .unwrap();
        fs::write(
            dir.join("parts/common.yaml"),
            "Ok: {description: ok, content: {application/json: {schema: {$ref: '#/Thing'}}}}\nThing: {type: string}\n",
        )
        .unwrap();
        let spec = ApiSpec::load(&dir.join("api.yaml")).unwrap();
        let (doc, schema) = spec.operations[0].responses["200"].schema.as_ref().unwrap();
        assert_eq!(spec.deref(doc, schema).1["type"], "string");
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn cycles_and_broken_refs_resolve_to_null() {
        let spec = ApiSpec::parse(
            r##"{"openapi": "3.1.0", "info": {}, "paths": {},
                 "components": {"schemas": {"A": {"$ref": "#/components/schemas/B"},
                                            "B": {"$ref": "#/components/schemas/A"}}}}"##,
            "c.json",
        )
        .unwrap();
        let value = serde_json::json!({"$ref": "#/components/schemas/A"});
        assert_eq!(spec.deref("c.json", &value).1, &Value::Null);
        let broken = serde_json::json!({"$ref": "#/nowhere"});
        assert_eq!(spec.deref("c.json", &broken).1, &Value::Null);
        assert!(matches!(
            ApiSpec::parse("{\"info\": {}}", "x.json"),
            Err(SpecError::UnknownVersion { .. })
        ));
        assert!(matches!(
            ApiSpec::parse(": : :", "x.yaml"),
            Err(SpecError::Parse { .. })
        ));
    }
}
