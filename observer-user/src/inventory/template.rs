//! Path templating: `/users/42/orders/9f1c0a77e2` becomes `/users/{id}/orders/{orderId}`.
//!
//! The first thing the inventory does with a call: its path decides which endpoint it counts
//! toward. Each service has a [`PathTree`], one node per path position seen. A segment becomes a
//! parameter in one of three ways, in this order of precedence:
//!
//! 1. a user template (from a spec, `observer run --spec`) says so: user templates always win;
//! 2. the segment is a typed token: an integer, a UUID, a hex or base64-like id, a date, an
//!    email. Version tokens (`v1`, `v2.1`) stay literal: they name an API, not a resource;
//! 3. the position has seen more than [`LITERAL_FANOUT_LIMIT`] distinct literal values: its
//!    literal children are merged into one parameter (learned from cardinality), so ids that
//!    look like words (`/users/alice`) are found in any position.
//!
//! Parameters are named from the segment before them (`orders/{orderId}`), the first one in a
//! path `{id}`. The tree is bounded: a position never holds more than the fan-out limit of
//! learned literals, and a service never more than [`MAX_NODES_PER_SERVICE`] nodes; past that
//! new literals become parameters, and the cap is counted.
//!
//! Lookups walk the tree with one hash lookup per segment and no allocation for known paths:
//! endpoints hang off the node their path ends at, so the inventory never builds a route string
//! per call.

use std::{
    collections::HashMap,
    hash::{BuildHasherDefault, Hasher},
    sync::Arc,
};

use serde::{Deserialize, Serialize};

use crate::sensitive::scan::Scanner;

/// Distinct literal values one path position may hold before they are taken for a parameter.
/// Real APIs rarely have more sibling resources than this under one parent (GitHub's REST API
/// has about thirty at its root, and none past this below it), while ids reach it quickly.
pub const LITERAL_FANOUT_LIMIT: usize = 24;

/// Nodes one service's tree may hold. Each costs about a hundred bytes plus its segment; past
/// this, paths with new literal segments are folded into parameters rather than grow the tree.
pub const MAX_NODES_PER_SERVICE: usize = 16_384;

/// Path segments templated one by one; the rest of a deeper path becomes one `{rest}` parameter.
/// Real routes are a handful of segments deep; this only stops hostile or broken paths.
pub const MAX_SEGMENTS: usize = 24;

/// Index of a node in its tree.
pub type NodeId = u32;

/// The root node of every tree: the path `/`.
pub const ROOT: NodeId = 0;

/// What a parameter position holds, as far as its values tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamKind {
    Integer,
    Uuid,
    /// Hex digits (object ids, hashes).
    Hex,
    /// A long token mixing letters and digits (base64url ids, slugs with ids).
    Opaque,
    Date,
    Email,
    /// Learned from cardinality: any string.
    Text,
    /// Declared by a user template.
    Declared,
    /// The tail of a path deeper than [`MAX_SEGMENTS`].
    Rest,
}

impl ParamKind {
    /// The kind of a position that held values of both kinds.
    fn merge(self, other: ParamKind) -> ParamKind {
        match (self, other) {
            (a, b) if a == b => a,
            (ParamKind::Declared, _) | (_, ParamKind::Declared) => ParamKind::Declared,
            (ParamKind::Rest, _) | (_, ParamKind::Rest) => ParamKind::Rest,
            _ => ParamKind::Text,
        }
    }
}

/// A segment of a template, as stored with an endpoint so it can be re-resolved after the tree
/// learns that a position is a parameter.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Seg {
    Literal(Box<str>),
    Param,
}

/// The classification of one raw segment.
pub fn classify(segment: &str) -> Option<ParamKind> {
    let bytes = segment.as_bytes();
    if bytes.is_empty() {
        return None;
    }
    if is_version(bytes) {
        return None;
    }
    if bytes.len() <= 20 && bytes.iter().all(u8::is_ascii_digit) {
        return Some(ParamKind::Integer);
    }
    if crate::sensitive::validate::is_uuid(bytes) {
        return Some(ParamKind::Uuid);
    }
    if is_date(bytes) {
        return Some(ParamKind::Date);
    }
    if is_email(segment) {
        return Some(ParamKind::Email);
    }
    if bytes.len() >= 8
        && bytes.iter().all(u8::is_ascii_hexdigit)
        && bytes.iter().any(u8::is_ascii_digit)
    {
        return Some(ParamKind::Hex);
    }
    if is_opaque(bytes) {
        return Some(ParamKind::Opaque);
    }
    None
}

