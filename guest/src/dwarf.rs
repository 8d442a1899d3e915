//! Structure layouts read from a binary's DWARF: the byte offset of every member of a
//! named `struct`, members of anonymous structs and unions inside it folded in (as C
//! names them: `task->__state`, whatever union holds it). A guest whose structures have
//! no exported layout (Linux) is read through these, so the reader follows the kernel's
//! own build, config and compiler instead of offsets written down here.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;

use addr2line::gimli;
use object::{Object, ObjectSection};

use crate::error::{Error, Result};

/// Anonymous members nest this deep at most (the kernel's go two or three levels down).
const MAX_NESTING: usize = 8;

/// The members of one structure.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layout {
    /// The structure's name.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// Each named member's byte offset (the first member of that name, as C resolves it).
    pub members: BTreeMap<String, u64>,
}

impl Layout {
    /// The offset of `member`, or an error naming the structure and the member.
    pub fn offset(&self, member: &str) -> Result<u64> {
        self.members
            .get(member)
            .copied()
            .ok_or_else(|| Error::Dwarf(format!("struct {} has no member {member}", self.name)))
    }
}

type Slice<'a> = gimli::EndianSlice<'a, gimli::LittleEndian>;

/// The layouts of the structures `names` in the ELF at `path`: each from the first
/// compilation unit that defines it. An error names the first one no unit defines.
pub fn layouts(path: &Path, names: &[&str]) -> Result<BTreeMap<String, Layout>> {
    let data = std::fs::read(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let file = object::File::parse(&*data).map_err(|e| Error::NotElf {
        path: path.to_path_buf(),
        why: e.to_string(),
    })?;
    let sections = gimli::DwarfSections::load(|id| -> std::result::Result<Cow<[u8]>, ()> {
        Ok(file
            .section_by_name(id.name())
            .and_then(|s| s.uncompressed_data().ok())
            .unwrap_or(Cow::Borrowed(&[])))
    })
    .map_err(|()| Error::Dwarf("loading the debug sections".into()))?;
    let dwarf = sections.borrow(|s| gimli::EndianSlice::new(s, gimli::LittleEndian));
    let mut found: BTreeMap<String, Layout> = BTreeMap::new();
    let mut units = dwarf.units();
    while let Some(header) = units.next().map_err(dwarf_error)? {
        let unit = dwarf.unit(header).map_err(dwarf_error)?;
        let mut entries = unit.entries();
        while let Some((_, e)) = entries.next_dfs().map_err(dwarf_error)? {
            if e.tag() != gimli::DW_TAG_structure_type || is_declaration(e) {
                continue;
            }
            let Some(name) = name_of(&dwarf, &unit, e) else {
                continue;
            };
            if !names.contains(&name.as_str()) || found.contains_key(&name) {
                continue;
            }
            let size = e
                .attr_value(gimli::DW_AT_byte_size)
                .map_err(dwarf_error)?
                .and_then(|v| v.udata_value())
                .unwrap_or(0);
            let mut layout = Layout {
                name: name.clone(),
                size,
                members: BTreeMap::new(),
            };
            members(&dwarf, &unit, e.offset(), 0, 0, &mut layout)?;
            found.insert(name, layout);
        }
        if found.len() == names.len() {
            return Ok(found);
        }
    }
    let missing = names
        .iter()
        .find(|n| !found.contains_key(**n))
        .copied()
        .unwrap_or_default();
    Err(Error::Dwarf(format!(
        "{}: no DWARF definition of struct {missing}",
        path.display()
    )))
}

fn dwarf_error(e: gimli::Error) -> Error {
    Error::Dwarf(e.to_string())
}

fn is_declaration(e: &gimli::DebuggingInformationEntry<Slice<'_>>) -> bool {
    matches!(
        e.attr_value(gimli::DW_AT_declaration),
        Ok(Some(gimli::AttributeValue::Flag(true)))
    )
}

fn name_of(
    dwarf: &gimli::Dwarf<Slice<'_>>,
    unit: &gimli::Unit<Slice<'_>>,
    e: &gimli::DebuggingInformationEntry<Slice<'_>>,
) -> Option<String> {
    let v = e.attr_value(gimli::DW_AT_name).ok()??;
    let s = dwarf.attr_string(unit, v).ok()?;
    Some(String::from_utf8_lossy(&s).into_owned())
}

/// Adds the members of the structure or union at `at` to `out`, at `base` bytes in.
fn members(
    dwarf: &gimli::Dwarf<Slice<'_>>,
    unit: &gimli::Unit<Slice<'_>>,
    at: gimli::UnitOffset,
    base: u64,
    depth: usize,
    out: &mut Layout,
) -> Result<()> {
    if depth > MAX_NESTING {
        return Err(Error::Dwarf(format!(
            "struct {}: anonymous members nest deeper than {MAX_NESTING}",
            out.name
        )));
    }
    let mut tree = unit.entries_tree(Some(at)).map_err(dwarf_error)?;
    let root = tree.root().map_err(dwarf_error)?;
    let mut children = root.children();
    while let Some(child) = children.next().map_err(dwarf_error)? {
        let e = child.entry();
        if e.tag() != gimli::DW_TAG_member {
            continue;
        }
        // A union's members have no location: they all start at its start.
        let offset = e
            .attr_value(gimli::DW_AT_data_member_location)
            .map_err(dwarf_error)?
            .and_then(|v| v.udata_value())
            .unwrap_or(0);
        let at = base.checked_add(offset).ok_or_else(|| {
            Error::Dwarf(format!("struct {}: a member offset overflows", out.name))
        })?;
        match name_of(dwarf, unit, e) {
            Some(name) => {
                out.members.entry(name).or_insert(at);
            }
            None => {
                if let Ok(Some(gimli::AttributeValue::UnitRef(ty))) =
                    e.attr_value(gimli::DW_AT_type)
                {
                    members(dwarf, unit, ty, at, depth + 1, out)?;
                }
            }
        }
    }
    Ok(())
}
