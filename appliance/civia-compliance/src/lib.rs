//! The commune's compliance documents, rendered in French from a [`Snapshot`] of the box's
//! live configuration and state, as Markdown ([`Document::to_markdown`]) and as JSON
//! ([`Document::to_json`]).
//!
//! Owns: the texts and the structure of the RGPD Art. 30 record of processing entry
//! ([`register_entry`]), of the Art. 35 data protection impact assessment kit ([`dpia_kit`])
//! and of the AI Act deployer checklist ([`deployer_checklist`]), with the stable ids of
//! their sections, measures, risks and checklist items; the reading of each measure's state
//! from the snapshot (one place, shared by the three documents); the Markdown escaping of
//! the snapshot's strings; the mapping of the box's configuration and of the state the daemon
//! read (model and dossier, audit log, accounts, charter, host facts) to the snapshot
//! ([`Snapshot::from_live`]).
//!
//! Must never: do I/O (no files, clock, network or environment: the caller gives the
//! snapshot and its date); or state a measure that the snapshot does not say is enabled.
//! Every statement about a security measure comes from the snapshot; a disabled measure is
//! listed as such and an unknown state is rendered as "non vérifié" / `unknown`, never as
//! done. The documents are drafts for the commune and its DPO to review, and say so.

mod checklist;
mod document;
mod dpia;
mod live;
mod measures;
mod register;
mod snapshot;
mod text;

#[cfg(test)]
mod tests;

pub mod dossier;

pub use checklist::deployer_checklist;
pub use document::{
    escape_markdown, CheckItem, CheckState, Document, DocumentKind, Item, MeasureItem, Risk,
    Section, UnknownKind,
};
pub use dpia::dpia_kit;
pub use live::{AuditState, Charter, Live, LoadedModel};
pub use register::register_entry;
pub use snapshot::{
    AuditInfo, CharterInfo, GuardInfo, HistoryInfo, Measure, ModelInfo, SecurityInfo, Snapshot,
    UserCounts,
};

/// The notice every document carries under its header.
const NOTICE: &str = "Ce document a été généré automatiquement à partir de la configuration en \
                      vigueur de la boîte Civia. Il ne vaut pas validation : relisez-le, \
                      complétez les points signalés et faites-le valider par le responsable de \
                      traitement et le délégué à la protection des données (DPO) de la \
                      commune.";

/// Renders the document of this kind.
pub fn render(kind: DocumentKind, s: &Snapshot) -> Document {
    match kind {
        DocumentKind::Register => register_entry(s),
        DocumentKind::Dpia => dpia_kit(s),
        DocumentKind::Checklist => deployer_checklist(s),
    }
}

/// A document with the common header.
fn document_for(kind: DocumentKind, title: &str, s: &Snapshot, sections: Vec<Section>) -> Document {
    Document {
        kind,
        title: title.to_string(),
        commune: text::commune(s),
        generated_at: s.generated_at.clone(),
        box_version: s.box_version.clone(),
        notice: NOTICE.to_string(),
        sections,
    }
}