/// Whether the sensitive-data scanner finds a value in `segment` (an SSN, a phone number, an IP
/// address, a token) that no shape above took for a parameter: the segment is then a parameter
/// at once, as the inventory is kept and exported and must hold no values. Asked only of a
/// segment about to become a literal, which a route's words are once each.
fn holds_sensitive_value(segment: &str) -> bool {
    Scanner::builtin().finds_in_short_text(segment)
}

/// `v1`, `v2`, `v10`, `v1.2`, `V3`.
fn is_version(bytes: &[u8]) -> bool {
    let Some((first, rest)) = bytes.split_first() else {
        return false;
    };
    (*first == b'v' || *first == b'V')
        && !rest.is_empty()
        && rest.len() <= 6
        && rest[0].is_ascii_digit()
        && rest.iter().all(|b| b.is_ascii_digit() || *b == b'.')
}

/// `2024-05-01` (an ISO date), optionally followed by a time.
fn is_date(bytes: &[u8]) -> bool {
    bytes.len() >= 10
        && bytes[..10].iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            _ => b.is_ascii_digit(),
        })
        && (bytes.len() == 10 || bytes[10] == b'T' || bytes[10] == b't')
}

/// `name@host.tld`, also percent-encoded (`%40`).
fn is_email(segment: &str) -> bool {
    let (local, domain) = match segment.split_once('@') {
        Some(parts) => parts,
        None => match segment.split_once("%40") {
            Some(parts) => parts,
            None => return false,
        },
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
}

/// Shortest token taken for an opaque id on its shape alone.
const MIN_OPAQUE_LEN: usize = 12;

/// Letters and digits alternating this often (`aZ3kP9qL2mX7`) is random, not a word
/// (`release-notes-2024` switches once).
const MIN_OPAQUE_CLASS_SWITCHES: usize = 4;

fn is_opaque(bytes: &[u8]) -> bool {
    if bytes.len() < MIN_OPAQUE_LEN
        || !bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
    {
        return false;
    }
    let mut switches = 0;
    let mut last_digit: Option<bool> = None;
    for b in bytes.iter().filter(|b| b.is_ascii_alphanumeric()) {
        let digit = b.is_ascii_digit();
        if last_digit.is_some_and(|d| d != digit) {
            switches += 1;
        }
        last_digit = Some(digit);
    }
    switches >= MIN_OPAQUE_CLASS_SWITCHES
}

/// A fast, unkeyed hash (FxHash's multiply-rotate) for the inventory's small maps: every one of
/// them is capped (a few dozen entries), so even keys chosen to collide cost a few dozen
/// comparisons. SipHash, the default, costs more per key than the rest of a lookup.
#[derive(Default, Clone, Copy)]
pub struct FastHasher(u64);

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl FastHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

/// Maps with [`FastHasher`].
pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Node {
    parent: NodeId,
    /// How the parent reaches this node.
    seg: Seg,
    /// Literal children as (hash of the segment, node): a short list scanned by hash, the match
    /// confirmed on the child's own segment. Cheaper than a map here: the child is visited
    /// next anyway, and a separate key would be one more cache miss per segment.
    literals: Vec<(u64, NodeId)>,
    param: Option<NodeId>,
    /// For a parameter node: what its values looked like.
    kind: Option<ParamKind>,
    /// A user template's name for this parameter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    declared_name: Option<Box<str>>,
    /// Unknown literals at this position go to the parameter child: the position was learned
    /// to be a parameter, or a user template declared one.
    collapsed: bool,
    /// From a user template: never merged away.
    pinned: bool,
    /// Merged into another node; kept so ids stay stable, never reached.
    dead: bool,
    /// The rendered route, cached (cleared whenever the tree changes shape).
    #[serde(skip)]
    route: Option<Arc<str>>,
}

impl Node {
    fn new(parent: NodeId, seg: Seg) -> Node {
        Node {
            parent,
            seg,
            literals: Vec::new(),
            param: None,
            kind: None,
            declared_name: None,
            collapsed: false,
            pinned: false,
            dead: false,
            route: None,
        }
    }
}

/// What a lookup found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lookup {
    pub node: NodeId,
    /// The tree changed shape: templates of existing endpoints may have changed, and the caller
    /// must re-resolve them ([`PathTree::resolve`]).
    pub reshaped: bool,
    /// A new node was made (a path not seen before).
    pub grew: bool,
    /// The node cap folded a new literal into a parameter.
    pub capped: bool,
}

