//! The rendered document: a title, a header and sections of typed items, written out as
//! Markdown (every text escaped) or as JSON (every text intact).

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::fmt;
use std::str::FromStr;

use crate::snapshot::Measure;
use crate::text;

/// Which compliance document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentKind {
    /// RGPD Art. 30 record of processing entry.
    Register,
    /// RGPD Art. 35 data protection impact assessment kit.
    Dpia,
    /// AI Act deployer checklist.
    Checklist,
}

impl DocumentKind {
    pub const ALL: [DocumentKind; 3] = [
        DocumentKind::Register,
        DocumentKind::Dpia,
        DocumentKind::Checklist,
    ];

    /// `register`, `dpia` or `checklist`.
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentKind::Register => "register",
            DocumentKind::Dpia => "dpia",
            DocumentKind::Checklist => "checklist",
        }
    }
}

impl fmt::Display for DocumentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A document kind name that is none of `register`, `dpia`, `checklist`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownKind(pub String);

impl fmt::Display for UnknownKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown document kind {:?} (expected register, dpia or checklist)",
            self.0
        )
    }
}

impl std::error::Error for UnknownKind {}

impl FromStr for DocumentKind {
    type Err = UnknownKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DocumentKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownKind(s.to_string()))
    }
}

/// State of a checklist item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CheckState {
    /// The snapshot shows the obligation is met.
    #[serde(rename = "done")]
    Fait,
    /// The snapshot shows it is not met, or it is the commune's to carry out.
    #[serde(rename = "todo")]
    AFaire,
    /// The box cannot establish it.
    #[serde(rename = "unknown")]
    NonVerifie,
}

impl CheckState {
    /// `done`, `todo` or `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckState::Fait => "done",
            CheckState::AFaire => "todo",
            CheckState::NonVerifie => "unknown",
        }
    }

    /// The French label.
    pub fn label(self) -> &'static str {
        match self {
            CheckState::Fait => "Fait",
            CheckState::AFaire => "À faire",
            CheckState::NonVerifie => "Non vérifié",
        }
    }
}

/// A security or organisational measure and its state as read from the snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeasureItem {
    pub id: String,
    pub label: String,
    pub status: Measure,
    pub detail: String,
}

/// The French label of a measure's status.
pub(crate) fn status_label(m: Measure) -> &'static str {
    match m {
        Measure::Enabled => "en place",
        Measure::Disabled => "à compléter",
        Measure::Unknown => "non vérifiée",
    }
}

/// A checklist item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckItem {
    /// Stable snake_case identifier, e.g. `art4_literacy`.
    pub id: String,
    pub article: String,
    pub title: String,
    pub state: CheckState,
    pub evidence: String,
}

/// A risk of the DPIA with the measures that mitigate it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Risk {
    pub id: String,
    pub title: String,
    pub description: String,
    /// Mitigating measures the snapshot shows enabled.
    pub measures: Vec<MeasureItem>,
    /// Mitigating measures that are disabled or unverified.
    pub gaps: Vec<MeasureItem>,
    /// Organisational measures for the commune to put in place.
    pub organisational: Vec<String>,
    /// Left for the DPO.
    pub residual_risk: String,
}

/// One element of a section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Paragraph(String),
    Bullet(String),
    Field { label: String, value: String },
    Measure(MeasureItem),
    Check(CheckItem),
    Risk(Risk),
}

/// A titled section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// Stable snake_case identifier.
    pub id: String,
    pub heading: String,
    pub items: Vec<Item>,
}

impl Section {
    pub(crate) fn new(id: &str, heading: &str, items: Vec<Item>) -> Section {
        Section {
            id: id.to_string(),
            heading: heading.to_string(),
            items,
        }
    }
}

/// A rendered compliance document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub kind: DocumentKind,
    pub title: String,
    /// The commune's name, or the placeholder.
    pub commune: String,
    /// As given in the snapshot (RFC 3339 UTC).
    pub generated_at: String,
    pub box_version: String,
    /// States that the document comes from the live configuration and must be reviewed.
    pub notice: String,
    pub sections: Vec<Section>,
}

pub(crate) fn para(s: impl Into<String>) -> Item {
    Item::Paragraph(s.into())
}

pub(crate) fn bullet(s: impl Into<String>) -> Item {
    Item::Bullet(s.into())
}

pub(crate) fn field(label: &str, value: impl Into<String>) -> Item {
    Item::Field {
        label: label.to_string(),
        value: value.into(),
    }
}

/// Escapes what could start Markdown or HTML markup in `s`, and folds line breaks and other
/// control characters into spaces, so that a text can neither open a tag, a link, an
/// emphasis or a table cell, nor start a heading or a list on a line of its own.
pub fn escape_markdown(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' | '|' => {
                out.push('\\');
                out.push(c);
            }
            '\u{2028}' | '\u{2029}' => out.push(' '),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

use escape_markdown as esc;

/// What the previous Markdown block was, to join lists and tables and separate the rest.
#[derive(PartialEq, Eq, Clone, Copy)]
enum Block {
    None,
    List,
    Table,
    Other,
}

fn measure_md(m: &MeasureItem, with_status: bool) -> String {
    if with_status {
        format!(
            "- **{}** ({}) : {}",
            esc(&m.label),
            status_label(m.status),
            esc(&m.detail)
        )
    } else {
        format!("- **{}** : {}", esc(&m.label), esc(&m.detail))
    }
}

