//! Every diagram the analyzer draws (the lock class graph, the provenance graph) as one
//! model: labelled nodes and edges with a typed house style (boxes, monospace, the
//! story's path in red). The same model is written as DOT text ([`dot`]) and drawn as SVG,
//! by the built-in renderer ([`layout`] places it, [`svg`] draws it) or, when asked, by
//! graphviz ([`graphviz`]).

mod dot;
mod graphviz;
mod layout;
mod svg;

use crate::error::Result;

pub use dot::escape;

/// The largest graph the built-in layout draws. Its cost grows faster than the graph's
/// size (measured here: 200 nodes and 800 edges 1 s, 400 and 1,500 18 s, 800 and 3,000
/// 137 s), and a trace, hostile input, decides the size: a larger one is refused rather
/// than left to run for minutes. umk's diagrams have tens of nodes.
pub const MAX_BUILTIN_NODES: usize = 200;
/// See [`MAX_BUILTIN_NODES`].
pub const MAX_BUILTIN_EDGES: usize = 800;

/// Which way ranks run: the direction most edges point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// DOT `rankdir=LR`.
    LeftToRight,
    /// DOT `rankdir=BT`: causes below, effects above.
    BottomToTop,
}

/// The outline of a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    Box,
    Ellipse,
    Octagon,
    Diamond,
}

/// How a node or an edge is drawn. A node's `shape` of `None` is the graph's default
/// (a box) and names no shape in DOT; edges ignore it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Style {
    pub shape: Option<Shape>,
    /// Outline or line in red.
    pub red_line: bool,
    /// Label in red.
    pub red_text: bool,
    /// Twice the normal line width (DOT `penwidth=2`).
    pub thick: bool,
    pub dashed: bool,
}

impl Style {
    /// Black, thin, solid.
    pub const PLAIN: Style = Style {
        shape: None,
        red_line: false,
        red_text: false,
        thick: false,
        dashed: false,
    };

    /// The path the report is about: red line and text, drawn thick.
    pub const HIGHLIGHT: Style = Style {
        red_line: true,
        red_text: true,
        thick: true,
        ..Style::PLAIN
    };

    /// This style with outline `shape`.
    pub const fn with_shape(self, shape: Shape) -> Style {
        Style {
            shape: Some(shape),
            ..self
        }
    }
}

/// A node of the graph it was added to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct NodeId(usize);

#[derive(Clone, Debug)]
struct Node {
    /// The DOT identifier.
    id: String,
    label: String,
    style: Style,
}

#[derive(Clone, Debug)]
struct Edge {
    from: NodeId,
    to: NodeId,
    label: String,
    style: Style,
}

/// What draws the SVG.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Renderer {
    /// The built-in layered layout: nothing outside the binary is needed.
    #[default]
    Builtin,
    /// Graphviz's `dot -Tsvg`, which must be on PATH.
    Graphviz,
}

/// A directed graph to draw.
#[derive(Clone, Debug)]
pub struct Graph {
    name: String,
    direction: Direction,
    nodes: Vec<Node>,
    edges: Vec<Edge>,
}

impl Graph {
    /// An empty graph called `name` (a DOT identifier) whose ranks run `direction`.
    pub fn new(name: &str, direction: Direction) -> Graph {
        Graph {
            name: name.to_string(),
            direction,
            nodes: Vec::new(),
            edges: Vec::new(),
        }
    }

    /// Adds a node with DOT identifier `id`; the label may have several lines.
    pub fn node(&mut self, id: &str, label: &str, style: Style) -> NodeId {
        self.nodes.push(Node {
            id: id.to_string(),
            label: label.to_string(),
            style,
        });
        NodeId(self.nodes.len() - 1)
    }

    /// Adds an edge `from -> to` (`from == to` is a self-loop). An edge naming a node of
    /// another graph is not drawn.
    pub fn edge(&mut self, from: NodeId, to: NodeId, label: &str, style: Style) {
        self.edges.push(Edge {
            from,
            to,
            label: label.to_string(),
            style,
        });
    }

    fn node_at(&self, id: NodeId) -> Option<&Node> {
        self.nodes.get(id.0)
    }

    /// The graph as DOT text.
    pub fn to_dot(&self) -> String {
        dot::write(self)
    }

    /// The graph as an SVG document drawn by `renderer`. Graphviz can fail (not
    /// installed, or it rejected the graph); the built-in layout refuses a graph larger
    /// than [`MAX_BUILTIN_NODES`] / [`MAX_BUILTIN_EDGES`].
    pub fn to_svg(&self, renderer: Renderer) -> Result<String> {
        match renderer {
            Renderer::Builtin => {
                let (nodes, edges) = (self.nodes.len(), self.edges.len());
                if nodes > MAX_BUILTIN_NODES || edges > MAX_BUILTIN_EDGES {
                    return Err(crate::error::Error::GraphTooLarge { nodes, edges });
                }
                Ok(svg::draw(self, &layout::place(self)))
            }
            Renderer::Graphviz => graphviz::render_svg(&self.to_dot()),
        }
    }
}

#[cfg(test)]
mod tests;