/// One service's path tree.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PathTree {
    nodes: Vec<Node>,
    live: usize,
}

impl Default for PathTree {
    fn default() -> Self {
        PathTree {
            nodes: vec![Node::new(ROOT, Seg::Literal("".into()))],
            live: 1,
        }
    }
}

/// Path segments, without empty ones (`//a/` is `/a`), at most [`MAX_SEGMENTS`] plus one tail.
pub fn segments(path: &str) -> impl Iterator<Item = &str> {
    let mut rest = path;
    let mut count = 0;
    std::iter::from_fn(move || loop {
        if rest.is_empty() {
            return None;
        }
        if count == MAX_SEGMENTS {
            let tail = rest.trim_matches('/');
            rest = "";
            count += 1;
            return (!tail.is_empty()).then_some(tail);
        }
        let (segment, next) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        rest = next;
        if !segment.is_empty() {
            count += 1;
            return Some(segment);
        }
    })
}

impl PathTree {
    /// Nodes in use.
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live <= 1
    }

    /// The node `path` ends at, growing the tree as needed.
    pub fn lookup(&mut self, path: &str) -> Lookup {
        let mut result = Lookup {
            node: ROOT,
            reshaped: false,
            grew: false,
            capped: false,
        };
        for (depth, segment) in segments(path).enumerate() {
            let node = result.node;
            let kind = if depth == MAX_SEGMENTS {
                Some(ParamKind::Rest)
            } else if let Some(child) = self.literal_child(node, segment) {
                result.node = child;
                continue;
            } else {
                classify(segment)
            };
            result.node = match kind {
                Some(kind) => self.param_child(node, kind, &mut result),
                None if self.nodes[node as usize].collapsed => {
                    self.param_child(node, ParamKind::Text, &mut result)
                }
                None if self.nodes[node as usize].literals.len() >= LITERAL_FANOUT_LIMIT => {
                    self.collapse(node);
                    result.reshaped = true;
                    self.param_child(node, ParamKind::Text, &mut result)
                }
                None if self.live >= MAX_NODES_PER_SERVICE => {
                    result.capped = true;
                    self.param_child(node, ParamKind::Text, &mut result)
                }
                None if holds_sensitive_value(segment) => {
                    self.param_child(node, ParamKind::Text, &mut result)
                }
                None => {
                    result.grew = true;
                    self.add_child(node, Seg::Literal(segment.into()))
                }
            };
        }
        result
    }

    fn add_child(&mut self, parent: NodeId, seg: Seg) -> NodeId {
        let id = self.nodes.len() as NodeId;
        let node = &mut self.nodes[parent as usize];
        match &seg {
            Seg::Literal(name) => node.literals.push((segment_hash(name), id)),
            Seg::Param => node.param = Some(id),
        }
        self.nodes.push(Node::new(parent, seg));
        self.live += 1;
        id
    }

    /// The parameter child of `parent`, made if missing, with `kind` merged into it.
    fn param_child(&mut self, parent: NodeId, kind: ParamKind, result: &mut Lookup) -> NodeId {
        let child = match self.nodes[parent as usize].param {
            Some(child) => child,
            None => {
                result.grew = true;
                self.add_child(parent, Seg::Param)
            }
        };
        let node = &mut self.nodes[child as usize];
        let merged = node.kind.map_or(kind, |k| k.merge(kind));
        node.kind = Some(merged);
        child
    }

    /// Learn that `node`'s position is a parameter: merge its (unpinned) literal children into
    /// its parameter child.
    fn collapse(&mut self, node: NodeId) {
        let mut dummy = Lookup {
            node,
            reshaped: true,
            grew: false,
            capped: false,
        };
        let target = self.param_child(node, ParamKind::Text, &mut dummy);
        for child in self.take_unpinned_literals(node) {
            self.merge_into(child, target);
        }
        self.nodes[node as usize].collapsed = true;
        self.clear_routes();
    }

    /// Move everything under `src` into `dst`, recursively; `src` dies.
    fn merge_into(&mut self, src: NodeId, dst: NodeId) {
        let literals = std::mem::take(&mut self.nodes[src as usize].literals);
        for (hash, child) in literals {
            let existing = match &self.nodes[child as usize].seg {
                Seg::Literal(name) => self.literal_child(dst, name),
                Seg::Param => None,
            };
            match existing {
                Some(existing) => self.merge_into(child, existing),
                None if self.nodes[dst as usize].collapsed
                    && !self.nodes[child as usize].pinned =>
                {
                    let target = self.ensure_param(dst);
                    self.merge_into(child, target);
                }
                None => {
                    self.nodes[child as usize].parent = dst;
                    self.nodes[dst as usize].literals.push((hash, child));
                }
            }
        }
        if let Some(param) = self.nodes[src as usize].param.take() {
            match self.nodes[dst as usize].param {
                Some(existing) => {
                    let kind = self.nodes[param as usize].kind;
                    if let (Some(kind), Some(current)) = (kind, self.nodes[existing as usize].kind)
                    {
                        self.nodes[existing as usize].kind = Some(current.merge(kind));
                    }
                    self.merge_into(param, existing);
                }
                None => {
                    self.nodes[param as usize].parent = dst;
                    self.nodes[dst as usize].param = Some(param);
                }
            }
        }
        if self.nodes[src as usize].collapsed {
            self.nodes[dst as usize].collapsed = true;
        }
        self.nodes[src as usize].dead = true;
        self.live -= 1;
    }

    fn ensure_param(&mut self, node: NodeId) -> NodeId {
        let mut dummy = Lookup {
            node,
            reshaped: true,
            grew: false,
            capped: false,
        };
        self.param_child(node, ParamKind::Text, &mut dummy)
    }

    fn clear_routes(&mut self) {
        for node in &mut self.nodes {
            node.route = None;
        }
    }

    /// Declare a user template (`/users/{userId}/orders`): its literals stay literal, its
    /// parameters keep their names, and unknown values at its parameter positions go to them.
    pub fn declare(&mut self, template: &str) {
        let mut node = ROOT;
        for segment in segments(template) {
            node = match declared_param_name(segment) {
                Some(name) => {
                    let child = self.ensure_param(node);
                    self.nodes[node as usize].collapsed = true;
                    let param = &mut self.nodes[child as usize];
                    param.kind = Some(ParamKind::Declared);
                    param.declared_name = Some(name.into());
                    param.pinned = true;
                    // Literals learned here before the declaration were values of it.
                    for literal in self.take_unpinned_literals(node) {
                        self.merge_into(literal, child);
                    }
                    child
                }
                None => match self.literal_child(node, segment) {
                    Some(child) => child,
                    None => self.add_child(node, Seg::Literal(segment.into())),
                },
            };
            self.nodes[node as usize].pinned = true;
        }
        self.clear_routes();
    }

    /// The node a stored template reaches now (after the tree may have learned parameters).
    pub fn resolve(&mut self, segs: &[Seg]) -> NodeId {
        let mut node = ROOT;
        for seg in segs {
            node = match seg {
                Seg::Literal(name) => match self.literal_child(node, name) {
                    Some(child) => child,
                    None => self.ensure_param(node),
                },
                Seg::Param => self.ensure_param(node),
            };
        }
        node
    }

    /// The literal child of `node` for `segment`.
    fn literal_child(&self, node: NodeId, segment: &str) -> Option<NodeId> {
        let hash = segment_hash(segment);
        self.nodes[node as usize]
            .literals
            .iter()
            .filter(|(h, _)| *h == hash)
            .map(|(_, child)| *child)
            .find(|child| {
                matches!(&self.nodes[*child as usize].seg, Seg::Literal(name) if &**name == segment)
            })
    }

    /// Remove and return `node`'s literal children that no user template pinned.
    fn take_unpinned_literals(&mut self, node: NodeId) -> Vec<NodeId> {
        let mut learned = Vec::new();
        let mut literals = std::mem::take(&mut self.nodes[node as usize].literals);
        literals.retain(|&(_, child)| {
            let pinned = self.nodes[child as usize].pinned;
            if !pinned {
                learned.push(child);
            }
            pinned
        });
        self.nodes[node as usize].literals = literals;
        learned
    }

    /// The segments leading to `node`, for storing with an endpoint.
    pub fn segs(&self, node: NodeId) -> Vec<Seg> {
        let mut out = Vec::new();
        let mut id = node;
        while id != ROOT {
            let n = &self.nodes[id as usize];
            out.push(n.seg.clone());
            id = n.parent;
        }
        out.reverse();
        out
    }

    /// Kinds of the parameters on the way to `node`, in path order.
    pub fn param_kinds(&self, node: NodeId) -> Vec<ParamKind> {
        let mut out = Vec::new();
        let mut id = node;
        while id != ROOT {
            let n = &self.nodes[id as usize];
            if n.seg == Seg::Param {
                out.push(n.kind.unwrap_or(ParamKind::Text));
            }
            id = n.parent;
        }
        out.reverse();
        out
    }

    /// The route of `node`: `/users/{id}/orders/{orderId}`.
    pub fn route(&mut self, node: NodeId) -> Arc<str> {
        if let Some(route) = &self.nodes[node as usize].route {
            return route.clone();
        }
        let route: Arc<str> = self.render(node).into();
        self.nodes[node as usize].route = Some(route.clone());
        route
    }

    fn render(&self, node: NodeId) -> String {
        let mut chain = Vec::new();
        let mut id = node;
        while id != ROOT {
            chain.push(id);
            id = self.nodes[id as usize].parent;
        }
        chain.reverse();
        if chain.is_empty() {
            return "/".to_string();
        }
        let mut out = String::new();
        let mut names = ParamNamer::default();
        let mut previous: Option<&str> = None;
        for id in chain {
            let n = &self.nodes[id as usize];
            out.push('/');
            match &n.seg {
                Seg::Literal(name) => {
                    out.push_str(name);
                    previous = Some(name);
                }
                Seg::Param => {
                    let name = names.name(
                        n.declared_name.as_deref(),
                        n.kind.unwrap_or(ParamKind::Text),
                        previous,
                    );
                    out.push('{');
                    out.push_str(&name);
                    out.push('}');
                    previous = None;
                }
            }
        }
        out
    }
}

