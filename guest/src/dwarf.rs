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
    /// Each named member's byte offset (the first member of that name, as C resolves it;
    /// for a bit-field, the byte its first bit is in).
    pub members: BTreeMap<String, u64>,
    /// Each bit-field's first bit within that byte and its width.
    pub bits: BTreeMap<String, (u32, u32)>,
}

impl Layout {
    /// The offset of `member`, or an error naming the structure and the member.
    pub fn offset(&self, member: &str) -> Result<u64> {
        self.members
            .get(member)
            .copied()
            .ok_or_else(|| Error::Dwarf(format!("struct {} has no member {member}", self.name)))
    }

    /// The bit-field `member`: its byte offset, first bit there and width.
    pub fn bit_field(&self, member: &str) -> Result<(u64, u32, u32)> {
        let at = self.offset(member)?;
        let (shift, width) =
            self.bits.get(member).copied().ok_or_else(|| {
                Error::Dwarf(format!("{}.{member} is not a bit-field", self.name))
            })?;
        Ok((at, shift, width))
    }
}

type Slice<'a> = gimli::EndianSlice<'a, gimli::LittleEndian>;

/// The structures and enumerations a reader asked for.
#[derive(Debug, Clone, Default)]
pub struct Types {
    /// Each structure's layout, by name.
    pub structs: BTreeMap<String, Layout>,
    /// Each enumeration's values, by name.
    pub enums: BTreeMap<String, BTreeMap<String, i64>>,
}

/// The layouts of the structures `names` in the ELF at `path`: each from the first
/// compilation unit that defines it. An error names the first one no unit defines.
pub fn layouts(path: &Path, names: &[&str]) -> Result<BTreeMap<String, Layout>> {
    Ok(types(path, names, &[])?.structs)
}

/// The structures `structs` and enumerations `enums` in the ELF at `path`, each from the
/// first compilation unit that defines it (one pass over the units, stopping once every
/// one is found). An error names the first one no unit defines.
pub fn types(path: &Path, structs: &[&str], enums: &[&str]) -> Result<Types> {
    let data = crate::binary::read_file(path)?;
    let file = crate::binary::parse_elf(path, &data)?;
    let sections = gimli::DwarfSections::load(|id| -> std::result::Result<Cow<[u8]>, ()> {
        Ok(file
            .section_by_name(id.name())
            .and_then(|s| s.uncompressed_data().ok())
            .unwrap_or(Cow::Borrowed(&[])))
    })
    .map_err(|()| Error::Dwarf("loading the debug sections".into()))?;
    let dwarf = sections.borrow(|s| gimli::EndianSlice::new(s, gimli::LittleEndian));
    let mut found = Types::default();
    let complete = |f: &Types| f.structs.len() == structs.len() && f.enums.len() == enums.len();
    let mut units = dwarf.units();
    while let Some(header) = units.next().map_err(dwarf_error)? {
        let unit = dwarf.unit(header).map_err(dwarf_error)?;
        let mut entries = unit.entries();
        while let Some((_, e)) = entries.next_dfs().map_err(dwarf_error)? {
            let tag = e.tag();
            if (tag != gimli::DW_TAG_structure_type && tag != gimli::DW_TAG_enumeration_type)
                || is_declaration(e)
            {
                continue;
            }
            let Some(name) = name_of(&dwarf, &unit, e) else {
                continue;
            };
            if tag == gimli::DW_TAG_enumeration_type {
                if enums.contains(&name.as_str()) && !found.enums.contains_key(&name) {
                    let values = enumerators(&dwarf, &unit, e.offset())?;
                    found.enums.insert(name, values);
                }
                continue;
            }
            if !structs.contains(&name.as_str()) || found.structs.contains_key(&name) {
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
                ..Layout::default()
            };
            members(&dwarf, &unit, e.offset(), 0, 0, &mut layout)?;
            found.structs.insert(name, layout);
        }
        if complete(&found) {
            return Ok(found);
        }
    }
    let missing = structs
        .iter()
        .find(|n| !found.structs.contains_key(**n))
        .map(|n| format!("struct {n}"))
        .or_else(|| {
            enums
                .iter()
                .find(|n| !found.enums.contains_key(**n))
                .map(|n| format!("enum {n}"))
        })
        .unwrap_or_default();
    Err(Error::Dwarf(format!(
        "{}: no DWARF definition of {missing}",
        path.display()
    )))
}

/// The values of the enumeration at `at`.
fn enumerators(
    dwarf: &gimli::Dwarf<Slice<'_>>,
    unit: &gimli::Unit<Slice<'_>>,
    at: gimli::UnitOffset,
) -> Result<BTreeMap<String, i64>> {
    let mut out = BTreeMap::new();
    let mut tree = unit.entries_tree(Some(at)).map_err(dwarf_error)?;
    let root = tree.root().map_err(dwarf_error)?;
    let mut children = root.children();
    while let Some(child) = children.next().map_err(dwarf_error)? {
        let e = child.entry();
        if e.tag() != gimli::DW_TAG_enumerator {
            continue;
        }
        let value = match e
            .attr_value(gimli::DW_AT_const_value)
            .map_err(dwarf_error)?
        {
            Some(gimli::AttributeValue::Sdata(v)) => Some(v),
            Some(v) => v.udata_value().and_then(|u| i64::try_from(u).ok()),
            None => None,
        };
        if let (Some(name), Some(v)) = (name_of(dwarf, unit, e), value) {
            out.insert(name, v);
        }
    }
    Ok(out)
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
        let udata = |at: gimli::DwAt| -> Result<Option<u64>> {
            Ok(e.attr_value(at)
                .map_err(dwarf_error)?
                .and_then(|v| v.udata_value()))
        };
        // A union's members have no location: they all start at its start. A bit-field
        // (DWARF 4 on) gives its place in bits.
        let bit = udata(gimli::DW_AT_data_bit_offset)?;
        let offset = match bit {
            Some(b) => b / 8,
            None => udata(gimli::DW_AT_data_member_location)?.unwrap_or(0),
        };
        let at = base.checked_add(offset).ok_or_else(|| {
            Error::Dwarf(format!("struct {}: a member offset overflows", out.name))
        })?;
        match name_of(dwarf, unit, e) {
            Some(name) => {
                if let (Some(b), Some(w)) = (bit, udata(gimli::DW_AT_bit_size)?) {
                    let shift = u32::try_from(b % 8).unwrap_or(0);
                    let width = u32::try_from(w)
                        .map_err(|_| Error::Dwarf(format!("{}.{name}: {w} bits wide", out.name)))?;
                    out.bits.entry(name.clone()).or_insert((shift, width));
                }
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
