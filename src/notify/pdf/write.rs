//! Writing laid-out pages as a PDF with krilla: text, rectangles and rules, page footers. The
//! PDF is tagged for accessibility: every text line is a paragraph of the tag tree in reading
//! order (the layout's order), backgrounds, rules and page footers are artifacts, and the
//! document's language is the statement's.

use krilla::Document;
use krilla::geom::{PathBuilder, Point, Rect};
use krilla::metadata::Metadata;
use krilla::page::PageSettings;
use krilla::paint::{Fill, Stroke};
use krilla::tagging::{ArtifactType, ContentTag, SpanTag, Tag, TagGroup, TagTree};

use super::{Color, Layout, MARGIN, Op, PAGE_HEIGHT, PAGE_WIDTH, PdfError, StatementDoc};

pub(super) fn write_pdf(layout: Layout<'_>, doc: &StatementDoc) -> Result<Vec<u8>, PdfError> {
    let mut document = Document::new();
    document.set_metadata(
        Metadata::new()
            .title(format!(
                "{} {} {}",
                doc.partner_id, doc.period, doc.partner_name
            ))
            .producer("payout".into())
            .language(doc.language.clone()),
    );
    let mut tags = TagTree::new();
    let page_count = layout.pages.len();
    for (number, ops) in layout.pages.iter().enumerate() {
        let settings = PageSettings::from_wh(PAGE_WIDTH, PAGE_HEIGHT)
            .ok_or_else(|| PdfError::Write("page size".into()))?;
        let mut page = document.start_page_with(settings);
        let mut surface = page.surface();
        for op in ops {
            match op {
                Op::Text {
                    x,
                    y,
                    size,
                    bold,
                    color,
                    text,
                } => {
                    surface.set_fill(Some(Fill {
                        paint: color.rgb().into(),
                        ..Fill::default()
                    }));
                    let face = layout.fonts.face(*bold);
                    let id = surface.start_tagged(ContentTag::Span(SpanTag::empty()));
                    surface.draw_glyphs(
                        Point::from_xy(*x, *y),
                        &face.glyphs(text),
                        face.font.clone(),
                        text,
                        *size,
                        false,
                    );
                    surface.end_tagged();
                    tags.push(TagGroup::with_children(Tag::P, vec![id.into()]));
                }
                Op::Rect { x, y, w, h, color } => {
                    surface.start_tagged(ContentTag::Artifact(ArtifactType::Other));
                    let mut builder = PathBuilder::new();
                    if let Some(rect) = Rect::from_xywh(*x, *y, *w, *h) {
                        builder.push_rect(rect);
                    }
                    if let Some(path) = builder.finish() {
                        surface.set_fill(Some(Fill {
                            paint: color.rgb().into(),
                            ..Fill::default()
                        }));
                        surface.set_stroke(None);
                        surface.draw_path(&path);
                    }
                    surface.end_tagged();
                }
                Op::Line {
                    x1,
                    x2,
                    y,
                    width,
                    color,
                } => {
                    surface.start_tagged(ContentTag::Artifact(ArtifactType::Other));
                    let mut builder = PathBuilder::new();
                    builder.move_to(*x1, *y);
                    builder.line_to(*x2, *y);
                    if let Some(path) = builder.finish() {
                        surface.set_fill(None);
                        surface.set_stroke(Some(Stroke {
                            paint: color.rgb().into(),
                            width: *width,
                            ..Stroke::default()
                        }));
                        surface.draw_path(&path);
                        surface.set_stroke(None);
                    }
                    surface.end_tagged();
                }
            }
        }
        if page_count > 1 {
            let footer = format!(
                "{} · {} · {}/{}",
                doc.partner_id,
                doc.period,
                number + 1,
                page_count
            );
            surface.set_fill(Some(Fill {
                paint: Color::Muted.rgb().into(),
                ..Fill::default()
            }));
            let face = layout.fonts.face(false);
            surface.start_tagged(ContentTag::Artifact(ArtifactType::Footer));
            surface.draw_glyphs(
                Point::from_xy(MARGIN, PAGE_HEIGHT - 30.0),
                &face.glyphs(&footer),
                face.font.clone(),
                &footer,
                8.0,
                false,
            );
            surface.end_tagged();
        }
        surface.finish();
        page.finish();
    }
    document.set_tag_tree(tags);
    document
        .finish()
        .map_err(|e| PdfError::Write(format!("{e:?}")))
}