fn segment_hash(segment: &str) -> u64 {
    let mut hasher = FastHasher::default();
    hasher.write(segment.as_bytes());
    hasher.finish()
}

/// `{name}` in a user template.
fn declared_param_name(segment: &str) -> Option<&str> {
    segment
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .filter(|s| !s.is_empty())
}

/// Names parameters from the segment before them, unique within one route.
#[derive(Default)]
struct ParamNamer {
    used: Vec<String>,
}

impl ParamNamer {
    fn name(&mut self, declared: Option<&str>, kind: ParamKind, previous: Option<&str>) -> String {
        let base = match (declared, kind) {
            (Some(name), _) => name.to_string(),
            (None, ParamKind::Date) => "date".to_string(),
            (None, ParamKind::Email) => "email".to_string(),
            (None, ParamKind::Rest) => "rest".to_string(),
            (None, _) => match previous.map(resource_name) {
                Some(resource) if !self.used.is_empty() && !resource.is_empty() => {
                    format!("{resource}Id")
                }
                _ => "id".to_string(),
            },
        };
        let mut name = base.clone();
        let mut n = 2;
        while self.used.contains(&name) {
            name = format!("{base}{n}");
            n += 1;
        }
        self.used.push(name.clone());
        name
    }
}

/// `orders` → `order`, `order-items` → `orderItem`, `categories` → `category`: the singular,
/// lower camel case, of a collection segment. Empty when the segment has no letters to use.
fn resource_name(segment: &str) -> String {
    let mut words: Vec<String> = segment
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    if let Some(last) = words.last_mut() {
        *last = singular(last);
    }
    let mut out = String::new();
    for (i, word) in words.iter().enumerate() {
        if i == 0 {
            out.push_str(word);
        } else {
            let mut chars = word.chars();
            if let Some(first) = chars.next() {
                out.push(first.to_ascii_uppercase());
                out.push_str(chars.as_str());
            }
        }
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        return String::new();
    }
    out
}

