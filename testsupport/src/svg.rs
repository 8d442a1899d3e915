//! Reading the analyzer's SVG diagrams back in tests: each `<g class="edge">` group's
//! title (`a -> b`) and line colour.

/// The edges of `svg`, as (title, stroke colour), in document order. Panics when `svg` is
/// not well-formed XML with an `<svg>` root: that is what the tests check first.
pub fn edges(svg: &str) -> Vec<(String, String)> {
    let doc = roxmltree::Document::parse(svg).expect("the SVG is well-formed XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    doc.descendants()
        .filter(|n| n.has_tag_name("g") && n.attribute("class") == Some("edge"))
        .map(|g| {
            let child = |tag: &str| g.children().find(|c| c.has_tag_name(tag));
            let title = child("title").and_then(|t| t.text()).unwrap_or_default();
            let stroke = child("path")
                .and_then(|p| p.attribute("stroke"))
                .unwrap_or_default();
            (title.to_string(), stroke.to_string())
        })
        .collect()
}

/// The titles of the edges drawn in red.
pub fn red_edges(svg: &str) -> Vec<String> {
    edges(svg)
        .into_iter()
        .filter(|(_, stroke)| stroke == "red")
        .map(|(title, _)| title)
        .collect()
}