fn risk_md(out: &mut String, r: &Risk) {
    out.push_str(&format!(
        "### {}\n\n{}\n\n",
        esc(&r.title),
        esc(&r.description)
    ));
    out.push_str("Mesures en place d'après la configuration :\n\n");
    if r.measures.is_empty() {
        out.push_str("- Aucune mesure constatée.\n");
    }
    for m in &r.measures {
        out.push_str(&measure_md(m, false));
        out.push('\n');
    }
    if !r.gaps.is_empty() {
        out.push_str("\nMesures à compléter ou non vérifiées :\n\n");
        for m in &r.gaps {
            out.push_str(&measure_md(m, true));
            out.push('\n');
        }
    }
    if !r.organisational.is_empty() {
        out.push_str("\nMesures organisationnelles à prévoir par la commune :\n\n");
        for o in &r.organisational {
            out.push_str(&format!("- {}\n", esc(o)));
        }
    }
    out.push_str(&format!(
        "\n**Risque résiduel (gravité, vraisemblance) :** {}\n",
        esc(&r.residual_risk)
    ));
}

fn measure_json(m: &MeasureItem) -> Value {
    json!({
        "id": m.id,
        "label": m.label,
        "status": m.status.as_str(),
        "detail": m.detail,
    })
}

impl Item {
    /// The item as a JSON object with a `type` tag.
    pub fn to_json(&self) -> Value {
        match self {
            Item::Paragraph(t) => json!({ "type": "paragraph", "text": t }),
            Item::Bullet(t) => json!({ "type": "bullet", "text": t }),
            Item::Field { label, value } => {
                json!({ "type": "field", "label": label, "value": value })
            }
            Item::Measure(m) => {
                let mut tagged = serde_json::Map::new();
                tagged.insert("type".to_string(), json!("measure"));
                if let Value::Object(fields) = measure_json(m) {
                    tagged.extend(fields);
                }
                Value::Object(tagged)
            }
            Item::Check(c) => json!({
                "type": "check",
                "id": c.id,
                "article": c.article,
                "title": c.title,
                "state": c.state.as_str(),
                "evidence": c.evidence,
            }),
            Item::Risk(r) => json!({
                "type": "risk",
                "id": r.id,
                "title": r.title,
                "description": r.description,
                "measures": r.measures.iter().map(measure_json).collect::<Vec<_>>(),
                "gaps": r.gaps.iter().map(measure_json).collect::<Vec<_>>(),
                "organisational": r.organisational,
                "residual_risk": r.residual_risk,
            }),
        }
    }
}

impl Document {
    /// The checklist item with this id, if any.
    pub fn check(&self, id: &str) -> Option<&CheckItem> {
        self.items().find_map(|i| match i {
            Item::Check(c) if c.id == id => Some(c),
            _ => None,
        })
    }

    /// All items, in order.
    pub fn items(&self) -> impl Iterator<Item = &Item> {
        self.sections.iter().flat_map(|s| s.items.iter())
    }

    /// The document as JSON: `kind`, `title`, `commune`, `generated_at`, `box_version`,
    /// `notice` and `sections` (each with `id`, `heading` and typed `items`).
    pub fn to_json(&self) -> Value {
        json!({
            "kind": self.kind.as_str(),
            "title": self.title,
            "commune": self.commune,
            "generated_at": self.generated_at,
            "box_version": self.box_version,
            "notice": self.notice,
            "sections": self.sections.iter().map(|s| json!({
                "id": s.id,
                "heading": s.heading,
                "items": s.items.iter().map(Item::to_json).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })
    }

    /// The document as Markdown (CommonMark with GFM tables). Every text is escaped with
    /// [`escape_markdown`]; only the structure (headings, lists, tables, bold labels) is
    /// markup.
    pub fn to_markdown(&self) -> String {
        let mut out = format!("# {}\n\n", esc(&self.title));
        out.push_str(&format!("- **Commune :** {}\n", esc(&self.commune)));
        out.push_str(&format!(
            "- **Date de génération :** {}\n",
            esc(&text::datetime(&self.generated_at))
        ));
        out.push_str(&format!(
            "- **Version de Civia :** {}\n\n",
            esc(&self.box_version)
        ));
        out.push_str(&format!("> {}\n", esc(&self.notice)));
        for s in &self.sections {
            out.push_str(&format!("\n## {}\n", esc(&s.heading)));
            let mut prev = Block::None;
            for item in &s.items {
                let block = match item {
                    Item::Bullet(_) | Item::Field { .. } | Item::Measure(_) => Block::List,
                    Item::Check(_) => Block::Table,
                    Item::Paragraph(_) | Item::Risk(_) => Block::Other,
                };
                if block != prev || block == Block::Other {
                    out.push('\n');
                }
                if block == Block::Table && prev != Block::Table {
                    out.push_str("| Article | Point de contrôle | État | Éléments constatés |\n");
                    out.push_str("|---|---|---|---|\n");
                }
                match item {
                    Item::Paragraph(t) => out.push_str(&format!("{}\n", esc(t))),
                    Item::Bullet(t) => out.push_str(&format!("- {}\n", esc(t))),
                    Item::Field { label, value } => {
                        out.push_str(&format!("- **{} :** {}\n", esc(label), esc(value)))
                    }
                    Item::Measure(m) => {
                        out.push_str(&measure_md(m, true));
                        out.push('\n');
                    }
                    Item::Check(c) => out.push_str(&format!(
                        "| {} | {} | {} | {} |\n",
                        esc(&c.article),
                        esc(&c.title),
                        c.state.label(),
                        esc(&c.evidence)
                    )),
                    Item::Risk(r) => risk_md(&mut out, r),
                }
                prev = block;
            }
        }
        out
    }
}