fn singular(word: &str) -> String {
    if let Some(stem) = word.strip_suffix("ies").filter(|s| s.len() > 1) {
        format!("{stem}y")
    } else if let Some(stem) = word
        .strip_suffix("sses")
        .or_else(|| word.strip_suffix("xes"))
        .or_else(|| word.strip_suffix("ches"))
        .or_else(|| word.strip_suffix("shes"))
    {
        format!("{stem}{}", &word[stem.len()..word.len() - 2])
    } else if word.ends_with('s')
        && !["ss", "us", "is"].iter().any(|end| word.ends_with(end))
        && word.len() > 2
    {
        word[..word.len() - 1].to_string()
    } else {
        word.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(tree: &mut PathTree, path: &str) -> String {
        let node = tree.lookup(path).node;
        tree.route(node).to_string()
    }

    #[test]
    fn typed_tokens_become_named_parameters() {
        let mut tree = PathTree::default();
        for (path, expected) in [
            (
                "/users/42/orders/9f1c0a77e2",
                "/users/{id}/orders/{orderId}",
            ),
            (
                "/api/v1/accounts/6f0e7b8e-2d0a-4c53-9b8e-6a1c3f0e2d11",
                "/api/v1/accounts/{id}",
            ),
            ("/reports/2024-05-01/summary", "/reports/{date}/summary"),
            ("/people/ann@example.com", "/people/{email}"),
            ("/people/ann%40example.com", "/people/{email}"),
            ("/files/aZ3kP9qL2mX7vB1n", "/files/{id}"),
            (
                "/categories/7/sub-categories/8/order-items/9",
                "/categories/{id}/sub-categories/{subCategoryId}/order-items/{orderItemId}",
            ),
            ("/v2/boxes/5", "/v2/boxes/{id}"),
            ("/", "/"),
            ("//users//43/", "/users/{id}"),
        ] {
            assert_eq!(route(&mut tree, path), expected, "{path}");
        }
    }

    #[test]
    fn sensitive_values_in_paths_are_parameters_at_once() {
        let mut tree = PathTree::default();
        for (path, expected) in [
            ("/tax/219-45-6789/forms", "/tax/{id}/forms"),
            ("/hosts/203.0.113.7/ping", "/hosts/{id}/ping"),
            ("/cards/4111-1111-1111-1111", "/cards/{id}"),
            (
                "/s/eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U/view",
                "/s/{id}/view",
            ),
            ("/tax/about/forms", "/tax/about/forms"),
        ] {
            assert_eq!(route(&mut tree, path), expected, "{path}");
        }
    }

    #[test]
    fn words_and_versions_stay_literal() {
        for segment in [
            "users",
            "v1",
            "v2.1",
            "release-notes-2024",
            "index.html",
            "decade",
            "me",
        ] {
            assert_eq!(classify(segment), None, "{segment}");
        }
        assert_eq!(classify("5f2b6c1e9a7d3b4c8e0f1a2b"), Some(ParamKind::Hex));
        assert_eq!(classify("2024-05-01T10:00:00Z"), Some(ParamKind::Date));
    }

    #[test]
    fn cardinality_turns_a_position_into_a_parameter() {
        let mut tree = PathTree::default();
        let names: Vec<String> = (0..40)
            .map(|i| format!("user{}x", (b'a' + i % 26) as char))
            .collect();
        let mut reshaped = false;
        for (i, name) in names.iter().enumerate() {
            let lookup = tree.lookup(&format!("/users/{name}{i}/repos"));
            reshaped |= lookup.reshaped;
        }
        assert!(reshaped);
        assert_eq!(route(&mut tree, "/users/zed/repos"), "/users/{id}/repos");
        // Below the limit, siblings stay literal.
        let mut tree = PathTree::default();
        for resource in ["users", "orders", "items", "health"] {
            assert_eq!(
                route(&mut tree, &format!("/{resource}")),
                format!("/{resource}")
            );
        }
    }

    #[test]
    fn stored_templates_resolve_to_the_learned_parameter() {
        let mut tree = PathTree::default();
        let first = tree.lookup("/users/alice/repos").node;
        let segs = tree.segs(first);
        for i in 0..LITERAL_FANOUT_LIMIT + 1 {
            tree.lookup(&format!("/users/name{i}x/repos"));
        }
        let now = tree.resolve(&segs);
        assert_eq!(&*tree.route(now), "/users/{id}/repos");
        assert_eq!(now, tree.lookup("/users/bob/repos").node);
    }

    #[test]
    fn unbounded_cardinality_stays_bounded() {
        let mut tree = PathTree::default();
        let mut state = 1u64;
        for _ in 0..50_000 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let a = (state >> 33) % 100_000;
            let b = (state >> 13) % 7;
            tree.lookup(&format!("/w{a}x/k{b}y/w{a}z"));
        }
        assert!(tree.len() < 200, "{} nodes", tree.len());
        assert_eq!(route(&mut tree, "/anything/k1y/else"), "/{id}/k1y/{k1yId}");
    }

    #[test]
    fn the_node_cap_folds_new_literals_into_parameters() {
        let mut tree = PathTree::default();
        let mut capped = false;
        let base = LITERAL_FANOUT_LIMIT;
        for i in 0..base.pow(4) {
            let path: String = (0..4)
                .map(|level| format!("/s{}x", i / base.pow(level) % base))
                .collect();
            capped |= tree.lookup(&path).capped;
            if capped {
                break;
            }
        }
        assert!(capped);
        assert!(tree.len() <= MAX_NODES_PER_SERVICE + 1);
    }

    #[test]
    fn user_templates_win() {
        let mut tree = PathTree::default();
        tree.lookup("/files/report");
        tree.declare("/files/{fileName}");
        tree.declare("/files/{fileName}/versions/latest");
        assert_eq!(route(&mut tree, "/files/report"), "/files/{fileName}");
        assert_eq!(route(&mut tree, "/files/42"), "/files/{fileName}");
        assert_eq!(
            route(&mut tree, "/files/x/versions/latest"),
            "/files/{fileName}/versions/latest"
        );
        // A declared literal is never merged away by cardinality.
        let mut tree = PathTree::default();
        tree.declare("/items/featured");
        for i in 0..LITERAL_FANOUT_LIMIT + 5 {
            tree.lookup(&format!("/items/item{i}x"));
        }
        assert_eq!(route(&mut tree, "/items/featured"), "/items/featured");
        assert_eq!(route(&mut tree, "/items/other"), "/items/{id}");
    }

    #[test]
    fn deep_paths_end_in_one_rest_parameter() {
        let mut tree = PathTree::default();
        let deep: String = (0..40)
            .map(|i| format!("/s{}", (b'a' + i % 26) as char))
            .collect();
        let r = route(&mut tree, &deep);
        assert!(r.ends_with("/{rest}"), "{r}");
        assert_eq!(r.matches('/').count(), MAX_SEGMENTS + 1);
    }

    #[test]
    fn names_are_singular_camel_case() {
        assert_eq!(resource_name("orders"), "order");
        assert_eq!(resource_name("categories"), "category");
        assert_eq!(resource_name("addresses"), "address");
        assert_eq!(resource_name("boxes"), "box");
        assert_eq!(resource_name("order_items"), "orderItem");
        assert_eq!(resource_name("status"), "status");
        assert_eq!(resource_name("analysis"), "analysis");
    }
}
